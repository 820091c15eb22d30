"""How the snapshots look to Prometheus and to people: metric declarations, the collector, the
status page.
"""
