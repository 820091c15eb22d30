"""Pool polling under a pool API that refuses or stalls: job polling never suffers. And the
pool series from the commands: ``once`` prints them, ``serve`` serves them from its server
process while a stuck pool API times out on its own schedule."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx
import pytest

from modelarts_exporter.http.process import dumps, loads
from modelarts_exporter.simulator import SimulatorServer, V2Tenant
from modelarts_exporter.snapshot.store import StateStore
from support.pools import expected_families, pool_families
from support.processes import background, free_port, run_cli, sim_env
from support.simulation import InProcessExporter, SimFactory, parse_samples, select
from support.waiting import eventually, eventually_async, wait_for

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]


@pytest.fixture
def sim(simulator: SimFactory) -> SimulatorServer:
    return simulator(size=60, v2=V2Tenant(size=150, seed=2, workspaces=("0",)))


@pytest.mark.parametrize("forbidden", ["modelarts", "apig"])
async def test_a_forbidden_pool_api_turns_pool_polling_off_with_one_warning(
    sim: SimulatorServer,
    exporter_for: MakeExporter,
    caplog: pytest.LogCaptureFixture,
    forbidden: str,
) -> None:
    sim.pools.forbidden = forbidden  # type: ignore[assignment]
    exporter = exporter_for(sim, api_version="v2")
    pools = exporter.target.pools
    assert pools is not None
    with caplog.at_level(logging.WARNING, logger="modelarts_exporter"):
        assert not await pools.poll()
        assert not await pools.poll()  # off: asks nothing
        assert await exporter.poll()
    assert sim.pools.requests == {"pools": 1}
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "pool" in r.message]
    assert len(warnings) == 1
    assert "modelarts:pool:list" in warnings[0].message and "\n" not in warnings[0].message
    samples = exporter.samples()
    assert select(samples, "modelarts_exporter_pool_enabled") == 0
    assert select(samples, "modelarts_exporter_pool_up") == 0
    assert (
        select(
            samples, "modelarts_exporter_pool_poll_errors_total", endpoint="pools", reason="auth"
        )
        == 1
    )
    assert pool_families(samples)["modelarts_pool_info"] == {}
    # The jobs are what they are.
    assert select(samples, "modelarts_exporter_up") == 1
    assert select(samples, "modelarts_training_jobs") == len(sim.v2)


async def test_a_slow_pool_api_does_not_hold_up_the_job_poll(
    sim: SimulatorServer, exporter_for: MakeExporter
) -> None:
    sim.pools.latency_seconds = 60  # ended by the simulator stopping
    exporter = exporter_for(sim, api_version="v2", max_concurrency=1, pool_timeout_seconds=30)
    pools = exporter.target.pools
    assert pools is not None
    pool_poll = asyncio.ensure_future(pools.poll())
    try:
        assert await eventually_async(lambda: sim.pools.requests["pools"] == 1)
        # One connection for the jobs, and the pool request holding one of its own.
        assert await exporter.poll()
        assert select(exporter.samples(), "modelarts_training_jobs") == len(sim.v2)
        assert not pool_poll.done()
    finally:
        pool_poll.cancel()
        await asyncio.gather(pool_poll, return_exceptions=True)


async def test_a_stalled_pool_poll_ends_at_its_own_deadline(
    sim: SimulatorServer, exporter_for: MakeExporter
) -> None:
    exporter = exporter_for(sim, api_version="v2", pool_timeout_seconds=0.5)
    pools = exporter.target.pools
    assert pools is not None
    assert await pools.poll()
    before = pool_families(exporter.samples())
    sim.pools.latency_seconds = 60
    assert not await pools.poll()
    samples = exporter.samples()
    assert select(samples, "modelarts_exporter_pool_up") == 0
    assert select(samples, "modelarts_exporter_pool_enabled") == 1
    errors = "modelarts_exporter_pool_poll_errors_total"
    assert select(samples, errors, endpoint="pools", reason="timeout") == 1
    assert select(samples, errors) == 1
    assert pool_families(samples) == before  # the last good pool snapshot stays
    assert pools.state.last_error is not None and "0.5 s deadline" in pools.state.last_error


async def test_the_pool_state_travels_to_the_server_process_and_job_publishes_keep_it(
    sim: SimulatorServer, exporter_for: MakeExporter
) -> None:
    exporter = exporter_for(sim, api_version="v2")
    assert exporter.target.pools is not None
    assert await exporter.target.pools.poll()
    assert await exporter.poll()  # publishes the job state after the pool state
    (state,) = exporter.store.current()[1]
    assert state.pools is not None and state.pools.snapshot is not None
    mirror = StateStore()
    for copied in loads(dumps({state.target: state})).values():
        assert copied is not None
        mirror.publish(copied)
    assert mirror.current()[1] == (state,)


def test_once_prints_the_pool_series(sim: SimulatorServer) -> None:
    env = sim_env(sim.url, sim.project_id) | {"MODELARTS_EXPORTER_API_VERSION": "v2"}
    result = run_cli("once", "--page-size", "50", env=env)
    assert result.returncode == 0, result.stderr
    samples = parse_samples(result.stdout)
    assert pool_families(samples) == expected_families(sim, "nodes")
    assert select(samples, "modelarts_exporter_pool_up") == 1
    off = run_cli("once", "--no-pools", env=env)
    assert off.returncode == 0 and "modelarts_pool_info{" not in off.stdout


def test_once_warns_of_a_failed_pool_poll_and_still_prints_the_jobs(sim: SimulatorServer) -> None:
    sim.pools.forbidden = "modelarts"
    result = run_cli("once", env=sim_env(sim.url, sim.project_id))
    assert result.returncode == 0, result.stderr
    assert "warning: pool poll of" in result.stderr and "HTTP 403" in result.stderr
    assert select(parse_samples(result.stdout), "modelarts_exporter_pool_enabled") == 0


def test_serve_polls_pools_on_their_own_schedule_and_deadline(sim: SimulatorServer) -> None:
    port = free_port()
    env = sim_env(sim.url, sim.project_id) | {
        "MODELARTS_EXPORTER_API_VERSION": "v2",
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "MODELARTS_EXPORTER_POLL_INTERVAL_SECONDS": "0.2",
        "MODELARTS_EXPORTER_POOL_INTERVAL_SECONDS": "1",
        "MODELARTS_EXPORTER_POOL_TIMEOUT_SECONDS": "0.5",
    }
    url = f"http://127.0.0.1:{port}/metrics"

    def scraped() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return parse_samples(httpx.get(url).text)

    with background(["serve"], env):
        assert wait_for(f"http://127.0.0.1:{port}/readyz", 200)
        assert eventually(lambda: select(scraped(), "modelarts_exporter_pool_up") == 1)
        assert pool_families(scraped()) == expected_families(sim, "nodes")
        sim.pools.latency_seconds = 60
        errors = "modelarts_exporter_pool_poll_errors_total"
        assert eventually(lambda: select(scraped(), errors, reason="timeout") >= 2)
        samples = scraped()
        assert select(samples, "modelarts_exporter_pool_up") == 0
        # Job polls went on meanwhile, each of them publishing.
        polls = select(samples, "modelarts_exporter_poll_duration_seconds_count")
        assert eventually(
            lambda: select(scraped(), "modelarts_exporter_poll_duration_seconds_count") > polls
        )
        assert select(samples, "modelarts_exporter_up") == 1


def test_the_demo_shows_pools() -> None:
    port = free_port()
    args = ["demo", "--listen-address", f"127.0.0.1:{port}", "--size", "300", "--api-version", "v2"]
    with background(args, {}):
        assert wait_for(f"http://127.0.0.1:{port}/readyz", 200)
        url = f"http://127.0.0.1:{port}/metrics"
        assert eventually(
            lambda: select(parse_samples(httpx.get(url).text), "modelarts_exporter_pool_up") == 1
        )
        samples = parse_samples(httpx.get(url).text)
        assert select(samples, "modelarts_pool_accelerators_capacity", source="nodes") > 0
        assert select(samples, "modelarts_pool_info") == 4
