"""Talking to the ModelArts API: the HTTP client, authentication and signing, errors, typed
records.
"""
