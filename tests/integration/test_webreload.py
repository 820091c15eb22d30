"""The web configuration is picked up while serving: renewed certificates, changed users; a broken
one keeps the last good one in use, warns once and shows in the metrics. Real HTTPS over
127.0.0.1, with a settable clock standing in for the reload interval."""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from modelarts_exporter.http import reload as webreload
from modelarts_exporter.http.app import WebApp
from modelarts_exporter.http.guard import protect
from modelarts_exporter.http.reload import LiveWebConfig
from modelarts_exporter.http.server import HttpServer
from modelarts_exporter.runtime.wiring import build_registry
from modelarts_exporter.snapshot.store import StateStore
from support.pki import (
    HASH,
    NEW_HASH,
    TLS,
    USER,
    Issued,
    install,
    issue_certificate,
    replace,
    write_config,
)
from support.processes import background, free_port, sim_env
from support.secrets import BASIC_AUTH_PASSWORD, NEW_BASIC_AUTH_PASSWORD
from support.simulation import Clock, SimFactory, parse_samples, select

OTHER = "grafana"
PASSWORD = BASIC_AUTH_PASSWORD
OK = "modelarts_exporter_web_config_last_reload_successful"
WHEN = "modelarts_exporter_web_config_last_reload_success_timestamp_seconds"


@pytest.fixture(scope="module")
def cert_a() -> Issued:
    return issue_certificate()


@pytest.fixture(scope="module")
def cert_b() -> Issued:
    return issue_certificate()


@dataclass
class Endpoint:
    url: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def peer_certificate(self, trust: ssl.SSLContext) -> bytes:
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw,
            trust.wrap_socket(raw, server_hostname="127.0.0.1") as secured,
        ):
            der = secured.getpeercert(binary_form=True)
        assert der is not None
        return der

    def metrics(self, verify: ssl.SSLContext | bool) -> dict[str, float]:
        response = httpx.get(f"{self.url}/metrics", verify=verify, auth=(USER, PASSWORD))
        assert response.status_code == 200
        samples = parse_samples(response.text)
        return {name: select(samples, name) for name in (OK, WHEN)}


@dataclass
class Served(Endpoint):
    clock: Clock

    def later(self) -> None:
        """Let the reload interval pass: the next connection or request looks at the files."""
        self.clock.now += 1.0


Serve = Callable[[Path], Served]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[HttpServer] = []

    def start(path: Path) -> Served:
        clock = Clock()
        live = LiveWebConfig(path, interval=1.0, clock=clock, wall=clock)
        store = StateStore()
        app = WebApp(
            store,
            build_registry(store, web_config=live.status),
            ready_intervals=3,
            version="9.9.9",
            web_config=live.status,
        )
        tls = live.tls if live.config.tls is not None else None
        server = HttpServer(protect(app, live.guard), "127.0.0.1", 0, tls=tls)
        server.start()
        servers.append(server)
        scheme = "https" if tls else "http"
        return Served(f"{scheme}://127.0.0.1:{server.port}", clock)

    yield start
    for server in servers:
        server.stop()


# --- certificates --------------------------------------------------------------------------------


def test_a_renewed_certificate_is_presented_to_new_connections_without_a_restart(
    tmp_path: Path, cert_a: Issued, cert_b: Issued, serve: Serve
) -> None:
    install(tmp_path, cert_a)
    served = serve(write_config(tmp_path, {"tls_server_config": TLS}))
    assert served.peer_certificate(cert_a.trusting()) == cert_a.der
    started = served.metrics(cert_a.trusting())
    assert started == {OK: 1.0, WHEN: served.clock.now}

    install(tmp_path, cert_b)  # cert-manager renews: another CA, another key
    assert served.peer_certificate(cert_a.trusting()) == cert_a.der  # within the interval
    served.later()
    assert served.peer_certificate(cert_b.trusting()) == cert_b.der
    with pytest.raises(ssl.SSLCertVerificationError):
        served.peer_certificate(cert_a.trusting())
    assert served.metrics(cert_b.trusting()) == {OK: 1.0, WHEN: served.clock.now}


# --- users ---------------------------------------------------------------------------------------


def test_changed_and_removed_users_take_effect_at_the_next_look(
    tmp_path: Path, serve: Serve
) -> None:
    path = write_config(tmp_path, {"basic_auth_users": {USER: HASH, OTHER: HASH}})
    served = serve(path)
    with httpx.Client(base_url=served.url) as http:
        assert http.get("/metrics", auth=(USER, PASSWORD)).status_code == 200  # now cached

        write_config(tmp_path, {"basic_auth_users": {USER: NEW_HASH, OTHER: HASH}})
        served.later()
        assert http.get("/metrics", auth=(USER, PASSWORD)).status_code == 401
        assert http.get("/metrics", auth=(USER, NEW_BASIC_AUTH_PASSWORD)).status_code == 200
        assert http.get("/metrics", auth=(OTHER, PASSWORD)).status_code == 200

        write_config(tmp_path, {"basic_auth_users": {OTHER: HASH}})
        served.later()
        assert http.get("/metrics", auth=(USER, NEW_BASIC_AUTH_PASSWORD)).status_code == 401
        assert http.get("/metrics", auth=(OTHER, PASSWORD)).status_code == 200
        assert http.get("/healthz").status_code == 200


# --- broken files --------------------------------------------------------------------------------


def reload_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == webreload.__name__]


Break = Callable[[Path], None]
MISMATCHED = issue_certificate()


def _bad_yaml(directory: Path) -> None:
    (directory / "web-config.yml").write_text("basic_auth_users:\n  prometheus: [unclosed\n")


def _key_gone(directory: Path) -> None:
    (directory / "server.key").unlink()


def _key_of_another_certificate(directory: Path) -> None:
    replace(directory / "server.key", MISMATCHED.key)


def _not_bcrypt(directory: Path) -> None:
    write_config(directory, {"tls_server_config": TLS, "basic_auth_users": {USER: PASSWORD}})


def _tls_off(directory: Path) -> None:
    write_config(directory, {"basic_auth_users": {USER: HASH}})


BREAKAGES: list[tuple[Break, str]] = [
    (_bad_yaml, "not valid YAML at line 3"),
    (_key_gone, "no such file"),
    (_key_of_another_certificate, "cannot load the certificate"),
    (_not_bcrypt, f"basic_auth_users.{USER} is not a bcrypt hash"),
    (_tls_off, "switching from HTTPS to HTTP needs a restart"),
]


@pytest.mark.parametrize(("breaks", "cause"), BREAKAGES, ids=[c for _, c in BREAKAGES])
def test_a_broken_file_keeps_the_last_good_one_warns_once_and_says_so_in_the_metrics(
    tmp_path: Path,
    cert_a: Issued,
    serve: Serve,
    caplog: pytest.LogCaptureFixture,
    breaks: Break,
    cause: str,
) -> None:
    install(tmp_path, cert_a)
    good = {"tls_server_config": TLS, "basic_auth_users": {USER: HASH}}
    served = serve(write_config(tmp_path, good))
    trust = cert_a.trusting()
    started = served.clock.now
    assert served.metrics(trust) == {OK: 1.0, WHEN: started}  # and renders the cache

    breaks(tmp_path)
    for _ in range(3):
        served.later()
        assert served.peer_certificate(trust) == cert_a.der
        assert served.metrics(trust) == {OK: 0.0, WHEN: started}
        refused = httpx.get(f"{served.url}/metrics", verify=trust, auth=(USER, "wrong"))
        assert refused.status_code == 401
    (warning,) = reload_records(caplog)
    assert warning.levelno == logging.WARNING and warning.exc_info is None
    message = warning.getMessage()
    assert cause in message and "\n" not in message
    assert message.startswith("web config reload failed, keeping the last good one: ")
    assert HASH not in message and "BEGIN" not in message

    caplog.clear()
    install(tmp_path, cert_a)
    write_config(tmp_path, good)
    served.later()
    assert served.metrics(trust) == {OK: 1.0, WHEN: served.clock.now}
    assert [r.getMessage() for r in reload_records(caplog)] == [
        "web config reloaded tls=on basic_auth_users=1"
    ]


# --- the command ---------------------------------------------------------------------------------


def test_serve_presents_a_renewed_certificate_and_exports_the_reload(
    tmp_path: Path, cert_a: Issued, cert_b: Issued, simulator: SimFactory
) -> None:
    """The wiring of ``serve``, with the real one-second interval."""
    sim = simulator(size=20)
    install(tmp_path, cert_a)
    config = write_config(tmp_path, {"tls_server_config": TLS, "basic_auth_users": {USER: HASH}})
    port = free_port()
    env = {
        **sim_env(sim.url, sim.project_id),
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "MODELARTS_EXPORTER_WEB_CONFIG_FILE": str(config),
    }
    url = f"https://127.0.0.1:{port}"
    with background(["serve"], env) as exporter:
        served = Endpoint(url)
        assert _eventually(lambda: served.peer_certificate(cert_a.trusting()) == cert_a.der)
        before = served.metrics(cert_a.trusting())
        assert before[OK] == 1.0
        install(tmp_path, cert_b)
        assert _eventually(lambda: served.peer_certificate(cert_b.trusting()) == cert_b.der)
        after = served.metrics(cert_b.trusting())
        assert after[OK] == 1.0 and after[WHEN] > before[WHEN]
        exporter.terminate()
        exporter.wait(timeout=10)
        log = exporter.stderr.read() if exporter.stderr else ""
    assert "web config reloaded tls=on basic_auth_users=1" in log


def _eventually(condition: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except OSError:  # not listening yet; a certificate not trusted (yet)
            pass
        time.sleep(0.05)
    return False
