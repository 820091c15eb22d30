"""Resource pools over real HTTP: every pool family equals the simulator's own model of its
pools, through each source of the cards (nodes, runtime metrics, the flavor catalogue), both
shapes of ``status.resources``, node and flavor paging, and a pool deleted mid-poll."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from modelarts_exporter.simulator import SimulatorServer, V2Tenant
from modelarts_exporter.simulator.v2_jobs import GPU_POOL, NPU_POOL, NPU_SUBPOOL, PROFILES
from support.pools import expected_families, pool_families
from support.simulation import InProcessExporter, SimFactory, select

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]
NOW_MS = 1_700_000_000_000


@pytest.fixture
def sim(simulator: SimFactory) -> SimulatorServer:
    """Busy pools: enough v2 jobs running in them that they grow Available nodes."""
    v2 = V2Tenant(size=400, seed=5, now_ms=NOW_MS, workspaces=("0",), active_fraction=0.3)
    server = simulator(size=20, v2=v2)
    server.pools.node_page_size = 2
    server.pools.flavor_page_size = 2
    return server


async def _polled(exporter: InProcessExporter) -> InProcessExporter:
    assert await exporter.poll()
    assert exporter.target.pools is not None
    await exporter.target.pools.poll()
    return exporter


def _errors(exporter: InProcessExporter, **labels: str) -> float:
    return select(exporter.samples(), "modelarts_exporter_pool_poll_errors_total", **labels)


async def test_every_pool_family_equals_the_truth_from_the_node_lists(
    sim: SimulatorServer, exporter_for: MakeExporter
) -> None:
    exporter = await _polled(exporter_for(sim, api_version="v2"))
    samples = exporter.samples()
    assert pool_families(samples) == expected_families(sim, "nodes")
    assert select(samples, "modelarts_exporter_pool_up") == 1
    assert select(samples, "modelarts_exporter_pool_enabled") == 1
    assert _errors(exporter) == 0
    # Paged: the NPU pool's 10 nodes (its sub-pool's included) are 5 pages of 2.
    assert sim.pools.requests["nodes"] > len(sim.pools.truth())
    assert "flavors" not in sim.pools.requests and "runtime" not in sim.pools.requests


async def test_allocated_holds_what_the_running_jobs_request_and_ids_join(
    sim: SimulatorServer, exporter_for: MakeExporter
) -> None:
    samples = (await _polled(exporter_for(sim, api_version="v2"))).samples()
    pool_ids = set(sim.pools.truth())
    job_pools = {
        dict(labels)["pool_id"]
        for (name, labels), _ in samples.items()
        if name == "modelarts_training_job_pool_versions"
    }
    assert job_pools - {"public"} <= pool_ids  # the join key is the same value
    for pool_id in (GPU_POOL, NPU_POOL, NPU_SUBPOOL):
        kind = "gpu" if pool_id == GPU_POOL else "npu"
        running = select(
            samples, f"modelarts_training_job_{kind}s", pool_id=pool_id, phase="running"
        )
        allocated = select(samples, "modelarts_pool_accelerators_allocated", pool_id=pool_id)
        assert 0 < running <= allocated, pool_id


@pytest.mark.parametrize("variant", ["tnt004", "node-keys", "by-name"])
async def test_nodes_forbidden_falls_back_to_runtime_metrics(
    sim: SimulatorServer, exporter_for: MakeExporter, variant: str
) -> None:
    sim.pools.failing["nodes"] = 403
    sim.pools.runtime_variant = variant  # type: ignore[assignment]
    exporter = await _polled(exporter_for(sim, api_version="v2"))
    # Node counts now come from the pools' status.resources: objects (the GPU pool, the
    # sub-pool) and arrays (the NPU and CPU pools) alike.
    assert pool_families(exporter.samples()) == expected_families(sim, "runtime")
    assert _errors(exporter, endpoint="nodes", reason="auth") == len(sim.pools.truth())
    assert select(exporter.samples(), "modelarts_exporter_pool_up") == 1
    # tnt004's kind comes from the flavors; the nodes' own keys need no catalogue.
    assert ("flavors" in sim.pools.requests) == (variant != "node-keys")


async def test_invalid_node_lists_fall_back_as_failed_ones_do(
    sim: SimulatorServer, exporter_for: MakeExporter
) -> None:
    sim.pools.failing["nodes"] = "invalid"
    exporter = await _polled(exporter_for(sim, api_version="v2"))
    assert pool_families(exporter.samples()) == expected_families(sim, "runtime")
    assert _errors(exporter, endpoint="nodes", reason="invalid_response") == len(sim.pools.truth())


async def test_runtime_failing_too_falls_back_to_the_flavor_catalogue(
    sim: SimulatorServer, exporter_for: MakeExporter
) -> None:
    sim.pools.failing["nodes"] = 503
    sim.pools.failing["runtime"] = 500
    exporter = await _polled(exporter_for(sim, api_version="v2"))
    samples = exporter.samples()
    assert pool_families(samples) == expected_families(sim, "flavors")
    for unknown in ("allocated", "free"):  # absent, not 0
        assert not any(name == f"modelarts_pool_accelerators_{unknown}" for name, _ in samples)
    assert _errors(exporter, endpoint="runtime", reason="server_error") == 1
    # The catalogue (7 flavors, pages of 2) is kept between polls.
    assert sim.pools.requests["flavors"] == 4
    assert exporter.target.pools is not None
    await exporter.target.pools.poll()
    assert sim.pools.requests["flavors"] == 4
    assert _errors(exporter, endpoint="runtime", reason="server_error") == 2


async def test_every_source_failing_leaves_the_pools_without_cards_and_up_0(
    sim: SimulatorServer, exporter_for: MakeExporter
) -> None:
    sim.pools.failing.update({"nodes": 500, "runtime": 500, "flavors": 500})
    exporter = await _polled(exporter_for(sim, api_version="v2"))
    families = pool_families(exporter.samples())
    assert families["modelarts_pool_accelerators_capacity"] == {}
    assert families["modelarts_pool_info"] == expected_families(sim, "nodes")["modelarts_pool_info"]
    assert select(exporter.samples(), "modelarts_exporter_pool_up") == 0
    assert _errors(exporter, endpoint="flavors", reason="server_error") == 1


async def test_a_pool_deleted_between_the_list_and_its_nodes_is_dropped_not_an_error(
    sim: SimulatorServer, exporter_for: MakeExporter
) -> None:
    sim.pools.vanished.add(GPU_POOL)
    exporter = await _polled(exporter_for(sim, api_version="v2"))
    samples = exporter.samples()
    assert pool_families(samples) == expected_families(sim, "nodes")
    assert select(samples, "modelarts_pool_info", pool_id=GPU_POOL) == 0
    assert select(samples, "modelarts_exporter_pool_up") == 1
    assert _errors(exporter) == 0


async def test_a_failed_pool_list_keeps_the_last_snapshot(
    sim: SimulatorServer, exporter_for: MakeExporter
) -> None:
    exporter = await _polled(exporter_for(sim, api_version="v2"))
    before = pool_families(exporter.samples())
    sim.pools.failing["pools"] = 500
    assert exporter.target.pools is not None
    assert not await exporter.target.pools.poll()
    assert pool_families(exporter.samples()) == before
    assert select(exporter.samples(), "modelarts_exporter_pool_up") == 0
    assert _errors(exporter, endpoint="pools", reason="server_error") == 1
    assert select(exporter.samples(), "modelarts_exporter_pool_last_success_timestamp_seconds") > 0


async def test_pools_follow_the_jobs_as_they_change(
    sim: SimulatorServer, exporter_for: MakeExporter
) -> None:
    exporter = await _polled(exporter_for(sim, api_version="v2"))
    sim.v2.advance(1800)
    ascend = next(profile for profile, _ in PROFILES if profile.name == "pool-ascend")
    sim.v2.add_job("Running", profile=ascend, nodes=4, workspace="0")
    assert exporter.target.pools is not None
    await exporter.target.pools.poll()
    assert pool_families(exporter.samples()) == expected_families(sim, "nodes")


async def test_pools_beyond_max_label_values_are_summed_under_other(
    sim: SimulatorServer, exporter_for: MakeExporter
) -> None:
    exporter = await _polled(exporter_for(sim, api_version="v2", max_label_values=2))
    families = pool_families(exporter.samples())
    want = expected_families(sim, "nodes")
    capacity = families["modelarts_pool_accelerators_capacity"]
    assert len({key[0] for key in families["modelarts_pool_nodes"]}) == 3  # 2 own and _other
    assert len({key[0] for key in families["modelarts_pool_info"]}) == 2  # _other has no info
    assert "_other" in {key[0] for key in capacity}
    for name in ("modelarts_pool_accelerators_capacity", "modelarts_pool_nodes"):
        assert sum(families[name].values()) == sum(want[name].values())  # totals stay exact
    assert sum(families["modelarts_pool_phase"].values()) == len(sim.pools.truth())
