"""Paging through the v1 listing against a scripted client: concurrent pages that disagree on the
total send the pass round again. (integration/test_v1.py: paging the simulator over real HTTP.)"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from modelarts_exporter.cloud.models import Page, Version
from modelarts_exporter.listing.v1 import ListingOptions, V1Source
from support.simulation import make_version

pytestmark = pytest.mark.anyio


class _ScriptedClient:
    """A listing that gains a version while page 1 of the first pass is being answered. Page 2
    of that pass was answered just before, without the new version, but arrives after page 1
    (its connection was slower): the order concurrent pages can really take."""

    def __init__(self) -> None:
        self.ids = list(range(120))
        self.page_one_done = asyncio.Event()
        self.requests = 0

    def _answer(self, offset: int, limit: int) -> Page:
        versions = [make_version(i, 10) for i in self.ids[offset : offset + limit]]
        return Page(total_count=len(self.ids), versions=versions)

    async def get_page(self, path: str, params: Mapping[str, str]) -> Page:
        self.requests += 1
        offset, limit = int(params["offset"]), int(params["limit"])
        first_pass = self.requests <= 3
        if first_pass and offset == 50:
            await asyncio.sleep(0)  # page 2 is answered meanwhile
            self.ids.append(120)
            page = self._answer(offset, limit)
            self.page_one_done.set()
            return page
        page = self._answer(offset, limit)
        if first_pass and offset == 100:
            await self.page_one_done.wait()
        return page


class _RecordingSink:
    """The listing as the source hands it over: the versions of the final pass, the totals."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.reported: list[int] = []

    def start_pass(self, workspace: int) -> None:
        self.ids = set()

    def add_page(self, versions: Sequence[Version]) -> None:
        self.ids.update(v.version_id for v in versions)

    @property
    def pass_count(self) -> int:
        return len(self.ids)

    def finish_workspace(self, reported_total: int) -> None:
        self.reported.append(reported_total)


async def test_a_pass_whose_pages_disagree_on_the_total_is_read_again() -> None:
    client = _ScriptedClient()
    options = ListingOptions(page_size=50, pagination="offset", max_concurrency=2)
    source = V1Source(client, "p", options)  # type: ignore[arg-type]
    sink = _RecordingSink()
    await source.list_versions(sink)
    assert sorted(sink.ids) == list(range(121))
    assert sink.reported == [121]
    assert client.requests == 6  # the first pass could not be trusted, the second could
