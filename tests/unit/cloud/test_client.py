"""Reading a ``Retry-After`` header: any text is a delay or nothing. An API's error text, whatever
it holds, ends as one printable line."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelarts_exporter.cloud.client import classify, parse_retry_after
from modelarts_exporter.cloud.errors import PollError
from modelarts_exporter.cloud.models import parse_page
from modelarts_exporter.cloud.v2_models import parse_v2_error_body
from modelarts_exporter.text import MAX_ERROR, one_line


@given(st.text(st.characters(max_codepoint=255), max_size=40))
def test_retry_after_of_any_text_is_a_delay_or_none(value: str) -> None:
    delay = parse_retry_after(value, now=0)
    assert delay is None or delay >= 0


def test_retry_after_with_a_non_ascii_digit_is_ignored() -> None:
    assert "²".isdigit()  # what made int()/float() raise on a header such as "Retry-After: ²"
    assert parse_retry_after("²") is None
    assert parse_retry_after(" 7 ") == 7.0


_API_TEXT = st.text(st.characters(codec="utf-8"), max_size=600) | st.sampled_from(
    [
        "bad\n2026-12-02 15:00:00,000 ERROR modelarts_exporter forged line",
        "\x1b[2J\x1b[31mred\x1b[0m\x1b]0;title\x07\x1bc",
        "\u202eevil\u2066\u2028next\x85\x9b31m",
    ]
)


def _log_line(error: PollError) -> str:
    """The poll failure as the text log writes it (the poller's message and format)."""
    record = logging.LogRecord(
        "modelarts_exporter.runtime.poller", logging.WARNING, __file__, 1,
        "poll failed target=%s reason=%s seconds=%.3f error=%s",
        ("t", error.reason.value, 0.1, str(error.args[0])), None,
    )  # fmt: skip
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s").format(record)


@given(code=_API_TEXT, message=_API_TEXT, status=st.sampled_from([200, 400, 429, 500]))
def test_any_api_error_text_is_one_printable_log_line(code: str, message: str, status: int) -> None:
    errors = []
    body = json.dumps({"is_success": False, "error_code": code, "error_msg": message}).encode()
    if status == 200:
        with pytest.raises(PollError) as raised:
            parse_page(body)
        errors.append(raised.value)
    else:
        errors.append(classify(status, body, "application/json"))
        nested = json.dumps({"error": {"code": code, "message": message}}).encode()
        errors.append(classify(status, nested, "application/json", parse_v2_error_body))
        errors.append(classify(status, b"<html/>", message))
    for error in errors:
        line = _log_line(error)
        assert line.isprintable(), repr(line)  # no line break, no control or format character
        assert "\x1b" not in line and "\x9b" not in line
        assert len(str(error.args[0])) <= MAX_ERROR


@given(st.text(st.characters(codec="utf-8")), st.integers(min_value=2, max_value=300))
def test_one_line_is_one_bounded_printable_line(text: str, limit: int) -> None:
    line = one_line(text, limit)
    assert line.isprintable() and len(line) <= limit
    assert line == line.strip() and "  " not in line


def test_one_line_removes_terminal_escapes_whole() -> None:
    assert (
        one_line("a\x1b[1;31mred\x1b[0m b\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "ared blink"
    )
    assert one_line("x\u202ey\u2069z\u200b") == "x y z"
    assert one_line("one\r\ntwo\x0bthree\x85four\u2029five") == "one two three four five"
