"""Paging through ``GET /v1/{project_id}/training-jobs/versions``.

What the API leaves open, and how this module copes:

- ``offset`` is undocumented: a *record* offset or a *page* index. ``pagination="auto"`` asks once
  with ``offset=1``: a record offset answers with the first page's second record, a page index with
  records the first page did not have. Anything else (a listing that moved between the two
  requests) leaves the question open and that poll falls back to one ``limit=0`` request.
- A listing can move while it is read (jobs created or deleted mid-poll). Records are merged by
  ``version_id`` (the most recently fetched copy wins), pages beyond the first answer's
  ``total_count`` are fetched while the API reports more, and a pass that still disagrees with the
  final ``total_count`` is repeated (at most ``MAX_PASSES`` times) — so nothing is double-counted
  and nothing silently dropped: a listing still short after that fails the poll.
- Pages after the first are fetched concurrently by a bounded pool of workers; a hostile
  ``total_count`` cannot make it schedule more than it reads, because workers stop at the first
  short page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import anyio

from modelarts_exporter.client import ApiClient
from modelarts_exporter.errors import PollError, Reason
from modelarts_exporter.models import Page, Version
from modelarts_exporter.source import Listing

log = logging.getLogger(__name__)

Pagination = Literal["auto", "offset", "page", "all"]
MAX_PASSES = 3


@dataclass(frozen=True, slots=True)
class ListingOptions:
    page_size: int = 100
    pagination: Pagination = "auto"
    max_concurrency: int = 8
    status: int | None = None
    pool_id: str | None = None
    workspace_ids: tuple[str, ...] = ()
    """Empty: the API's default workspace (``0``)."""
    sort_by: str = "create_time"
    order: Literal["asc", "desc"] = "asc"
    """Ascending creation order keeps already-read records in place when jobs are created."""


@dataclass(slots=True)
class _Pass:
    records: dict[int, Version]
    last_total: int
    pages: int
    moved: bool = False
    """Pages disagreed on ``total_count``: the listing changed while this pass read it. With
    pages in flight at once, the last page to *arrive* need not be the last one the API
    *answered*, so its count alone cannot tell that the pass is complete."""


class V1Source:
    """Lists every version of one project (all configured workspaces) through the v1 API."""

    def __init__(self, client: ApiClient, project_id: str, options: ListingOptions) -> None:
        self._client = client
        self._path = f"/v1/{project_id}/training-jobs/versions"
        self._options = options
        self._limit = asyncio.Semaphore(options.max_concurrency)
        self._detected: Literal["offset", "page"] | None = None

    @property
    def detected_pagination(self) -> Literal["offset", "page"] | None:
        """What ``auto`` found out, once it has."""
        return self._detected

    async def list_versions(self) -> Listing:
        workspaces: tuple[str | None, ...] = self._options.workspace_ids or (None,)
        merged: dict[int, Version] = {}
        reported = 0
        for workspace in workspaces:
            records, total = await self._list_workspace(workspace)
            merged.update(records)
            reported += total
        return Listing(versions=merged.values(), reported_total=reported)

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
        async with self._limit:
            return await self._client.get_page(self._path, params)

    async def _list_workspace(self, workspace: str | None) -> tuple[dict[int, Version], int]:
        mode = self._options.pagination
        if mode == "all":
            return await self._list_all(workspace)
        last: _Pass | None = None
        for _ in range(MAX_PASSES):
            if mode == "auto" and self._detected is None:
                outcome = await self._detect_and_list(workspace)
                if outcome is None:
                    return await self._list_all(workspace)
                last = outcome
            else:
                last = await self._one_pass(workspace)
            if not last.moved and len(last.records) == last.last_total:
                return last.records, last.last_total
            log.info(
                "listing moved while it was read workspace=%s records=%d total_count=%d",
                workspace or "0",
                len(last.records),
                last.last_total,
            )
        assert last is not None
        if len(last.records) < last.last_total:
            raise PollError(
                Reason.INVALID_RESPONSE,
                f"listing incomplete after {MAX_PASSES} passes: {len(last.records)} of "
                f"{last.last_total} versions (does PAGINATION match what offset means?)",
            )
        # More unique versions than the API counts: versions deleted while they were read.
        log.warning(
            "listing kept moving; using the last pass workspace=%s records=%d total_count=%d",
            workspace or "0",
            len(last.records),
            last.last_total,
        )
        return last.records, last.last_total

    async def _list_all(self, workspace: str | None) -> tuple[dict[int, Version], int]:
        page = await self._get(self._params(workspace, 0, 0))
        assert page.versions is not None and page.total_count is not None
        return {v.version_id: v for v in page.versions}, page.total_count

    def _offset(self, index: int, mode: Literal["offset", "page"]) -> int:
        return index * self._options.page_size if mode == "offset" else index

    async def _detect_and_list(self, workspace: str | None) -> _Pass | None:
        size = self._options.page_size
        first = await self._get(self._params(workspace, 0, size))
        assert first.versions is not None and first.total_count is not None
        if len(first.versions) < size or first.total_count <= size:
            # Everything fits on the first page: the question does not arise yet.
            return _Pass({v.version_id: v for v in first.versions}, first.total_count, 1)
        probe = await self._get(self._params(workspace, 1, size))
        assert probe.versions is not None
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
        return await self._one_pass(workspace, first=first, extra=[probe])

    async def _one_pass(
        self, workspace: str | None, first: Page | None = None, extra: list[Page] | None = None
    ) -> _Pass:
        mode = self._options.pagination
        if mode not in ("offset", "page"):
            mode = self._detected or "offset"
        size = self._options.page_size
        if first is None:
            first = await self._get(self._params(workspace, 0, size))
        assert first.versions is not None and first.total_count is not None
        records = {v.version_id: v for v in first.versions}
        state = _Pass(records, first.total_count, 1 + len(extra or []))
        for page in extra or []:
            assert page.versions is not None
            records.update((v.version_id, v) for v in page.versions)
            state.moved |= page.total_count != first.total_count
        if len(first.versions) < size:
            return state
        # Workers take page indexes while the newest total_count says there is more to read and
        # no short page has marked the end; the check and the increment happen with no await
        # between them, so no index is skipped or read twice.
        cursor = 1
        end: int | None = None

        async def fetch(index: int) -> None:
            nonlocal end
            page = await self._get(self._params(workspace, self._offset(index, mode), size))
            assert page.versions is not None and page.total_count is not None
            state.pages += 1
            state.moved |= page.total_count != state.last_total
            state.last_total = page.total_count
            state.records.update((v.version_id, v) for v in page.versions)
            if len(page.versions) < size and (end is None or index < end):
                end = index

        async def worker() -> None:
            nonlocal cursor
            while (end is None or cursor < end) and cursor * size < state.last_total:
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
        while end is None and len(state.records) < state.last_total:
            cursor += 1
            await fetch(cursor - 1)
        return state
