"""What the fake ModelArts service answers to a request that passed the gateway.

Only ``GET /v1/{project_id}/training-jobs/versions`` exists. Query parameters are validated the
way the service documents its errors: 400 ``ModelArts.2764`` (QueryParamsError) for a malformed
value, 400 ``ModelArts.2790`` (UnsupportedSortBy) for an unknown ``sort_by``; a foreign project id
is 404 ``ModelArts.2786``; any other path is the gateway's 404 ``APIG.0101``. An empty parameter
value counts as absent, as most HTTP frameworks treat it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .tenant import ORDERS, SORT_FIELDS, OffsetMode, Tenant

_ROUTE: Final = re.compile(r"/v1/([^/]+)/training-jobs/versions/?")
# Bounded so that a hostile value cannot make int() slow; 18 digits fit every realistic offset.
_UINT: Final = re.compile(r"[0-9]{1,18}")
DEFAULT_LIMIT: Final = 20


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    payload: object


def error(status: int, code: str, message: str) -> Answer:
    """A ModelArts error body (``is_success``, ``error_code``, ``error_message``)."""
    return Answer(status, {"is_success": False, "error_code": code, "error_message": message})


class _BadParameterError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def lenient_uint(value: str | None) -> int | None:
    """The parameter as a non-negative int, or ``None`` (for fault rules and stats)."""
    return int(value) if value is not None and _UINT.fullmatch(value) else None


def _uint(query: Mapping[str, str], key: str) -> int | None:
    value = query.get(key) or None
    if value is None:
        return None
    if not _UINT.fullmatch(value):
        raise _BadParameterError(
            "ModelArts.2764", f"{key} must be a non-negative integer: {value!r}"
        )
    return int(value)


def answer_versions(
    tenant: Tenant,
    *,
    project_id: str,
    offset_mode: OffsetMode,
    method: str,
    path: str,
    query: Mapping[str, str],
    max_limit: int | None = None,
) -> Answer:
    """The status and JSON payload of one API request."""
    route = _ROUTE.fullmatch(path)
    if route is None or method != "GET":
        return Answer(
            404,
            {
                "error_code": "APIG.0101",
                "error_msg": "The API does not exist or has not been published in the environment",
            },
        )
    if route.group(1) != project_id:
        return error(404, "ModelArts.2786", "The project ID in the URL does not match the token.")
    try:
        offset = _uint(query, "offset") or 0
        limit = _uint(query, "limit")
        limit = DEFAULT_LIMIT if limit is None else limit
        if max_limit is not None and limit > max_limit:
            limit = max_limit  # echoed as the limit applied; limit=0 still means every record
        status = _uint(query, "status")
        sort_by = query.get("sort_by") or "create_time"
        order = query.get("order") or "desc"
        if sort_by not in SORT_FIELDS:
            raise _BadParameterError("ModelArts.2790", f"Unsupported sort_by: {sort_by!r}")
        if order not in ORDERS:
            raise _BadParameterError("ModelArts.2764", f"order must be asc or desc: {order!r}")
    except _BadParameterError as bad:
        return error(400, bad.code, str(bad))
    total, versions = tenant.list_page(
        offset=offset,
        limit=limit,
        offset_mode=offset_mode,
        status=status,
        pool_id=query.get("pool_id") or None,
        workspace_id=query.get("workspace_id") or "0",
        sort_by=sort_by,
        order=order,
    )
    # Key order of the documented sample response.
    payload = {
        "versions": versions,
        "offset": offset,
        "limit": limit,
        "total_count": total,
        "is_success": True,
    }
    return Answer(200, payload)
