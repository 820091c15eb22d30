"""The health check's settings: it asks on loopback where the exporter listens, with the
exporter's defaults, and a bad web config is unhealthy in one line.
(integration/test_healthcheck.py: the answers of stand-in servers.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelarts_exporter.config.settings import Settings
from modelarts_exporter.http.healthcheck import HealthcheckSettings, UnhealthyError, check, loopback
from support.pki import write_config


def test_wildcard_listen_addresses_are_asked_on_loopback() -> None:
    assert loopback("0.0.0.0") == "127.0.0.1"
    assert loopback("::") == "::1"
    assert loopback("") == "127.0.0.1"
    for host in ("127.0.0.1", "10.1.2.3", "::1", "fd00::5", "exporter.example.org"):
        assert loopback(host) == host


def test_the_defaults_are_the_exporters() -> None:
    """In an image with no settings the check asks where the exporter serves by default."""
    assert HealthcheckSettings().listen_address == Settings().listen_address
    assert HealthcheckSettings().web_config_file is None


def test_a_bad_web_config_is_unhealthy_naming_the_file(tmp_path: Path) -> None:
    broken = write_config(tmp_path, {"tls_server_config": {"cert_file": "server.pem"}})
    with pytest.raises(UnhealthyError) as failure:
        check(HealthcheckSettings(web_config_file=broken))
    assert str(failure.value) == (
        f"bad web config: {broken}: tls_server_config needs both cert_file and key_file"
    )
