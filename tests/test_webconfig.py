"""The web configuration file: checked at start-up with one line per problem; HTTPS, client
certificates and basic auth on every endpoint but the probes' /healthz and /readyz — and a real
Prometheus scraping through all of it."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx
import pytest
import trustme

from modelarts_exporter.config.settings import ConfigError, load
from modelarts_exporter.http.server import ExporterApp, HttpServer
from modelarts_exporter.http.webconfig import BasicAuth, WebConfig, WebConfigError, Wsgi, protect
from modelarts_exporter.http.webconfig import load as load_web_config
from modelarts_exporter.runtime.service import build_registry
from modelarts_exporter.snapshot.store import StateStore, TargetState
from support.pki import Pki, write_config
from support.processes import background, free_port, sim_env
from support.secrets import BASIC_AUTH_PASSWORD
from support.simulation import SimFactory, parse_samples, select
from support.waiting import wait_for

USER = "prometheus"
PASSWORD = BASIC_AUTH_PASSWORD
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


TLS = {"cert_file": "server.pem", "key_file": "server.key"}
MTLS = {**TLS, "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": "ca.pem"}


# --- checking the file --------------------------------------------------------------------------


def test_a_complete_file_loads(pki: Pki) -> None:
    config = load_web_config(
        write_config(
            pki.directory,
            {
                "tls_server_config": {**MTLS, "min_version": "TLS13"},
                "http_server_config": {"http2": True, "headers": {"X-Frame-Options": "deny"}},
                "basic_auth_users": {USER: HASH},
            },
        )
    )
    assert config.tls is not None and config.tls.minimum_version is ssl.TLSVersion.TLSv1_3
    assert config.tls.verify_mode is ssl.CERT_REQUIRED
    assert config.users == {USER: HASH.encode()}
    assert config.headers == (("X-Frame-Options", "deny"),)
    assert config.describe() == "tls=on with client certificates basic_auth_users=1"


def test_empty_sections_mean_no_protection(tmp_path: Path) -> None:
    config = load_web_config(write_config(tmp_path, {"tls_server_config": {}}))
    assert config.tls is None and config.users is None
    (tmp_path / "empty.yml").write_text("")
    assert load_web_config(tmp_path / "empty.yml").describe() == "tls=off basic_auth_users=0"


BAD_FILES: list[tuple[dict[str, object], str]] = [
    ({"tls_server_confg": TLS}, "unknown setting tls_server_confg"),
    ({"rate_limit": {"interval": "1s"}}, "rate_limit: rate limiting is not supported"),
    ({"tls_server_config": {**TLS, "cipher_suites": ["X"]}}, "choosing cipher suites"),
    ({"tls_server_config": {"cert": "PEM", "key_file": "k"}}, "inline certificate"),
    ({"tls_server_config": {"cert_file": "server.pem"}}, "needs both cert_file and key_file"),
    ({"tls_server_config": {**TLS, "cert_file": "nope.pem"}}, "no such file: "),
    ({"tls_server_config": {**TLS, "cert_file": "gone.pem"}}, "gone.pem"),
    ({"tls_server_config": {**TLS, "key_file": "nope.key"}}, "nope.key"),
    ({"tls_server_config": {**TLS, "key_file": "ca.pem"}}, "cannot load the certificate"),
    (
        {"tls_server_config": {**TLS, "client_auth_type": "RequireAnyClientCert"}},
        "RequireAnyClientCert (a client certificate that is not verified) is not supported",
    ),
    ({"tls_server_config": {**TLS, "client_auth_type": "Always"}}, "must be one of"),
    ({"tls_server_config": {**TLS, "client_ca_file": "ca.pem"}}, "client_auth_type is not set"),
    (
        {"tls_server_config": {**TLS, "client_auth_type": "RequireAndVerifyClientCert"}},
        "needs client_ca_file",
    ),
    ({"tls_server_config": {**TLS, "min_version": "SSL3"}}, "min_version must be one of"),
    (
        {"tls_server_config": {**TLS, "min_version": "TLS13", "max_version": "TLS12"}},
        "min_version is above max_version",
    ),
    ({"basic_auth_users": {USER: "plain-text-password"}}, f"{USER} is not a bcrypt hash"),
    ({"basic_auth_users": {"a:b": HASH}}, "is not a usable user name"),
    ({"basic_auth_users": ["alice"]}, "basic_auth_users must be a mapping"),
    ({"http_server_config": {"headers": {"Server": "x"}}}, "Server is not one of"),
    ({"http_server_config": {"http2": "yes"}}, "http2 must be true or false"),
]


@pytest.mark.parametrize(("document", "expected"), BAD_FILES, ids=[e for _, e in BAD_FILES])
def test_a_bad_file_is_one_line_naming_the_problem(
    pki: Pki, document: dict[str, object], expected: str
) -> None:
    path = write_config(pki.directory, document)
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    message = str(caught.value)
    assert expected in message and "\n" not in message
    assert message.startswith(str(path))
    assert "plain-text-password" not in message  # a password field is never echoed


def test_yaml_errors_and_missing_files_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text("basic_auth_users:\n  alice: [unclosed\n")
    with pytest.raises(WebConfigError, match=r"not valid YAML at line \d+") as caught:
        load_web_config(tmp_path / "broken.yml")
    assert "\n" not in str(caught.value)
    with pytest.raises(WebConfigError, match=r"cannot read .*: No such file or directory"):
        load_web_config(tmp_path / "absent.yml")


def test_the_setting_checks_the_file_at_start_up(pki: Pki) -> None:
    path = write_config(pki.directory, {"basic_auth_users": {USER: "x"}})
    with pytest.raises(ConfigError) as caught:
        load(["--web-config-file", str(path)])
    (line,) = str(caught.value).splitlines()
    assert line.startswith("MODELARTS_EXPORTER_WEB_CONFIG_FILE: ")
    assert "is not a bcrypt hash" in line


# --- basic auth ----------------------------------------------------------------------------------


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_verifies_once_then_answers_from_its_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = BasicAuth({USER: HASH.encode()})
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    assert auth.check(basic(USER, PASSWORD))
    assert all(auth.check(basic(USER, PASSWORD)) for _ in range(50))
    assert len(calls) == 1
    assert not auth.check(basic(USER, PASSWORD + "x"))
    assert not auth.check(basic("mallory", PASSWORD))  # unknown users cost a bcrypt too
    assert len(calls) == 3
    for header in (
        None,
        "",
        "Bearer x",
        "Basic !!!",
        "Basic " + base64.b64encode(b"nocolon").decode(),
    ):
        assert not auth.check(header)


def test_passwords_compare_on_their_first_72_bytes_as_bcrypt_does() -> None:
    long = "p" * 72
    auth = BasicAuth({USER: bcrypt.hashpw(long.encode(), bcrypt.gensalt(rounds=4))})
    assert auth.check(basic(USER, long))
    assert auth.check(basic(USER, long + "ignored"))
    assert not auth.check(basic(USER, long[:-1]))


# --- over HTTPS ----------------------------------------------------------------------------------


Serve = Callable[[dict[str, object]], str]


@pytest.fixture
def serve_protected(pki: Pki) -> Iterator[Serve]:
    servers: list[HttpServer] = []

    def start(document: dict[str, object]) -> str:
        config = load_web_config(write_config(pki.directory, document))
        store = StateStore()
        app = ExporterApp(store, build_registry(store), ready_intervals=3, version="9.9.9")
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
    with pytest.raises(httpx.TransportError):  # plain HTTP to the HTTPS port: refused
        httpx.get(url.replace("https://", "http://") + "/healthz", timeout=5)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    text: str


def _get(app: Wsgi, path: str, authorization: str | None = None, method: str = "GET") -> Answer:
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], *_: object) -> object:
        started.append((status, headers))
        return None

    environ = {"PATH_INFO": path, "REQUEST_METHOD": method}
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    body = b"".join(app(environ, start_response))
    (status, headers), *_ = started
    return Answer(int(status.split()[0]), dict(headers), body.decode())


def test_readyz_without_a_password_names_no_target(tmp_path: Path) -> None:
    """Stale targets' names and project ids are as private as /metrics: only an authenticated
    readiness check lists them."""
    store = StateStore()
    store.publish(TargetState(target="team-secret", project_id="0123abcd"))
    registry = build_registry(store)
    app = ExporterApp(store, registry, ready_intervals=3, version="9.9.9", clock=lambda: 1000.0)
    protected = protect(
        app, load_web_config(write_config(tmp_path, {"basic_auth_users": {USER: HASH}}))
    )

    for authorization in (None, basic(USER, "wrong")):
        anonymous = _get(protected, "/readyz", authorization)
        assert (anonymous.status, anonymous.text) == (503, "not ready\n")
        assert anonymous.headers["Content-Length"] == "10"
    head = _get(protected, "/readyz", method="HEAD")
    assert (head.status, head.text, head.headers["Content-Length"]) == (503, "", "10")
    detailed = _get(protected, "/readyz", basic(USER, PASSWORD))
    assert detailed.status == 503 and "team-secret" in detailed.text
    assert _get(protected, "/metrics").status == 401

    store.publish(TargetState(target="team-secret", project_id="0123abcd", last_success=990.0))
    ready = _get(protected, "/readyz")
    assert (ready.status, ready.text) == (200, "ready\n")


def test_only_a_request_that_would_run_bcrypt_may_block(tmp_path: Path) -> None:
    store = StateStore()
    app = ExporterApp(store, build_registry(store), ready_intervals=3, version="9.9.9")
    config = load_web_config(write_config(tmp_path, {"basic_auth_users": {USER: HASH}}))
    protected = protect(app, config)

    def may_block(path: str, authorization: str | None = None) -> bool:
        environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
        if authorization is not None:
            environ["HTTP_AUTHORIZATION"] = authorization
        return protected.may_block(environ)

    assert may_block("/metrics", basic(USER, PASSWORD))
    assert may_block("/readyz", basic(USER, "wrong"))  # checked, to tell more when right
    assert may_block("/", basic("mallory", PASSWORD))  # unknown users cost a bcrypt too
    assert not may_block("/healthz", basic(USER, "wrong"))  # never checked
    assert not may_block("/metrics")  # refused without a check
    assert not may_block("/metrics", "Basic !!!")
    assert _get(protected, "/metrics", basic(USER, PASSWORD)).status == 200
    assert not may_block("/metrics", basic(USER, PASSWORD))  # verified now
    assert may_block("/metrics", basic(USER, PASSWORD + "x"))
    assert not protect(app, WebConfig()).may_block({"PATH_INFO": "/metrics"})


@pytest.mark.timeout(60)
def test_wrong_passwords_being_checked_hold_up_no_scrape_with_a_verified_one(
    serve_protected: Serve,
) -> None:
    """Checks of new passwords (bcrypt) run off the event loop; every other request on it. Were
    they on it, a scrape would wait for the checks queued before it, a few times ``one_check``."""
    slow_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10))
    started = time.perf_counter()
    bcrypt.checkpw(b"wrong", slow_hash)
    one_check = time.perf_counter() - started
    url = serve_protected({"basic_auth_users": {USER: slow_hash.decode()}})
    stop = threading.Event()
    refused: list[float] = []

    def hammer() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                assert http.get("/metrics", auth=(USER, "wrong")).status_code == 401
                refused.append(time.perf_counter())

    hammers = [threading.Thread(target=hammer) for _ in range(6)]
    latencies = []
    with httpx.Client(base_url=url, auth=(USER, PASSWORD), timeout=30) as http:
        assert http.get("/metrics").status_code == 200  # verified: answered from the cache now
        for thread in hammers:
            thread.start()
        try:
            time.sleep(2 * one_check)  # every hammer has a check queued or running
            began = time.perf_counter()
            for _ in range(20):
                started = time.perf_counter()
                assert http.get("/metrics").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(one_check / 4)
            ended = time.perf_counter()
        finally:
            stop.set()
            for thread in hammers:
                thread.join()
    assert sum(began < t < ended for t in refused) >= 3, "the wrong passwords were not checked"
    latencies.sort()
    assert latencies[len(latencies) // 2] < one_check / 3, (one_check, latencies)
    assert latencies[-1] < 3 * one_check, (one_check, latencies)


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
        started = time.monotonic()
        response = httpx.get(f"{url}/healthz", verify=pki.client_context(), timeout=5)
        assert response.status_code == 200 and time.monotonic() - started < 1.0


def test_tls_connections_and_failed_handshakes_leave_no_descriptor_behind(
    pki: Pki, serve_protected: Serve
) -> None:
    url = serve_protected({"tls_server_config": TLS, "basic_auth_users": {USER: HASH}})
    plain = url.replace("https://", "http://")

    def scrape_and_fail(times: int) -> None:
        for _ in range(times):
            with httpx.Client(verify=pki.client_context()) as http:
                assert http.get(f"{url}/metrics", auth=(USER, PASSWORD)).status_code == 200
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{plain}/metrics", timeout=5)

    scrape_and_fail(5)  # warm-up: whatever is opened once (certificate stores…)
    time.sleep(0.2)
    before = len(list(Path("/proc/self/fd").iterdir()))
    scrape_and_fail(20)
    deadline = time.monotonic() + 5
    while len(list(Path("/proc/self/fd").iterdir())) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(list(Path("/proc/self/fd").iterdir())) <= before


# --- a real Prometheus ---------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_prometheus_scrapes_through_tls_client_certificates_and_basic_auth(
    pki: Pki, simulator: SimFactory, tmp_path: Path
) -> None:
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is installed by the test command (Debian package prometheus)"
    sim = simulator(size=200)
    config = write_config(
        pki.directory, {"tls_server_config": MTLS, "basic_auth_users": {USER: HASH}}
    )
    port, prometheus_port = free_port(), free_port()
    env = sim_env(sim.url, sim.project_id) | {
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "MODELARTS_EXPORTER_POLL_INTERVAL_SECONDS": "1",
        "MODELARTS_EXPORTER_WEB_CONFIG_FILE": str(config),
    }
    (tmp_path / "password").write_text(PASSWORD)
    tls = {
        "ca_file": str(pki.ca_file),
        "cert_file": str(pki.directory / "client.pem"),
        "key_file": str(pki.directory / "client.key"),
    }

    def job(name: str, password_file: Path) -> dict[str, object]:
        return {
            "job_name": name,
            "scheme": "https",
            "tls_config": tls,
            "basic_auth": {"username": USER, "password_file": str(password_file)},
            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
        }

    (tmp_path / "wrong").write_text("not-the-password")
    scrape = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            job("exporter", tmp_path / "password"),
            job("intruder", tmp_path / "wrong"),
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(scrape))
    with background(["serve"], env) as exporter:
        api = f"http://127.0.0.1:{prometheus_port}/api/v1"
        server = subprocess.Popen(
            [
                prometheus,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            health = _wait_for_targets(api, {"exporter", "intruder"})
            assert health["exporter"] == ("up", ""), health
            state, error = health["intruder"]
            assert state == "down" and "401" in error, health
            up = _query(api, 'modelarts_exporter_up{job="exporter"}')
            assert up == 1.0
        finally:
            server.terminate()
            server.wait(timeout=20)
        # The exporter was answering all along; its own view of it:
        metrics = httpx.get(
            f"https://127.0.0.1:{port}/metrics", verify=pki.client_context(), auth=(USER, PASSWORD)
        )
        assert select(parse_samples(metrics.text), "modelarts_exporter_up") == 1
        assert wait_for(f"http://127.0.0.1:{port}/healthz", 200, timeout=0.5) is False
        exporter.terminate()
        exporter.wait(timeout=10)
        log = exporter.stderr.read() if exporter.stderr else ""
    assert "tls=on with client certificates basic_auth_users=1" in log
    assert PASSWORD not in log


def _wait_for_targets(api: str, jobs: set[str], timeout: float = 40) -> dict[str, tuple[str, str]]:
    """Each job's (health, last error) once every job has been scraped at least once."""
    deadline = time.monotonic() + timeout
    health: dict[str, tuple[str, str]] = {}
    while time.monotonic() < deadline:
        try:
            targets = httpx.get(f"{api}/targets", timeout=2).json()["data"]["activeTargets"]
        except (httpx.TransportError, KeyError, ValueError):
            targets = []
        health = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in targets}
        scraped = set(health) == jobs and all(s != "unknown" for s, _ in health.values())
        if scraped and health["exporter"][0] == "up":
            return health
        time.sleep(0.3)
    raise AssertionError(f"targets not scraped in time: {health}")


def _query(api: str, expression: str) -> float:
    result = httpx.get(f"{api}/query", params={"query": expression}, timeout=5).json()
    (sample,) = result["data"]["result"]
    return float(sample["value"][1])
