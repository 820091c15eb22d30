"""Typed records of the v1 listing, parsed once at the edge.

``parse_page`` decodes a response body straight into :class:`Version` structs in one pass
(msgspec validates while it parses: a quarter of pydantic-core's CPU for the same page and three
times faster than ``json.loads`` alone, docs/performance.md). Nulls and missing optional fields
are normal; a value of the wrong type or out of range makes the whole page an
``invalid_response``: the poll fails and the last good snapshot stays, rather than exporting a
guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

import msgspec
from pydantic import ConfigDict, TypeAdapter, ValidationError

from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.text import one_line

# Generous bounds that still keep every value a float can carry exactly, so a hostile answer
# cannot turn into an overflowing or nonsensical metric. A missing optional field becomes None.
_Millis = Annotated[int, msgspec.Meta(ge=0, le=2**53)] | None
_Count = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] | None
_Label = Annotated[str, msgspec.Meta(max_length=256)] | None


class Version(msgspec.Struct, frozen=True, gc=False):
    """One training-job version as the exporter needs it (descriptions are dropped).

    Times are epoch milliseconds as the API sends them; ``0`` and ``None`` both mean "not yet".
    Missing optional fields are ``None``.

    ``gc=False``: a struct holds only ints and strings, never a cycle, so the garbage collector
    need not track the hundred thousand of a listing (each collection would walk them all).
    """

    # The bounds are a v1 page's, checked as it is decoded. A v2 job is built as a Version
    # (``v2_jobs.to_version``, unchecked: structs check only when decoding) with a negative
    # hashed id and a code from 256 (``v2_statuses``).
    version_id: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]  # signed 64-bit: kept as such
    status: Annotated[int, msgspec.Meta(ge=0, le=255)]
    create_time: _Millis = None
    start_time: _Millis = None
    end_time: _Millis = None
    duration: _Millis = None
    pool_id: _Label = None
    flavor_code: _Label = None
    gpu_num: _Count = None
    npu_num: _Count = None
    # Names are not bounded here: a long or odd one must not fail a whole page. What is kept of
    # it is bounded where it is kept or shown (``text.one_line``).
    version_name: str | None = None
    """Raw; shown only for the oldest active version of a phase."""
    user_name: str | None = None
    """The creator (v2 ``metadata.user_name``); the v1 listing has none."""
    v2_id: str | None = None
    """A v2 job's ``metadata.id`` (``version_id`` is its hash); ``None`` for v1."""


class _Listing(msgspec.Struct, frozen=True, gc=False):
    """A v1 response as the API sends it: every field optional until :func:`parse_page` has
    checked the answer is a listing page."""

    is_success: bool | None = None
    total_count: Annotated[int, msgspec.Meta(ge=0, le=2**53)] | None = None
    versions: list[Version] | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_msg: str | None = None


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


# strict=False: the coercions pydantic's lax mode made ("12" and 12.0 as 12), so that what
# parsed before still parses.
_PAGE = msgspec.json.Decoder(_Listing, strict=False)
_ERROR = TypeAdapter(ErrorBody)
_INDEX = re.compile(r"\[(\d+)\]")


def _describe(error: msgspec.ValidationError) -> str:
    """``where: what`` of msgspec's first problem (``what - at `$.versions[0].gpu_num```): a
    broken page usually breaks many records the same way."""
    what, at, where = str(error).rpartition(" - at `$")
    if not at:
        return one_line(f"body: {where}")
    path = _INDEX.sub(r".\1", where.rstrip("`")).lstrip(".")
    return one_line(f"{path or 'body'}: {what}")


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
        page = _PAGE.decode(body)
    except msgspec.ValidationError as error:
        raise PollError(
            Reason.INVALID_RESPONSE, f"unexpected response ({_describe(error)})"
        ) from None
    except (msgspec.DecodeError, RecursionError) as error:
        # A body nested past the decoder's depth is not a listing either.
        raise PollError(
            Reason.INVALID_RESPONSE, f"response is not JSON ({one_line(str(error), 120)})"
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
