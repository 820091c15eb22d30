"""Incremental polls: read only what can have changed since the last complete listing.

Between two polls a tenant changes in three ways: versions are created, active versions change
status, and (rarely) versions are deleted. An incremental poll starts from the
:class:`~modelarts_exporter.listing.inventory.Listed` of the last poll and, per workspace:

1. lists the statuses that held active versions had, with the API's status filter (one listing
   per group the source says its filter takes) — the fresh records of versions still active, and
   any new version already in one of those statuses. A filtered listing is read until a page
   shorter than the page size, its count only planning how many pages are fetched at once;
2. reads the unfiltered listing newest first (``create_time`` descending) from its top: its
   ``total_count`` minus the versions held is the number of new versions, which must be exactly
   the versions above the first held one (a deletion, or a version created below known ones,
   makes the counts disagree);
3. for each held active version missing from step 1 — it ended, or moved to another status —
   computes where it must be in that newest-first listing (new versions, plus held versions
   created later; ties of ``create_time`` widen the range) and reads just those pages.

Every held active version must be found again, every version not held must be one of the new
ones, and every response must agree on ``total_count``; otherwise the poll gives up (``None``)
and the caller does a full listing instead, as it does every ``FULL_LISTING_EVERY`` polls anyway.
When all checks pass, the result is the listing a full read would have returned, provided that
terminal statuses are final and ``create_time`` never changes (the API documents no transition
out of a terminal status). Observations then follow from the same flags as in a full listing.
"""

from __future__ import annotations

import logging
from array import array
from bisect import bisect_left, bisect_right, insort
from collections import Counter
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from itertools import compress
from typing import TypeVar

import anyio

from modelarts_exporter.cloud.models import Page, Version
from modelarts_exporter.cloud.statuses import status_of
from modelarts_exporter.listing.active import gauge_key, user_key
from modelarts_exporter.listing.inventory import (
    FINISHED,
    Inventory,
    Listed,
    Observations,
    transition,
)
from modelarts_exporter.listing.source import PagedSource, UnreliablePageError

log = logging.getLogger(__name__)

MAX_SHARE = 0.5
"""An incremental poll that would read more than this share of a full listing's pages gives up."""


class GiveUpError(Exception):
    """The incremental poll cannot vouch for its result; the reason is the message."""


@dataclass(slots=True)
class _Workspace:
    index: int
    name: str | None
    held: int
    created: array[int]
    """Create times of the held versions, ascending."""
    total: int = -1
    new: int = 0
    new_ids: set[int] = field(default_factory=set)
    fetched: dict[int, Page] = field(default_factory=dict)
    """Pages of the newest-first listing read so far, by index."""


class IncrementalLister:
    """Incremental polls of one target; keeps the sorted create times between polls."""

    def __init__(self, source: PagedSource) -> None:
        self._source = source
        self._sorted_for: Inventory | None = None
        self._sorted: dict[int, array[int]] = {}

    @property
    def possible(self) -> bool:
        """Whether pages can be addressed yet (``auto`` pagination needs one full listing)."""
        return self._source.addressable

    async def poll(self, listed: Listed) -> tuple[Listed, Observations] | None:
        """The new listing and what it observed, or ``None`` when a full listing is needed."""
        try:
            return await self._poll(listed)
        except (GiveUpError, UnreliablePageError) as reason:
            log.info("incremental poll gave up, listing in full: %s", reason)
            return None

    async def _poll(self, listed: Listed) -> tuple[Listed, Observations]:
        inventory = listed.inventory
        workspaces = [
            _Workspace(i, name, inventory.workspace.count(i), self._created(inventory, i))
            for i, name in enumerate(self._source.workspaces)
        ]
        fresh: dict[int, tuple[int, Version]] = {}
        held: Counter[tuple[int, int]] = Counter()
        for vid, status in zip(listed.active.ids, listed.active.statuses(), strict=True):
            held[(inventory.workspace[inventory.find(vid)], status)] += 1
        reads = [
            (ws, group, sum(held[(ws.index, code)] for code in group))
            for ws in workspaces
            for group in self._source.status_groups(c for w, c in held if w == ws.index)
        ]
        await _all(*(self._read_status(ws, group, count, fresh) for ws, group, count in reads))
        await _all(*(self._read_top(ws, inventory, fresh) for ws in workspaces))
        vanished = [
            (vid, created)
            for vid, created in zip(listed.active.ids, listed.active.created, strict=True)
            if vid not in fresh
        ]
        await self._find_vanished(vanished, listed, workspaces, fresh)
        return self._apply(listed, workspaces, fresh)

    def _created(self, inventory: Inventory, workspace: int) -> array[int]:
        if self._sorted_for is not inventory:
            self._sorted = {}
            self._sorted_for = inventory
        if workspace not in self._sorted:
            column = inventory.workspace
            times: Iterable[int] = inventory.created
            if column.count(workspace) != len(column):
                times = compress(inventory.created, (w == workspace for w in column))
            self._sorted[workspace] = array("q", sorted(times))
        return self._sorted[workspace]

    async def _read_status(
        self,
        ws: _Workspace,
        group: frozenset[int],
        held: int,
        fresh: dict[int, tuple[int, Version]],
    ) -> None:
        """Every page of the listing filtered by ``group``; ``held`` versions are known to have
        been in it. The count plans at most the pages those fill, plus one, at once."""
        size = self._source.page_size
        first = await self._source.page(ws.name, 0, statuses=group)
        planned = min(-(-first.total_count // size), held // size + 2)
        pages = [first]
        pages += await _all(
            *(self._source.page(ws.name, index, statuses=group) for index in range(1, planned))
        )
        while len(pages[-1].versions) >= size:
            if len(pages) > ws.held // size + planned:  # longer than a full listing: ignored?
                raise GiveUpError("a filtered listing did not end")
            pages.append(await self._source.page(ws.name, len(pages), statuses=group))
        for page in pages:
            _collect(page, ws.index, fresh)

    async def _read_top(
        self, ws: _Workspace, inventory: Inventory, fresh: dict[int, tuple[int, Version]]
    ) -> None:
        size = self._source.page_size
        first = await self._get(ws, 0)
        ws.total = first.total_count
        ws.new = ws.total - ws.held
        if ws.new < 0:
            raise GiveUpError(f"{-ws.new} versions deleted")
        last = ws.new // size  # the page holding rank ``new``: the first held version
        await _all(*(self._get(ws, index) for index in range(1, last + 1)))
        ranked = [v for index in range(last + 1) for v in ws.fetched[index].versions]
        top = ranked[: ws.new + 1]
        unknown = [rank for rank, v in enumerate(top) if inventory.find(v.version_id) < 0]
        if unknown != list(range(ws.new)):
            raise GiveUpError("new versions are not exactly the newest ones")
        ws.new_ids = {v.version_id for v in top[: ws.new]}
        for page in ws.fetched.values():
            _collect(page, ws.index, fresh)

    async def _get(self, ws: _Workspace, index: int) -> Page:
        page = await self._source.page(ws.name, index)
        if ws.total >= 0 and page.total_count != ws.total:
            raise GiveUpError("the listing moved while it was read")
        ws.fetched[index] = page
        return page

    async def _find_vanished(
        self,
        vanished: Iterable[tuple[int, int]],
        listed: Listed,
        workspaces: list[_Workspace],
        fresh: dict[int, tuple[int, Version]],
    ) -> None:
        size = self._source.page_size
        inventory = listed.inventory
        wanted: set[tuple[int, int]] = set()
        missing = []
        for vid, created in vanished:
            ws = workspaces[inventory.workspace[inventory.find(vid)]]
            later = len(ws.created) - bisect_right(ws.created, created)
            ties = bisect_right(ws.created, created) - bisect_left(ws.created, created)
            first, last = ws.new + later, ws.new + later + max(ties, 1) - 1
            wanted.update(
                (ws.index, index)
                for index in range(first // size, last // size + 1)
                if index not in ws.fetched
            )
            missing.append(vid)
        reads = len(wanted) + sum(len(ws.fetched) for ws in workspaces)
        full = sum(-(-ws.total // size) for ws in workspaces)
        if reads > MAX_SHARE * full:
            raise GiveUpError(f"{reads} pages needed, a full listing takes {full}")
        pages = await _all(*(self._get(workspaces[w], i) for w, i in sorted(wanted)))
        for (w, _), page in zip(sorted(wanted), pages, strict=True):
            _collect(page, w, fresh)
        if any(vid not in fresh for vid in missing):
            raise GiveUpError("an active version was not where it should be")

    def _apply(
        self, listed: Listed, workspaces: list[_Workspace], fresh: dict[int, tuple[int, Version]]
    ) -> tuple[Listed, Observations]:
        inventory = listed.inventory
        flags = bytearray(inventory.flags)
        terminal = Counter(listed.terminal)
        users = None if listed.users is None else Counter(listed.users)
        # Held versions found again are dropped here and appended again below if still active
        # (which leaves every other one in its place).
        active = listed.active.without(fresh)
        new = Inventory()
        found = Observations()
        for vid, (w, version) in fresh.items():
            row = inventory.find(vid)
            if row < 0:
                if vid not in workspaces[w].new_ids:
                    raise GiveUpError(f"version {vid} is neither held nor new")
                state = transition(version, 0, found)
                new.append(vid, version.create_time or 0, w, state)
            elif flags[row] & FINISHED:
                if not status_of(version.status).phase.terminal:  # v2 codes are >= 256
                    raise GiveUpError(f"version {vid} left a terminal status")
                continue  # terminal statuses are final: nothing to update
            else:
                state = flags[row] = transition(version, flags[row], found)
            if state & FINISHED:
                terminal[gauge_key(version)] += 1
                if users is not None:
                    users[user_key(version)] += 1
            else:
                active.append(version)
        result = Listed(
            inventory=inventory.with_changes(None, flags, new),
            terminal=terminal,
            active=active,
            reported={ws.index: ws.total for ws in workspaces},
            users=users,
        )
        self._sorted_for = result.inventory
        for ws in workspaces:
            created = self._sorted[ws.index] = array("q", ws.created)
            for create, w in zip(new.created, new.workspace, strict=True):
                if w == ws.index:
                    insort(created, create)
        return result, found


def _collect(page: Page, workspace: int, fresh: dict[int, tuple[int, Version]]) -> None:
    for version in page.versions:
        fresh.setdefault(version.version_id, (workspace, version))


T = TypeVar("T")


async def _all(*awaitables: Awaitable[T]) -> list[T]:
    """Await concurrently, results in order. An anyio task group rather than ``gather``: when one
    read fails the others are cancelled and awaited, and a deadline cancels them the way httpcore
    expects (see client.py), so no pooled connection is lost."""
    results: list[T | None] = [None] * len(awaitables)

    async def run(index: int, awaitable: Awaitable[T]) -> None:
        results[index] = await awaitable

    try:
        async with anyio.create_task_group() as group:
            for index, awaitable in enumerate(awaitables):
                group.start_soon(run, index, awaitable)
    except ExceptionGroup as failed:
        # Callers handle one cause: the poll's error or a reason to list in full.
        first = failed.exceptions[0]
        while isinstance(first, ExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return results  # type: ignore[return-value]
