"""No secret reaches a user: not in logs (raw records included), error texts, the status page,
/metrics, ``check-config``, ``once``, ``repr()``. Every test is also watched by conftest's
``_secrets_never_leak``; these ones make the exporter handle secrets on purpose."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from modelarts_exporter import logs
from modelarts_exporter.cloud.auth import AkSkAuth, StaticTokenAuth
from modelarts_exporter.config.settings import ConfigError, Settings, load
from modelarts_exporter.config.targets import resolve
from modelarts_exporter.expose.statuspage import render_status_page
from modelarts_exporter.simulator import FaultKind, FaultRule
from support.processes import background, free_port, run_cli, sim_env
from support.secrets import SECRET_KEY, SECURITY_TOKEN, TOKEN, WATCH, leaks
from support.simulation import InProcessExporter, SimFactory, parse_samples, select
from support.waiting import wait_for

MakeExporter = Callable[..., InProcessExporter]
NOISY = ("httpx", "apscheduler")
ECHOING = FaultRule(FaultKind.API_ERROR, error_message=f"token {TOKEN} is not valid here")
"""A gateway that quotes the credential it refuses."""


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


@pytest.mark.anyio
async def test_an_api_error_quoting_the_token_is_masked_everywhere(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(size=20)
    sim.faults.add(ECHOING)
    exporter = exporter_for(sim)
    assert not await exporter.poll()
    state = exporter.target.poller.state
    assert state.last_error is not None
    assert TOKEN not in state.last_error and logs.MASK in state.last_error
    page = render_status_page([state], now=0, version="1")
    assert TOKEN not in page and logs.MASK in page
    assert TOKEN not in exporter.exposition()
    # ...and the log line of the failure (raw record) is checked by the session's watch.


def test_once_and_serve_mask_an_echoed_token(simulator: SimFactory) -> None:
    sim = simulator(size=20)
    sim.faults.add(ECHOING)
    once = run_cli("once", env=sim_env(sim.url, sim.project_id))  # output watched by run_cli
    assert once.returncode == 1 and logs.MASK in once.stderr

    port = free_port()
    env = sim_env(sim.url, sim.project_id) | {
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "MODELARTS_EXPORTER_LOG_LEVEL": "DEBUG",
        "MODELARTS_EXPORTER_LOG_FORMAT": "json",
    }
    with background(["serve"], env) as process:  # stderr watched by background
        assert wait_for(f"http://127.0.0.1:{port}/healthz", 200)
        # The server answers before the first poll has ended: wait until it failed.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            samples = parse_samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
            if select(samples, "modelarts_exporter_poll_errors_total") >= 1:
                break
            time.sleep(0.1)
        for path in ("/", "/metrics", "/readyz"):
            assert TOKEN not in httpx.get(f"http://127.0.0.1:{port}{path}").text
        process.terminate()
        process.wait(timeout=10)
        stderr = process.stderr.read() if process.stderr else ""
    assert "poll failed" in stderr and logs.MASK in stderr


@pytest.mark.parametrize(
    "credentials",
    [
        {"MODELARTS_EXPORTER_AUTH_TOKEN": TOKEN},
        {
            "MODELARTS_EXPORTER_ACCESS_KEY": "AK-VISIBLE",
            "MODELARTS_EXPORTER_SECRET_KEY": SECRET_KEY,
            "MODELARTS_EXPORTER_SECURITY_TOKEN": SECURITY_TOKEN,
        },
    ],
    ids=["token", "temporary-aksk"],
)
def test_check_config_shows_every_setting_but_no_secret(credentials: dict[str, str]) -> None:
    env = {
        "MODELARTS_EXPORTER_ENDPOINT": "https://modelarts.example",
        "MODELARTS_EXPORTER_PROJECT_ID": "p1",
        **credentials,
    }
    result = run_cli("check-config", env=env)  # output watched by run_cli
    assert result.returncode == 0, result.stderr
    for name in credentials:
        line = next(line for line in result.stdout.splitlines() if line.startswith(name + " "))
        assert line.endswith("AK-VISIBLE" if name.endswith("ACCESS_KEY") else logs.MASK)


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
