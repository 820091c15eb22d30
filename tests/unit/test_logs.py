"""No secret reaches a user, in this process: not in raw log records, the configured logging, the
``repr()`` of settings and credentials, or a configuration error. (command/test_logs.py: the
same through the simulator and the command.) Every test is also watched by conftest's
``_secrets_never_leak``; these ones make the exporter handle secrets on purpose."""

from __future__ import annotations

import io
import logging

import pytest
from pydantic import SecretStr

from modelarts_exporter import logs
from modelarts_exporter.cloud.auth import AkSkAuth, StaticTokenAuth
from modelarts_exporter.config.errors import ConfigError
from modelarts_exporter.config.load import load
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.targets import resolve
from support.secrets import SECRET_KEY, SECURITY_TOKEN, TOKEN, WATCH, leaks

NOISY = ("httpx", "apscheduler")


def test_the_watch_sees_secrets_in_raw_log_records() -> None:
    logging.getLogger("modelarts_exporter.test").debug("header X-Auth-Token: %s", TOKEN)
    found = list(leaks)
    leaks.clear()  # this leak was on purpose
    assert len(found) == 1 and "modelarts_exporter.test" in found[0]
    assert TOKEN not in found[0]  # the report itself shows only the start


def test_scrub_masks_registered_secrets_longest_first() -> None:
    logs.redact("abcd", "abcdefgh", "", None, "xyz")  # too short to mask: "xyz"
    assert logs.scrub("abcdefgh abcd xyz") == f"{logs.MASK} {logs.MASK} xyz"


def test_configured_logging_masks_messages_arguments_and_tracebacks() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in NOISY}
    stream = io.StringIO()
    try:
        logs.configure("DEBUG", "json", stream)
        logs.redact(SECURITY_TOKEN)
        root.addHandler(WATCH)
        log = logging.getLogger("modelarts_exporter.test")
        log.info("token=%s", SECURITY_TOKEN)
        try:
            raise ValueError(f"bad {SECURITY_TOKEN}")
        except ValueError:
            log.exception("failed")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
        leaks.clear()  # the raw records held the secret on purpose
    written = stream.getvalue()
    assert SECURITY_TOKEN not in written and written.count(logs.MASK) == 2


def test_settings_and_credentials_never_show_a_secret() -> None:
    settings = Settings(
        endpoint="https://modelarts.example",
        project_id="p1",
        access_key="AK",
        secret_key=SecretStr(SECRET_KEY),
        security_token=SecretStr(SECURITY_TOKEN),
    )
    (target,) = resolve(settings, environ={})
    shown = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        repr(target),
        repr(list(settings.effective())),
        repr(AkSkAuth("AK", SecretStr(SECRET_KEY), SecretStr(SECURITY_TOKEN))),
        repr(StaticTokenAuth(SecretStr(TOKEN))),
    ]
    for text in shown:
        assert SECRET_KEY not in text and SECURITY_TOKEN not in text and TOKEN not in text


def test_a_mistyped_flag_does_not_echo_its_secret_value() -> None:
    with pytest.raises(ConfigError) as caught:
        load(["--auth-tokn", TOKEN, f"--secret-kye={SECRET_KEY}"])
    message = str(caught.value)
    assert "--auth-tokn" in message and "--secret-kye" in message
    assert TOKEN not in message and SECRET_KEY not in message


def test_credentials_in_the_endpoint_url_are_refused_unechoed() -> None:
    with pytest.raises(ConfigError) as caught:
        load(["--endpoint", f"https://user:{SECRET_KEY}@modelarts.example", "--project-id", "p"])
    assert "credentials in the URL are not supported" in str(caught.value)
    assert SECRET_KEY not in str(caught.value)
