"""The seam between an API version and the rest of the exporter.

A source reads one API's listing page by page into a :class:`ListingSink`; aggregation and
exposition never see requests or raw records, and no more than the pages in flight is ever held.
The v1 listing is :mod:`.v1`; the v2 ``training-job-searches`` API slots in
beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from modelarts_exporter.cloud.models import Version


class ListingSink(Protocol):
    """Where a full listing goes, workspace by workspace, each in one or more passes."""

    def start_pass(self, workspace: int) -> None:
        """Begin (again) workspace number ``workspace``: forget what its current pass added."""

    def add_page(self, versions: Sequence[Version]) -> None:
        """Fold in one page; a version already added by this listing is ignored."""

    @property
    def pass_count(self) -> int:
        """Distinct versions the current pass has added."""

    def finish_workspace(self, reported_total: int) -> None:
        """The current pass is the workspace's listing; ``reported_total`` its ``total_count``."""


class JobSource(Protocol):
    @property
    def project_id(self) -> str | None:
        """The project listed; ``None`` until a project given by name has been resolved."""

    async def list_versions(self, sink: ListingSink) -> None: ...
