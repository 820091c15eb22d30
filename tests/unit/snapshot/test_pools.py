"""Cards per pool from each source, and the pool label cap, on parsed answers (no HTTP)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from modelarts_exporter.cloud.pool_models import Node, Pool, parse_nodes, parse_pools, parse_runtime
from modelarts_exporter.listing.pools import FlavorCards, PoolReading
from modelarts_exporter.snapshot.labelcap import OTHER
from modelarts_exporter.snapshot.pool_state import Cards
from modelarts_exporter.snapshot.pools import build, from_nodes

NPU = "modelarts.bm.npu.arm.8snt9b3.d"
GPU = "modelarts.vm.gpu.t4u8"
POOL = "npu-train-prod-5d0c8e2a91f347b6a0c4e7d9b13f6a28"


def _node(
    phase: str, total: object, free: object | None, key: str = "huawei.com/ascend-snt9"
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "resources": {"cpu": "188", key: total}}
    if free is not None:
        status["availableResources"] = {"cpu": "92500m", key: free}
    return {"spec": {"flavor": NPU}, "status": status}


def _nodes(*nodes: dict[str, Any]) -> tuple[Node, ...]:
    return tuple(parse_nodes(json.dumps({"items": list(nodes)}).encode())["items"])


def _pools(*pools: dict[str, Any]) -> tuple[Pool, ...]:
    return tuple(parse_pools(json.dumps({"items": list(pools)}).encode())["items"])


def _pool(pool_id: str, flavor: str = NPU, available: int = 3, **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": pool_id, "labels": {"os.modelarts/name": pool_id[:8]}},
        "spec": {"type": extra.pop("type", "Dedicate"), "scope": ["Train"],
                 "resources": [{"flavor": flavor, "count": available + 1}]},
        "status": {"phase": "Running", "resources": {
            "available": [{"flavor": flavor, "count": available}],
            "abnormal": {"flavor": flavor, "count": 1}}, **extra},
    }  # fmt: skip


def _reading(
    pools: tuple[Pool, ...],
    nodes: Mapping[str, tuple[Node, ...]] | None = None,
    runtime: dict[str, Any] | None = None,
    flavors: Mapping[str, FlavorCards] | None = None,
) -> PoolReading:
    items = None
    if runtime is not None:
        items = tuple(parse_runtime(json.dumps(runtime).encode())["items"])
    return PoolReading(pools, nodes or {}, items, flavors, ())


def test_the_notes_sample_from_nodes() -> None:
    """Notes §6: 3 Available nodes of 8 (2, 8 and 8 free) and an Abnormal one."""
    nodes = _nodes(
        _node("Available", "8", "2"), _node("Available", 8, 8), _node("Available", "8", "8"),
        _node("Abnormal", "8", "8"),
    )  # fmt: skip
    cards, counts = from_nodes(nodes)
    assert cards == {("npu", "nodes"): Cards(capacity=24, allocated=6, free=18, unavailable=8)}
    assert counts == {(NPU, "available"): 3, (NPU, "abnormal"): 1}


def test_a_node_not_saying_what_is_free_makes_allocation_unknown_not_zero() -> None:
    cards, _ = from_nodes(_nodes(_node("Available", "8", "2"), _node("Available", "8", None)))
    assert cards == {("npu", "nodes"): Cards(capacity=16, allocated=None, free=None, unavailable=0)}


def test_more_free_than_total_counts_no_negative_allocation() -> None:
    cards, _ = from_nodes(_nodes(_node("Available", "4", "9", key="nvidia.com/gpu")))
    assert cards == {("gpu", "nodes"): Cards(capacity=4, allocated=0, free=4, unavailable=0)}


RUNTIME = {
    "items": [
        {"metadata": {"name": "short-old-name", "labels": {"os.modelarts/name": "gpu-pool"}},
         "table": {"capacity": {"value": {"cpu": 5, "memory": "15548Mi", "tnt004": 8}},
                   "allocated": {"value": {"cpu": "2", "tnt004": "1073m"}}}},
    ]
}  # fmt: skip


def test_runtime_keys_of_unknown_kind_take_the_flavors_kind_and_join_by_display_name() -> None:
    pools = _pools(_pool("gpu-pool-" + "a" * 32, GPU))
    reading = _reading(pools, runtime=RUNTIME, flavors={GPU: ("gpu", 1.0)})
    (record,) = build(reading, 10).pools
    cards = record.cards[("gpu", "runtime")]
    assert (cards.capacity, cards.allocated) == (8, 1.073)
    assert cards.free is not None and abs(cards.free - 6.927) < 1e-9
    assert cards.unavailable is None
    # Node counts come from the pool's status when the node list was not read.
    assert dict(record.nodes) == {(GPU, "available"): 3, (GPU, "abnormal"): 1}


def test_without_the_flavors_an_unknown_key_is_left_out() -> None:
    pools = _pools(_pool("gpu-pool-" + "a" * 32, GPU))
    snapshot = build(_reading(pools, runtime=RUNTIME), 10)
    assert dict(snapshot.pools[0].cards) == {}
    assert snapshot.complete  # runtime metrics were read: the pool has no cards we can tell


def test_flavors_give_capacity_only() -> None:
    pools = _pools(_pool(POOL, NPU, available=5))
    snapshot = build(_reading(pools, flavors={NPU: ("npu", 8.0)}), 10)
    assert dict(snapshot.pools[0].cards) == {("npu", "flavors"): Cards(capacity=40)}


def test_a_pool_without_any_source_makes_the_snapshot_incomplete() -> None:
    snapshot = build(_reading(_pools(_pool(POOL))), 10)
    assert not snapshot.complete
    assert dict(snapshot.pools[0].cards) == {}
    assert dict(snapshot.pools[0].desired) == {NPU: 4}


def test_a_logical_pool_is_not_added_to_its_parent() -> None:
    child = "team-a-" + "b" * 32
    pools = _pools(_pool(POOL), _pool(child, type="Logical", parent=POOL))
    nodes = {
        POOL: _nodes(_node("Available", "8", "8"), _node("Available", "8", "0")),
        child: _nodes(_node("Available", "8", "0")),
    }
    records = {r.pool_id: r for r in build(_reading(pools, nodes), 10).pools}
    assert records[POOL].cards[("npu", "nodes")].capacity == 16
    assert records[child].cards[("npu", "nodes")].capacity == 8
    assert (records[child].pool_type, records[child].parent_pool_id) == ("Logical", POOL)


def test_pools_beyond_the_cap_are_summed_under_other() -> None:
    ids = [f"pool-{n}-" + "c" * 32 for n in range(3)]
    pools = _pools(*(_pool(pool_id) for pool_id in ids))
    nodes = {
        ids[0]: _nodes(*[_node("Available", "8", "1")] * 3),
        ids[1]: _nodes(_node("Available", "8", "2")),
        ids[2]: _nodes(_node("Available", "8", "3"), _node("Abnormal", "8", "8")),
    }
    records = {r.pool_id: r for r in build(_reading(pools, nodes), 1).pools}
    assert set(records) == {ids[0], OTHER}  # ranked by cards, ties by id: ids[1], ids[2] merged
    other = records[OTHER]
    assert other.cards[("npu", "nodes")] == Cards(capacity=16, allocated=11, free=5, unavailable=8)
    assert dict(other.phases) == {"Running": 2}
    assert dict(other.nodes) == {(NPU, "available"): 2, (NPU, "abnormal"): 1}


def test_label_values_from_the_api_are_bounded_and_printable() -> None:
    pools = _pools(_pool(POOL, **{"phase": "Run\nning\x1b[31m" + "x" * 200}))
    (record,) = build(_reading(pools, flavors={}), 10).pools
    (phase,) = record.phases
    assert "\n" not in phase and "\x1b" not in phase and len(phase) <= 64
