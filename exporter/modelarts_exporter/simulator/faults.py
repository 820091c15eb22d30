"""Fault injection: the ways the real endpoint and its gateway misbehave, on demand.

A :class:`FaultPlan` is an ordered list of :class:`FaultRule`; for each API request that passed
authentication the server asks :meth:`FaultPlan.pick` for the first rule that matches and fires.
What an HTTP-level fault answers is defined here (:func:`canned_response`); faults that act on the
connection (reset, truncation, slow drip, hang) or on the tenant (shift) are carried out by the
server, because only it holds the socket and the tenant. The plan is shared by request threads,
so every method holds its lock.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from enum import StrEnum
from typing import Final, Literal


class FaultKind(StrEnum):
    """What a fault does: see :data:`FAULT_HELP`."""

    THROTTLE = "throttle"
    THROTTLE_MODELARTS = "throttle_modelarts"
    SERVER_ERROR = "server_error"
    BUSY_500 = "busy_500"
    BAD_GATEWAY_HTML = "bad_gateway_html"
    MALFORMED_JSON = "malformed_json"
    API_ERROR = "api_error"
    WRONG_SHAPE = "wrong_shape"
    EMPTY_BODY = "empty_body"
    RESET = "reset"
    TRUNCATED = "truncated"
    SLOW_DRIP = "slow_drip"
    HANG = "hang"
    SHIFT = "shift"
    V2_ERROR = "v2_error"


FAULT_HELP: Final[Mapping[FaultKind, str]] = {
    FaultKind.THROTTLE: "429 from the API gateway (APIG.0308) with Retry-After",
    FaultKind.THROTTLE_MODELARTS: "429 from ModelArts itself (ModelArts.2799)",
    FaultKind.SERVER_ERROR: "500 ModelArts.0010",
    FaultKind.BUSY_500: '500 ModelArts.5039 "traffic is a little busy"',
    FaultKind.BAD_GATEWAY_HTML: "502 with an HTML page, as a proxy in front of the service answers",
    FaultKind.MALFORMED_JSON: "200 with the documented sample body (its versions: key is unquoted)",
    FaultKind.API_ERROR: "200 with is_success: false (ModelArts.0105)",
    FaultKind.WRONG_SHAPE: "200 with valid JSON of the wrong shape",
    FaultKind.EMPTY_BODY: "200 with an empty body",
    FaultKind.RESET: "connection reset (RST) instead of an answer",
    FaultKind.TRUNCATED: "full Content-Length announced, half the body sent, connection closed",
    FaultKind.SLOW_DRIP: "the real answer, a few bytes at a time, slow enough to trip a read "
    "timeout",
    FaultKind.HANG: "the request is read, nothing is sent for a while, then the connection is "
    "closed",
    FaultKind.SHIFT: "not an error: versions are created just before the real answer (jobs "
    "created mid-poll)",
    FaultKind.V2_ERROR: "a v2 error answer: http_status with error_code/error_msg/error_solution, "
    'or the gateway\'s nested {"error": {"code", "message"}} (shape="nested")',
}
"""What each fault does, as ``simulate --help`` lists them."""


TRANSPORT_KINDS: Final = frozenset(
    {FaultKind.RESET, FaultKind.TRUNCATED, FaultKind.SLOW_DRIP, FaultKind.HANG}
)
"""Faults the server carries out on the connection itself."""

WrongShape = Literal[
    "versions_string", "missing_total_count", "top_level_array", "versions_not_objects"
]

# The documented sample response, verbatim in substance: its unquoted key makes it invalid JSON.
SAMPLE_BODY: Final = """{
    versions:[
        {
            "version_id": 1485,
            "version_name": "trainjob-3f47",
            "status": 12,
            "create_time": 1557473030000,
            "start_time": 1557473040000,
            "end_time": 1557473093000,
            "duration": 53000,
            "version_desc": null,
            "pool_id": "pool9928813f",
            "flavor_code": "modelarts.p1.2xlarge",
            "npu_num": 0,
            "gpu_num": 1
        }
    ],
    "offset": 20,
    "limit": 20,
    "total_count": 1,
    "is_success": true
}"""

BAD_GATEWAY_PAGE: Final = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>API Gateway</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What a rule may look at to decide whether it applies to a request."""

    method: str
    path: str
    query: Mapping[str, str]
    offset: int | None
    """``None`` when absent or not an integer; likewise ``limit`` and ``status``."""
    limit: int | None
    status: int | None
    sequence: int
    """1-based number of the API request since the server started."""


@dataclass(slots=True, eq=False)
class FaultRule:
    """One fault and when it fires. ``times=N`` fires on the next N matching requests, then the
    rule expires; ``probability`` draws from the plan's seeded RNG; ``when`` narrows the requests
    (e.g. only mid-poll pages: ``when=lambda r: (r.offset or 0) > 0``)."""

    kind: FaultKind
    _: KW_ONLY
    times: int | None = None
    probability: float = 1.0
    when: Callable[[RequestInfo], bool] | None = None
    retry_after: str | None = "1"
    """``Retry-After`` of the 429s; ``None`` sends none."""
    error_message: str = "Failed to query the training job versions."
    """Message of ``API_ERROR``."""
    error_key: Literal["error_message", "error_msg"] = "error_message"
    """``API_ERROR`` as older v1 APIs spell it (``error_msg``) or as documented."""
    shape: WrongShape = "versions_string"
    drip_seconds: float = 5.0
    """``SLOW_DRIP``: about how long the whole body takes."""
    drip_interval_seconds: float = 0.5
    """``SLOW_DRIP``: pause between two pieces; a client read timeout below it trips."""
    hang_seconds: float = 10.0
    shift_count: int = 3
    """``SHIFT``: versions created before answering."""
    http_status: int = 400
    """``V2_ERROR``: the HTTP status."""
    error_code: str = "ModelArts.2788"
    """``V2_ERROR``: the code."""
    error_solution: str | None = None
    v2_shape: Literal["flat", "nested"] = "flat"
    remaining: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.times is not None and self.times < 0:
            raise ValueError(f"times must be >= 0, got {self.times}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {self.probability}")
        self.remaining = self.times


class FaultPlan:
    """Ordered fault rules plus a latency added to every API request; thread-safe."""

    def __init__(
        self, rules: Iterable[FaultRule] = (), *, seed: int = 0, latency_seconds: float = 0.0
    ) -> None:
        # Reentrant: a rule's ``when`` runs under the lock and may look at the plan.
        self._lock = threading.RLock()
        self._rules: list[FaultRule] = list(rules)
        self._rng = random.Random(f"modelarts-sim:{seed}:faults")
        self._fired: Counter[FaultKind] = Counter()
        self.latency_seconds = latency_seconds
        """Sleep before answering each API request (outside every lock)."""

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Drop every rule (the latency and the fired counts stay)."""
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        with self._lock:
            return tuple(self._rules)

    @property
    def fired(self) -> Counter[FaultKind]:
        """How often each kind fired so far (a copy)."""
        with self._lock:
            return Counter(self._fired)

    def pick(self, request: RequestInfo) -> FaultRule | None:
        """The first rule that matches and fires for this request, spending one of its ``times``."""
        with self._lock:
            for rule in self._rules:
                if rule.remaining == 0:
                    continue
                if rule.when is not None and not rule.when(request):
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                self._fired[rule.kind] += 1
                return rule
            return None


@dataclass(frozen=True, slots=True)
class CannedResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def _json(status: int, payload: object, *headers: tuple[str, str]) -> CannedResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return CannedResponse(status, body, headers=headers)


def _wrong_shape(shape: WrongShape) -> object:
    if shape == "versions_string":
        return {"versions": "[]", "offset": 0, "limit": 20, "total_count": 1, "is_success": True}
    if shape == "missing_total_count":
        return {"versions": [], "offset": 0, "limit": 20, "is_success": True}
    if shape == "top_level_array":
        return [{"version_id": 1, "status": 8}]
    return {"versions": [1, "two", None], "offset": 0, "limit": 20, "total_count": 3}


def canned_response(rule: FaultRule) -> CannedResponse | None:
    """The answer of an HTTP-level fault; ``None`` for transport faults and ``SHIFT``."""
    kind = rule.kind
    retry = (("Retry-After", rule.retry_after),) if rule.retry_after is not None else ()
    if kind is FaultKind.THROTTLE:
        message = (
            "The throttling threshold has been reached: "
            "policy user over ratelimit,limit:200,time:1 second"
        )
        return _json(429, {"error_code": "APIG.0308", "error_msg": message}, *retry)
    if kind is FaultKind.THROTTLE_MODELARTS:
        payload = {"is_success": False, "error_code": "ModelArts.2799"}
        return _json(429, {**payload, "error_message": "Too many requests."}, *retry)
    if kind is FaultKind.SERVER_ERROR:
        payload = {"is_success": False, "error_code": "ModelArts.0010"}
        return _json(500, {**payload, "error_message": "Internal error."})
    if kind is FaultKind.BUSY_500:
        payload = {"is_success": False, "error_code": "ModelArts.5039"}
        return _json(500, {**payload, "error_message": "The traffic is a little busy."})
    if kind is FaultKind.BAD_GATEWAY_HTML:
        return CannedResponse(502, BAD_GATEWAY_PAGE.encode(), "text/html")
    if kind is FaultKind.MALFORMED_JSON:
        return CannedResponse(200, SAMPLE_BODY.encode())
    if kind is FaultKind.API_ERROR:
        payload = {"is_success": False, "error_code": "ModelArts.0105"}
        return _json(200, {**payload, rule.error_key: rule.error_message})
    if kind is FaultKind.WRONG_SHAPE:
        return _json(200, _wrong_shape(rule.shape))
    if kind is FaultKind.EMPTY_BODY:
        return CannedResponse(200, b"")
    if kind is FaultKind.V2_ERROR:
        body: dict[str, object] = {"error_code": rule.error_code, "error_msg": rule.error_message}
        if rule.error_solution is not None:
            body["error_solution"] = rule.error_solution
        if rule.v2_shape == "nested":
            body = {"error": {"code": rule.error_code, "message": rule.error_message}}
        return _json(rule.http_status, body, *retry)
    return None
