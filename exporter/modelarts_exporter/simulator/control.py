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


class ControlAnswer(NamedTuple):
    status: int
    body: bytes
    content_type: str = "application/json"


def _json(status: int, payload: object) -> ControlAnswer:
    return ControlAnswer(status, json.dumps(payload, separators=(",", ":")).encode())


def answer(
    method: str, url: SplitResult, *, tenant: Tenant, recorder: Recorder, faults: FaultPlan
) -> ControlAnswer:
    """The answer to ``method url`` (its path starts with ``/_sim/``)."""
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
                "versions": len(tenant),
                "now_ms": tenant.now_ms,
            },
        )
    if url.path == "/_sim/advance" and method == "POST":
        raw = dict(parse_qsl(url.query)).get("seconds", "")
        try:
            tenant.advance(float(raw))
        except ValueError:
            return _json(400, {"error": f"seconds must be a number >= 0: {raw!r}"})
        return _json(200, {"now_ms": tenant.now_ms, "versions": len(tenant)})
    return _json(404, {"error": f"no control endpoint {method} {url.path}"})
