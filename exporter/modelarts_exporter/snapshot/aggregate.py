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

Label values from the API (pools, flavors, unrecognized status codes) are capped per target
(:mod:`.labelcap`): beyond the cap, they are summed under ``_other``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TypeVar

from modelarts_exporter.cloud.models import Version
from modelarts_exporter.cloud.statuses import ACTIVE_PHASES, KNOWN, Phase, Status, status_of
from modelarts_exporter.listing.builder import ListingBuilder
from modelarts_exporter.listing.inventory import Listed, Observations, run_ms
from modelarts_exporter.listing.source import ListingKind
from modelarts_exporter.snapshot.counts import Counted, OldestJob, PoolKey, count, oldest_job
from modelarts_exporter.snapshot.labelcap import DEFAULT_CAP, OTHER, Admitted, kept, totals
from modelarts_exporter.snapshot.users import UserLedger, UserUsage

DURATION_BUCKETS: tuple[float, ...] = (
    60, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800,
)  # fmt: skip
"""Run time: a minute to a week; training jobs span that whole range."""
QUEUE_BUCKETS: tuple[float, ...] = (
    5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400,
)  # fmt: skip
"""Queue time: seconds (idle pool) to a day (starved pool)."""

FlavorKey = tuple[str, str]
"""``(pool_id, flavor_code)``"""
DurationKey = tuple[str, Phase]
"""``(pool_id, phase)``"""
OTHER_STATUS = Status(-1, OTHER, Phase.UNKNOWN)
"""Unrecognized status codes beyond the cap, summed."""


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
    overflow: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Per capped label: how many distinct values of the listing are summed under ``_other``
    in the gauges (0 when none)."""
    oldest_jobs: Mapping[Phase, OldestJob] = field(default_factory=lambda: MappingProxyType({}))
    """The oldest version of each non-terminal phase that has one with a create time."""
    users: UserUsage | None = None
    """Per-user numbers (:mod:`.users`); ``None`` unless asked for."""

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
        return frozenset(
            s.code
            for s in self.by_status
            if s.code not in KNOWN and s.kind is None and s is not OTHER_STATUS
        )


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

    def __init__(
        self,
        statuses: Iterable[Status] | None = None,
        max_label_values: int = DEFAULT_CAP,
        max_users: int | None = None,
    ) -> None:
        """``statuses``: those exported even when no version has them (default: v1's);
        ``max_label_values``: how many distinct values of a label from the API keep series of
        their own (:mod:`.labelcap`); ``max_users``: the same for users, with per-user
        numbers (:mod:`.users`) only when given."""
        self._statuses = tuple(KNOWN.values() if statuses is None else statuses)
        self._cap = max_label_values
        self._pools = Admitted(max_label_values)
        self._flavors = Admitted(max_label_values)
        self._baseline_done = False
        self.listed: Listed | None = None
        """The last complete listing; ``None`` before the first."""
        self._durations: dict[DurationKey, _MillisHistogram] = {}
        self._queue: dict[str, _MillisHistogram] = {}
        self._gpu_ms: dict[FlavorKey, int] = {}
        self._npu_ms: dict[FlavorKey, int] = {}
        self._listings: dict[ListingKind, int] = {}
        self._users = None if max_users is None else UserLedger(max_users)

    def builder(self) -> ListingBuilder:
        """A builder for the next full listing, against what the last one held."""
        previous = self.listed.inventory if self.listed else Listed().inventory
        return ListingBuilder(previous, observe=self._baseline_done, users=self._users is not None)

    def commit(
        self, listed: Listed, found: Observations, now: float, kind: ListingKind = "full"
    ) -> Snapshot:
        """Make ``listed`` the current listing, observe what it found (unless it is the
        baseline) and return its snapshot; ``kind`` says how it was listed (``full`` or
        ``incremental``)."""
        self._listings[kind] = self._listings.get(kind, 0) + 1
        counted = count(listed)
        pools = kept(totals((p, u[0]) for (p, _, _), u in counted.usage.items()), self._cap)
        flavors = kept(totals((f, u[0]) for (_, f, _), u in counted.usage.items()), self._cap)
        if self._baseline_done:
            for pool, flavor, phase, ran, gpus, npus, _ in found.finished:
                pool_label = self._pools.label(pool, pools)
                flavor_label = self._flavors.label(flavor, flavors)
                self._observe_finished(pool_label, flavor_label, phase, ran, gpus, npus)
            for pool, ms in found.queued:
                self._observe_queue(self._pools.label(pool, pools), ms)
        users = self._users.commit(listed, found, self._baseline_done) if self._users else None
        self._baseline_done = True
        self.listed = listed
        return replace(self._snapshot(listed, counted, pools, flavors, now), users=users)

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

    def _snapshot(
        self,
        listed: Listed,
        counted: Counted,
        pools: frozenset[str],
        flavors: frozenset[str],
        now: float,
    ) -> Snapshot:
        by_status = dict.fromkeys(self._statuses, 0)
        odd = {code: n for code, n in counted.by_code.items() if _unrecognized(code)}
        codes = kept({str(code): n for code, n in odd.items()}, self._cap)
        for code, n in sorted(counted.by_code.items()):
            if code in odd and str(code) not in codes:
                by_status[OTHER_STATUS] = by_status.get(OTHER_STATUS, 0) + n
            else:
                by_status[status_of(code)] = n

        def fold(key: PoolKey) -> PoolKey:
            pool, flavor, phase = key
            return (pool if pool in pools else OTHER, flavor if flavor in flavors else OTHER, phase)

        usage: dict[PoolKey, list[int]] = {}
        for key, counts in counted.usage.items():
            summed = usage.setdefault(fold(key), [0, 0, 0])
            for i, n in enumerate(counts):
                summed[i] += n
        unknown: dict[PoolKey, int] = {}
        for key, n in counted.unknown.items():
            unknown[fold(key)] = unknown.get(fold(key), 0) + n
        oldest_ms = counted.oldest_ms
        overflow = {
            "pool_id": len({p for p, _, _ in counted.usage} - pools),
            "flavor_code": len({f for _, f, _ in counted.usage} - flavors),
            "status": len(odd) - len(codes),
        }
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
            overflow=MappingProxyType(overflow),
            oldest_jobs=MappingProxyType(
                {phase: oldest_job(v, now) for phase, v in counted.oldest.items()}
            ),
        )


def _unrecognized(code: int) -> bool:
    """A v1 code outside the table (``code_<n>``): the one unbounded status label value."""
    return code not in KNOWN and status_of(code).kind is None


K = TypeVar("K")


def _freeze_all(builders: Mapping[K, _MillisHistogram]) -> Mapping[K, Histogram]:
    return MappingProxyType({key: b.freeze() for key, b in sorted(builders.items())})


def _seconds(millis: Mapping[K, int]) -> Mapping[K, float]:
    return MappingProxyType({key: ms / 1000.0 for key, ms in sorted(millis.items())})
