"""Typed records of the v2 listing (``POST /v2/{project_id}/training-job-searches``), parsed once
at the edge.

As for v1 (:mod:`.models`), pydantic-core parses and validates the JSON in one pass into typed
dicts holding only what the exporter reads. Any field may be missing or null (notes §3). Numbers
are lenient, because the API mixes them (``gpu.unit_num`` is an int, ``npu.unit_num`` a string,
``accelerator_num`` a float): an int, a float or a numeric string is a number; anything else, or a
number out of range, makes the page an ``invalid_response`` naming the field. Strings are bounded.

A failed answer's body is read the way Huawei's SDK reads it (notes §6): ``error_code``/
``error_msg`` (plus ``error_solution``), ``errorCode``/``errorMsg``, ``code``/``message``, then
the same pairs inside any nested object (the gateway's ``{"error": {...}}``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Annotated

from pydantic import ConfigDict, Field, PlainValidator, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.cloud.models import ErrorBody
from modelarts_exporter.text import one_line

MAX_NUMBER = 2**53
"""Above this a float no longer holds every integer: no field of the API gets there honestly."""


def _number(value: object) -> float | None:
    if type(value) is int:  # nearly every value: checked first (a call per field)
        if 0 <= value <= MAX_NUMBER:
            return float(value)
        # Compared as an int: one of hundreds of digits has no float to convert to.
        shown = repr(float(value)) if value.bit_length() < 64 else f"{value.bit_length()}-bit int"
        raise ValueError(f"number out of range: {shown}")
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {one_line(value, 24)!r}") from None
    else:
        raise ValueError(f"expected a number, got {type(value).__name__}")
    if not math.isfinite(number) or not 0 <= number <= MAX_NUMBER:
        raise ValueError(f"number out of range: {number!r}")
    return number


Number = Annotated[float | None, PlainValidator(_number), Field(default=None)]
"""An int, a float or a numeric string, 0 to 2**53; ``None`` when missing or null."""
_Str = Annotated[str | None, Field(max_length=256, default=None)]


class Units(TypedDict):
    unit_num: Number


class FlavorInfo(TypedDict):
    gpu: Annotated[Units | None, Field(default=None)]
    npu: Annotated[Units | None, Field(default=None)]


class FlavorDetail(TypedDict):
    flavor_type: _Str
    flavor_info: Annotated[FlavorInfo | None, Field(default=None)]


class Accelerators(TypedDict):
    """``main_container_allocated_resources``, ``main_container_customized_flavor`` and the
    undocumented ``pool_info``: an amount of cards and (not in the customised flavor) a type."""

    accelerator_num: Number
    accelerator_type: _Str


_Accelerators = Annotated[Accelerators | None, Field(default=None)]


class Resource(TypedDict):
    flavor_id: _Str
    flavor_name: _Str
    node_count: Number
    pool_id: _Str
    flavor_detail: Annotated[FlavorDetail | None, Field(default=None)]
    main_container_allocated_resources: _Accelerators
    main_container_customized_flavor: _Accelerators
    pool_info: _Accelerators


class Spec(TypedDict):
    resource: Annotated[Resource | None, Field(default=None)]


class RunningRecord(TypedDict):
    """Times in epoch **seconds** (the rest of an item uses milliseconds)."""

    start_at: Number
    end_at: Number


class JobStatus(TypedDict):
    phase: _Str
    duration: Number
    """Milliseconds."""
    start_time: Number
    """Epoch milliseconds; 0 when the job has not started."""
    running_records: Annotated[list[RunningRecord] | None, Field(default=None)]


class Metadata(TypedDict):
    id: Annotated[str, Field(min_length=1, max_length=128)]
    create_time: Number
    """Epoch milliseconds."""
    # Unbounded here (a long name must not fail the page); bounded by ``to_version``.
    name: Annotated[str | None, Field(default=None)]
    user_name: Annotated[str | None, Field(default=None)]


class Job(TypedDict):
    """One item of ``items``: only the fields the exporter reads."""

    kind: _Str
    metadata: Metadata
    status: Annotated[JobStatus | None, Field(default=None)]
    spec: Annotated[Spec | None, Field(default=None)]


@dataclass(frozen=True, slots=True)
class V2Page:
    """One successful answer: ``count`` jobs match the query, ``total`` is every job of the user
    whatever the filters; ``limit`` and ``offset`` are echoes."""

    items: list[Job] | None = None
    total: Number = None
    count: Number = None
    limit: Number = None
    offset: Number = None

    __pydantic_config__ = ConfigDict(extra="ignore")


_PAGE = TypeAdapter(V2Page)


def _describe(error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {one_line(first['msg'].removeprefix('Value error, '), 120)}"


def parse_v2_page(body: bytes) -> V2Page:
    """A successful listing page, or :class:`PollError` (``invalid_response``) naming what is
    wrong with it."""
    if not body.strip():
        raise PollError(Reason.INVALID_RESPONSE, "empty response body")
    try:
        page = _PAGE.validate_json(body)
    except ValidationError as error:
        if error.errors(include_url=False)[0]["type"] == "json_invalid":
            raise PollError(
                Reason.INVALID_RESPONSE, f"response is not JSON ({_describe(error)})"
            ) from None
        raise PollError(
            Reason.INVALID_RESPONSE, f"unexpected response ({_describe(error)})"
        ) from None
    if page.items is None:
        raise PollError(Reason.INVALID_RESPONSE, "unexpected response (items: field missing)")
    return page


_PAIRS = (("error_code", "error_msg"), ("errorCode", "errorMsg"), ("code", "message"))
_MAX_DEPTH = 4


def _find_error(value: object, depth: int = 0) -> tuple[str, str, str] | None:
    if not isinstance(value, dict) or depth > _MAX_DEPTH:
        return None
    for code_key, message_key in _PAIRS:
        code, message = value.get(code_key), value.get(message_key)
        if isinstance(code, str | int) and not isinstance(code, bool) and code != "":
            solution = value.get("error_solution")
            return (
                str(code),
                message if isinstance(message, str) else "",
                solution if isinstance(solution, str) else "",
            )
    for child in value.values():
        found = _find_error(child, depth + 1)
        if found is not None:
            return found
    return None


def parse_v2_error_body(body: bytes) -> ErrorBody | None:
    """The error envelope of a failed v2 answer, or ``None`` when the body holds none."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    found = _find_error(document)
    if found is None:
        return None
    code, message, solution = found
    if solution:
        message = f"{message} (solution: {solution})" if message else f"solution: {solution}"
    return ErrorBody(error_code=one_line(code, 64), error_msg=message)
