"""How the tenant stores versions: one array per field, small lookup tables, and the record as
the API serializes it.

Column-wise storage (about 50 bytes per version) instead of one dict per version keeps a
1,000,000-version tenant in tens of megabytes; dicts are built only for the records being served.
Row order is creation order and ``version_id`` grows with it, so a version is found by bisection.
Not thread-safe on its own: the tenant's lock guards it.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import Final, TypeVar

from modelarts_exporter.cloud.statuses import Phase, status_of

from . import catalog

Record = dict[str, object]


class Absent:
    """Type of :data:`ABSENT`: given to ``Tenant.add_version``, it leaves a key out."""

    _instance: Absent | None = None

    def __new__(cls) -> Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = Absent()

# Per-version flag bits: how a record deviates from the fully populated shape.
DELETED: Final = 1
START_NULL: Final = 2  # start_time null instead of 0 while not started
DESC_ABSENT: Final = 4
FLAVOR_NULL: Final = 8
FLAVOR_ABSENT: Final = 16
GPU_NULL: Final = 32
GPU_ABSENT: Final = 64
NPU_NULL: Final = 128
NPU_ABSENT: Final = 256

EVOLVING: Final = frozenset({Phase.PENDING, Phase.RUNNING, Phase.STOPPING})
"""Phases in which a version moves on by itself."""

# How a status shapes a version's timestamps; ordered so ">= ENDED_UNSTARTED" means "has ended".
NOT_STARTED: Final = 0
STARTED: Final = 1
ENDED_UNSTARTED: Final = 2
ENDED: Final = 3


def timeline_kind(code: int) -> int:
    phase = status_of(code).phase
    if phase is Phase.PENDING:
        return NOT_STARTED
    if phase in EVOLVING:
        return STARTED
    return ENDED_UNSTARTED if code in catalog.NEVER_STARTED else ENDED


def derived_name(version_id: int) -> str:
    """The generated ``version_name`` (``trainjob-xxxx``) of a version id, stable across runs."""
    return f"trainjob-{(version_id * 0x9E3779B1) >> 16 & 0xFFFF:04x}"


_T = TypeVar("_T")


def intern(table: list[_T], value: _T) -> int:
    """Index of ``value`` in a lookup table, appending it if new."""
    try:
        return table.index(value)
    except ValueError:
        table.append(value)
        return len(table) - 1


class Columns:
    """The versions, one array per field; ``ws``, ``pool``, ``flavor`` and ``desc`` hold indexes
    into the lookup tables ``workspaces``, ``pools``, ``flavors`` and ``descs``."""

    def __init__(self, workspaces: list[str]) -> None:
        self.workspaces = workspaces
        self.pools: list[str | None] = [pool for pool, _ in catalog.POOLS]
        self.flavors: list[tuple[str, int, int]] = [(c, g, n) for c, g, n, _ in catalog.FLAVORS]
        self.descs: list[str | None] = [desc for desc, _ in catalog.DESCRIPTIONS]
        self.ids = array("q")
        self.status = array("H")
        self.create = array("q")
        self.start = array("q")
        self.end = array("q")
        self.duration = array("q")
        self.ws = array("H")
        self.pool = array("H")
        self.flavor = array("H")
        self.desc = array("H")
        self.flags = array("H")
        self.names: dict[int, str] = {}
        """Row → explicit ``version_name``; every other name is :func:`derived_name`."""
        self.deleted = 0

    def __len__(self) -> int:
        return len(self.ids) - self.deleted

    def append(
        self,
        version_id: int,
        status: int,
        times: tuple[int, int, int, int],
        ws: int,
        pool: int,
        flavor: int,
        desc: int,
        flags: int = 0,
    ) -> int:
        """Add a row (``times``: create, start, end, duration); its index."""
        self.ids.append(version_id)
        self.status.append(status)
        create, start, end, duration = times
        self.create.append(create)
        self.start.append(start)
        self.end.append(end)
        self.duration.append(duration)
        self.ws.append(ws)
        self.pool.append(pool)
        self.flavor.append(flavor)
        self.desc.append(desc)
        self.flags.append(flags)
        return len(self.ids) - 1

    def row_of(self, version_id: int) -> int:
        row = bisect_left(self.ids, version_id)
        if row == len(self.ids) or self.ids[row] != version_id or self.flags[row] & DELETED:
            raise KeyError(version_id)
        return row

    def set_status(self, row: int, code: int, at_ms: int) -> None:
        """Change a status and keep the timestamps consistent with the new phase."""
        self.status[row] = code
        phase = status_of(code).phase
        if phase is Phase.PENDING:
            self.start[row] = self.end[row] = self.duration[row] = 0
        elif phase in EVOLVING:
            if not self.start[row]:
                self.start[row] = at_ms
            self.end[row] = self.duration[row] = 0
        elif not self.end[row]:
            self.end[row] = at_ms
            started = self.start[row]
            self.duration[row] = at_ms - started if started else 0

    def record(self, row: int) -> Record:
        """One version exactly as the API serializes it (key order of the documented sample)."""
        flags = self.flags[row]
        version_id = self.ids[row]
        start = self.start[row]
        code, gpu, npu = self.flavors[self.flavor[row]]
        name = self.names.get(row)
        record: Record = {
            "version_id": version_id,
            "version_name": derived_name(version_id) if name is None else name,
            "status": self.status[row],
            "create_time": self.create[row],
            "start_time": None if not start and flags & START_NULL else start,
            "end_time": self.end[row],
            "duration": self.duration[row],
        }
        if not flags & DESC_ABSENT:
            record["version_desc"] = self.descs[self.desc[row]]
        pool = self.pools[self.pool[row]]
        if pool is not None:
            record["pool_id"] = pool
        if not flags & FLAVOR_ABSENT:
            record["flavor_code"] = None if flags & FLAVOR_NULL else code
        if not flags & NPU_ABSENT:
            record["npu_num"] = None if flags & NPU_NULL else npu
        if not flags & GPU_ABSENT:
            record["gpu_num"] = None if flags & GPU_NULL else gpu
        return record

    def rows(self, status: int | None, pool_id: str | None, workspace_id: str | None) -> list[int]:
        """Live rows matching the filters (``None``: any), by ascending id."""
        flags, ids = self.flags, range(len(self.ids))
        if workspace_id is None:
            rows = [r for r in ids if not flags[r] & DELETED]
        elif workspace_id in self.workspaces:
            ws, ws_col = self.workspaces.index(workspace_id), self.ws
            rows = [r for r in ids if ws_col[r] == ws and not flags[r] & DELETED]
        else:
            return []
        if status is not None:
            status_col = self.status
            rows = [r for r in rows if status_col[r] == status]
        if pool_id is not None:
            if pool_id not in self.pools:
                return []
            pool, pool_col = self.pools.index(pool_id), self.pool
            rows = [r for r in rows if pool_col[r] == pool]
        return rows

    def sort(self, rows: list[int], sort_by: str) -> None:
        """Sort id-ordered rows by an API sort field, stably: ties stay by ascending id."""
        if sort_by == "create_time":
            rows.sort(key=self.create.__getitem__)
        elif sort_by == "status":
            rows.sort(key=self.status.__getitem__)
        elif sort_by == "duration":
            rows.sort(key=self.duration.__getitem__)
        elif sort_by == "job_name":
            rows.sort(key=self._name_key)
        elif sort_by == "job_desc":
            rows.sort(key=self._desc_key)
        else:
            raise ValueError(f"unsupported sort field {sort_by!r}")

    def _name_key(self, row: int) -> str:
        name = self.names.get(row)
        return derived_name(self.ids[row]) if name is None else name

    def _desc_key(self, row: int) -> str:
        if self.flags[row] & DESC_ABSENT:
            return ""
        return self.descs[self.desc[row]] or ""

    def optional_fields(self, fields: dict[str, object]) -> tuple[int, int, int]:
        """Flag bits, description index and flavor index for ``add_version`` fields that may
        be null or absent; GPU and NPU counts default to the flavor's."""
        flags = 0
        desc = fields.get("version_desc")
        if desc is ABSENT:
            flags |= DESC_ABSENT
            desc = None
        if not isinstance(desc, str | None):
            raise TypeError(f"version_desc must be a string, None or ABSENT, got {desc!r}")
        flavor = fields.get("flavor_code", catalog.DEFAULT_FLAVOR)
        if flavor is None or flavor is ABSENT:
            flags |= FLAVOR_NULL if flavor is None else FLAVOR_ABSENT
            flavor = ""
        if not isinstance(flavor, str):
            raise TypeError(f"flavor_code must be a string, None or ABSENT, got {flavor!r}")
        known = {name: (gpu, npu) for name, gpu, npu, _ in catalog.FLAVORS}.get(flavor, (0, 0))
        counts = []
        for key, default, null_bit, absent_bit in (
            ("gpu_num", known[0], GPU_NULL, GPU_ABSENT),
            ("npu_num", known[1], NPU_NULL, NPU_ABSENT),
        ):
            value = fields.get(key, default)
            if value is None or value is ABSENT:
                flags |= null_bit if value is None else absent_bit
                value = 0
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{key} must be an int, None or ABSENT, got {value!r}")
            counts.append(value)
        flavor_index = intern(self.flavors, (flavor, counts[0], counts[1]))
        return flags, intern(self.descs, desc), flavor_index
