"""The web configuration over real connections: HTTPS, client certificates and basic auth on every
endpoint but the probes' /healthz and /readyz; password checks that hold up no verified scrape.
(unit/http/test_webconfig.py: the file and basic auth; deploy/test_prometheus_tls.py: a real
Prometheus scraping through all of it.)"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest
import trustme

from modelarts_exporter.http.app import WebApp
from modelarts_exporter.http.guard import protect
from modelarts_exporter.http.server import HttpServer
from modelarts_exporter.http.webconfig import load as load_web_config
from modelarts_exporter.runtime.wiring import build_registry
from modelarts_exporter.snapshot.store import StateStore
from support.pki import HASH, MTLS, TLS, USER, Pki, write_config
from support.secrets import BASIC_AUTH_PASSWORD
from support.waiting import eventually

PASSWORD = BASIC_AUTH_PASSWORD


Serve = Callable[[dict[str, object]], str]


@pytest.fixture
def serve_protected(pki: Pki) -> Iterator[Serve]:
    servers: list[HttpServer] = []

    def start(document: dict[str, object]) -> str:
        config = load_web_config(write_config(pki.directory, document))
        store = StateStore()
        app = WebApp(store, build_registry(store), ready_intervals=3, version="9.9.9")
        server = HttpServer(protect(app, config), "127.0.0.1", 0, tls=config.tls)
        server.start()
        servers.append(server)
        return f"{'https' if config.tls else 'http'}://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        server.stop()


def test_every_endpoint_but_the_probes_asks_for_the_password(
    pki: Pki, serve_protected: Serve
) -> None:
    url = serve_protected(
        {
            "tls_server_config": TLS,
            "basic_auth_users": {USER: HASH},
            "http_server_config": {"headers": {"X-Content-Type-Options": "nosniff"}},
        }
    )
    with httpx.Client(base_url=url, verify=pki.client_context(with_certificate=False)) as http:
        assert http.get("/healthz").status_code == 200
        # Kubernetes probes cannot send credentials; no target has polled yet.
        unready = http.get("/readyz")
        assert (unready.status_code, unready.text) == (503, "not ready\n")
        assert unready.headers["x-content-type-options"] == "nosniff"
        for path in ("/metrics", "/", "/nope"):
            refused = http.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"].startswith("Basic")
            assert http.get(path, auth=(USER, "wrong")).status_code == 401
            assert http.get(path, auth=("mallory", PASSWORD)).status_code == 401
        metrics = http.get("/metrics", auth=(USER, PASSWORD))
        assert metrics.status_code == 200 and "modelarts_exporter_build_info" in metrics.text
        assert metrics.headers["x-content-type-options"] == "nosniff"
        assert http.get("/healthz").headers["x-content-type-options"] == "nosniff"
    plain = httpx.get(url.replace("https://", "http://") + "/healthz", timeout=5)
    assert plain.status_code == 400  # plain HTTP to the HTTPS port: refused, and told why


@pytest.mark.parametrize(
    "sent",
    [b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"GARBAGE", b"GET /metr"],
    ids=["a-request", "garbage", "half-a-request-line"],
)
def test_plain_http_to_the_https_port_is_told_so_and_closed(
    pki: Pki, serve_protected: Serve, sent: bytes
) -> None:
    url = serve_protected({"tls_server_config": TLS})
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(sent)
        sock.settimeout(10)
        data = b""
        while chunk := sock.recv(65536):  # until the server closes the connection
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in head
    assert b"Content-Type: text/plain" in head
    assert body == b"Client sent an HTTP request to an HTTPS server.\n"
    # TLS, on the same port, goes on as before.
    assert httpx.get(f"{url}/healthz", verify=pki.client_context()).status_code == 200


def test_wrong_passwords_being_checked_hold_up_no_scrape_with_a_verified_one(
    serve_protected: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checks of new passwords (bcrypt) run off the event loop; every other request on it. Here
    the checks of wrong passwords wait until the test lets them go: were they on the event
    loop, no scrape would be answered meanwhile."""
    url = serve_protected({"basic_auth_users": {USER: HASH}})
    checking: list[bytes] = []
    let_go = threading.Event()
    check = bcrypt.checkpw

    def held(password: bytes, hashed: bytes) -> bool:
        checking.append(password)
        let_go.wait(30)
        return check(password, hashed)

    stop = threading.Event()
    refused: list[int] = []

    def hammer() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                assert http.get("/metrics", auth=(USER, "wrong")).status_code == 401
                refused.append(1)

    hammers = [threading.Thread(target=hammer) for _ in range(6)]
    with httpx.Client(base_url=url, auth=(USER, PASSWORD), timeout=5) as http:
        assert http.get("/metrics").status_code == 200  # verified: answered from the cache now
        monkeypatch.setattr(bcrypt, "checkpw", held)
        for thread in hammers:
            thread.start()
        try:
            assert eventually(lambda: bool(checking)), "no wrong password is being checked"
            for _ in range(20):
                assert http.get("/metrics").status_code == 200
            assert not refused  # every check of a wrong password still waits
        finally:
            let_go.set()
            stop.set()
            for thread in hammers:
                thread.join()
    assert refused, "the wrong passwords were not checked"


def test_client_certificates_are_required_and_verified(pki: Pki, serve_protected: Serve) -> None:
    url = serve_protected({"tls_server_config": MTLS})
    with httpx.Client(verify=pki.client_context()) as http:
        assert http.get(f"{url}/metrics").status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/healthz", verify=pki.client_context(with_certificate=False), timeout=5)
    stranger = trustme.CA().issue_cert("scraper@example.org")
    context = pki.client_context(with_certificate=False)
    stranger.configure_cert(context)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/healthz", verify=context, timeout=5)


def test_tls_versions_below_the_minimum_are_refused(pki: Pki, serve_protected: Serve) -> None:
    url = serve_protected({"tls_server_config": {**TLS, "min_version": "TLS13"}})
    old = pki.client_context(with_certificate=False)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/healthz", verify=old, timeout=5)
    assert httpx.get(f"{url}/healthz", verify=pki.client_context()).status_code == 200


def test_a_client_stuck_before_its_handshake_holds_up_no_one(
    pki: Pki, serve_protected: Serve
) -> None:
    url = serve_protected({"tls_server_config": TLS})
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)):  # connects, never says hello
        # Held up, this client would wait for the stuck one's 10 s handshake time-out, beyond
        # its own 5 s.
        response = httpx.get(f"{url}/healthz", verify=pki.client_context(), timeout=5)
        assert response.status_code == 200


def test_tls_connections_and_failed_handshakes_leave_no_descriptor_behind(
    pki: Pki, serve_protected: Serve
) -> None:
    url = serve_protected({"tls_server_config": TLS, "basic_auth_users": {USER: HASH}})
    plain = url.replace("https://", "http://")

    def scrape_and_fail(times: int) -> None:
        for _ in range(times):
            with httpx.Client(verify=pki.client_context()) as http:
                assert http.get(f"{url}/metrics", auth=(USER, PASSWORD)).status_code == 200
            assert httpx.get(f"{plain}/metrics", timeout=5).status_code == 400
            with pytest.raises(httpx.TransportError):  # a handshake that fails
                httpx.get(f"{url}/metrics", verify=True, timeout=5)

    scrape_and_fail(5)  # warm-up: whatever is opened once (certificate stores…)
    time.sleep(0.2)
    before = len(list(Path("/proc/self/fd").iterdir()))
    scrape_and_fail(20)
    deadline = time.monotonic() + 20
    while len(list(Path("/proc/self/fd").iterdir())) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(list(Path("/proc/self/fd").iterdir())) <= before
