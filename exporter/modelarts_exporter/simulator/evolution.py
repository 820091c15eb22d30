"""How the v1 tenant's versions evolve: new versions arrive and active ones change status.

Event-driven: each active version has its next transition scheduled on a heap, and new versions
arrive at exponential gaps, so running to ``t1`` then ``t2`` ends where running to ``t2`` does.
Deterministic for its random generator. Not thread-safe: :class:`~.tenant.Tenant` holds its lock
around every call. No I/O here.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence

from modelarts_exporter.cloud.statuses import Phase, status_of

from . import catalog, generation
from .columns import DELETED, EVOLVING, Columns


class Evolution:
    """The schedule of one tenant's columns: pending transitions and the next creation."""

    def __init__(
        self,
        columns: Columns,
        rng: random.Random,
        *,
        creation_rate_per_s: float,
        dwell_ms: dict[Phase, float],
        sparse_fraction: float,
        now_ms: int,
        active_rows: Sequence[int],
    ) -> None:
        """``active_rows`` (generated before ``now_ms``) get their next transition first, then
        the first creation is drawn: the order the random draws have always had."""
        self._columns = columns
        self._rng = rng
        self._rate = creation_rate_per_s
        self._dwell_ms = dwell_ms
        self._sparse_fraction = sparse_fraction
        # (due ms, sequence, row, status when scheduled): a stale entry is skipped when popped.
        self._events: list[tuple[int, int, int, int]] = []
        self._event_seq = 0
        for row in active_rows:
            self.schedule(row, columns.status[row], now_ms)
        self._next_create = now_ms + self._creation_gap_ms()

    def _creation_gap_ms(self) -> int:
        return max(1, int(generation.expo(self._rng, 1000.0 / self._rate)))

    def schedule(self, row: int, code: int, at_ms: int) -> None:
        """Schedule the next transition of ``row``, now in status ``code`` (if it is active)."""
        phase = status_of(code).phase
        if phase not in EVOLVING:
            return
        due = at_ms + max(1, int(generation.expo(self._rng, self._dwell_ms[phase])))
        self._event_seq += 1
        heapq.heappush(self._events, (due, self._event_seq, row, code))

    def run_until(self, target_ms: int) -> bool:
        """Carry out every creation and transition due by ``target_ms``, in time order; whether
        anything changed."""
        events, columns = self._events, self._columns
        changed = False
        while True:
            due_event = events[0][0] if events else math.inf
            if min(due_event, self._next_create) > target_ms:
                return changed
            if due_event <= self._next_create:
                due, _, row, code = heapq.heappop(events)
                if columns.status[row] == code and not columns.flags[row] & DELETED:
                    self._evolve(row, code, due)
            else:
                due = self._next_create
                self.create_version(due)
                self._next_create = due + self._creation_gap_ms()
            changed = True

    def _evolve(self, row: int, code: int, at_ms: int) -> None:
        phase = status_of(code).phase
        if phase is Phase.STOPPING:
            new = catalog.KILLING_NEXT
        else:
            draw = generation.AFTER_PENDING if phase is Phase.PENDING else generation.AFTER_RUNNING
            new = draw.one(self._rng)
            if new == catalog.SCALE:
                new = 15 if code == 8 else 8
        self._columns.set_status(row, new, at_ms)
        self.schedule(row, new, at_ms)

    def create_version(self, at_ms: int, workspace: int | None = None) -> int:
        """A new version created at ``at_ms`` (in a random workspace by default); its id."""
        rng, columns = self._rng, self._columns
        last_id = columns.ids[-1] if columns.ids else generation.FIRST_ID
        version_id = last_id + generation.ID_GAP.one(rng)
        code = generation.NEW.one(rng)
        if workspace is None:
            workspace = rng.randrange(len(columns.workspaces))
        row = columns.append(
            version_id,
            code,
            (at_ms, 0, 0, 0),
            workspace,
            generation.POOL.one(rng),
            generation.FLAVOR.one(rng),
            generation.DESC.one(rng),
        )
        if rng.random() < self._sparse_fraction:
            columns.flags[row] = generation.sparse_bits(columns, rng, row)
        self.schedule(row, code, at_ms)
        return version_id
