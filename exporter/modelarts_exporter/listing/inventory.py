"""What the last complete listing held, compactly: the terminal versions as gauge counts, the
active ones (:mod:`.active`), and an :class:`Inventory` of every version.

- gauge counts of terminal versions, by ``(status, pool_id, flavor_code, gpu_num, npu_num)`` — a
  few hundred keys whatever the tenant's size — and, only with per-user metrics, by
  ``(user_name, status, gpu_num, npu_num)``;
- the *active* (non-terminal) versions, which change, held compactly;
- an :class:`Inventory` of every version: sorted ids with aligned columns (create time, workspace,
  observe-once flags), about 18 bytes a version.

The inventory is what observe-once needs (was this version already seen finished? started?) and
what de-duplicates a listing that moves while it is read: a version seen twice in one listing
counts once (its first copy wins). Versions that left the listing drop out of the next inventory,
so deleted versions are forgotten. :mod:`.builder` folds a listing's pages into the next one.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from itertools import compress, islice, pairwise
from operator import ge
from typing import TypeVar

from modelarts_exporter.cloud.models import Version
from modelarts_exporter.cloud.statuses import Phase, status_of
from modelarts_exporter.listing.active import Active, GaugeKey, UserKey

PUBLIC_POOL = "public"
"""``pool_id`` label of versions on the shared pool (the API omits their ``pool_id``)."""
UNKNOWN_FLAVOR = "unknown"

_MIN_RUN = 16
"""Fewer rows a run on average than this, and runs are not worth joining: sort the rows."""
_Column = TypeVar("_Column", "array[int]", bytearray)

STARTED = 1
FINISHED = 2
DONE = STARTED | FINISHED
"""Observe-once flags of a version: seen started (or ended), seen in a terminal phase."""


@dataclass(slots=True)
class Inventory:
    """Every listed version, sorted by id, one array per column."""

    ids: array[int] = field(default_factory=lambda: array("q"))
    created: array[int] = field(default_factory=lambda: array("q"))
    """``create_time`` (ms; 0 when the API gave none)."""
    workspace: bytearray = field(default_factory=bytearray)
    """Index into the listed workspaces."""
    flags: bytearray = field(default_factory=bytearray)
    pages: list[int] = field(default_factory=list)
    """Rows where a page of versions begins, while the inventory is not yet sorted: each page is
    in id order, so sorting can put whole pages in order instead of rows."""

    def __len__(self) -> int:
        return len(self.ids)

    def find(self, version_id: int) -> int:
        """The row of a version, or -1."""
        ids = self.ids
        row = bisect_left(ids, version_id)
        return row if row < len(ids) and ids[row] == version_id else -1

    def with_changes(self, keep: bytearray | None, flags: bytearray, new: Inventory) -> Inventory:
        """A new inventory: the rows where ``keep`` is nonzero (``None``: all) with ``flags``,
        plus the ``new`` versions (in any order), which it may take over."""
        if not self.ids:  # a first poll: the new versions are the whole inventory
            new._sort()
            return new
        if keep is None or keep.count(0) == 0:
            ids, created, workspace = array("q", self.ids), array("q", self.created), self.workspace
        else:
            ids = array("q", compress(self.ids, keep))
            created = array("q", compress(self.created, keep))
            workspace = bytearray(compress(self.workspace, keep))
            flags = bytearray(compress(flags, keep))
        result = Inventory(ids, created, bytearray(workspace), bytearray(flags))
        if new.ids:
            new._sort()
            before = result.ids[-1] if result.ids else None
            result.ids.extend(new.ids)
            result.created.extend(new.created)
            result.workspace.extend(new.workspace)
            result.flags.extend(new.flags)
            if before is not None and new.ids[0] < before:
                result._sort()
        return result

    def append(self, version_id: int, created: int, workspace: int, flags: int) -> None:
        self.ids.append(version_id)
        self.created.append(created)
        self.workspace.append(workspace)
        self.flags.append(flags)

    def mark_page(self) -> None:
        """The rows appended next are a page, in id order."""
        self.pages.append(len(self.ids))

    def extend(self, other: Inventory) -> None:
        self.pages.extend(row + len(self.ids) for row in other.pages)
        self.ids.extend(other.ids)
        self.created.extend(other.created)
        self.workspace.extend(other.workspace)
        self.flags.extend(other.flags)

    def _sort(self) -> None:
        """Sort by id (a no-op when already sorted, which ids growing with creation make the
        common case)."""
        ids, pages = self.ids, self.pages
        self.pages = []
        # Where an ascending run ends, and where a page begins: pages come in any order, and a
        # page that follows one of lower ids continues its run.
        starts = [*compress(range(1, len(ids)), map(ge, ids, islice(ids, 1, None)))]
        if not starts:
            return
        # A page that added no rows leaves a mark where the next begins, or at the end.
        starts = sorted({0, *starts, *(row for row in pages if row < len(ids))})
        if len(starts) <= len(ids) // _MIN_RUN and self._join_runs(starts):
            return
        # One int per row, the id above the row number, sorted in place: half the memory of a
        # key-sorted range (two ints per row) at the first poll's peak, and the sorted runs the
        # pages make are what timsort merges fastest. Exact for negative ids too: the shift
        # leaves the low bits zero and ``&`` reads them back in two's complement.
        shift = len(ids).bit_length()
        keyed = [vid << shift | row for row, vid in enumerate(ids)]
        keyed.sort()
        order = array("q", map(((1 << shift) - 1).__and__, keyed))
        del keyed
        self.ids = array("q", map(self.ids.__getitem__, order))
        self.created = array("q", map(self.created.__getitem__, order))
        self.workspace = bytearray(map(self.workspace.__getitem__, order))
        self.flags = bytearray(map(self.flags.__getitem__, order))

    def _join_runs(self, starts: list[int]) -> bool:
        """Sort by putting the ascending runs that begin at ``starts`` in order, when no two
        overlap (the pages of a listing, in the order they arrived): slices copied, no per-row
        work. ``False`` (nothing changed) when two overlap."""
        ids = self.ids
        ends = [*starts[1:], len(ids)]
        runs = sorted(zip(map(ids.__getitem__, starts), starts, ends, strict=True))
        if any(ids[end - 1] >= first for (_, _, end), (first, _, _) in pairwise(runs)):
            return False
        spans = [(start, end) for _, start, end in runs]
        self.ids = _joined(ids, spans, array("q"))
        self.created = _joined(self.created, spans, array("q"))
        self.workspace = _joined(self.workspace, spans, bytearray())
        self.flags = _joined(self.flags, spans, bytearray())
        return True


def _joined(column: _Column, spans: list[tuple[int, int]], into: _Column) -> _Column:
    for start, end in spans:
        into.extend(column[start:end])
    return into


@dataclass(slots=True)
class Listed:
    """A complete listing, as the exporter keeps it between polls."""

    inventory: Inventory = field(default_factory=Inventory)
    terminal: Counter[GaugeKey] = field(default_factory=Counter)
    """Gauge counts of the terminal versions."""
    active: Active = field(default_factory=Active)
    """Every non-terminal version (unknown status codes included), compactly."""
    reported: dict[int, int] = field(default_factory=dict)
    """``total_count`` of the unfiltered listing, by workspace index."""
    users: Counter[UserKey] | None = None
    """Gauge counts of the terminal versions by user; ``None`` without per-user metrics (then
    nothing per user is kept)."""


@dataclass(slots=True)
class Observations:
    """Observe-once events found by a poll, applied to the ledger only when the poll succeeds."""

    finished: list[tuple[str, str, Phase, int, int, int, str | None]] = field(default_factory=list)
    """``(pool, flavor, phase, run ms, gpus, npus, user_name)`` of versions first seen
    finished."""
    queued: list[tuple[str, int]] = field(default_factory=list)
    """``(pool, queue ms)`` of versions seen started for the first time."""

    def extend(self, other: Observations) -> None:
        self.finished.extend(other.finished)
        self.queued.extend(other.queued)


def run_ms(version: Version) -> int:
    """How long a finished version ran (ms): ``duration``, else end - start, else 0."""
    if version.duration:
        return version.duration
    if version.start_time and version.end_time and version.end_time >= version.start_time:
        return version.end_time - version.start_time
    return 0


def transition(version: Version, old: int, found: Observations | None) -> int:
    """The observe-once flags of a version now, recording in ``found`` (unless ``None``: a
    baseline observes nothing) what it did since it had the flags ``old``."""
    phase = status_of(version.status).phase
    if phase.terminal:
        new = DONE
    elif version.start_time:
        new = STARTED
    else:
        return 0
    if found is None:
        return new
    pool = version.pool_id or PUBLIC_POOL
    if new & FINISHED and not old & FINISHED:
        flavor = version.flavor_code or UNKNOWN_FLAVOR
        ran = run_ms(version)
        found.finished.append(
            (
                pool,
                flavor,
                phase,
                ran,
                version.gpu_num or 0,
                version.npu_num or 0,
                version.user_name,
            )
        )
    start, created = version.start_time, version.create_time
    if not old & STARTED and start and created:
        found.queued.append((pool, max(0, start - created)))
    return new
