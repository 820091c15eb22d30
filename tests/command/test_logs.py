"""No secret reaches a user of the running exporter: not in error texts, the status page,
/metrics, ``check-config``, ``once`` or the logs of ``serve``. (unit/test_logs.py: raw log records
and ``repr()``.) Every test is also watched by conftest's ``_secrets_never_leak``; these ones make
the exporter handle secrets on purpose."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from modelarts_exporter import logs
from modelarts_exporter.expose.statuspage import render_status_page
from modelarts_exporter.simulator import FaultKind, FaultRule
from support.processes import background, free_port, run_cli, sim_env
from support.secrets import SECRET_KEY, SECURITY_TOKEN, TOKEN
from support.simulation import InProcessExporter, SimFactory, parse_samples, select
from support.waiting import wait_for

MakeExporter = Callable[..., InProcessExporter]
ECHOING = FaultRule(FaultKind.API_ERROR, error_message=f"token {TOKEN} is not valid here")
"""A gateway that quotes the credential it refuses."""


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
