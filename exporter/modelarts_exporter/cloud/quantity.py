"""Resource amounts as the pool APIs write them, and which resource keys are accelerator cards.

The pool APIs give resources as maps of Kubernetes quantities, numbers and strings mixed in one
object (pools notes §2b, §2c): ``8``, ``"8"``, ``"3920m"``, ``"1468Gi"``, ``"1073m"`` (a fraction
of a card). :func:`quantity` reads any of them as a float and refuses, with a one-line reason,
anything else: a long string, a negative or non-finite amount, or one above 2**53.

Accelerator keys change between API versions and models (``nvidia.com/gpu``, ``tnt004``,
``nvidia.com/t4``, ``huawei.com/ascend-snt9``, ``huawei.com/ascend-1980``), so cards are
recognised by prefix (:func:`card_kind`), never by a fixed list of names.
"""

from __future__ import annotations

import math
import re
from typing import Final, Literal

from modelarts_exporter.text import one_line

CardKind = Literal["gpu", "npu"]
CARD_KINDS: Final[tuple[CardKind, ...]] = ("gpu", "npu")
MAX_QUANTITY: Final = float(2**53)
MAX_QUANTITY_TEXT: Final = 40
"""Longer than any honest quantity; a longer string is refused before it is looked at."""

_QUANTITY: Final = re.compile(
    r"\s*(?P<number>[0-9]{1,20}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})"
    r"(?:[eE](?P<exponent>[+-]?[0-9]{1,3}))?"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?\s*"
)
_SUFFIX: Final = {
    None: 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
NOT_CARDS: Final = frozenset({"cpu", "memory", "ephemeral-storage", "pods", "storage"})
"""Keys of a resource map that are never accelerator cards (Kubernetes' own names)."""


def quantity(value: object) -> float:
    """An amount from a number or a quantity string; :class:`ValueError` says why not."""
    if isinstance(value, bool):
        raise ValueError("expected a quantity, got a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        if len(value) > MAX_QUANTITY_TEXT:
            raise ValueError(f"quantity longer than {MAX_QUANTITY_TEXT} characters")
        match = _QUANTITY.fullmatch(value)
        if match is None:
            raise ValueError(f"not a quantity: {one_line(value, 24)!r}")
        number = float(match["number"]) * _SUFFIX[match["suffix"]]
        if match["exponent"] is not None:
            exponent = int(match["exponent"])
            number = number * 10.0**exponent if -30 <= exponent <= 30 else math.inf
    else:
        raise ValueError(f"expected a quantity, got {type(value).__name__}")
    if not math.isfinite(number) or not 0 <= number <= MAX_QUANTITY:
        raise ValueError(f"quantity out of range: {one_line(str(value), 24)}")
    return number


def card_kind(key: str) -> CardKind | None:
    """``gpu`` for ``nvidia.com/…``, ``npu`` for ``huawei.com/ascend…``, else ``None``."""
    if key.startswith("nvidia.com/"):
        return "gpu"
    if key.startswith("huawei.com/ascend"):
        return "npu"
    return None


def maybe_cards(key: str) -> bool:
    """Whether a runtime-metrics key can be cards: any key but CPU, memory and the like (its
    kind then comes from the pool's flavors when :func:`card_kind` does not know it)."""
    return key not in NOT_CARDS and not key.startswith("hugepages-")
