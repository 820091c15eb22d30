"""What a target's listing asks the API for: page size, paging, concurrency, filters and order.
Settings build it; each source reads it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Pagination = Literal["auto", "offset", "page", "all"]
"""What ``offset`` means to the API: found out (``auto``), a record offset, a page index, or one
request for everything (``all``)."""


@dataclass(frozen=True, slots=True)
class ListingOptions:
    page_size: int = 1000
    pagination: Pagination = "auto"
    max_concurrency: int = 8
    status: int | None = None
    pool_id: str | None = None
    workspace_ids: tuple[str, ...] = ()
    """Empty: the API's default workspace (``0``)."""
    sort_by: str = "create_time"
    order: Literal["asc", "desc"] = "asc"
    """Ascending creation order keeps already-read records in place when jobs are created."""


MAX_LIMIT = 50
"""The API's most jobs per page (notes §5)."""
V2Pagination = Literal["auto", "offset", "page"]


@dataclass(frozen=True, slots=True)
class V2Options:
    page_size: int = MAX_LIMIT
    pagination: V2Pagination = "auto"
    max_concurrency: int = 8
    pool_id: str | None = None
    workspace_ids: tuple[str, ...] = ()
    """Empty: the API's default workspace (``0``)."""
    order: Literal["asc", "desc"] = "asc"
    """Ascending creation order keeps already-read jobs in place when jobs are created."""
    max_pages: int = 2000
    """At 50 a page, 100,000 jobs: a listing longer than that fails the poll."""
