"""What the simulator counts of the requests it serves: totals, answers by status, each query.

Tests read these (``SimulatorServer.stats()``, ``GET /_sim/stats``) to check how the exporter
paged, what it asked for, and how many answers were faults.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Final, NamedTuple

MAX_QUERIES: Final = 100_000
"""How many per-request query records the stats keep (the newest)."""


class QueryRecord(NamedTuple):
    """The paging and filter parameters of one API request (``None``: absent or malformed)."""

    offset: int | None
    limit: int | None
    status: int | None


@dataclass(frozen=True, slots=True)
class Stats:
    requests: int
    """API requests received (everything but ``/_sim/*``)."""
    by_status: Counter[int]
    """Answers by HTTP status; 0 counts requests ended without an answer (reset, hang)."""
    queries: tuple[QueryRecord, ...]


class Recorder:
    """Thread-safe request statistics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._by_status: Counter[int] = Counter()
        self._queries: deque[QueryRecord] = deque(maxlen=MAX_QUERIES)

    def request(self, record: QueryRecord) -> int:
        """Count a request; its 1-based sequence number."""
        with self._lock:
            self._requests += 1
            self._queries.append(record)
            return self._requests

    def answer(self, status: int) -> None:
        with self._lock:
            self._by_status[status] += 1

    def snapshot(self) -> Stats:
        with self._lock:
            return Stats(self._requests, Counter(self._by_status), tuple(self._queries))

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._by_status.clear()
            self._queries.clear()
