"""Reading a ``Retry-After`` header: any text is a delay or nothing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from modelarts_exporter.cloud.client import parse_retry_after


@given(st.text(st.characters(max_codepoint=255), max_size=40))
def test_retry_after_of_any_text_is_a_delay_or_none(value: str) -> None:
    delay = parse_retry_after(value, now=0)
    assert delay is None or delay >= 0


def test_retry_after_with_a_non_ascii_digit_is_ignored() -> None:
    assert "²".isdigit()  # what made int()/float() raise on a header such as "Retry-After: ²"
    assert parse_retry_after("²") is None
    assert parse_retry_after(" 7 ") == 7.0
