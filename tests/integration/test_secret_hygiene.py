"""Secrets as operators really hand them over (a Kubernetes Secret made from a file ends in a
line break) work, and no form a message can quote them in leaks them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelarts_exporter import logs
from modelarts_exporter.config.errors import ConfigError
from modelarts_exporter.config.load import load
from support.processes import run_cli, sim_env
from support.secrets import TOKEN
from support.simulation import SimFactory


@pytest.mark.parametrize("raw", [TOKEN + "\n", TOKEN + "\r\n", f"  {TOKEN}\t\n"])
def test_a_secret_is_cleaned_of_surrounding_whitespace(
    raw: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELARTS_EXPORTER_AUTH_TOKEN", raw)
    settings = load([])
    assert settings.auth_token is not None
    assert settings.auth_token.get_secret_value() == TOKEN
    monkeypatch.delenv("MODELARTS_EXPORTER_AUTH_TOKEN")
    (tmp_path / "token").write_text(raw + "\n")
    settings = load(["--auth-token-file", str(tmp_path / "token")])
    assert settings.auth_token is not None
    assert settings.auth_token.get_secret_value() == TOKEN


@pytest.mark.parametrize("content", ["", "\n", "  \n\n"])
def test_an_empty_secret_file_is_refused_with_one_line(content: str, tmp_path: Path) -> None:
    (tmp_path / "token").write_text(content)
    with pytest.raises(ConfigError) as caught:
        load(["--auth-token-file", str(tmp_path / "token")])
    assert str(caught.value) == "MODELARTS_EXPORTER_AUTH_TOKEN: is empty (or only whitespace)"


def test_a_token_with_a_trailing_newline_polls(simulator: SimFactory) -> None:
    sim = simulator(size=30)
    env = sim_env(sim.url, sim.project_id) | {"MODELARTS_EXPORTER_AUTH_TOKEN": TOKEN + "\n"}
    result = run_cli("once", env=env)
    assert result.returncode == 0, result.stderr
    assert "modelarts_training_job_versions" in result.stdout
    assert TOKEN not in result.stderr


@given(
    secret=st.text(min_size=4, max_size=40).filter(lambda s: len(s.strip()) >= 4),
    prefix=st.text(max_size=10),
)
def test_every_quoted_form_of_a_secret_is_masked(secret: str, prefix: str) -> None:
    registered = set(logs._secrets)  # random secrets must not mask other tests' output
    try:
        _check_masked(secret, prefix)
    finally:
        logs._secrets.clear()
        logs._secrets.update(registered)


def _check_masked(secret: str, prefix: str) -> None:
    logs.redact(secret)
    forms = [
        secret,
        repr(secret),
        repr(secret.encode("utf-8", "backslashreplace")),
        json.dumps(secret),
        json.dumps(secret, ensure_ascii=False),
    ]
    for form in forms:
        cleaned = logs.scrub(f"{prefix}Illegal header value {form}")
        inner = form.strip("'\"b")
        assert inner not in cleaned or len(inner) < 4 or inner in prefix, (form, cleaned)
