"""Whatever bytes a targets file or a web configuration file holds, reading it ends in its
settings or in the module's own error, whose text is printable lines naming the file: never
another exception (a traceback for the user), never a raw control character in a log line."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelarts_exporter.config.errors import ConfigError
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.targets import resolve
from modelarts_exporter.http.webconfig import WebConfigError, load
from support.properties import examples

VALID_TARGETS = (
    b"targets:\n"
    b"  - name: a\n"
    b"    endpoint: https://modelarts.example:443\n"
    b"    project_id: p1\n"
    b"    auth_token: tok-1\n"
    b"    poll_interval_seconds: 30\n"
)
VALID_WEB_CONFIG = (
    b"http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
    b"basic_auth_users:\n  alice: $2b$04$OzMeJTnv2rIXkW4qaPMW9ef31HKMG4MAA882piuhsfGJi18A/QG..\n"
)


def _mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    """The valid file with a stretch replaced by arbitrary bytes, or YAML-ish noise."""
    spliced = st.tuples(st.integers(0, len(valid)), st.integers(0, 40), st.binary(max_size=40)).map(
        lambda t: valid[: t[0]] + t[2] + valid[t[0] + t[1] :]
    )
    yamlish = st.lists(
        st.sampled_from(
            [
                b"[",
                b"]",
                b"{",
                b"}",
                b":",
                b"- ",
                b"\n",
                b"  ",
                b"&a ",
                b"*a",
                b"!!python/object ",
                b"targets",
                b"name",
                b"'",
                b'"',
                b"\xff",
                b"\x00",
                b"\x1b[31m",
                b"1e999",
                b"null",
            ]
        ),
        max_size=60,
    ).map(b"".join)
    return st.one_of(st.binary(max_size=200), spliced, yamlish)


def _assert_readable(message: str, path: Path) -> None:
    assert message, "an error without a message"
    lines = message.splitlines()
    assert all(line.isprintable() for line in lines), message
    assert str(path) in message, message
    assert "Traceback" not in message


def _file(data: bytes) -> Path:
    handle = tempfile.NamedTemporaryFile(suffix=".yaml", delete=False)  # noqa: SIM115
    with handle:
        handle.write(data)
    return Path(handle.name)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_mutations(VALID_TARGETS))
def test_any_targets_file_is_settings_or_a_config_error(data: bytes) -> None:
    path = _file(data)
    try:
        resolve(Settings(config_file=path), environ={})
    except ConfigError as error:
        _assert_readable(str(error), path)
    finally:
        path.unlink()


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_mutations(VALID_WEB_CONFIG))
def test_any_web_config_file_is_a_config_or_a_web_config_error(data: bytes) -> None:
    path = _file(data)
    try:
        load(path)
    except WebConfigError as error:
        _assert_readable(str(error), path)
    finally:
        path.unlink()


def test_the_files_mutated_above_are_valid_as_they_stand() -> None:
    """The mutations start from files that load: what they break is the mutation's doing."""
    path = _file(VALID_TARGETS)
    try:
        (target,) = resolve(Settings(config_file=path), environ={})
        assert target.project_id == "p1"
    finally:
        path.unlink()
    path = _file(VALID_WEB_CONFIG)
    try:
        assert set(load(path).users or {}) == {"alice"}
    finally:
        path.unlink()
