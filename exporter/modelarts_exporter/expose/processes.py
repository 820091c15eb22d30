"""The standard process metrics (prometheus_client's ``ProcessCollector``: CPU, memory, start
time, descriptors) of both processes of ``serve``: the poller's as ``process_*``, the names
every exporter gives its own process's, and the HTTP server's as
``modelarts_exporter_http_process_*``, so that neither hides the other (docs/metrics.md).

They are read from ``/proc`` by a scrape, at most a second old, in the HTTP server's process
(where there is no ``/proc``, none appear). The poller is the process with the pid given, the
server the one reading.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.process_collector import ProcessCollector

HTTP_NAMESPACE = "modelarts_exporter_http"
"""The server's process metrics are named ``modelarts_exporter_http_process_*``."""


def process_registry(poller_pid: int) -> CollectorRegistry:
    """Both processes' metrics, for the application's ``live`` part (never cached with the
    states' exposition)."""
    registry = CollectorRegistry(auto_describe=False)
    # The pid taken now, not os.getppid() at scrape time: a server orphaned for a moment would
    # report init instead.
    ProcessCollector(pid=lambda: poller_pid, registry=registry)
    ProcessCollector(namespace=HTTP_NAMESPACE, registry=registry)
    return registry
