"""The pool settings: their defaults follow the target's interval, per target and as defaults
of a targets file, and bad values are one line naming the setting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelarts_exporter.config.errors import ConfigError
from modelarts_exporter.config.load import load
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.targets import resolve


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MODELARTS_EXPORTER_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("given", "interval", "timeout"),
    [
        ({}, 60.0, 60.0),
        ({"poll_interval_seconds": 5}, 60.0, 60.0),
        ({"poll_interval_seconds": 900}, 900.0, 300.0),
        ({"pool_interval_seconds": 2}, 2.0, 2.0),
        ({"pool_interval_seconds": 120, "pool_timeout_seconds": 7}, 120.0, 7.0),
    ],
)
def test_defaults_follow_the_poll_interval(
    given: dict[str, float], interval: float, timeout: float
) -> None:
    settings = Settings(**given)  # type: ignore[arg-type]
    assert (settings.pools, settings.pool_interval, settings.pool_timeout) == (
        True,
        interval,
        timeout,
    )
    assert settings.flavor_cache_seconds == 21600


def test_flags_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELARTS_EXPORTER_FLAVOR_CACHE_SECONDS", "600")
    settings = load(["--no-pools", "--pool-interval-seconds", "90"])
    assert (settings.pools, settings.pool_interval, settings.flavor_cache_seconds) == (
        False,
        90,
        600,
    )


def test_per_target_in_a_targets_file_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text(
        "defaults:\n  pool_interval_seconds: 300\n  auth_token: test-token-for-settings\n"
        "targets:\n"
        "  - {name: a, endpoint: 'https://x.example', project_id: p1, pools: false}\n"
        "  - {name: b, endpoint: 'https://x.example', project_id: p2, pool_timeout_seconds: 30}\n"
    )
    a, b = resolve(Settings(config_file=path), environ={})
    assert (a.pools, a.pool_interval) == (False, 300)
    assert (b.pools, b.pool_interval, b.pool_timeout) == (True, 300, 30)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--pool-interval-seconds", "0.5"),
        ("--pool-timeout-seconds", "0"),
        ("--flavor-cache-seconds", "-1"),
    ],
)
def test_bad_values_name_the_setting(flag: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load([flag, value])
    name = flag.removeprefix("--").replace("-", "_").upper()
    assert name in str(caught.value) and "\n" not in str(caught.value)
