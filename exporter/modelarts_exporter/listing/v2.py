"""Paging through ``POST /v2/{project_id}/training-job-searches`` (notes §5).

What the API leaves open, and how this module copes:

- ``offset`` is a *page index* in today's documentation and Huawei's own tools, a *record
  offset* in older pages and some clients. ``pagination="auto"`` finds out once per target and
  remembers: after a full first page it asks ``offset=1``; an answer starting with the first
  page's second job means record offsets, one holding none of the first page's jobs means page
  indexes. An answer that fits neither (the listing moved between the two requests) fails the
  poll with that said, and the next poll asks again.
- ``limit`` is 1-50 (settings refuse more); an answer echoing a smaller ``limit`` than asked is
  read on with that size.
- ``count`` (jobs matching the query) plans how many pages the workers fetch at once. Paging
  never *stops* on it, since older pages read it as the items on the page: it stops on a page
  shorter than the page size. ``total`` counts every job of the user whatever the filters; it is
  not needed (no filters are sent).
- A hostile answer cannot make a poll read forever: a full page that brings no job not already
  read (an ``offset`` ignored) fails the poll, and so does a listing still going after
  ``max_pages`` pages.
- Incremental polls (:meth:`V2Source.page`) filter on ``phase`` with ``in`` and read the listing
  newest first. A filtered page holding a job of another phase (a filter not honoured) is
  refused, and so is a count that may be the items on the page: the unfiltered listing's
  ``count`` must be the number of jobs it holds, so single pages are addressable only after a
  full listing has shown ``count`` equal to the jobs it listed in every workspace.
- Jobs are de-duplicated by ``metadata.id`` (the sink counts each mapped id once), so a job
  created while the listing is read, which shifts later pages by one, is counted once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Literal
from urllib.parse import quote

import anyio

from modelarts_exporter.cloud.client import ApiClient
from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.cloud.models import Page
from modelarts_exporter.cloud.v2_models import Job, V2Page, parse_v2_error_body, parse_v2_page
from modelarts_exporter.cloud.v2_statuses import filter_phase
from modelarts_exporter.config.listing import MAX_LIMIT, V2Options
from modelarts_exporter.listing.source import ListingSink, UnreliablePageError
from modelarts_exporter.listing.v2_jobs import to_version

log = logging.getLogger(__name__)


def _phase(job: Job) -> str:
    status = job["status"]
    return (status["phase"] if status else None) or ""


def _ids(jobs: Sequence[Job]) -> list[str]:
    return [job["metadata"]["id"] for job in jobs]


class V2Source:
    """Lists every job of one project (all configured workspaces) through the v2 API.

    ``workspace_base`` numbers its workspaces for the sink after those of another source
    listing into the same sink (``API_VERSION=both``)."""

    def __init__(
        self,
        client: ApiClient,
        project_id: str | None,
        options: V2Options,
        resolve_project: Callable[[], Awaitable[str]] | None = None,
        workspace_base: int = 0,
    ) -> None:
        if project_id is None and resolve_project is None:
            raise ValueError("a project id or a way to resolve it is needed")
        self._client = client
        self._project_id = project_id
        self._resolve_project = resolve_project
        self._options = options
        self._base = workspace_base
        self._limit = asyncio.Semaphore(options.max_concurrency)
        self._detected: Literal["offset", "page"] | None = None
        self._page_size = min(options.page_size, MAX_LIMIT)
        self._counts: dict[str | None, bool] = {}
        """By workspace: whether the last full listing's ``count`` was the jobs it listed."""

    @property
    def page_size(self) -> int:
        """Jobs asked per page: the setting, or what the API has shown it serves."""
        return self._page_size

    @property
    def addressable(self) -> bool:
        return self.pagination is not None and all(
            self._counts.get(workspace, False) for workspace in self.workspaces
        )

    def status_groups(self, codes: Iterable[int]) -> list[frozenset[int]]:
        """The codes whose phase a filter can name, in groups of at most ten phases (the most
        values a filter takes, notes §1)."""
        by_phase: dict[str, set[int]] = {}
        for code in codes:
            phase = filter_phase(code)
            if phase is not None:
                by_phase.setdefault(phase, set()).add(code)
        phases = sorted(by_phase)
        return [
            frozenset(code for phase in phases[i : i + 10] for code in by_phase[phase])
            for i in range(0, len(phases), 10)
        ]

    async def page(
        self, workspace: str | None, index: int, *, statuses: frozenset[int] | None = None
    ) -> Page:
        """Page ``index`` of the listing newest first, optionally of the phases of
        ``statuses`` only: what incremental polls read. Needs :attr:`addressable`."""
        mode = self.pagination
        assert mode is not None
        size = self._page_size
        phases = None
        if statuses is not None:
            phases = sorted({phase for code in statuses if (phase := filter_phase(code))})
        offset = index * size if mode == "offset" else index
        answer = await self._search(workspace, offset, size, "desc", phases)
        items = answer.items
        assert items is not None
        count = answer.count
        if phases is not None:
            if any(_phase(job) not in phases for job in items):
                raise UnreliablePageError("the phase filter was not honoured")
        elif count is None or count < len(items) or (len(items) >= size and count <= size):
            raise UnreliablePageError(f"count {count} may not be the jobs listed")
        total = len(items) if count is None else int(count)
        return Page(total_count=total, versions=[to_version(job) for job in items])

    @property
    def project_id(self) -> str | None:
        return self._project_id

    @property
    def workspaces(self) -> tuple[str | None, ...]:
        return self._options.workspace_ids or (None,)

    @property
    def pagination(self) -> Literal["offset", "page"] | None:
        """What ``offset`` means, when known."""
        mode = self._options.pagination
        return self._detected if mode == "auto" else mode

    async def list_versions(self, sink: ListingSink) -> None:
        for index, workspace in enumerate(self.workspaces):
            sink.start_pass(self._base + index)
            reported = await self._list_workspace(workspace, sink)
            sink.finish_workspace(reported)

    def _body(
        self,
        workspace: str | None,
        offset: int,
        limit: int,
        order: str,
        phases: Sequence[str] | None,
    ) -> bytes:
        options = self._options
        body: dict[str, object] = {
            "offset": offset,
            "limit": limit,
            "sort_by": "create_time",
            "order": order,
        }
        if workspace is not None:
            body["workspace_id"] = workspace
        filters = []
        if options.pool_id:
            filters.append({"key": "pool_id", "operator": "in", "value": [options.pool_id]})
        if phases is not None:
            filters.append({"key": "phase", "operator": "in", "value": list(phases)})
        if filters:
            body["filters"] = filters
        return json.dumps(body, separators=(",", ":")).encode()

    async def _search(
        self,
        workspace: str | None,
        offset: int,
        limit: int,
        order: str | None = None,
        phases: Sequence[str] | None = None,
    ) -> V2Page:
        if self._project_id is None:
            assert self._resolve_project is not None
            self._project_id = await self._resolve_project()
        path = f"/v2/{quote(self._project_id, safe='')}/training-job-searches"
        async with self._limit:
            return await self._client.post(
                path,
                self._body(workspace, offset, limit, order or self._options.order, phases),
                parse_v2_page,
                parse_v2_error_body,
            )

    def _add(self, sink: ListingSink, page: V2Page) -> int:
        """Fold a page in; how many jobs it added that this pass had not seen."""
        assert page.items is not None
        before = sink.pass_count
        sink.add_page([to_version(job) for job in page.items])
        return sink.pass_count - before

    def _size(self, first: V2Page, asked: int) -> int:
        """The page size to read on with: the echoed ``limit`` when the API says it served
        fewer than asked. Learned on every full listing; said when it changes, not per poll."""
        echoed = first.limit
        size = asked
        if echoed is not None and 1 <= echoed < asked and echoed.is_integer():
            size = int(echoed)
        if size != self._page_size:
            if size < asked:
                log.warning("the API pages by %d where %d were asked", size, asked)
            else:
                log.info("the API pages by the %d asked again", asked)
        return size

    async def _list_workspace(self, workspace: str | None, sink: ListingSink) -> int:
        """Read one workspace into ``sink``; the number of jobs the API reports for it."""
        asked = min(self._options.page_size, MAX_LIMIT)
        first = await self._search(workspace, 0, asked)
        assert first.items is not None
        self._add(sink, first)
        size = self._page_size = self._size(first, asked)
        self._counts[workspace] = False
        cursor = 1
        if len(first.items) >= size:
            mode = self.pagination
            if mode is None:
                mode, probe = await self._detect(workspace, first, size)
                self._add(sink, probe)
                assert probe.items is not None
                if len(probe.items) < size:
                    return self._reported(workspace, first, sink)
                # Page 1 was the probe when offsets are page indexes; read on after it.
                cursor = 2 if mode == "page" else 1
            await self._rest(workspace, sink, mode, size, cursor, first.count)
        return self._reported(workspace, first, sink)

    def _reported(self, workspace: str | None, first: V2Page, sink: ListingSink) -> int:
        """``count`` when it reads as "jobs matching", else (an older page's reading: items on
        the page) the jobs listed. Notes whether ``count`` was the jobs listed and could not
        have been the items on the first page: what incremental polls rely on."""
        count = int(first.count) if first.count is not None else 0
        assert first.items is not None
        shown = len(first.items)
        self._counts[workspace] = count == sink.pass_count and (
            shown < self._page_size or count > shown
        )
        return count if count >= sink.pass_count else sink.pass_count

    async def _detect(
        self, workspace: str | None, first: V2Page, size: int
    ) -> tuple[Literal["offset", "page"], V2Page]:
        assert first.items is not None
        probe = await self._search(workspace, 1, size)
        assert probe.items is not None
        first_ids = _ids(first.items)
        probe_ids = _ids(probe.items)
        if size == 1 or not probe_ids or probe_ids[0] not in first_ids:
            detected: Literal["offset", "page"] = "page"
        elif len(first_ids) > 1 and probe_ids[0] == first_ids[1]:
            detected = "offset"
        else:
            raise PollError(
                Reason.INVALID_RESPONSE,
                "could not tell whether offset is a page index or a record offset (the "
                "listing moved between two requests?); the next poll asks again",
            )
        self._detected = detected
        log.info("v2 pagination detected mode=%s workspace=%s", detected, workspace or "0")
        return detected, probe

    async def _rest(
        self,
        workspace: str | None,
        sink: ListingSink,
        mode: Literal["offset", "page"],
        size: int,
        cursor: int,
        count: float | None,
    ) -> None:
        """Pages ``cursor`` on, until a short one: as many at once as ``count`` plans, then one
        by one while pages stay full."""
        max_pages = self._options.max_pages
        planned = min(math.ceil(count / size), max_pages) if count else 0
        end: int | None = None

        async def fetch(index: int) -> None:
            nonlocal end
            offset = index * size if mode == "offset" else index
            page = await self._search(workspace, offset, size)
            assert page.items is not None
            added = self._add(sink, page)
            if len(page.items) < size:
                if end is None or index < end:
                    end = index
            elif added == 0:
                raise PollError(
                    Reason.INVALID_RESPONSE,
                    f"page at offset {offset} held only jobs already read "
                    f"(is offset honoured? PAGINATION={mode})",
                )

        async def worker() -> None:
            nonlocal cursor
            while end is None and cursor < planned:
                index = cursor
                cursor += 1
                await fetch(index)

        # A task group, as in v1: one failed page cancels the others (see client.py on anyio).
        try:
            async with anyio.create_task_group() as workers:
                for _ in range(self._options.max_concurrency):
                    workers.start_soon(worker)
        except* PollError as failed:
            raise failed.exceptions[0] from None
        while end is None:
            if cursor >= max_pages:
                raise PollError(
                    Reason.INVALID_RESPONSE,
                    f"listing did not end within {max_pages} pages of {size} jobs",
                )
            cursor += 1
            await fetch(cursor - 1)
