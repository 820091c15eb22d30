"""The ids of the versions one pass of a listing found new (not in the previous inventory),
held compactly for de-duplication.

A listing that moves while it is read can serve a version twice, and the first copy counts.
Versions the previous inventory holds are marked in the builder's ``seen`` column; the new ones
(every version, at the first poll) need a set of their own, and a ``set`` of a million ints is
about 64 MB: more than the rest of the listing (docs/performance.md). Pages come in
``create_time`` order and ids nearly always grow with creation, so the new ids of one page fill a
range of ids that no other page's do. :class:`NewIds` therefore keeps each page's new ids in an
array (8 bytes an id) under its range, and a page is checked only against the pages whose ranges
overlap its own: normally none. When two pages' ranges do overlap (ids that do not follow
creation, a listing that moved), it turns into a plain ``set``, as exact and as big as before.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterator
from itertools import chain


class NewIds:
    """Ids added page by page; :meth:`within` tells which may collide with a new page."""

    __slots__ = ("_his", "_ids", "_los", "set")

    def __init__(self) -> None:
        # Disjoint ranges sorted by their low end (so their high ends are sorted too).
        self._los: list[int] = []
        self._his: list[int] = []
        self._ids: list[array[int]] = []
        self.set: set[int] | None = None
        """Every id, once ranges overlapped (then the ranges are dropped); else ``None``."""

    def within(self, lo: int, hi: int) -> Iterator[int]:
        """The ids held in pages whose range meets ``[lo, hi]`` (a superset of those in it).
        Only while :attr:`set` is ``None``."""
        found = []
        index = bisect_right(self._los, hi) - 1
        while index >= 0 and self._his[index] >= lo:
            found.append(self._ids[index])
            index -= 1
        return chain.from_iterable(found)

    def add(self, ids: array[int]) -> None:
        """The new ids of one page, none of them held yet."""
        if not ids:
            return
        if self.set is not None:
            self.set.update(ids)
            return
        lo, hi = min(ids), max(ids)
        index = bisect_right(self._los, hi)
        if index and self._his[index - 1] >= lo:
            self.set = set(chain.from_iterable(self._ids))
            self.set.update(ids)
            self._los, self._his, self._ids = [], [], []
            return
        self._los.insert(index, lo)
        self._his.insert(index, hi)
        self._ids.insert(index, ids)
