"""A complete listing in, one immutable :class:`Snapshot` out.

Two kinds of numbers come from a listing:

- *Gauges* describe the listing itself (versions per status, per pool/flavor/phase, accelerators,
  the oldest active version). They are recomputed from scratch at every poll.
- *Observe-once* numbers (duration and queue histograms, accelerator-second counters) accumulate
  across polls in a :class:`Ledger`: a version is observed the first poll it is seen finished (or
  started, for queue time). The first successful poll is a **baseline**: versions that already
  finished or started before the exporter was running are remembered but not observed, so a
  restart does not replay history into the histograms as a false spike.

What a listing leaves behind between polls is a :class:`~.inventory.Listed`
(compact: gauge counts, the active versions, an inventory of ids and flags); the snapshot is
computed from it, so a full listing and an incremental poll that arrive at the same ``Listed``
publish the same numbers. Observe-once sums are kept in integer milliseconds, so they do not
depend on the order versions were observed in.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TypeVar

from modelarts_exporter.cloud.models import Version
from modelarts_exporter.cloud.statuses import ACTIVE_PHASES, KNOWN, Phase, Status, status_of
from modelarts_exporter.listing.inventory import (
    PUBLIC_POOL,
    UNKNOWN_FLAVOR,
    Listed,
    ListingBuilder,
    Observations,
    run_ms,
)
from modelarts_exporter.listing.source import ListingKind

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
    listings: Mapping[ListingKind, int] = field(default_factory=lambda: MappingProxyType({}))
    """Complete listings so far, by kind (``full``, ``incremental``)."""
    accelerators_unknown: Mapping[PoolKey, int] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """v2 jobs whose GPU/NPU count cannot be known (in neither ``gpus`` nor ``npus``)."""

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
        return frozenset(s.code for s in self.by_status if s.code not in KNOWN and s.kind is None)


def run_seconds(version: Version) -> float:
    """How long a finished version ran: ``duration``, else end - start, else 0 (it never ran)."""
    return run_ms(version) / 1000.0


@dataclass(slots=True)
class _MillisHistogram:
    """Observations in whole milliseconds, bucketed in seconds: the sum is kept as an integer, so
    it is exact whatever the order of observing."""

    bounds: tuple[float, ...]
    _seconds: HistogramBuilder = field(init=False)
    total_ms: int = 0

    def __post_init__(self) -> None:
        self._seconds = HistogramBuilder(self.bounds)

    def observe(self, ms: int) -> None:
        self._seconds.observe(ms / 1000.0)
        self.total_ms += ms

    def freeze(self) -> Histogram:
        return replace(self._seconds.freeze(), total=self.total_ms / 1000.0)


class Ledger:
    """Observe-once state of one target plus what its last complete listing held. The poller
    feeds it complete listings only (:meth:`commit`), so a failed poll leaves it untouched."""

    def __init__(self, statuses: Iterable[Status] | None = None) -> None:
        """``statuses``: those exported even when no version has them (default: v1's)."""
        self._statuses = tuple(KNOWN.values() if statuses is None else statuses)
        self._baseline_done = False
        self.listed: Listed | None = None
        """The last complete listing; ``None`` before the first."""
        self._durations: dict[DurationKey, _MillisHistogram] = {}
        self._queue: dict[str, _MillisHistogram] = {}
        self._gpu_ms: dict[FlavorKey, int] = {}
        self._npu_ms: dict[FlavorKey, int] = {}
        self._listings: dict[ListingKind, int] = {}

    def builder(self) -> ListingBuilder:
        """A builder for the next full listing, against what the last one held."""
        previous = self.listed.inventory if self.listed else Listed().inventory
        return ListingBuilder(previous, observe=self._baseline_done)

    def commit(
        self, listed: Listed, found: Observations, now: float, kind: ListingKind = "full"
    ) -> Snapshot:
        """Make ``listed`` the current listing, observe what it found (unless it is the
        baseline) and return its snapshot; ``kind`` says how it was listed (``full`` or
        ``incremental``)."""
        self._listings[kind] = self._listings.get(kind, 0) + 1
        if self._baseline_done:
            for pool, flavor, phase, ran, gpus, npus in found.finished:
                self._observe_finished(pool, flavor, phase, ran, gpus, npus)
            for pool, ms in found.queued:
                self._observe_queue(pool, ms)
        self._baseline_done = True
        self.listed = listed
        return self._snapshot(listed, now)

    def update(self, versions: Iterable[Version], reported_total: int, now: float) -> Snapshot:
        """Commit a listing given as one collection of versions (tests, small tools)."""
        builder = self.builder()
        builder.start_pass(0)
        builder.add_page(list(versions))
        builder.finish_workspace(reported_total)
        return self.commit(*builder.result(), now)

    def _observe_finished(
        self, pool: str, flavor: str, phase: Phase, ran: int, gpus: int, npus: int
    ) -> None:
        builder = self._durations.get((pool, phase))
        if builder is None:
            builder = self._durations[(pool, phase)] = _MillisHistogram(DURATION_BUCKETS)
        builder.observe(ran)
        if gpus:
            self._gpu_ms[(pool, flavor)] = self._gpu_ms.get((pool, flavor), 0) + gpus * ran
        if npus:
            self._npu_ms[(pool, flavor)] = self._npu_ms.get((pool, flavor), 0) + npus * ran

    def _observe_queue(self, pool: str, ms: int) -> None:
        builder = self._queue.get(pool)
        if builder is None:
            builder = self._queue[pool] = _MillisHistogram(QUEUE_BUCKETS)
        builder.observe(ms)

    def _snapshot(self, listed: Listed, now: float) -> Snapshot:
        by_code: dict[int, int] = {}
        usage: dict[PoolKey, list[int]] = {}
        oldest_ms: dict[Phase, int] = {}
        unknown: dict[PoolKey, int] = {}

        def count(
            status: int,
            pool: str | None,
            flavor: str | None,
            gpus: int | None,
            npus: int | None,
            n: int,
        ) -> None:
            by_code[status] = by_code.get(status, 0) + n
            key = (pool or PUBLIC_POOL, flavor or UNKNOWN_FLAVOR, status_of(status).phase)
            counts = usage.get(key)
            if counts is None:
                counts = usage[key] = [0, 0, 0]
            counts[0] += n
            counts[1] += n * (gpus or 0)
            counts[2] += n * (npus or 0)
            # A v2 job says "no idea" with both None; a v1 version's None has always meant 0.
            if gpus is None and npus is None and status_of(status).kind is not None:
                unknown[key] = unknown.get(key, 0) + n

        for (status, pool, flavor, gpus, npus), n in listed.terminal.items():
            count(status, pool, flavor, gpus, npus, n)
        for v in listed.active.values():
            count(v["status"], v["pool_id"], v["flavor_code"], v["gpu_num"], v["npu_num"], 1)
            phase = status_of(v["status"]).phase
            if v["create_time"] and v["create_time"] < oldest_ms.get(phase, 2**63):
                oldest_ms[phase] = v["create_time"]
        by_status = dict.fromkeys(self._statuses, 0)
        for code, n in sorted(by_code.items()):
            by_status[status_of(code)] = n
        oldest = {
            phase: max(0.0, now - oldest_ms[phase] / 1000.0) if phase in oldest_ms else 0.0
            for phase in ACTIVE_PHASES
        }
        return Snapshot(
            taken_at=now,
            version_count=len(listed.inventory),
            reported_total=sum(listed.reported.values()),
            by_status=MappingProxyType(by_status),
            by_pool=MappingProxyType({k: PoolUsage(*c) for k, c in sorted(usage.items())}),
            oldest_seconds=MappingProxyType(oldest),
            durations=_freeze_all(self._durations),
            queue=_freeze_all(self._queue),
            gpu_seconds=_seconds(self._gpu_ms),
            npu_seconds=_seconds(self._npu_ms),
            listings=MappingProxyType(dict(self._listings)),
            accelerators_unknown=MappingProxyType(dict(sorted(unknown.items()))),
        )


K = TypeVar("K")


def _freeze_all(builders: Mapping[K, _MillisHistogram]) -> Mapping[K, Histogram]:
    return MappingProxyType({key: b.freeze() for key, b in sorted(builders.items())})


def _seconds(millis: Mapping[K, int]) -> Mapping[K, float]:
    return MappingProxyType({key: ms / 1000.0 for key, ms in sorted(millis.items())})
