"""The synthetic tenant behind the simulator: the versions it holds, as the v1 API lists them.

Deterministic: the same arguments and the same sequence of calls give the same versions, byte
for byte, so a test can replay a scenario. The tenant's clock (``now_ms``) starts at construction
and moves only through :meth:`Tenant.advance`; evolution is event-driven (each active version has
its next transition scheduled, see :mod:`.evolution`), so ``advance(10); advance(10)`` ends where
``advance(20)`` does.

Sorted listings are cached per (filters, sort) until the next change, so paging through a big
tenant costs a slice per request, not a sort. Every public method holds the tenant's lock:
request threads, the real-time clock thread and a test may share one tenant. No I/O here.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Final, Literal

from . import catalog, generation
from .columns import (
    DELETED,
    ENDED,
    ENDED_UNSTARTED,
    START_NULL,
    STARTED,
    Columns,
    Record,
    intern,
    timeline_kind,
)
from .evolution import Evolution

OffsetMode = Literal["record", "page"]
SORT_FIELDS: Final = frozenset({"create_time", "job_desc", "status", "duration", "job_name"})
ORDERS: Final = frozenset({"asc", "desc"})
_CacheKey = tuple[int | None, str | None, str, str]
_CACHE_SIZE: Final = 16
_FIELDS: Final = frozenset(
    {
        "version_id",
        "version_name",
        "status",
        "workspace_id",
        "create_time",
        "start_time",
        "end_time",
        "duration",
        "version_desc",
        "pool_id",
        "flavor_code",
        "gpu_num",
        "npu_num",
    }
)


class Tenant:
    """A project's training-job versions in every workspace, as the versions API would list them.

    ``creation_rate_per_s`` defaults to ``size / 100,000`` per second with a floor of 0.05, and
    dwell times are set so that about ``active_fraction * size`` versions stay active.
    ``speed`` makes it a project that many times busier: versions are created ``speed`` times as
    often and each phase lasts ``1/speed`` as long, the same number stay active, and the clock
    still runs at the pace :meth:`advance` gives it (the demo's tenant keeps the wall clock's
    time, so the exporter's ages are real, and evolves fast enough to watch).
    """

    def __init__(
        self,
        *,
        size: int,
        seed: int = 0,
        now_ms: int | None = None,
        workspaces: Sequence[str] = ("0",),
        active_fraction: float = 0.02,
        unknown_status_fraction: float = 0.0,
        sparse_fraction: float = 0.05,
        creation_rate_per_s: float | None = None,
        speed: float = 1.0,
    ) -> None:
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        for name, value in (
            ("active_fraction", active_fraction),
            ("unknown_status_fraction", unknown_status_fraction),
            ("sparse_fraction", sparse_fraction),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if active_fraction + unknown_status_fraction > 1.0:
            raise ValueError("active_fraction + unknown_status_fraction must not exceed 1")
        if not workspaces or len(set(workspaces)) != len(workspaces):
            raise ValueError("workspaces must be a non-empty list of distinct ids")
        rate = (
            max(size / 100_000, catalog.MIN_CREATION_RATE_PER_S)
            if creation_rate_per_s is None
            else creation_rate_per_s
        )
        if not rate > 0:
            raise ValueError(f"creation_rate_per_s must be > 0, got {creation_rate_per_s}")
        if not (speed > 0 and math.isfinite(speed)):
            raise ValueError(f"speed must be a finite number > 0, got {speed}")
        rate *= speed

        self._lock = threading.RLock()
        self._now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        target_active = round(active_fraction * size)
        dwell_ms = generation.dwell_times_ms(target_active, rate)
        self._columns = Columns(list(workspaces))
        self._cache: OrderedDict[_CacheKey, list[int]] = OrderedDict()
        active = generation.generate(
            self._columns,
            random.Random(f"modelarts-sim:{seed}:generate"),
            size=size,
            now_ms=self._now,
            creation_rate_per_s=rate,
            dwell_ms=dwell_ms,
            n_active=target_active,
            n_unknown=round(unknown_status_fraction * size),
            sparse_fraction=sparse_fraction,
        )
        self._evolution = Evolution(
            self._columns,
            random.Random(f"modelarts-sim:{seed}:evolve"),
            creation_rate_per_s=rate,
            dwell_ms=dwell_ms,
            sparse_fraction=sparse_fraction,
            now_ms=self._now,
            active_rows=active,
        )

    def advance(self, seconds: float) -> None:
        """Move the clock; versions are created and change status on the way, in time order."""
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise ValueError(f"seconds must be a finite number >= 0, got {seconds}")
        with self._lock:
            target = self._now + int(seconds * 1000)
            if self._evolution.run_until(target):
                self._cache.clear()
            self._now = target

    # -------------------------------------------------------------------- test and demo hooks

    @property
    def now_ms(self) -> int:
        """The tenant's clock, epoch milliseconds."""
        with self._lock:
            return self._now

    @property
    def workspaces(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._columns.workspaces)

    def __len__(self) -> int:
        with self._lock:
            return len(self._columns)

    def create_versions(self, count: int, *, workspace_id: str | None = None) -> list[int]:
        """New pending versions created at the current clock, in ``workspace_id`` (default: a
        random workspace of the tenant); their ids."""
        with self._lock:
            workspaces = self._columns.workspaces
            ws = None if workspace_id is None else intern(workspaces, workspace_id)
            ids = [self._evolution.create_version(self._now, ws) for _ in range(count)]
            self._cache.clear()
            return ids

    def set_status(self, version_id: int, code: int) -> None:
        """Force a status now; timestamps follow, and an active status keeps evolving from there."""
        if not 0 <= code <= 0xFFFF:
            raise ValueError(f"status code out of range: {code}")
        with self._lock:
            row = self._columns.row_of(version_id)
            self._columns.set_status(row, code, self._now)
            self._evolution.schedule(row, code, self._now)
            self._cache.clear()

    def delete_version(self, version_id: int) -> None:
        with self._lock:
            columns = self._columns
            columns.flags[columns.row_of(version_id)] |= DELETED
            columns.deleted += 1
            self._cache.clear()

    def add_version(self, **fields: object) -> int:
        """Add one version and return its id.

        Keys are record fields (plus ``workspace_id``); unspecified ones are derived: status 10,
        created now, timestamps consistent with the status, the default GPU flavor, public pool.
        ``None`` makes a field null (for ``pool_id``: the public pool, key absent; for
        ``start_time``: null instead of 0), :data:`ABSENT` leaves ``version_desc``,
        ``flavor_code``, ``gpu_num`` or ``npu_num`` out. An explicit ``version_id`` must exceed
        every existing id (ids grow with creation).
        """
        unknown = set(fields) - _FIELDS
        if unknown:
            raise TypeError(f"unknown version fields: {sorted(unknown)}")
        with self._lock:
            return self._add(fields)

    def _add(self, fields: dict[str, object]) -> int:
        columns = self._columns
        last_id = columns.ids[-1] if columns.ids else generation.FIRST_ID
        version_id = _integer(fields, "version_id", last_id + 1)
        if version_id <= last_id:
            raise ValueError(f"version_id must exceed the newest id {last_id}")
        code = _integer(fields, "status", 10)
        if not 0 <= code <= 0xFFFF:
            raise ValueError(f"status code out of range: {code}")
        created = _integer(fields, "create_time", self._now)
        kind = timeline_kind(code)
        start_null = "start_time" in fields and fields["start_time"] is None
        if start_null:
            fields = {**fields, "start_time": 0}
        start = _integer(fields, "start_time", created if kind in (STARTED, ENDED) else 0)
        ended = kind >= ENDED_UNSTARTED
        end = _integer(fields, "end_time", max(created, self._now) if ended else 0)
        duration = _integer(fields, "duration", end - start if end and start else 0)
        workspace = fields.get("workspace_id", columns.workspaces[0])
        name = fields.get("version_name")
        pool = fields.get("pool_id")
        if not isinstance(workspace, str) or not isinstance(name, str | None):
            raise TypeError("workspace_id and version_name must be strings")
        if not isinstance(pool, str | None):
            raise TypeError(f"pool_id must be a string or None, got {pool!r}")
        flags, desc, flavor = columns.optional_fields(fields)
        row = columns.append(
            version_id,
            code,
            (created, start, end, duration),
            intern(columns.workspaces, workspace),
            intern(columns.pools, pool),
            flavor,
            desc,
            flags | (START_NULL if start_null else 0),
        )
        if name is not None:
            columns.names[row] = name
        self._evolution.schedule(row, code, self._now)
        self._cache.clear()
        return version_id

    # -------------------------------------------------------------------------------- reading

    def record(self, version_id: int) -> Record:
        with self._lock:
            return self._columns.record(self._columns.row_of(version_id))

    def records(self) -> list[Record]:
        """Every version of every workspace, by ascending id, as fresh dicts."""
        with self._lock:
            columns = self._columns
            return [columns.record(r) for r in columns.rows(None, None, None)]

    def records_in(self, workspace_id: str) -> list[Record]:
        """The versions of one workspace, by ascending id."""
        with self._lock:
            columns = self._columns
            return [columns.record(r) for r in columns.rows(None, None, workspace_id)]

    def list_page(
        self,
        *,
        offset: int = 0,
        limit: int = 20,
        offset_mode: OffsetMode = "record",
        status: int | None = None,
        pool_id: str | None = None,
        workspace_id: str = "0",
        sort_by: str = "create_time",
        order: str = "desc",
    ) -> tuple[int, list[Record]]:
        """``(matching versions, records of the page)``: what one API call returns.

        ``offset_mode="record"`` skips ``offset`` records; ``"page"`` makes ``offset`` a 0-based
        page index. ``limit=0`` returns every matching record (and ignores ``offset``). Ties of the
        sort key are broken by ``version_id`` in the same direction, so the order is total.
        """
        if sort_by not in SORT_FIELDS or order not in ORDERS:
            raise ValueError(f"unsupported sort {sort_by!r} {order!r}")
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must be >= 0")
        with self._lock:
            ascending = self._sorted(status, pool_id, workspace_id, sort_by)
            total = len(ascending)
            if limit == 0:
                first, stop = 0, total
            else:
                first = offset * limit if offset_mode == "page" else offset
                stop = first + limit
            if order == "asc":
                rows = ascending[first:stop]
            else:
                rows = ascending[max(total - stop, 0) : max(total - first, 0)][::-1]
            return total, [self._columns.record(r) for r in rows]

    def _sorted(
        self, status: int | None, pool_id: str | None, workspace_id: str, sort_by: str
    ) -> list[int]:
        """Matching rows in ascending sort order (ties by ascending id); "desc" reads it
        backwards, which also reverses the tie-break, as promised."""
        key = (status, pool_id, workspace_id, sort_by)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        rows = self._columns.rows(status, pool_id, workspace_id)
        self._columns.sort(rows, sort_by)
        self._cache[key] = rows
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return rows


def _integer(fields: dict[str, object], key: str, default: int) -> int:
    value = fields.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{key} must be an int, got {value!r}")
    return value
