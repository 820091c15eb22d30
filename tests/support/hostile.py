"""Hypothesis strategies for hostile API answers: any JSON, and listing pages as a broken or
hostile API could send them."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
"""Any JSON value (floats include NaN and infinities, which ``json.dumps`` writes as tokens)."""


def _mostly(plausible: st.SearchStrategy[Any], *hostile: st.SearchStrategy[Any]) -> Any:
    """Nearly always a value the API could send (edge values included), now and then a wrong or
    out-of-range one: so that many pages get past the parser to the aggregator, and the rest
    probe the parser."""
    wrong = st.one_of(json_values, *hostile)
    return st.integers(0, 59).flatmap(lambda draw: wrong if draw == 0 else plausible)


_millis = _mostly(
    st.none() | st.integers(0, 2**53) | st.sampled_from([0, 1, 2**53]),
    st.integers(-(2**70), -1),
    st.integers(2**53 + 1, 2**70),
)
_label = _mostly(
    st.none() | st.text(max_size=40) | st.text(min_size=256, max_size=256),
    st.text(min_size=257, max_size=300),
)
_count = _mostly(
    st.none() | st.integers(0, 1_000_000), st.integers(-(2**40), -1), st.integers(10**6 + 1)
)
hostile_records = st.fixed_dictionaries(
    {
        "version_id": _mostly(st.integers(0, 2**63), st.integers(max_value=-1)),
        "status": _mostly(st.integers(0, 255), st.integers(256, 2**20)),
    },
    optional={
        "create_time": _millis,
        "start_time": _millis,
        "end_time": _millis,
        "duration": _millis,
        "pool_id": _label,
        "flavor_code": _label,
        "gpu_num": _count,
        "npu_num": _count,
        "version_desc": json_values,
        "unexpected": json_values,
    },
)
hostile_pages = st.fixed_dictionaries(
    {
        "versions": _mostly(st.lists(hostile_records, max_size=12)),
        "total_count": _mostly(st.integers(0, 2**53), st.integers(max_value=-1)),
    },
    optional={
        "is_success": _mostly(st.just(True), st.just(False)),
        "error_code": json_values,
        "error_message": json_values,
        "offset": json_values,
    },
)
"""Listing pages as a broken or hostile API could send them: wrong types, huge and negative
numbers, missing and extra fields, long and odd strings (quotes, newlines, any Unicode)."""
