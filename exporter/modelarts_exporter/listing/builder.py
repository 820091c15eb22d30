"""The streaming builder of a complete listing (:class:`~.inventory.Listed`): pages are folded
in as they arrive, against the previous inventory, so that a poll never holds every record.

Most pages of a big tenant hold only versions that were already finished at the previous poll, in
the inventory's order; such a page is folded in with a handful of C-level slice comparisons and a
``Counter`` update instead of a Python loop per version (the measured gain is in
``docs/performance.md``).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from itertools import compress, islice
from operator import attrgetter, lt, not_

from modelarts_exporter.cloud.models import Version
from modelarts_exporter.cloud.statuses import is_terminal
from modelarts_exporter.listing.active import Active, GaugeKey, UserKey, gauge_key, user_key
from modelarts_exporter.listing.inventory import (
    DONE,
    FINISHED,
    STARTED,
    Inventory,
    Listed,
    Observations,
    transition,
)
from modelarts_exporter.listing.newids import NewIds

_ID: Callable[[Version], int] = attrgetter("version_id")
_STATUS: Callable[[Version], int] = attrgetter("status")
_CREATED: Callable[[Version], int | None] = attrgetter("create_time")

# Marks of the builder's ``seen`` column: unseen, seen by an earlier workspace, seen by this pass.
_UNSEEN, _EARLIER, _THIS_PASS = 0, 1, 2
_CLEAR_PASS = bytes(_UNSEEN if b == _THIS_PASS else b for b in range(256))
_KEEP_PASS = bytes(_EARLIER if b == _THIS_PASS else b for b in range(256))


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
        served_descending = ids[0] > ids[-1]
        if served_descending:  # ascending when the page is monotone; ``versions`` stay as served
            ids.reverse()
        if not self._add_unchanged(versions, ids) and not self._add_new(
            versions[::-1] if served_descending else versions, ids
        ):
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
        contiguous in the inventory (in either order; ``ids`` ascending if so). ``False`` if the
        page is not like that."""
        old = self._old
        start = bisect_left(old.ids, ids[0])
        stop = start + len(ids)
        if (
            old.ids[start:stop] != ids
            or self._flags[start:stop].count(DONE) != len(ids)
            or self._seen[start:stop].count(_UNSEEN) != len(ids)
            or not all(map(is_terminal, map(_STATUS, versions)))
        ):
            return False
        self._seen[start:stop] = bytes([_THIS_PASS]) * len(ids)
        self._pass_terminal.update(map(gauge_key, versions))
        if self._pass_users is not None:
            self._pass_users.update(map(user_key, versions))
        self._pass_count += len(ids)
        return True

    def _add_new(self, versions: Sequence[Version], ids: array[int]) -> bool:
        """The first poll's fast path: a page of versions the previous inventory does not hold,
        in strictly monotone id order, that no earlier page's ids could repeat, folded in without
        observing (a baseline). ``False`` if the page is not like that. ``versions`` are in the
        order of ``ids``."""
        if self._observe:  # observations need each version's own transition
            return False
        lo, hi = ids[0], ids[-1]
        old_ids = self._old.ids
        if (
            bisect_left(old_ids, lo) != bisect_right(old_ids, hi)
            or not all(map(lt, ids, islice(ids, 1, None)))
            or any(
                held.set is not None or next(held.within(lo, hi), None) is not None
                for held in (self._pass_new_ids, *self._earlier_ids)
            )
        ):
            return False
        size = len(ids)
        terminal = list(map(is_terminal, map(_STATUS, versions)))
        flags = bytearray([DONE]) * size
        active = self._pass_active
        for row in compress(range(size), map(not_, terminal)):
            version = versions[row]
            flags[row] = STARTED if version.start_time else 0
            active.append(version)
        done = list(compress(versions, terminal))
        self._pass_terminal.update(map(gauge_key, done))
        if self._pass_users is not None:
            self._pass_users.update(map(user_key, done))
        new = self._pass_new
        new.mark_page()
        new.ids.extend(ids)
        new.created.extend([created or 0 for created in map(_CREATED, versions)])
        new.workspace.extend(bytes([self._workspace]) * size)
        new.flags.extend(flags)
        self._pass_new_ids.add(ids)
        self._pass_count += size
        return True

    def _add_each(self, versions: Iterable[Version], lo: int, hi: int) -> None:
        """Fold in a page whose ids are within ``[lo, hi]``."""
        old, seen, flags = self._old, self._seen, self._flags
        old_ids, size = old.ids, len(old.ids)
        pass_new = self._pass_new
        first_new = len(pass_new)
        pass_new.mark_page()
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
            vid = version.version_id
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
                pass_new.append(vid, version.create_time or 0, self._workspace, new)
            self._pass_count += 1
            if new & FINISHED:
                terminal[gauge_key(version)] += 1
                if users is not None:
                    users[user_key(version)] += 1
            else:
                active.append(version)
        self._pass_new_ids.add(pass_new.ids[first_new:])
