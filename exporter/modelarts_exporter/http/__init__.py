"""Who asks: the WSGI application, the HTTP/1.1 server and its process, web config, the health
check.
"""
