"""Paging through ``GET /v1/{project_id}/training-jobs/versions``.

What the API leaves open, and how this module copes:

- ``offset`` is undocumented: a *record* offset or a *page* index. ``pagination="auto"`` asks once
  with ``offset=1``: a record offset answers with the first page's second record, a page index with
  records the first page did not have. Anything else (a listing that moved between the two
  requests) leaves the question open and that poll falls back to one ``limit=0`` request.
- A listing can move while it is read (jobs created or deleted mid-poll). Pages go to a
  :class:`~modelarts_exporter.listing.source.ListingSink` as they arrive, which counts each
  ``version_id`` once (the first copy wins); pages beyond the first answer's ``total_count`` are
  fetched while the API reports more, and a pass that still disagrees with the final
  ``total_count`` is repeated (at most ``MAX_PASSES`` times) — so nothing is double-counted and
  nothing silently dropped: a listing still short after that fails the poll.
- Pages after the first are fetched concurrently by a bounded pool of workers; a hostile
  ``total_count`` cannot make it schedule more than it reads, because workers stop at the first
  short page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Literal
from urllib.parse import quote

import anyio

from modelarts_exporter.cloud.client import ApiClient
from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.cloud.models import Page
from modelarts_exporter.config.listing import ListingOptions
from modelarts_exporter.listing.source import ListingSink

log = logging.getLogger(__name__)


MAX_PASSES = 3


class V1Source:
    """Lists every version of one project (all configured workspaces) through the v1 API."""

    def __init__(
        self,
        client: ApiClient,
        project_id: str | None,
        options: ListingOptions,
        resolve_project: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        """``project_id`` may be unknown (a target given by project name): then
        ``resolve_project`` tells it, before the first request."""
        if project_id is None and resolve_project is None:
            raise ValueError("a project id or a way to resolve it is needed")
        self._client = client
        self._project_id = project_id
        self._resolve_project = resolve_project
        self._options = options
        self._limit = asyncio.Semaphore(options.max_concurrency)
        self._detected: Literal["offset", "page"] | None = None
        self._page_size = options.page_size

    @property
    def page_size(self) -> int:
        """The ``limit`` asked per page: ``page_size``, or less once the API has shown that it
        serves fewer records per page (its cap is not documented)."""
        return self._page_size

    @property
    def project_id(self) -> str | None:
        """The project listed; ``None`` until a project given by name has been resolved."""
        return self._project_id

    @property
    def workspaces(self) -> tuple[str | None, ...]:
        """The workspaces listed (``None``: the API's default)."""
        return self._options.workspace_ids or (None,)

    @property
    def detected_pagination(self) -> Literal["offset", "page"] | None:
        """What ``auto`` found out, once it has."""
        return self._detected

    @property
    def pagination(self) -> Literal["offset", "page"] | None:
        """What ``offset`` means, when known (``None``: not yet, or ``all``)."""
        mode = self._options.pagination
        if mode in ("offset", "page"):
            return mode
        return self._detected

    async def list_versions(self, sink: ListingSink) -> None:
        for index, workspace in enumerate(self.workspaces):
            await self._list_workspace(index, workspace, sink)

    @property
    def addressable(self) -> bool:
        return self.pagination is not None

    def status_groups(self, codes: Iterable[int]) -> list[frozenset[int]]:
        """One listing per status code: the v1 filter takes one."""
        return [frozenset((code,)) for code in sorted(set(codes))]

    async def page(
        self, workspace: str | None, index: int, *, statuses: frozenset[int] | None = None
    ) -> Page:
        """Page ``index`` of the listing newest first (``create_time`` descending), optionally of
        one status only: what incremental polls read. Needs :attr:`pagination`."""
        mode = self.pagination
        assert mode is not None
        size = self._page_size
        params = self._params(workspace, self._offset(index, mode), size)
        params["sort_by"], params["order"] = "create_time", "desc"
        if statuses is None:
            params.pop("status", None)
        else:
            (status,) = statuses
            params["status"] = str(status)
        return await self._get(params)

    def _params(self, workspace: str | None, offset: int, limit: int) -> dict[str, str]:
        options = self._options
        params = {
            "offset": str(offset),
            "limit": str(limit),
            "sort_by": options.sort_by,
            "order": options.order,
        }
        if options.status is not None:
            params["status"] = str(options.status)
        if options.pool_id:
            params["pool_id"] = options.pool_id
        if workspace is not None:
            params["workspace_id"] = workspace
        return params

    async def _get(self, params: Mapping[str, str]) -> Page:
        if self._project_id is None:
            assert self._resolve_project is not None
            self._project_id = await self._resolve_project()
        path = f"/v1/{quote(self._project_id, safe='')}/training-jobs/versions"
        async with self._limit:
            return await self._client.get_page(path, params)

    async def _list_workspace(self, index: int, workspace: str | None, sink: ListingSink) -> None:
        mode = self._options.pagination
        if mode == "all":
            sink.start_pass(index)
            sink.finish_workspace(await self._list_all(workspace, sink))
            return
        total = 0
        for _ in range(MAX_PASSES):
            sink.start_pass(index)
            if mode == "auto" and self._detected is None:
                detected = await self._detect_and_list(workspace, sink)
                if detected is None:
                    sink.start_pass(index)
                    sink.finish_workspace(await self._list_all(workspace, sink))
                    return
                total, moved = detected
            else:
                total, moved = await self._one_pass(workspace, sink)
            if not moved and sink.pass_count == total:
                sink.finish_workspace(total)
                return
            log.info(
                "listing moved while it was read workspace=%s records=%d total_count=%d",
                workspace or "0",
                sink.pass_count,
                total,
            )
        if sink.pass_count < total:
            raise PollError(
                Reason.INVALID_RESPONSE,
                f"listing incomplete after {MAX_PASSES} passes: {sink.pass_count} of "
                f"{total} versions (does PAGINATION match what offset means?)",
            )
        # More unique versions than the API counts: versions deleted while they were read.
        log.warning(
            "listing kept moving; using the last pass workspace=%s records=%d total_count=%d",
            workspace or "0",
            sink.pass_count,
            total,
        )
        sink.finish_workspace(total)

    async def _list_all(self, workspace: str | None, sink: ListingSink) -> int:
        page = await self._get(self._params(workspace, 0, 0))
        sink.add_page(page.versions)
        return page.total_count

    def _offset(self, index: int, mode: Literal["offset", "page"]) -> int:
        return index * self._page_size if mode == "offset" else index

    def _adopt_cap(self, first: Page, workspace: str | None) -> int:
        """The page size to read on with, given the first page of a pass (always asked with
        ``page_size``). A first page shorter than asked while ``total_count`` says there is more
        means that the API caps its pages: reading on with the asked size would leave a gap
        after every page. Learned afresh on every pass, so that one short page (a hiccup, not a
        cap) costs that pass only, and pages full again bring the asked size back."""
        asked, served = self._options.page_size, len(first.versions)
        learned = served if 0 < served < asked and first.total_count > served else asked
        if learned != self._page_size:
            if learned < asked:
                log.warning(
                    "the API served %d versions per page where %d were asked; paging by %d "
                    "(set PAGE_SIZE=%d to silence this) workspace=%s",
                    served,
                    asked,
                    served,
                    served,
                    workspace or "0",
                )
            else:
                log.info("the API serves full pages again; paging by %d", asked)
            self._page_size = learned
        return learned

    async def _detect_and_list(
        self, workspace: str | None, sink: ListingSink
    ) -> tuple[int, bool] | None:
        """Find out what ``offset`` means while reading the first pass; as :meth:`_one_pass`, or
        ``None`` when the question stays open."""
        first = await self._get(self._params(workspace, 0, self._options.page_size))
        size = self._adopt_cap(first, workspace)
        if len(first.versions) < size or first.total_count <= size:
            # Everything fits on the first page: the question does not arise yet.
            sink.add_page(first.versions)
            return first.total_count, False
        probe = await self._get(self._params(workspace, 1, size))
        first_ids = {v.version_id for v in first.versions}
        if probe.versions and probe.versions[0].version_id == first.versions[1].version_id:
            self._detected = "offset"
        elif probe.versions and probe.versions[0].version_id not in first_ids:
            self._detected = "page"
        else:
            log.warning(
                "could not tell what offset means (listing moved?); "
                "this poll uses one limit=0 request workspace=%s",
                workspace or "0",
            )
            return None
        log.info("pagination detected mode=%s workspace=%s", self._detected, workspace or "0")
        return await self._one_pass(workspace, sink, first=first, extra=[probe])

    async def _one_pass(
        self,
        workspace: str | None,
        sink: ListingSink,
        first: Page | None = None,
        extra: list[Page] | None = None,
    ) -> tuple[int, bool]:
        """Read the listing once into ``sink``: the newest ``total_count`` seen, and whether pages
        disagreed on it (the listing changed while this pass read it — with pages in flight at
        once, the last page to *arrive* need not be the last the API *answered*, so its count
        alone cannot tell that the pass is complete)."""
        mode = self.pagination or "offset"
        if first is None:
            first = await self._get(self._params(workspace, 0, self._options.page_size))
        size = self._adopt_cap(first, workspace)
        sink.add_page(first.versions)
        last_total = first.total_count
        moved = False
        for page in extra or []:
            sink.add_page(page.versions)
            moved |= page.total_count != first.total_count
        if len(first.versions) < size:
            return last_total, moved
        # Workers take page indexes while the newest total_count says there is more to read and
        # no short page has marked the end; the check and the increment happen with no await
        # between them, so no index is skipped or read twice.
        cursor = 1
        end: int | None = None

        async def fetch(index: int) -> None:
            nonlocal end, last_total, moved
            page = await self._get(self._params(workspace, self._offset(index, mode), size))
            moved |= page.total_count != last_total
            last_total = page.total_count
            sink.add_page(page.versions)
            if len(page.versions) < size and (end is None or index < end):
                end = index

        async def worker() -> None:
            nonlocal cursor
            while (end is None or cursor < end) and cursor * size < last_total:
                index = cursor
                cursor += 1
                await fetch(index)

        # A task group, not gather(): when one page fails, the other workers are cancelled and
        # awaited, so a failed poll leaves no request running behind it. anyio's, not asyncio's:
        # httpcore shields handing a connection back to its pool from anyio's cancellation only.
        try:
            async with anyio.create_task_group() as workers:
                for _ in range(self._options.max_concurrency):
                    workers.start_soon(worker)
        except* PollError as failed:
            raise failed.exceptions[0] from None
        # Jobs created in front of the read position push records past the last planned page.
        while end is None and sink.pass_count < last_total:
            cursor += 1
            await fetch(cursor - 1)
        return last_total, moved
