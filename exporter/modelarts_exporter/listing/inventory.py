"""What the last complete listing held, compactly, and the streaming builder of the next one.

A poll never holds every record of a listing. Pages are folded in as they arrive
(:class:`ListingBuilder`) into:

- gauge counts of terminal versions, by ``(status, pool_id, flavor_code, gpu_num, npu_num)`` — a
  few hundred keys whatever the tenant's size — and, only with per-user metrics, by
  ``(user_name, status, gpu_num, npu_num)``;
- the *active* (non-terminal) versions, which change, held compactly (:mod:`.active`);
- an :class:`Inventory` of every version: sorted ids with aligned columns (create time, workspace,
  observe-once flags), about 18 bytes a version.

The inventory is what observe-once needs (was this version already seen finished? started?) and
what de-duplicates a listing that moves while it is read: a version seen twice in one listing
counts once (its first copy wins). Versions that left the listing drop out of the next inventory,
so deleted versions are forgotten.

Most pages of a big tenant hold only versions that were already finished at the previous poll, in
the inventory's order; such a page is folded in with a handful of C-level slice comparisons and a
``Counter`` update instead of a Python loop per version (the measured gain is in
``docs/performance.md``).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress, islice
from operator import itemgetter, lt

from modelarts_exporter.cloud.models import Version
from modelarts_exporter.cloud.statuses import Phase, status_of
from modelarts_exporter.listing.active import Active, GaugeKey, UserKey, gauge_key, user_key
from modelarts_exporter.listing.newids import NewIds

PUBLIC_POOL = "public"
"""``pool_id`` label of versions on the shared pool (the API omits their ``pool_id``)."""
UNKNOWN_FLAVOR = "unknown"

STARTED = 1
FINISHED = 2
DONE = STARTED | FINISHED
"""Observe-once flags of a version: seen started (or ended), seen in a terminal phase."""

_ID: Callable[[Version], int] = itemgetter("version_id")
_STATUS: Callable[[Version], int] = itemgetter("status")
TERMINAL_CODES = frozenset(code for code in range(256) if status_of(code).phase.terminal)

# Marks of the builder's ``seen`` column: unseen, seen by an earlier workspace, seen by this pass.
_UNSEEN, _EARLIER, _THIS_PASS = 0, 1, 2
_CLEAR_PASS = bytes(_UNSEEN if b == _THIS_PASS else b for b in range(256))
_KEEP_PASS = bytes(_EARLIER if b == _THIS_PASS else b for b in range(256))


@dataclass(slots=True)
class Inventory:
    """Every listed version, sorted by id, one array per column."""

    ids: array[int] = field(default_factory=lambda: array("q"))
    created: array[int] = field(default_factory=lambda: array("q"))
    """``create_time`` (ms; 0 when the API gave none)."""
    workspace: bytearray = field(default_factory=bytearray)
    """Index into the listed workspaces."""
    flags: bytearray = field(default_factory=bytearray)

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
        if keep is None or keep.count(_UNSEEN) == 0:
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

    def extend(self, other: Inventory) -> None:
        self.ids.extend(other.ids)
        self.created.extend(other.created)
        self.workspace.extend(other.workspace)
        self.flags.extend(other.flags)

    def _sort(self) -> None:
        """Sort by id (a no-op when already sorted, which ids growing with creation make the
        common case)."""
        ids = self.ids
        if all(map(lt, ids, islice(ids, 1, None))):
            return
        order = sorted(range(len(self.ids)), key=self.ids.__getitem__)
        self.ids = array("q", map(self.ids.__getitem__, order))
        self.created = array("q", map(self.created.__getitem__, order))
        self.workspace = bytearray(map(self.workspace.__getitem__, order))
        self.flags = bytearray(map(self.flags.__getitem__, order))


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
    if version["duration"]:
        return version["duration"]
    if (
        version["start_time"]
        and version["end_time"]
        and version["end_time"] >= version["start_time"]
    ):
        return version["end_time"] - version["start_time"]
    return 0


def transition(version: Version, old: int, found: Observations | None) -> int:
    """The observe-once flags of a version now, recording in ``found`` (unless ``None``: a
    baseline observes nothing) what it did since it had the flags ``old``."""
    phase = status_of(version["status"]).phase
    if phase.terminal:
        new = DONE
    elif version["start_time"]:
        new = STARTED
    else:
        return 0
    if found is None:
        return new
    pool = version["pool_id"] or PUBLIC_POOL
    if new & FINISHED and not old & FINISHED:
        flavor = version["flavor_code"] or UNKNOWN_FLAVOR
        ran = run_ms(version)
        found.finished.append(
            (
                pool,
                flavor,
                phase,
                ran,
                version["gpu_num"] or 0,
                version["npu_num"] or 0,
                version["user_name"],
            )
        )
    start, created = version["start_time"], version["create_time"]
    if not old & STARTED and start and created:
        found.queued.append((pool, max(0, start - created)))
    return new


class ListingBuilder:
    """Folds the pages of one full listing into a new :class:`Listed`, against the previous
    inventory. Workspaces are listed one after the other; each may need several passes (the
    listing moved while it was read), and :meth:`start_pass` forgets what the current pass added.
    """

    def __init__(self, previous: Inventory, *, observe: bool = True, users: bool = False) -> None:
        """``users``: keep the counts by user (:attr:`Listed.users`)."""
        self._old = previous
        self._seen = bytearray(len(previous))
        self._flags = bytearray(previous.flags)
        self._new = Inventory()
        """Versions the previous inventory did not have, in arrival order."""
        self._earlier_ids: list[NewIds] = []
        """The ids in ``_new``, by workspace (one's pages may interleave another's ids)."""
        self._result = Listed(users=Counter() if users else None)
        self._observe = observe
        self._found = Observations()
        self._workspace = 0
        self._start()

    def _start(self) -> None:
        self._pass_new = Inventory()
        self._pass_new_ids = NewIds()
        self._pass_terminal: Counter[GaugeKey] = Counter()
        self._pass_users: Counter[UserKey] | None = (
            None if self._result.users is None else Counter()
        )
        self._pass_active = Active(self._result.active.keys)
        self._pass_found = Observations()
        self._pass_count = 0

    # The sink interface v1.py fills (see source.ListingSink).

    def start_pass(self, workspace: int) -> None:
        """Begin (again) the listing of workspace number ``workspace``."""
        self._seen = self._seen.translate(_CLEAR_PASS)
        self._workspace = workspace
        self._start()

    @property
    def pass_count(self) -> int:
        """Distinct versions the current pass has added."""
        return self._pass_count

    def add_page(self, versions: Sequence[Version]) -> None:
        if not versions:
            return
        ids = array("q", map(_ID, versions))
        if not self._add_unchanged(versions, ids):
            self._add_each(versions, min(ids), max(ids))

    def finish_workspace(self, reported_total: int) -> None:
        self._seen = self._seen.translate(_KEEP_PASS)
        workspace = self._workspace
        if self._new.ids:
            self._new.extend(self._pass_new)
        else:  # taken over, not copied: at a first poll it is every version
            self._new = self._pass_new
        self._earlier_ids.append(self._pass_new_ids)
        self._result.terminal.update(self._pass_terminal)
        if self._result.users is not None and self._pass_users is not None:
            self._result.users.update(self._pass_users)
        self._result.active.extend(self._pass_active)
        self._result.reported[workspace] = reported_total
        self._found.extend(self._pass_found)
        self._start()

    def result(self) -> tuple[Listed, Observations]:
        self._earlier_ids = []  # freed before sorting the new versions
        self._result.inventory = self._old.with_changes(self._seen, self._flags, self._new)
        return self._result, self._found

    # Folding pages in.

    def _add_unchanged(self, versions: Sequence[Version], ids: array[int]) -> bool:
        """The fast path: a page of versions that were already finished at the last poll,
        contiguous in the inventory (in either order). ``False`` if the page is not like that."""
        if ids[0] > ids[-1]:
            ids.reverse()
        old = self._old
        start = bisect_left(old.ids, ids[0])
        stop = start + len(ids)
        if (
            old.ids[start:stop] != ids
            or self._flags[start:stop].count(DONE) != len(ids)
            or self._seen[start:stop].count(_UNSEEN) != len(ids)
            or not TERMINAL_CODES.issuperset(map(_STATUS, versions))
        ):
            return False
        self._seen[start:stop] = bytes([_THIS_PASS]) * len(ids)
        self._pass_terminal.update(map(gauge_key, versions))
        if self._pass_users is not None:
            self._pass_users.update(map(user_key, versions))
        self._pass_count += len(ids)
        return True

    def _add_each(self, versions: Iterable[Version], lo: int, hi: int) -> None:
        """Fold in a page whose ids are within ``[lo, hi]``."""
        old, seen, flags = self._old, self._seen, self._flags
        old_ids, size = old.ids, len(old.ids)
        pass_new = self._pass_new
        first_new = len(pass_new)
        # New ids already taken: of pages whose id range meets this page's (normally none),
        # then this page's own; ``big``: those of the sets that cannot tell by range.
        taken: set[int] = set()
        big: list[set[int]] = []
        for held in (self._pass_new_ids, *self._earlier_ids):
            if held.set is None:
                taken.update(held.within(lo, hi))
            else:
                big.append(held.set)
        found = self._pass_found if self._observe else None
        active, terminal, users = self._pass_active, self._pass_terminal, self._pass_users
        row = -2
        for version in versions:
            vid = version["version_id"]
            # Pages come in id order (or its reverse) nearly always: try the neighbours first.
            if 0 <= row + 1 < size and old_ids[row + 1] == vid:
                row += 1
            elif 0 <= row - 1 < size and old_ids[row - 1] == vid:
                row -= 1
            else:
                row = old.find(vid)
            if row >= 0:
                if seen[row]:
                    continue
                seen[row] = _THIS_PASS
                new = flags[row] = transition(version, old.flags[row], found)
            else:
                row = -2
                if vid in taken or (big and any(vid in ids for ids in big)):
                    continue
                new = transition(version, 0, found)
                taken.add(vid)
                pass_new.append(vid, version["create_time"] or 0, self._workspace, new)
            self._pass_count += 1
            if new & FINISHED:
                terminal[gauge_key(version)] += 1
                if users is not None:
                    users[user_key(version)] += 1
            else:
                active.append(version)
        self._pass_new_ids.add(pass_new.ids[first_new:])
