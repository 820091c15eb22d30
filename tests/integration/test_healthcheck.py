"""The health check: it asks on loopback, reads nothing but the listen address and the web config,
and names each failure in one line. (deploy/test_docker.py runs the image's HEALTHCHECK
against a real exporter over HTTP, HTTPS and with client certificates.)"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelarts_exporter.config.errors import ConfigError
from modelarts_exporter.config.load import load
from modelarts_exporter.http.healthcheck import HealthcheckSettings, UnhealthyError, check
from support.processes import free_port


@contextmanager
def healthz_answering(status: int) -> Iterator[int]:
    """A stand-in exporter on 127.0.0.1 whose /healthz answers ``status``; its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == "/healthz" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_target_and_credential_settings_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    with healthz_answering(200) as port:
        monkeypatch.setenv("MODELARTS_EXPORTER_LISTEN_ADDRESS", f"0.0.0.0:{port}")
        # Settings the exporter itself would refuse: the check must not care.
        monkeypatch.setenv("MODELARTS_EXPORTER_PROJECT_ID", "not a project id!")
        monkeypatch.setenv("MODELARTS_EXPORTER_ACCESS_KEY", "AK-without-its-secret-key")
        with pytest.raises(ConfigError):
            load()
        assert check(HealthcheckSettings()) == f"http://127.0.0.1:{port}/healthz answered HTTP 200"


def test_an_error_status_is_unhealthy() -> None:
    with healthz_answering(503) as port:
        settings = HealthcheckSettings(listen_address=f"127.0.0.1:{port}")
        with pytest.raises(UnhealthyError, match=r"/healthz answered HTTP 503$"):
            check(settings)


def test_a_server_that_never_answers_is_a_timeout() -> None:
    """The kernel completes the TCP handshake for a listening socket nobody accepts from."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        settings = HealthcheckSettings(listen_address=f"127.0.0.1:{port}")
        with pytest.raises(UnhealthyError, match=r"/healthz: no answer within 0\.3 s$"):
            check(settings, timeout=0.3)


def test_ipv6_wildcard_is_asked_at_the_ipv6_loopback_in_brackets() -> None:
    port = free_port()
    with pytest.raises(UnhealthyError) as failure:
        check(HealthcheckSettings(listen_address=f"[::]:{port}"))
    assert str(failure.value).startswith(f"http://[::1]:{port}/healthz: ")
