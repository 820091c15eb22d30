"""A pool reading in, one immutable :class:`~.pool_state.PoolSnapshot` out (pure).

Cards per pool, by preference (pools notes §3c):

- ``nodes``: over the nodes with phase Available, the accelerator keys of ``status.resources``
  summed are the capacity and those of ``availableResources`` the free cards; allocated is
  ``max(capacity - free, 0)`` per node. Cards on nodes in any other phase are unavailable.
- ``runtime``: the pool's ``capacity`` and ``allocated`` (free is their difference); a key that
  its prefix does not classify (``tnt004``) has the kind of the pool's flavors, when they have one.
- ``flavors``: capacity only, Available nodes per flavor times the flavor's cards per node.

Each pool is counted as the API describes it: a logical pool's cards are never added to its
parent's. Node counts by state come from the node list when it was read, else from the pool's
``status.resources``. Pool ids and node flavors are label values from the API, capped per
target as the job series' are (:mod:`.labelcap`): beyond the cap, pools are summed under
``_other`` (ranked by cards, then id) and so are flavors (ranked by nodes, then name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from modelarts_exporter.cloud.pool_models import Node, Pool, PoolMetrics
from modelarts_exporter.cloud.quantity import CardKind, card_kind, maybe_cards
from modelarts_exporter.listing.pools import (
    NAME_LABEL,
    FlavorCards,
    PoolReading,
    pool_flavors,
    runtime_item,
    runtime_values,
)
from modelarts_exporter.snapshot.labelcap import OTHER, kept
from modelarts_exporter.snapshot.pool_state import CardKey, Cards, PoolRecord, PoolSnapshot
from modelarts_exporter.text import one_line

MAX_VALUE = 64
"""The longest phase, state or name label value (what the API sends is cut there)."""
WORKSPACE_LABEL = "os.modelarts/workspace.id"
_Sums = dict[CardKind, list[float]]
"""Per kind: ``[capacity, allocated, free, unavailable, free_known]``."""


def _label(value: str | None, default: str = "") -> str:
    return one_line(value, MAX_VALUE) if value else default


def from_nodes(nodes: Iterable[Node]) -> tuple[dict[CardKey, Cards], dict[tuple[str, str], int]]:
    """Cards and node counts of one pool from its node list."""
    sums: _Sums = {}
    counts: dict[tuple[str, str], int] = {}
    for node in nodes:
        status, spec = node["status"], node["spec"]
        phase = _label(status["phase"] if status is not None else None, "unknown")
        flavor = _label(spec["flavor"] if spec is not None else None, "unknown")
        key = (flavor, phase.lower())
        counts[key] = counts.get(key, 0) + 1
        if status is None:
            continue
        free_of = status["availableResources"]
        for name, total in (status["resources"] or {}).items():
            kind = card_kind(name)
            if kind is None:
                continue
            sum_ = sums.setdefault(kind, [0.0, 0.0, 0.0, 0.0, 1.0])
            if phase != "Available":
                sum_[3] += total
                continue
            sum_[0] += total
            if free_of is None or name not in free_of:
                sum_[4] = 0.0  # this node does not say what is free: allocation unknown
                continue
            free = min(free_of[name], total)
            sum_[1] += total - free
            sum_[2] += free
    cards: dict[CardKey, Cards] = {
        (kind, "nodes"): Cards(
            capacity=s[0],
            allocated=s[1] if s[4] else None,
            free=s[2] if s[4] else None,
            unavailable=s[3],
        )
        for kind, s in sums.items()
    }
    return cards, counts


def _flavor_kind(pool: Pool, flavors: Mapping[str, FlavorCards] | None) -> CardKind | None:
    """The one kind of card the pool's flavors have, if they agree on one."""
    if flavors is None:
        return None
    kinds = {flavors[f][0] for f in pool_flavors(pool) if f in flavors} - {None}
    return kinds.pop() if len(kinds) == 1 else None


def from_runtime(
    pool: Pool, item: PoolMetrics, flavors: Mapping[str, FlavorCards] | None
) -> dict[CardKey, Cards]:
    """Cards of one pool from its runtime metrics; keys of unknown kind are left out."""
    capacity, allocated = runtime_values(item)
    sums: dict[CardKind, list[float]] = {}
    for name in capacity.keys() | allocated.keys():
        if not maybe_cards(name):
            continue
        kind = card_kind(name) or _flavor_kind(pool, flavors)
        if kind is None:
            continue
        sum_ = sums.setdefault(kind, [0.0, 0.0])
        sum_[0] += capacity.get(name, 0.0)
        sum_[1] += allocated.get(name, 0.0)
    return {
        (kind, "runtime"): Cards(capacity=c, allocated=a, free=max(c - a, 0.0))
        for kind, (c, a) in sums.items()
    }


def _state_counts(pool: Pool, state: str | None = None) -> dict[tuple[str, str], int]:
    """Nodes by (flavor, state) from the pool's ``status.resources`` (one state if given)."""
    counts: dict[tuple[str, str], int] = {}
    status = pool["status"]
    states = status["resources"] if status is not None else None
    for name, entries in (states or {}).items():
        if state is not None and name.lower() != state:
            continue
        for entry in entries or ():
            key = (_label(entry["flavor"], "unknown"), _label(name).lower())
            counts[key] = counts.get(key, 0) + int(entry["count"] or 0)
    return counts


def from_flavors(pool: Pool, flavors: Mapping[str, FlavorCards]) -> dict[CardKey, Cards]:
    """Capacity of one pool: its Available nodes per flavor times the flavor's cards."""
    sums: dict[CardKind, float] = {}
    for (flavor, _), n in _state_counts(pool, "available").items():
        kind, per_node = flavors.get(flavor, (None, 0.0))
        if kind is not None:
            sums[kind] = sums.get(kind, 0.0) + n * per_node
    return {(kind, "flavors"): Cards(capacity=c) for kind, c in sums.items()}


def _record(pool: Pool, reading: PoolReading) -> tuple[PoolRecord, bool]:
    """One pool's record, and whether some source gave its cards."""
    metadata, spec, status = pool["metadata"], pool["spec"], pool["status"]
    pool_id = metadata["name"]
    labels = metadata["labels"] or {}
    cards: dict[CardKey, Cards] | None = None
    nodes = reading.nodes.get(pool_id)
    counts = _state_counts(pool)
    if nodes is not None:
        cards, counts = from_nodes(nodes)
    if cards is None and reading.runtime is not None:
        item = runtime_item(pool, reading.runtime)
        if item is not None:
            cards = from_runtime(pool, item, reading.flavors)
    if cards is None and reading.flavors is not None:
        cards = from_flavors(pool, reading.flavors)
    desired: dict[str, int] = {}
    for entry in (spec["resources"] if spec is not None else None) or ():
        flavor = _label(entry["flavor"], "unknown")
        desired[flavor] = desired.get(flavor, 0) + int(entry["count"] or 0)
    record = PoolRecord(
        pool_id=_label(pool_id),
        pool_name=_label(labels.get(NAME_LABEL)),
        pool_type=_label(spec["type"] if spec is not None else None),
        workspace_id=_label(labels.get(WORKSPACE_LABEL), "0"),
        parent_pool_id=_label(status["parent"] if status is not None else None),
        phases={_label(status["phase"] if status is not None else None, "unknown"): 1},
        nodes=counts,
        desired=desired,
        cards=cards or {},
    )
    return record, cards is not None


def _merged(records: list[PoolRecord]) -> PoolRecord:
    """The pools beyond the cap as one record: every number summed, phases counted."""
    phases: dict[str, int] = {}
    nodes: dict[tuple[str, str], int] = {}
    desired: dict[str, int] = {}
    cards: dict[CardKey, list[float | None]] = {}
    for record in records:
        for phase, n in record.phases.items():
            phases[phase] = phases.get(phase, 0) + n
        for key, n in record.nodes.items():
            nodes[key] = nodes.get(key, 0) + n
        for flavor, n in record.desired.items():
            desired[flavor] = desired.get(flavor, 0) + n
        for key, c in record.cards.items():
            sums = cards.setdefault(key, [0.0, 0.0, 0.0, 0.0])
            for i, value in enumerate((c.capacity, c.allocated, c.free, c.unavailable)):
                total = sums[i]
                sums[i] = None if value is None or total is None else total + value
    return PoolRecord(
        pool_id=OTHER,
        pool_name="",
        pool_type="",
        workspace_id="",
        parent_pool_id="",
        phases=phases,
        nodes=nodes,
        desired=desired,
        cards={key: Cards(s[0] or 0.0, s[1], s[2], s[3]) for key, s in cards.items()},
    )


def _cap_flavors(records: list[PoolRecord], cap: int) -> list[PoolRecord]:
    totals: dict[str, int] = {}
    for record in records:
        for (flavor, _), n in record.nodes.items():
            totals[flavor] = totals.get(flavor, 0) + n
        for flavor in record.desired:
            totals.setdefault(flavor, 0)
    keep = kept(totals, cap)
    if len(keep) == len(totals):
        return records
    capped = []
    for record in records:
        nodes: dict[tuple[str, str], int] = {}
        for (flavor, state), n in record.nodes.items():
            key = (flavor if flavor in keep else OTHER, state)
            nodes[key] = nodes.get(key, 0) + n
        desired: dict[str, int] = {}
        for flavor, n in record.desired.items():
            name = flavor if flavor in keep else OTHER
            desired[name] = desired.get(name, 0) + n
        capped.append(_frozen(record, nodes, desired))
    return capped


def _frozen(
    record: PoolRecord,
    nodes: Mapping[tuple[str, str], int] | None = None,
    desired: Mapping[str, int] | None = None,
) -> PoolRecord:
    return PoolRecord(
        pool_id=record.pool_id,
        pool_name=record.pool_name,
        pool_type=record.pool_type,
        workspace_id=record.workspace_id,
        parent_pool_id=record.parent_pool_id,
        phases=MappingProxyType(dict(record.phases)),
        nodes=MappingProxyType(dict(record.nodes if nodes is None else nodes)),
        desired=MappingProxyType(dict(record.desired if desired is None else desired)),
        cards=MappingProxyType(dict(record.cards)),
    )


def build(reading: PoolReading, cap: int) -> PoolSnapshot:
    """The snapshot of one reading, label values capped at ``cap`` per label."""
    records: list[PoolRecord] = []
    complete = True
    for pool in reading.pools:
        record, known = _record(pool, reading)
        records.append(record)
        complete = complete and known
    weight = {r.pool_id: int(sum(c.capacity for c in r.cards.values())) for r in records}
    keep = kept(weight, cap)
    own = [r for r in records if r.pool_id in keep]
    rest = [r for r in records if r.pool_id not in keep]
    if rest:
        own.append(_merged(rest))
    own = _cap_flavors(own, cap)
    pools = tuple(sorted((_frozen(r) for r in own), key=lambda r: r.pool_id))
    return PoolSnapshot(pools=pools, complete=complete)
