"""The simulator's own endpoints, ``/_sim/*``: health, request statistics, moving the clock.

They carry no authentication and no faults: tests and the demo use them to watch and steer the
fake API, never the exporter.
"""

from __future__ import annotations

import json
from typing import NamedTuple
from urllib.parse import SplitResult, parse_qsl

from .faults import FaultPlan
from .stats import Recorder
from .tenant import Tenant
from .v2_tenant import V2Tenant


class ControlAnswer(NamedTuple):
    status: int
    body: bytes
    content_type: str = "application/json"


def _json(status: int, payload: object) -> ControlAnswer:
    return ControlAnswer(status, json.dumps(payload, separators=(",", ":")).encode())


def _tenants(tenant: Tenant, v2: V2Tenant | None) -> dict[str, int]:
    """How many versions (and v2 jobs, when served) there are now, and the clock."""
    found = {"now_ms": tenant.now_ms, "versions": len(tenant)}
    if v2 is not None:
        found |= {"jobs": len(v2), "jobs_now_ms": v2.now_ms}
    return found


def answer(
    method: str,
    url: SplitResult,
    *,
    tenant: Tenant,
    v2: V2Tenant | None,
    recorder: Recorder,
    faults: FaultPlan,
) -> ControlAnswer:
    """The answer to ``method url`` (its path starts with ``/_sim/``). Advancing moves the v1
    tenant and the v2 jobs alike."""
    if url.path == "/_sim/health" and method == "GET":
        return ControlAnswer(200, b"ok", "text/plain; charset=utf-8")
    if url.path == "/_sim/stats" and method == "GET":
        stats = recorder.snapshot()
        return _json(
            200,
            {
                "requests": stats.requests,
                "by_status": {str(code): n for code, n in sorted(stats.by_status.items())},
                "faults": {str(kind): n for kind, n in faults.fired.items()},
                **_tenants(tenant, v2),
            },
        )
    if url.path == "/_sim/advance" and method == "POST":
        raw = dict(parse_qsl(url.query)).get("seconds", "")
        try:
            seconds = float(raw)
            tenant.advance(seconds)
            if v2 is not None:
                v2.advance(seconds)
        except ValueError:
            return _json(400, {"error": f"seconds must be a number >= 0: {raw!r}"})
        return _json(200, _tenants(tenant, v2))
    return _json(404, {"error": f"no control endpoint {method} {url.path}"})
