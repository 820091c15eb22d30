"""``API_VERSION=both``: one project's v1 versions and v2 jobs, listed into one sink.

The two never meet in a label set: v2 jobs have negative ids and statuses of their own (codes
256 and up, names as v2 spells them), and the v2 source numbers its workspaces after v1's.
"""

from __future__ import annotations

from modelarts_exporter.listing.source import ListingSink
from modelarts_exporter.listing.v1 import V1Source
from modelarts_exporter.listing.v2 import V2Source


class BothSources:
    def __init__(self, v1: V1Source, v2: V2Source) -> None:
        self._v1 = v1
        self._v2 = v2

    @property
    def project_id(self) -> str | None:
        return self._v1.project_id or self._v2.project_id

    async def list_versions(self, sink: ListingSink) -> None:
        await self._v1.list_versions(sink)
        await self._v2.list_versions(sink)
