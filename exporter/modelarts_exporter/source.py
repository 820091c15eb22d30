"""The seam between an API version and the rest of the exporter.

A source turns one API's listing into unique :class:`~modelarts_exporter.models.Version` records
plus the total the API reported; aggregation and exposition never see requests or pages. The v1
listing is :mod:`modelarts_exporter.v1`; the v2 ``training-job-searches`` API slots in beside it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from modelarts_exporter.models import Version


@dataclass(frozen=True, slots=True)
class Listing:
    versions: Collection[Version]
    """Every version once (de-duplicated by ``version_id``)."""
    reported_total: int
    """What the API said it holds (``total_count``, summed over workspaces)."""
    project_id: str
    """The project listed (known only after the first poll for targets given by name)."""


class JobSource(Protocol):
    async def list_versions(self) -> Listing: ...
