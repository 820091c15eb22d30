"""The simulated project's resource pools, their nodes and how many cards are taken on each.

Five pools (pools notes §2, §6): a GPU pool (``nvidia.com/gpu`` on its nodes), an NPU pool with
``huawei.com/ascend-snt9`` on some nodes and ``huawei.com/ascend-1980`` on others, a logical
sub-pool of the NPU pool (its nodes are some of the NPU pool's, labelled with it), a CPU pool and
an inference-only pool; nodes Available, Abnormal and Creating. The Train pools are the ones the
v2 jobs run in (:mod:`.v2_jobs`: their ``pool_id`` is a pool's ``metadata.name``).

The cards taken are derived from the v2 tenant at each request: the cards its Running and
Terminating jobs hold in the pool, plus some non-training use (notebooks, inference), placed on
the Available nodes one after the other; a pool whose jobs need more than it has grows Available
nodes (elastic), so allocated never exceeds capacity. :meth:`PoolModel.truth` says what an
exporter must make of it, from this model, not from the JSON the API serves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from .v2_jobs import CPU_POOL, GPU_POOL, NPU_POOL, NPU_SUBPOOL
from .v2_tenant import V2Tenant

HOLDING = ("Running", "Terminating")
INFER_POOL = "infer-online-d706a7c42861907da9923160e5a92f88"


@dataclass(frozen=True, slots=True)
class Flavor:
    name: str
    kind: str | None
    """``gpu``, ``npu`` or ``None``."""
    key: str | None
    """The node resource key of its cards."""
    per_node: int
    cpu: str
    memory: str


FLAVORS: Mapping[str, Flavor] = {
    f.name: f
    for f in (
        Flavor("modelarts.vm.gpu.4a100", "gpu", "nvidia.com/gpu", 4, "62", "230Gi"),
        Flavor(
            "modelarts.bm.npu.arm.8snt9b3.d", "npu", "huawei.com/ascend-snt9", 8, "188", "1468Gi"
        ),
        Flavor(
            "modelarts.bm.npu.arm.8d910c.d", "npu", "huawei.com/ascend-1980", 8, "188", "1468Gi"
        ),
        Flavor("modelarts.vm.cpu.16u64g", None, None, 0, "15920m", "58Gi"),
        Flavor("modelarts.vm.gpu.t4u8", "gpu", "nvidia.com/gpu", 1, "7920m", "30Gi"),
    )
}
UNUSED_FLAVORS = (
    Flavor("modelarts.vm.gpu.8v100", "gpu", "nvidia.com/gpu", 8, "62", "460Gi"),
    Flavor("modelarts.vm.cpu.8u32g", None, None, 0, "7920m", "28Gi"),
)
"""In the flavor catalogue, in no pool (the catalogue is every flavor of the region)."""


@dataclass(frozen=True, slots=True)
class NodeGroup:
    flavor: str
    available: int
    abnormal: int = 0
    creating: int = 0


@dataclass(frozen=True, slots=True)
class SimPool:
    id: str
    name: str
    """The display name (``os.modelarts/name``)."""
    type: str
    scope: tuple[str, ...]
    groups: tuple[NodeGroup, ...]
    shape: str
    """How ``status.resources.<state>`` is written: ``array`` (OTC) or ``object`` (SDK)."""
    parent: str = ""
    extra_cards: int = 0
    """Cards taken by notebooks and inference: allocated beyond the training jobs'."""
    phase: str = "Running"


POOLS: tuple[SimPool, ...] = (
    SimPool(GPU_POOL, "gpu-train", "Dedicate", ("Train",),
            (NodeGroup("modelarts.vm.gpu.4a100", 4, abnormal=1, creating=1),), "object",
            extra_cards=2),
    SimPool(NPU_POOL, "npu-train", "Dedicate", ("Train", "Infer"),
            (NodeGroup("modelarts.bm.npu.arm.8snt9b3.d", 3, abnormal=1),
             NodeGroup("modelarts.bm.npu.arm.8d910c.d", 2)), "array", extra_cards=8),
    SimPool(NPU_SUBPOOL, "npu-team-a", "Logical", ("Train",),
            (NodeGroup("modelarts.bm.npu.arm.8snt9b3.d", 2),), "object", parent=NPU_POOL,
            extra_cards=1),
    SimPool(CPU_POOL, "cpu-train", "Dedicate", ("Train",),
            (NodeGroup("modelarts.vm.cpu.16u64g", 3, creating=1),), "array"),
    SimPool(INFER_POOL, "infer-online", "Dedicate", ("Infer",),
            (NodeGroup("modelarts.vm.gpu.t4u8", 2),), "object", extra_cards=1),
)  # fmt: skip


@dataclass(slots=True)
class SimNode:
    name: str
    flavor: Flavor
    phase: str
    bound: str | None
    """The logical pool the node is bound to (``os.modelarts.node/elastic.quota``)."""
    taken: int = 0


@dataclass(frozen=True, slots=True)
class CardTruth:
    capacity: int
    allocated: int
    free: int
    unavailable: int


@dataclass(frozen=True, slots=True)
class PoolTruth:
    """What the exporter must show of one Train pool."""

    pool: SimPool
    nodes: Mapping[tuple[str, str], int]
    """Nodes by (flavor, lower-case state)."""
    desired: Mapping[str, int]
    cards: Mapping[str, CardTruth]
    """By kind; a kind no node has is absent."""
    held: Mapping[str, int] = field(default_factory=dict)
    """Cards the pool's Running and Terminating v2 jobs hold, by kind."""


def _held(tenant: V2Tenant | None) -> dict[str, int]:
    """Cards held per pool id by the tenant's jobs."""
    held: dict[str, int] = {}
    for job in tenant.truth() if tenant is not None else ():
        if job.phase in HOLDING and job.pool_id != "public":
            held[job.pool_id] = held.get(job.pool_id, 0) + (job.gpus or 0) + (job.npus or 0)
    return held


class PoolModel:
    """The pools as of the tenant's jobs now (re-derived at every call; the tenant moves)."""

    def __init__(self, tenant: V2Tenant | None, pools: tuple[SimPool, ...] = POOLS) -> None:
        self.tenant = tenant
        self.pools = pools

    def pool(self, pool_id: str) -> SimPool | None:
        return next((pool for pool in self.pools if pool.id == pool_id), None)

    def layout(self) -> dict[str, list[SimNode]]:
        """Every pool's nodes, cards placed: a physical pool's include its sub-pools' nodes."""
        held = _held(self.tenant)
        own: dict[str, list[SimNode]] = {}
        for pool in self.pools:
            nodes = _nodes(pool)
            need = held.get(pool.id, 0) + pool.extra_cards
            _place(pool, nodes, need)
            own[pool.id] = nodes
        layout = {pool_id: list(nodes) for pool_id, nodes in own.items()}
        for pool in self.pools:
            if pool.parent and pool.parent in layout:
                layout[pool.parent] += own[pool.id]
        return layout

    def truth(self, vanished: frozenset[str] = frozenset()) -> dict[str, PoolTruth]:
        """What the exporter must show, by pool id: every Train pool not deleted."""
        layout = self.layout()
        held = _held(self.tenant)
        found = {}
        for pool in self.pools:
            if "Train" not in pool.scope or pool.id in vanished:
                continue
            nodes = layout[pool.id]
            cards: dict[str, list[int]] = {}
            for node in nodes:
                if node.flavor.kind is None:
                    continue
                sums = cards.setdefault(node.flavor.kind, [0, 0, 0])
                if node.phase == "Available":
                    sums[0] += node.flavor.per_node
                    sums[1] += node.taken
                else:
                    sums[2] += node.flavor.per_node
            kind = _kind(pool)
            found[pool.id] = PoolTruth(
                pool=pool,
                nodes=counts(nodes),
                desired=desired(nodes),
                cards={k: CardTruth(c, a, c - a, u) for k, (c, a, u) in cards.items()},
                held={kind: held.get(pool.id, 0)} if kind else {},
            )
        return found


def _kind(pool: SimPool) -> str | None:
    kinds = {FLAVORS[group.flavor].kind for group in pool.groups} - {None}
    return kinds.pop() if kinds else None


def _nodes(pool: SimPool) -> list[SimNode]:
    nodes = []
    for g, group in enumerate(pool.groups):
        flavor = FLAVORS[group.flavor]
        phases = ["Available"] * group.available + ["Abnormal"] * group.abnormal
        phases += ["Creating"] * group.creating
        for n, phase in enumerate(phases):
            name = f"{pool.name}-node-{g}{n:02d}{pool.id[-5:]}"
            nodes.append(SimNode(name, flavor, phase, pool.id if pool.type == "Logical" else None))
    return nodes


def _place(pool: SimPool, nodes: list[SimNode], need: int) -> None:
    """Take ``need`` cards on the Available nodes, growing Available nodes when they are full."""
    usable = [node for node in nodes if node.phase == "Available" and node.flavor.per_node]
    if not usable:
        return
    room = sum(node.flavor.per_node for node in usable)
    if need > room:
        first = usable[0]
        more = math.ceil((need - room) / first.flavor.per_node)
        for n in range(more):
            extra = SimNode(f"{first.name}-x{n}", first.flavor, "Available", first.bound)
            nodes.append(extra)
            usable.append(extra)
    for node in usable:
        node.taken = min(need, node.flavor.per_node)
        need -= node.taken


def counts(nodes: list[SimNode]) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for node in nodes:
        key = (node.flavor.name, node.phase.lower())
        found[key] = found.get(key, 0) + 1
    return found


def desired(nodes: list[SimNode]) -> dict[str, int]:
    found: dict[str, int] = {}
    for node in nodes:
        found[node.flavor.name] = found.get(node.flavor.name, 0) + 1
    return found
