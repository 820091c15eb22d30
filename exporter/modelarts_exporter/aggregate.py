"""Versions in, one immutable :class:`Snapshot` out.

Two kinds of numbers come from a listing:

- *Gauges* describe the listing itself (versions per status, per pool/flavor/phase, accelerators,
  the oldest active version). They are recomputed from scratch at every poll.
- *Observe-once* numbers (duration and queue histograms, accelerator-second counters) accumulate
  across polls in a :class:`Ledger`: a version is observed the first poll it is seen finished (or
  started, for queue time). The first successful poll is a **baseline**: versions that already
  finished or started before the exporter was running are remembered but not observed, so a
  restart does not replay history into the histograms as a false spike.

The ledger keeps only the ids of versions it has seen finished or started, rebuilt from every
listing, so versions deleted from ModelArts are forgotten and memory stays proportional to the
tenant.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from modelarts_exporter.models import Version
from modelarts_exporter.statuses import ACTIVE_PHASES, KNOWN, Phase, Status, status_of

PUBLIC_POOL = "public"
"""``pool_id`` label of versions on the shared pool (the API omits their ``pool_id``)."""
UNKNOWN_FLAVOR = "unknown"

DURATION_BUCKETS: tuple[float, ...] = (
    60, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800,
)  # fmt: skip
"""Run time: a minute to a week; training jobs span that whole range."""
QUEUE_BUCKETS: tuple[float, ...] = (
    5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400,
)  # fmt: skip
"""Queue time: seconds (idle pool) to a day (starved pool)."""

PoolKey = tuple[str, str, Phase]
"""``(pool_id, flavor_code, phase)``"""
FlavorKey = tuple[str, str]
"""``(pool_id, flavor_code)``"""
DurationKey = tuple[str, Phase]
"""``(pool_id, phase)``"""


@dataclass(frozen=True, slots=True)
class Histogram:
    """Cumulative bucket counts (one per bound, then ``+Inf``) and the sum of observations."""

    bounds: tuple[float, ...]
    buckets: tuple[int, ...]
    total: float

    @property
    def count(self) -> int:
        return self.buckets[-1]


@dataclass(slots=True)
class HistogramBuilder:
    bounds: tuple[float, ...]
    counts: list[int] = field(init=False)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs in that bucket (``le`` is inclusive).
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def freeze(self) -> Histogram:
        running = 0
        cumulative = []
        for n in self.counts:
            running += n
            cumulative.append(running)
        return Histogram(self.bounds, tuple(cumulative), self.total)


@dataclass(frozen=True, slots=True)
class PoolUsage:
    versions: int = 0
    gpus: int = 0
    npus: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything known about one target after one successful poll; never mutated."""

    taken_at: float
    """Unix seconds when the listing was complete."""
    version_count: int
    reported_total: int
    by_status: Mapping[Status, int]
    """Every known status (0 when none) plus any unrecognized code seen."""
    by_pool: Mapping[PoolKey, PoolUsage]
    oldest_seconds: Mapping[Phase, float]
    """Every non-terminal phase; 0 when no version is in it."""
    durations: Mapping[DurationKey, Histogram]
    queue: Mapping[str, Histogram]
    gpu_seconds: Mapping[FlavorKey, float]
    npu_seconds: Mapping[FlavorKey, float]

    def phase_totals(self) -> dict[Phase, int]:
        totals = dict.fromkeys(Phase, 0)
        for status, n in self.by_status.items():
            totals[status.phase] += n
        return totals

    def accelerators_in(self, phase: Phase) -> PoolUsage:
        gpus = npus = versions = 0
        for (_, _, p), usage in self.by_pool.items():
            if p is phase:
                versions += usage.versions
                gpus += usage.gpus
                npus += usage.npus
        return PoolUsage(versions, gpus, npus)

    @property
    def unrecognized_codes(self) -> frozenset[int]:
        return frozenset(s.code for s in self.by_status if s.code not in KNOWN)


def run_seconds(version: Version) -> float:
    """How long a finished version ran: ``duration``, else end - start, else 0 (it never ran)."""
    if version.duration:
        return version.duration / 1000.0
    if version.start_time and version.end_time and version.end_time >= version.start_time:
        return (version.end_time - version.start_time) / 1000.0
    return 0.0


class Ledger:
    """Observe-once state of one target; the poller owns one and feeds it complete listings only,
    so a failed poll leaves it untouched."""

    def __init__(self) -> None:
        self._baseline_done = False
        self._finished: set[int] = set()
        self._started: set[int] = set()
        self._durations: dict[DurationKey, HistogramBuilder] = {}
        self._queue: dict[str, HistogramBuilder] = {}
        self._gpu_seconds: dict[FlavorKey, float] = {}
        self._npu_seconds: dict[FlavorKey, float] = {}

    @property
    def baseline_done(self) -> bool:
        return self._baseline_done

    def update(self, versions: Collection[Version], reported_total: int, now: float) -> Snapshot:
        observe = self._baseline_done
        finished: set[int] = set()
        started: set[int] = set()
        by_code: dict[int, int] = {}
        usage: dict[PoolKey, list[int]] = {}
        oldest_ms: dict[Phase, int] = {}
        old_finished, old_started = self._finished, self._started
        for v in versions:
            status = status_of(v.status)
            phase = status.phase
            by_code[v.status] = by_code.get(v.status, 0) + 1
            pool = v.pool_id or PUBLIC_POOL
            flavor = v.flavor_code or UNKNOWN_FLAVOR
            gpus = v.gpu_num or 0
            npus = v.npu_num or 0
            counts = usage.get((pool, flavor, phase))
            if counts is None:
                usage[(pool, flavor, phase)] = [1, gpus, npus]
            else:
                counts[0] += 1
                counts[1] += gpus
                counts[2] += npus
            vid = v.version_id
            if phase.terminal:
                finished.add(vid)
                if observe and vid not in old_finished:
                    self._observe_finished(v, pool, flavor, phase, gpus, npus)
            elif v.create_time and v.create_time < oldest_ms.get(phase, 2**63):
                oldest_ms[phase] = v.create_time
            if v.start_time or phase.terminal:
                started.add(vid)
                if observe and vid not in old_started and v.start_time and v.create_time:
                    self._observe_queue(pool, max(0, v.start_time - v.create_time) / 1000.0)
        self._finished, self._started = finished, started
        self._baseline_done = True
        return self._snapshot(versions, reported_total, now, by_code, usage, oldest_ms)

    def _observe_finished(
        self, v: Version, pool: str, flavor: str, phase: Phase, gpus: int, npus: int
    ) -> None:
        seconds = run_seconds(v)
        builder = self._durations.get((pool, phase))
        if builder is None:
            builder = self._durations[(pool, phase)] = HistogramBuilder(DURATION_BUCKETS)
        builder.observe(seconds)
        if gpus:
            self._gpu_seconds[(pool, flavor)] = self._gpu_seconds.get((pool, flavor), 0.0) + (
                gpus * seconds
            )
        if npus:
            self._npu_seconds[(pool, flavor)] = self._npu_seconds.get((pool, flavor), 0.0) + (
                npus * seconds
            )

    def _observe_queue(self, pool: str, seconds: float) -> None:
        builder = self._queue.get(pool)
        if builder is None:
            builder = self._queue[pool] = HistogramBuilder(QUEUE_BUCKETS)
        builder.observe(seconds)

    def _snapshot(
        self,
        versions: Collection[Version],
        reported_total: int,
        now: float,
        by_code: Mapping[int, int],
        usage: Mapping[PoolKey, list[int]],
        oldest_ms: Mapping[Phase, int],
    ) -> Snapshot:
        by_status = {status: 0 for status in KNOWN.values()}
        for code, n in by_code.items():
            by_status[status_of(code)] = n
        oldest = {
            phase: max(0.0, now - oldest_ms[phase] / 1000.0) if phase in oldest_ms else 0.0
            for phase in ACTIVE_PHASES
        }
        return Snapshot(
            taken_at=now,
            version_count=len(versions),
            reported_total=reported_total,
            by_status=MappingProxyType(by_status),
            by_pool=MappingProxyType({k: PoolUsage(*c) for k, c in usage.items()}),
            oldest_seconds=MappingProxyType(oldest),
            durations=_freeze_all(self._durations),
            queue=_freeze_all(self._queue),
            gpu_seconds=MappingProxyType(dict(self._gpu_seconds)),
            npu_seconds=MappingProxyType(dict(self._npu_seconds)),
        )


K = TypeVar("K")


def _freeze_all(builders: Mapping[K, HistogramBuilder]) -> Mapping[K, Histogram]:
    return MappingProxyType({key: b.freeze() for key, b in builders.items()})


def summarize(versions: Iterable[Version], now: float) -> Snapshot:
    """The snapshot of one listing on its own: a fresh ledger, so gauges and a baseline only."""
    return Ledger().update(list(versions), 0, now)
