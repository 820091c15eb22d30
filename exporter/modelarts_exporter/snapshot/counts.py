"""A listing's gauge counts, raw: every label value the API gave, as it gave it (the label cap
of :mod:`.labelcap` is applied after, in :mod:`.aggregate`)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TypeVar

from modelarts_exporter.cloud.statuses import Phase, status_of
from modelarts_exporter.listing.active import Active, ActiveVersion
from modelarts_exporter.listing.inventory import PUBLIC_POOL, UNKNOWN_FLAVOR, Listed
from modelarts_exporter.listing.v2_jobs import MAX_NAME
from modelarts_exporter.text import one_line

PoolKey = tuple[str, str, Phase]
"""``(pool_id, flavor_code, phase)``"""
K = TypeVar("K", bound=Hashable)


def tally(counts: dict[K, list[int]], key: K, n: int, gpus: int | None, npus: int | None) -> None:
    """``n`` listings of ``gpus`` and ``npus`` each into ``counts[key]``, a
    ``[listings, gpus, npus]``; an unknown count (``None``) adds no cards."""
    summed = counts.get(key)
    if summed is None:
        summed = counts[key] = [0, 0, 0]
    summed[0] += n
    summed[1] += n * (gpus or 0)
    summed[2] += n * (npus or 0)


@dataclass(frozen=True, slots=True)
class OldestJob:
    """The oldest version of a phase, named: ``job_id``, ``job_name`` (bounded, printable)."""

    job_id: str
    job_name: str
    seconds: float


@dataclass(slots=True)
class Counted:
    by_code: dict[int, int] = field(default_factory=dict)
    """Versions per status code."""
    usage: dict[PoolKey, list[int]] = field(default_factory=dict)
    """``[versions, gpus, npus]`` per pool, flavor and phase."""
    oldest_ms: dict[Phase, int] = field(default_factory=dict)
    """The earliest create time (ms) per active phase that has versions."""
    oldest: dict[Phase, ActiveVersion] = field(default_factory=dict)
    """The version of that create time: of several, the one of lowest id (v1 ids before v2's,
    v2 by ``metadata.id``), so the choice depends on the listing alone."""
    unknown: dict[PoolKey, int] = field(default_factory=dict)
    """v2 jobs whose GPU/NPU count cannot be known."""


def count(listed: Listed) -> Counted:
    """The gauge counts of a listing."""
    counted = Counted()
    by_code, usage, oldest_ms, unknown = (
        counted.by_code, counted.usage, counted.oldest_ms, counted.unknown
    )  # fmt: skip

    def add(
        status: int,
        pool: str | None,
        flavor: str | None,
        gpus: int | None,
        npus: int | None,
        n: int,
    ) -> None:
        by_code[status] = by_code.get(status, 0) + n
        key = (pool or PUBLIC_POOL, flavor or UNKNOWN_FLAVOR, status_of(status).phase)
        tally(usage, key, n, gpus, npus)
        # A v2 job says "no idea" with both None; a v1 version's None has always meant 0.
        if gpus is None and npus is None and status_of(status).kind is not None:
            unknown[key] = unknown.get(key, 0) + n

    for (status, pool, flavor, gpus, npus), n in listed.terminal.items():
        add(status, pool, flavor, gpus, npus, n)
    active = listed.active
    for (status, pool, flavor, gpus, npus), n in active.gauge_counts().items():
        add(status, pool, flavor, gpus, npus, n)
    phases = [status_of(key[0]).phase for key in active.keys.gauge]  # by key number
    oldest: dict[Phase, int] = {}  # the row
    for row, (number, created) in enumerate(zip(active.gauge, active.created, strict=True)):
        phase = phases[number]
        if created and created <= oldest_ms.get(phase, 2**63):
            if created == oldest_ms.get(phase) and _order(active, oldest[phase]) <= _order(
                active, row
            ):
                continue
            oldest_ms[phase] = created
            oldest[phase] = row
    # In the phases' order, not the order pages happened to arrive in: the series are exposed so.
    counted.oldest = {phase: active.version(oldest[phase]) for phase in Phase if phase in oldest}
    return counted


def _order(active: Active, row: int) -> tuple[str, int]:
    """How versions of one create time are ordered (v1 ids sort before any v2 id)."""
    return active.v2_ids[row], active.ids[row]


def oldest_job(version: ActiveVersion, now: float) -> OldestJob:
    """``version`` named, aged at ``now`` (as ``oldest_seconds`` ages it)."""
    v2_id, name = version.v2_id, version.version_name
    return OldestJob(
        one_line(v2_id, MAX_NAME) if v2_id else str(version.version_id),
        one_line(name, MAX_NAME) if name else "",
        max(0.0, now - version.create_time / 1000.0),
    )
