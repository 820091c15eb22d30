"""Label values from the API, bounded: at most ``cap`` distinct values of a label keep series of
their own per target; the rest are summed under :data:`OTHER`, so totals stay exact.

Which values keep their own series is decided the same way at every poll, from the listing
alone: the ``cap`` values with the most versions, ties broken by name. A value's series therefore
changes only when the counts change places, never from one scrape or restart to the next.

Observe-once sums (histograms, accelerator-seconds) must never decrease, so a value once given
its own series there keeps it (:class:`Admitted`), and an observation made while its value had
none stays in :data:`OTHER`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

OTHER = "_other"
"""The value under which the values beyond the cap are summed."""
DEFAULT_CAP = 500

CAPPED_LABELS: tuple[str, ...] = ("pool_id", "flavor_code", "status")
"""The labels whose values come from the API and are capped (``job_kind`` is a fixed table, v2
phases are capped process-wide in ``cloud/v2_statuses``)."""


def kept(counts: Mapping[str, int], cap: int) -> frozenset[str]:
    """The values that keep their own series: all of them within the cap, else the ``cap`` with
    the largest counts, ties by name."""
    if len(counts) <= cap:
        return frozenset(counts)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return frozenset(name for name, _ in ranked[:cap])


def totals(items: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Counts summed per value."""
    summed: dict[str, int] = {}
    for name, n in items:
        summed[name] = summed.get(name, 0) + n
    return summed


@dataclass(slots=True)
class Admitted:
    """The values of one label with their own observe-once series: at most ``cap``, never
    taken back (until the exporter restarts)."""

    cap: int
    values: set[str] = field(default_factory=set)

    def label(self, value: str, kept_now: frozenset[str]) -> str:
        """The series an observation of ``value`` goes to: its own when it has one, or when it
        keeps one in the gauges now and there is room; else :data:`OTHER`."""
        if value in self.values:
            return value
        if value in kept_now and len(self.values) < self.cap:
            self.values.add(value)
            return value
        return OTHER
