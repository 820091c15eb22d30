"""The pool series from the commands: ``once`` prints them, ``serve`` serves them from its server
process while a stuck pool API times out on its own schedule, and the demo shows them."""

from __future__ import annotations

import httpx
import pytest

from modelarts_exporter.simulator import SimulatorServer, V2Tenant
from support.pools import expected_families, pool_families
from support.processes import background, free_port, run_cli, sim_env
from support.simulation import SimFactory, parse_samples, select
from support.waiting import eventually, wait_for


@pytest.fixture
def sim(simulator: SimFactory) -> SimulatorServer:
    return simulator(size=60, v2=V2Tenant(size=150, seed=2, workspaces=("0",)))


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
        "MODELARTS_EXPORTER_POOL_TIMEOUT_SECONDS": "2",
    }
    url = f"http://127.0.0.1:{port}/metrics"

    def scraped() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return parse_samples(httpx.get(url).text)

    with background(["serve"], env):
        assert wait_for(f"http://127.0.0.1:{port}/readyz", 200)
        assert eventually(lambda: select(scraped(), "modelarts_exporter_pool_up") == 1)
        assert pool_families(scraped()) == expected_families(sim, "nodes")
        errors = "modelarts_exporter_pool_poll_errors_total"
        # A busy machine may have timed a pool poll out already: count from here.
        before = select(scraped(), errors, reason="timeout")
        sim.pools.latency_seconds = 60

        def stalled() -> bool:
            now = scraped()
            timeouts = select(now, errors, reason="timeout")
            return timeouts >= before + 2 and select(now, "modelarts_exporter_pool_up") == 0

        assert eventually(stalled)
        samples = scraped()
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
