"""Pool polling under a pool API that refuses or stalls: job polling never suffers
(tests/command/test_pools.py: the pool series from the commands)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from modelarts_exporter.http.process import dumps, loads
from modelarts_exporter.simulator import SimulatorServer, V2Tenant
from modelarts_exporter.snapshot.store import StateStore
from support.pools import pool_families
from support.simulation import InProcessExporter, SimFactory, select
from support.waiting import eventually_async

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
