"""The live web configuration without a server: the files are looked at once per interval, a
broken file keeps the last good one until it is fixed, verified passwords live as long as their
users. (integration/test_webreload.py: the same over real HTTPS, and in ``serve``.)"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from modelarts_exporter.http import reload as webreload
from modelarts_exporter.http.guard import Guard
from modelarts_exporter.http.reload import LiveWebConfig
from modelarts_exporter.http.webconfig import WebConfigError, load
from support.pki import (
    HASH,
    NEW_HASH,
    TLS,
    USER,
    Issued,
    install,
    issue_certificate,
    write_config,
)
from support.secrets import BASIC_AUTH_PASSWORD
from support.simulation import Clock

OTHER = "grafana"
PASSWORD = BASIC_AUTH_PASSWORD


@pytest.fixture(scope="module")
def cert_a() -> Issued:
    return issue_certificate()


def reload_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == webreload.__name__]


def test_the_files_are_looked_at_at_most_once_per_interval(
    tmp_path: Path, cert_a: Issued, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(tmp_path, cert_a)
    clock = Clock()
    live = LiveWebConfig(write_config(tmp_path, {"tls_server_config": TLS}), clock=clock)
    looked: list[Path] = []
    real = webreload._signature

    def counting(path: Path) -> webreload._Signature:
        looked.append(path)
        return real(path)

    monkeypatch.setattr(webreload, "_signature", counting)
    for _ in range(100):
        live.tls()
        live.guard()
        clock.now += 0.009
    assert looked == []
    clock.now += 0.2
    live.guard()
    assert sorted(looked) == sorted(live.config.files)
    assert {path.name for path in live.config.files} == {
        "web-config.yml",
        "server.pem",
        "server.key",
    }


def test_verified_passwords_are_kept_only_while_the_users_are_the_same(tmp_path: Path) -> None:
    same = load(write_config(tmp_path, {"basic_auth_users": {USER: HASH}}))
    first = Guard.of(same)
    assert first.auth is not None
    assert first.auth.check("Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
    assert Guard.of(same, first).auth is first.auth
    changed = load(write_config(tmp_path, {"basic_auth_users": {USER: NEW_HASH}}))
    assert Guard.of(changed, first).auth is not first.auth
    removed = load(write_config(tmp_path, {"basic_auth_users": {OTHER: HASH}}))
    assert Guard.of(removed, first).auth is not first.auth
    assert Guard.of(load(write_config(tmp_path, {})), first).auth is None


def test_a_file_that_stays_broken_is_read_again_until_it_is_fixed(
    tmp_path: Path, cert_a: Issued, caplog: pytest.LogCaptureFixture
) -> None:
    """A configuration naming a key that is copied in only afterwards: the key is not a file
    the last good configuration knew, yet its arrival ends the failure."""
    install(tmp_path, cert_a)
    clock = Clock()
    live = LiveWebConfig(write_config(tmp_path, {"tls_server_config": TLS}), clock=clock)
    write_config(tmp_path, {"tls_server_config": {**TLS, "key_file": "renewed.key"}})
    clock.now += 1
    live.tls()
    assert not live.status().successful
    (tmp_path / "renewed.key").write_bytes(cert_a.key)
    clock.now += 1
    live.tls()
    assert live.status().successful
    assert live.config.files[-1] == tmp_path / "renewed.key"
    assert [r.levelno for r in reload_records(caplog)] == [logging.WARNING, logging.INFO]


def test_switching_from_http_to_https_is_refused_too(tmp_path: Path, cert_a: Issued) -> None:
    install(tmp_path, cert_a)
    clock = Clock()
    live = LiveWebConfig(write_config(tmp_path, {"basic_auth_users": {USER: HASH}}), clock=clock)
    write_config(tmp_path, {"tls_server_config": TLS, "basic_auth_users": {USER: HASH}})
    clock.now += 1
    assert live.guard().config.tls is None
    assert not live.status().successful


def test_a_broken_file_at_start_up_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(WebConfigError, match="is not a bcrypt hash"):
        LiveWebConfig(write_config(tmp_path, {"basic_auth_users": {USER: "x"}}))
