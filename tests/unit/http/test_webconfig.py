"""The web configuration file, and what it asks of a request: checked at start-up with one line per
problem; basic auth verifying a password once, on every endpoint but the probes' /healthz and
/readyz. (integration/test_webconfig.py: HTTPS and client certificates over real connections.)"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest

from modelarts_exporter.config.errors import ConfigError
from modelarts_exporter.config.load import load
from modelarts_exporter.http.app import WebApp
from modelarts_exporter.http.basicauth import BasicAuth
from modelarts_exporter.http.guard import Wsgi, protect
from modelarts_exporter.http.webconfig import WebConfig, WebConfigError
from modelarts_exporter.http.webconfig import load as load_web_config
from modelarts_exporter.runtime.wiring import build_registry, open_web_config
from modelarts_exporter.snapshot.store import StateStore, TargetState
from support.pki import HASH, MTLS, TLS, USER, Pki, write_config
from support.secrets import BASIC_AUTH_PASSWORD

PASSWORD = BASIC_AUTH_PASSWORD


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
    with pytest.raises(WebConfigError, match=r": cannot read \(No such file or directory"):
        load_web_config(tmp_path / "absent.yml")


def test_the_setting_checks_the_file_at_start_up(pki: Pki) -> None:
    path = write_config(pki.directory, {"basic_auth_users": {USER: "x"}})
    with pytest.raises(ConfigError) as caught:
        open_web_config(load(["--web-config-file", str(path)]))
    (line,) = str(caught.value).splitlines()
    assert line.startswith("MODELARTS_EXPORTER_WEB_CONFIG_FILE: ")
    assert "is not a bcrypt hash" in line


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
    app = WebApp(store, registry, ready_intervals=3, version="9.9.9", clock=lambda: 1000.0)
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
    app = WebApp(store, build_registry(store), ready_intervals=3, version="9.9.9")
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
