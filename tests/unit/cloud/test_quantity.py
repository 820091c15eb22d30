"""Resource amounts as the pool APIs write them, and which keys are cards (pools notes §2b, §2c)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelarts_exporter.cloud.quantity import MAX_QUANTITY, card_kind, maybe_cards, quantity


@pytest.mark.parametrize(
    ("given_value", "expected"),
    [
        (8, 8.0),
        ("8", 8.0),
        (2.5, 2.5),
        ("3920m", 3.92),
        ("1073m", 1.073),
        ("6270Mi", 6270 * 2**20),
        ("1468Gi", 1468 * 2**30),
        ("2k", 2000.0),
        ("1.5G", 1.5e9),
        ("2P", 2e15),
        ("1e3", 1000.0),
        ("12e-1", 1.2),
        (" 4 ", 4.0),
        (".5", 0.5),
        ("0", 0.0),
    ],
)
def test_quantities_numbers_and_strings_alike(given_value: object, expected: float) -> None:
    assert math.isclose(quantity(given_value), expected)


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (-1, "out of range"),
        ("-1", "not a quantity"),
        (True, "boolean"),
        (None, "NoneType"),
        ([8], "list"),
        ("8 cards", "not a quantity"),
        ("Gi", "not a quantity"),
        ("nan", "not a quantity"),
        (float("inf"), "out of range"),
        ("9" * 41, "longer than"),
        ("1e999", "out of range"),
        ("99999999999999999999Ei", "out of range"),
        (2.0**60, "out of range"),
        ("1E", "out of range"),
    ],
)
def test_bad_quantities_say_why_in_one_line(bad: object, says: str) -> None:
    with pytest.raises(ValueError, match=says) as caught:
        quantity(bad)
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < 100


@given(st.text(max_size=60))
def test_any_text_is_an_amount_in_range_or_a_value_error(text: str) -> None:
    try:
        value = quantity(text)
    except ValueError as error:
        assert "\n" not in str(error)
    else:
        assert 0 <= value <= MAX_QUANTITY


@given(st.integers(0, 2**53), st.sampled_from(["", "m", "k", "Ki", "Mi"]))
def test_integers_with_a_suffix_scale_exactly(n: int, suffix: str) -> None:
    scale = {"": 1, "m": 1e-3, "k": 1e3, "Ki": 1024, "Mi": 2**20}[suffix]
    if n * scale > MAX_QUANTITY:
        with pytest.raises(ValueError, match="out of range"):
            quantity(f"{n}{suffix}")
    else:
        assert math.isclose(quantity(f"{n}{suffix}"), float(n) * scale)


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("nvidia.com/gpu", "gpu"),
        ("nvidia.com/t4", "gpu"),
        ("huawei.com/ascend-snt9", "npu"),
        ("huawei.com/ascend-1980", "npu"),
        ("huawei.com/ascend-310", "npu"),
        ("tnt004", None),
        ("cpu", None),
        ("memory", None),
        ("huawei.com/other", None),
        ("nvidia.com", None),
    ],
)
def test_cards_are_classified_by_prefix(key: str, kind: str | None) -> None:
    assert card_kind(key) == kind


@given(st.text(min_size=1, max_size=30))
def test_every_prefixed_key_is_cards_of_its_kind(rest: str) -> None:
    assert card_kind("nvidia.com/" + rest) == "gpu"
    assert card_kind("huawei.com/ascend" + rest) == "npu"
    assert maybe_cards("nvidia.com/" + rest)


@pytest.mark.parametrize("key", ["cpu", "memory", "ephemeral-storage", "pods", "hugepages-2Mi"])
def test_kubernetes_own_resources_are_never_cards(key: str) -> None:
    assert not maybe_cards(key)


def test_an_unknown_runtime_key_may_be_cards() -> None:
    assert maybe_cards("tnt004")
