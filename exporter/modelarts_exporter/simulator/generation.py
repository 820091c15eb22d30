"""Random draws of the synthetic tenant: the initial history, and the pieces evolution reuses.

The history looks like the output of the tenant's own creation process run until now: versions
spaced by the creation rate, the young ones still active, the rest finished with plausible
timestamps. Bulk draws stay in C where possible (``randbytes`` + ``bytes.translate`` through
256-slot lookup tables) so that a million versions take a couple of seconds.
"""

from __future__ import annotations

import heapq
import math
import random
from array import array
from collections.abc import Sequence
from itertools import accumulate
from typing import Final

from modelarts_exporter.cloud.statuses import Phase

from . import catalog
from .columns import (
    ENDED_UNSTARTED,
    FLAVOR_ABSENT,
    FLAVOR_NULL,
    GPU_NULL,
    NOT_STARTED,
    NPU_NULL,
    START_NULL,
    STARTED,
    Columns,
    timeline_kind,
)

FIRST_ID: Final = 10_000


class Choice:
    """A weighted draw of small values (0-255) through a 256-slot lookup table.

    Weights are rounded to 1/256; each nonzero weight keeps at least one slot.
    """

    __slots__ = ("_lut",)

    def __init__(self, table: Sequence[tuple[int, float]]) -> None:
        total = sum(weight for _, weight in table)
        slots = [max(1, int(weight / total * 256)) if weight > 0 else 0 for _, weight in table]
        heaviest = max(range(len(table)), key=lambda i: table[i][1])
        slots[heaviest] += 256 - sum(slots)
        self._lut = bytes(
            value for (value, _), k in zip(table, slots, strict=True) for _ in range(k)
        )

    @classmethod
    def indexes(cls, table: Sequence[tuple[object, float]]) -> Choice:
        """A draw of positions in ``table`` rather than of its values."""
        return cls([(i, weight) for i, (_, weight) in enumerate(table)])

    def one(self, rng: random.Random) -> int:
        return self._lut[rng.getrandbits(8)]

    def many(self, rng: random.Random, k: int) -> list[int]:
        return list(rng.randbytes(k).translate(self._lut))


POOL: Final = Choice.indexes(catalog.POOLS)
FLAVOR: Final = Choice.indexes([(f, f[-1]) for f in catalog.FLAVORS])
DESC: Final = Choice.indexes(catalog.DESCRIPTIONS)
ID_GAP: Final = Choice([(1, 0.4), (2, 0.3), (3, 0.2), (7, 0.1)])
TERMINAL: Final = Choice(catalog.TERMINAL_MIX)
ACTIVE: Final = Choice(catalog.ACTIVE_MIX)
NEW: Final = Choice(catalog.NEW_VERSION_MIX)
AFTER_PENDING: Final = Choice(catalog.PENDING_NEXT)
AFTER_RUNNING: Final = Choice(catalog.RUNNING_NEXT)


def expo(rng: random.Random, mean: float) -> float:
    return -math.log(1.0 - rng.random()) * mean


def dwell_times_ms(target_active: int, creation_rate_per_s: float) -> dict[Phase, float]:
    """Mean time in each active phase such that, by Little's law, creation rate * mean active
    lifetime = ``target_active``: what finishes is replaced by what is created."""
    pending, running = dict(catalog.PENDING_NEXT), dict(catalog.RUNNING_NEXT)
    p_run = pending[8] / sum(pending.values())
    total = sum(running.values())
    p_scale, p_kill = running[catalog.SCALE] / total, running[9] / total
    per_run = (catalog.RUNNING_DWELL + p_kill * catalog.KILLING_DWELL) / (1.0 - p_scale)
    relative_lifetime = catalog.PENDING_DWELL + p_run * per_run
    lifetime_ms = max(target_active / creation_rate_per_s, 1.0) * 1000.0
    unit = lifetime_ms / relative_lifetime
    return {
        Phase.PENDING: catalog.PENDING_DWELL * unit,
        Phase.RUNNING: catalog.RUNNING_DWELL * unit,
        Phase.STOPPING: catalog.KILLING_DWELL * unit,
    }


def sparse_bits(columns: Columns, rng: random.Random, row: int) -> int:
    """Optional fields of a sparse version: at least one becomes null or missing."""
    mask = rng.getrandbits(5) or 1 << rng.randrange(5)
    bits = 0
    if mask & 1:
        bits |= START_NULL
    if mask & 2:
        columns.desc[row] = columns.descs.index(None)
    if mask & 4:
        bits |= FLAVOR_ABSENT if rng.random() < 0.5 else FLAVOR_NULL
    if mask & 8:
        bits |= GPU_NULL
    if mask & 16:
        bits |= NPU_NULL
    return bits


def generate(
    columns: Columns,
    rng: random.Random,
    *,
    size: int,
    now_ms: int,
    creation_rate_per_s: float,
    dwell_ms: dict[Phase, float],
    n_active: int,
    n_unknown: int,
    sparse_fraction: float,
) -> list[int]:
    """Fill empty ``columns`` with ``size`` versions created before ``now_ms``; the active rows."""
    n = size
    gap = 1000.0 / creation_rate_per_s
    base = now_ms - gap * n
    create = [int(base + (i + rng.random()) * gap) for i in range(n)]
    id_gaps = ID_GAP.many(rng, n)
    if n:
        id_gaps[0] += FIRST_ID
    codes, active = _statuses(rng, create, now_ms, sum(dwell_ms.values()), n_active, n_unknown)
    start, end, duration = _timelines(rng, create, codes, now_ms, dwell_ms)

    columns.ids = array("q", accumulate(id_gaps))
    columns.status = array("H", codes)
    columns.create = array("q", create)
    columns.start, columns.end, columns.duration = start, end, duration
    workspaces = len(columns.workspaces)
    columns.ws = array("H", rng.choices(range(workspaces), k=n) if workspaces > 1 else [0] * n)
    columns.pool = array("H", POOL.many(rng, n))
    columns.flavor = array("H", FLAVOR.many(rng, n))
    columns.desc = array("H", DESC.many(rng, n))
    columns.flags = array("H", bytes(2 * n))
    for row in rng.sample(range(n), round(sparse_fraction * n)):
        columns.flags[row] = sparse_bits(columns, rng, row)
    return active


def _statuses(
    rng: random.Random,
    create: list[int],
    now_ms: int,
    lifetime_ms: float,
    n_active: int,
    n_unknown: int,
) -> tuple[list[int], list[int]]:
    """Status per row, and the active rows (ascending)."""
    n = len(create)
    codes = TERMINAL.many(rng, n)
    # Active versions are the young ones: a version of age a is still alive with odds
    # exp(-a / lifetime); pick the wanted count by sampled lifetimes among the newest.
    n_active = min(n_active, n)
    window = range(max(0, n - 4 * n_active - 16), n)
    score = {r: (now_ms - create[r]) - expo(rng, lifetime_ms) for r in window}
    active = sorted(heapq.nsmallest(n_active, window, key=score.__getitem__))
    for row, code in zip(active, ACTIVE.many(rng, n_active), strict=True):
        codes[row] = code
    active_set = set(active)
    n_unknown = min(n_unknown, n - n_active)
    candidates = (r for r in rng.sample(range(n), n_unknown + n_active) if r not in active_set)
    for _, row in zip(range(n_unknown), candidates, strict=False):
        codes[row] = rng.choice(catalog.UNKNOWN_CODES)
    return codes, active


def _timelines(
    rng: random.Random,
    create: list[int],
    codes: list[int],
    now_ms: int,
    dwell_ms: dict[Phase, float],
) -> tuple[array[int], array[int], array[int]]:
    """``start_time``, ``end_time``, ``duration`` per row, consistent with status and clock."""
    n = len(create)
    # Arrays from the start: three lists of a million ints would triple the peak memory.
    start, end, duration = (array("q", bytes(8 * n)) for _ in range(3))
    pending_ms, running_ms = dwell_ms[Phase.PENDING], dwell_ms[Phase.RUNNING]
    kinds = {code: timeline_kind(code) for code in set(codes)}
    rnd, log = rng.random, math.log  # exponential draws inlined: this loop runs per version
    for row, code in enumerate(codes):
        kind = kinds[code]
        if kind == NOT_STARTED:
            continue
        created = create[row]
        avail = now_ms - created
        queued = -log(1.0 - rnd()) * pending_ms
        if kind == STARTED:
            start[row] = created + min(avail, int(queued))
        elif kind == ENDED_UNSTARTED:
            end[row] = created + min(avail, int(queued))
        else:
            ran = -log(1.0 - rnd()) * running_ms
            if queued + ran > avail:
                shrink = avail * rnd() / (queued + ran)
                queued, ran = queued * shrink, ran * shrink
            start[row] = began = created + int(queued)
            end[row] = began + int(ran)
            duration[row] = int(ran)
    return start, end, duration
