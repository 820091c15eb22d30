"""What the fake ModelArts service answers to ``POST /v2/{project_id}/training-job-searches``.

The body is read as the SDK's ``JobSearches`` (notes §1, §5): ``offset`` is a page index or a
record offset (``offset_mode``), ``limit`` 1-50 (more is 400 ``ModelArts.2816``), ``sort_by``
only ``create_time`` (else ``ModelArts.2790``), ``order``, ``workspace_id`` and ``filters`` on
``pool_id`` and ``phase`` (``in``; another key is ``ModelArts.2789``, another operator
``ModelArts.2808``). A body that is not a JSON object is ``ModelArts.2787``; a foreign project
404 ``ModelArts.2786``.
``count_mode`` chooses between the two readings of ``count``: jobs matching the query, or items
on this page (older documentation).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, Literal

from .api import Answer
from .tenant import OffsetMode
from .v2_tenant import V2Tenant

ROUTE: Final = re.compile(r"/v2/([^/]+)/training-job-searches/?")
MAX_LIMIT: Final = 50
CountMode = Literal["matching", "page"]


def v2_error(status: int, code: str, message: str, solution: str | None = None) -> Answer:
    payload = {"error_code": code, "error_msg": message}
    if solution is not None:
        payload["error_solution"] = solution
    return Answer(status, payload)


class _BadRequestError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _int(body: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _BadRequestError("ModelArts.2788", f"Invalid parameter {key}: {value!r}")
    if not low <= value <= high:
        raise _BadRequestError("ModelArts.2816", f"{key} must be within [{low}, {high}]")
    return value


def _filters(body: dict[str, Any]) -> dict[str, list[str]]:
    """The ``in`` filters by key (``pool_id``, ``phase``)."""
    filters = body.get("filters") or []
    if not isinstance(filters, list):
        raise _BadRequestError("ModelArts.2788", "filters must be a list")
    found: dict[str, list[str]] = {}
    for condition in filters:
        if not isinstance(condition, dict):
            raise _BadRequestError("ModelArts.2788", "a filter must be an object")
        if condition.get("key") not in ("pool_id", "phase"):
            raise _BadRequestError(
                "ModelArts.2789", f"Unsupported filter: {condition.get('key')!r}"
            )
        if condition.get("operator") != "in":
            raise _BadRequestError(
                "ModelArts.2808", f"Unsupported condition operator ({condition.get('operator')})"
            )
        values = condition.get("value")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise _BadRequestError("ModelArts.2809", "Unsupported condition value")
        found[condition["key"]] = values
    return found


def answer_search(
    tenant: V2Tenant,
    *,
    project_id: str,
    project_in_path: str,
    body: bytes,
    offset_mode: OffsetMode,
    count_mode: CountMode = "matching",
) -> Answer:
    if project_in_path != project_id:
        return v2_error(
            404, "ModelArts.2786", "The project ID in the URL does not match the token."
        )
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return v2_error(400, "ModelArts.2787", "Invalid JSON body.")
    if not isinstance(request, dict):
        return v2_error(400, "ModelArts.2787", "Invalid JSON body.")
    try:
        offset = _int(request, "offset", 0, 0, 10**9)
        limit = _int(request, "limit", 10, 1, MAX_LIMIT)
        sort_by = request.get("sort_by", "create_time")
        if sort_by != "create_time":
            raise _BadRequestError("ModelArts.2790", f"Unsupported sort_by: {sort_by!r}")
        order = request.get("order", "desc")
        if order not in ("asc", "desc"):
            raise _BadRequestError("ModelArts.2788", f"order must be asc or desc: {order!r}")
        workspace = request.get("workspace_id", "0")
        if not isinstance(workspace, str):
            raise _BadRequestError("ModelArts.2788", "workspace_id must be a string")
        filters = _filters(request)
    except _BadRequestError as bad:
        return v2_error(
            400, bad.code, str(bad), "Check the request body against the API reference."
        )
    start = offset * limit if offset_mode == "page" else offset
    total, matching, page = tenant.listing(
        workspace, order, filters.get("pool_id"), start, start + limit, filters.get("phase")
    )
    payload = {
        "total": total,
        "count": matching if count_mode == "matching" else len(page),
        "limit": limit,
        "offset": offset,
        "sort_by": sort_by,
        "order": order,
        "group_by": "",
        "workspace_id": workspace,
        "ai_project": "default-ai-project",
        "items": page,
    }
    return Answer(200, payload)


def v2_paging(body: bytes) -> dict[str, str]:
    """A v2 request's paging fields, as the query of a v1 one (for fault rules and stats)."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return {}
    if not isinstance(request, dict):
        return {}
    return {key: str(request[key]) for key in ("offset", "limit", "workspace_id") if key in request}
