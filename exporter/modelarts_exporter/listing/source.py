"""The seam between an API version and the rest of the exporter.

A source reads one API's listing page by page into a :class:`ListingSink`; aggregation and
exposition never see requests or raw records, and no more than the pages in flight is ever held.
The v1 listing is :mod:`.v1`; the v2 ``training-job-searches`` API slots in
beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, Protocol, get_args

from modelarts_exporter.cloud.models import Page, Version

ListingKind = Literal["full", "incremental"]
"""How a complete listing was read: every record, or only what can have changed."""
LISTING_KINDS: tuple[ListingKind, ...] = get_args(ListingKind)


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


class UnreliablePageError(Exception):
    """A page the source cannot vouch for (a filter not honoured, a count that may mean something
    else): the incremental poll gives up and the poll lists in full. The reason is the message."""


class PagedSource(JobSource, Protocol):
    """A source whose pages can be addressed one by one, newest first: what incremental polls
    read (:mod:`.incremental`)."""

    @property
    def page_size(self) -> int:
        """Records asked per page (what the API has shown it serves, at most the setting)."""

    @property
    def workspaces(self) -> tuple[str | None, ...]:
        """The workspaces listed (``None``: the API's default)."""

    @property
    def addressable(self) -> bool:
        """Whether single pages can be read and their counts trusted yet (``auto`` pagination
        needs one full listing to find out what ``offset`` means)."""

    def status_groups(self, codes: Iterable[int]) -> list[frozenset[int]]:
        """How to list the versions in ``codes`` with the API's status filter: one listing per
        group. Codes the filter cannot address are left out (incremental polls then find those
        versions by their place in the newest-first listing)."""

    async def page(
        self, workspace: str | None, index: int, *, statuses: frozenset[int] | None = None
    ) -> Page:
        """Page ``index`` of the listing newest first, optionally of some statuses only (one
        group of :meth:`status_groups`). ``total_count`` is exact for the unfiltered listing;
        for a filtered one it may be a hint only. Raises :class:`UnreliablePageError`."""
