"""Typed records of the v1 listing, parsed once at the edge.

``parse_page`` turns a response body into a :class:`Page` in one pass (pydantic-core parses and
validates the JSON together, faster than ``json.loads`` alone: docs/performance.md). Nulls and
missing optional fields are normal; a value of the wrong type or out of range makes the whole page
an ``invalid_response``: the poll fails and the last good snapshot stays, rather than exporting a
guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.text import dotted, one_line, validation_lines

# Generous bounds that still keep every value a float can carry exactly, so a hostile answer
# cannot turn into an overflowing or nonsensical metric. A missing optional field becomes None.
_Millis = Annotated[int | None, Field(ge=0, le=2**53, default=None)]
_Count = Annotated[int | None, Field(ge=0, le=1_000_000, default=None)]
_Label = Annotated[str | None, Field(max_length=256, default=None)]
# Names are not bounded here: a long or odd one must not fail a whole page. What is kept of it
# is bounded where it is kept or shown (``text.one_line``).
_Name = Annotated[str | None, Field(default=None)]


class Version(TypedDict):
    """One training-job version as the exporter needs it (descriptions are dropped).

    Times are epoch milliseconds as the API sends them; ``0`` and ``None`` both mean "not yet".
    Every key is present after parsing (missing optional fields are ``None``).

    A typed dict rather than a dataclass because of what it costs: pydantic-core builds dicts
    in well under the time it takes to build slotted dataclasses (docs/performance.md has the
    measurement). mypy checks every key all the same.
    """

    version_id: Annotated[int, Field(ge=0, le=2**63 - 1)]  # a signed 64-bit id: kept as such
    status: Annotated[int, Field(ge=0, le=255)]
    create_time: _Millis
    start_time: _Millis
    end_time: _Millis
    duration: _Millis
    pool_id: _Label
    flavor_code: _Label
    gpu_num: _Count
    npu_num: _Count
    version_name: _Name
    """Raw; shown only for the oldest active version of a phase."""
    user_name: _Name
    """The creator (v2 ``metadata.user_name``); the v1 listing has none."""
    v2_id: _Name
    """A v2 job's ``metadata.id`` (``version_id`` is its hash); ``None`` for v1."""


@dataclass(frozen=True, slots=True)
class _Envelope:
    """A response of ``GET /v1/{project_id}/training-jobs/versions`` as it may come: every
    field optional until :func:`parse_page` has checked the answer is a listing page."""

    is_success: bool | None = None
    total_count: Annotated[int, Field(ge=0, le=2**53)] | None = None
    versions: list[Version] | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_msg: str | None = None

    __pydantic_config__ = ConfigDict(extra="ignore")


@dataclass(frozen=True, slots=True)
class Page:
    """One successful page of the v1 listing."""

    total_count: int
    """The API's count of every version the listing's filters match (not of this page)."""
    versions: list[Version]


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """The error envelope of ModelArts (``error_message``) and of older APIs and the gateway
    (``error_msg``); anything else in a failed answer is ignored."""

    error_code: str | None = None
    error_message: str | None = None
    error_msg: str | None = None

    __pydantic_config__ = ConfigDict(extra="ignore")

    @property
    def message(self) -> str:
        return self.error_message or self.error_msg or ""


_PAGE = TypeAdapter(_Envelope)
_ERROR = TypeAdapter(ErrorBody)


def _describe(error: ValidationError) -> str:
    """The first problem only: a broken page usually breaks many records the same way."""
    return validation_lines(error, lambda location: dotted(location) or "body")[0]


def parse_error_body(body: bytes) -> ErrorBody | None:
    """The error envelope of a failed answer, or ``None`` when the body is not one (HTML, empty)."""
    try:
        parsed = _ERROR.validate_json(body)
    except ValidationError:
        return None
    return parsed if parsed.error_code or parsed.message else None


def parse_page(body: bytes) -> Page:
    """A successful listing page, or :class:`PollError` saying exactly what is wrong with it."""
    if not body.strip():
        raise PollError(Reason.INVALID_RESPONSE, "empty response body")
    try:
        page = _PAGE.validate_json(body)
    except ValidationError as error:
        kind = error.errors(include_url=False)[0]["type"]
        if kind == "json_invalid":
            raise PollError(
                Reason.INVALID_RESPONSE, f"response is not JSON ({_describe(error)})"
            ) from None
        raise PollError(
            Reason.INVALID_RESPONSE, f"unexpected response ({_describe(error)})"
        ) from None
    if page.is_success is False:
        code = one_line(page.error_code, 64) if page.error_code else "unknown"
        message = one_line(page.error_message or page.error_msg or "no message")
        raise PollError(Reason.API_ERROR, f"API error {code}: {message}")
    if page.versions is None:
        raise PollError(Reason.INVALID_RESPONSE, "unexpected response (versions: field missing)")
    if page.total_count is None:
        raise PollError(Reason.INVALID_RESPONSE, "unexpected response (total_count: field missing)")
    return Page(page.total_count, page.versions)
