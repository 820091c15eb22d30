"""Parsing pages: tolerant of nulls, strict about shape, never a crash."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.cloud.models import parse_error_body, parse_page
from modelarts_exporter.simulator.faults import SAMPLE_BODY
from support.hostile import json_values
from support.properties import examples

SAMPLE_RECORD = {
    "version_id": 1485,
    "version_name": "trainjob-3f47",
    "status": 12,
    "create_time": 1557473030000,
    "start_time": 1557473040000,
    "end_time": 1557473093000,
    "duration": 53000,
    "version_desc": None,
    "pool_id": "pool9928813f",
    "flavor_code": "modelarts.p1.2xlarge",
    "npu_num": 0,
    "gpu_num": 1,
}
# The documentation's own sample (not JSON: its key is unquoted), as the simulator serves it.
SEED_SAMPLE = SAMPLE_BODY.encode()


def _body(**fields: object) -> bytes:
    page: dict[str, object] = {"versions": [SAMPLE_RECORD], "total_count": 1, "is_success": True}
    page.update(fields)
    return json.dumps(page).encode()


def test_sample_record_parses() -> None:
    page = parse_page(_body())
    (version,) = page.versions or ()
    assert version.version_id == 1485 and version.gpu_num == 1 and version.pool_id == "pool9928813f"


def test_nulls_and_missing_optional_fields_are_normal() -> None:
    record = {"version_id": 7, "status": 8, "gpu_num": None, "start_time": None}
    page = parse_page(_body(versions=[record]))
    (version,) = page.versions or ()
    assert version.pool_id is None and version.gpu_num is None and version.flavor_code is None


def test_seed_sample_is_invalid_response_with_a_clear_message() -> None:
    with pytest.raises(PollError) as caught:
        parse_page(SEED_SAMPLE)
    assert caught.value.reason is Reason.INVALID_RESPONSE
    assert "not JSON" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"", "empty"),
        (b"<html><body>502 Bad Gateway</body></html>", "not JSON"),
        (_body(versions="nope"), "versions"),
        (_body(total_count=None), "total_count"),
        (json.dumps({"is_success": True, "total_count": 1}).encode(), "versions"),
        (_body(versions=[{**SAMPLE_RECORD, "gpu_num": -1}]), "gpu_num"),
        (_body(versions=[{**SAMPLE_RECORD, "status": "running"}]), "status"),
        (_body(versions=[{"status": 8}]), "version_id"),
        (b"[]", "body"),
    ],
)
def test_wrong_shapes_are_invalid_response(body: bytes, needle: str) -> None:
    with pytest.raises(PollError) as caught:
        parse_page(body)
    assert caught.value.reason is Reason.INVALID_RESPONSE
    assert needle in str(caught.value)


HOSTILE_BODIES = {
    "deep nesting": b'{"versions":' + b"[" * 100_000 + b"]" * 100_000 + b',"total_count":0}',
    "deep objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "NaN": b'{"versions":[],"total_count":NaN}',
    "Infinity": b'{"versions":[],"total_count":1e400}',
    "5000-digit number": b'{"versions":[],"total_count":' + b"9" * 5000 + b"}",
    "10 MB string": _body(versions=[{**SAMPLE_RECORD, "pool_id": "x" * 10_000_000}]),
    "invalid UTF-8": _body(versions=[{**SAMPLE_RECORD, "pool_id": "P"}]).replace(b'"P"', b'"\xff"'),
    "lone surrogate": _body(versions=[{**SAMPLE_RECORD, "pool_id": "P"}]).replace(
        b'"P"', b'"\\ud800"'
    ),
    "byte order mark": b"\xef\xbb\xbf" + _body(),
    "trailing garbage": _body() + b" <html>",
    "NUL after the body": _body() + b"\x00",
}


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_hostile_bodies_are_invalid_response_quickly(body: bytes) -> None:
    started = time.thread_time()  # CPU time of this thread: what a busy machine does not inflate
    with pytest.raises(PollError) as caught:
        parse_page(body)
    assert caught.value.reason is Reason.INVALID_RESPONSE
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300
    assert time.thread_time() - started < 1.0  # generous: even the 10 MB string is far below


@pytest.mark.parametrize("field", ["error_message", "error_msg"])
def test_is_success_false_is_api_error_with_either_message_field(field: str) -> None:
    body = json.dumps({"is_success": False, "error_code": "ModelArts.0105", field: "bad\nthing"})
    with pytest.raises(PollError) as caught:
        parse_page(body.encode())
    assert caught.value.reason is Reason.API_ERROR
    assert str(caught.value) == "api_error: API error ModelArts.0105: bad thing"


def test_error_body_is_read_from_either_field_and_html_is_none() -> None:
    envelope = parse_error_body(b'{"error_code": "APIG.0308", "error_msg": "slow down"}')
    assert envelope is not None and envelope.message == "slow down"
    assert parse_error_body(b"<html>bad gateway</html>") is None


record_like = st.fixed_dictionaries(
    {},
    optional={
        key: json_values | st.integers(min_value=-(2**70), max_value=2**70) for key in SAMPLE_RECORD
    },
)


@settings(max_examples=examples(300), deadline=None)
@given(
    page=st.fixed_dictionaries(
        {},
        optional={
            "versions": st.lists(record_like, max_size=5) | json_values,
            "total_count": json_values,
            "is_success": json_values,
            "error_code": json_values,
            "error_message": json_values,
        },
    )
)
def test_arbitrary_json_is_a_page_or_a_poll_error(page: dict[str, object]) -> None:
    body = json.dumps(page).encode()
    try:
        parsed = parse_page(body)
    except PollError as error:
        assert error.reason in (Reason.INVALID_RESPONSE, Reason.API_ERROR)
        assert "\n" not in str(error)
    else:
        assert parsed.versions is not None and parsed.total_count is not None
        for version in parsed.versions:
            assert version.version_id >= 0 and 0 <= version.status <= 255
            assert (version.gpu_num or 0) >= 0 and (version.npu_num or 0) >= 0
