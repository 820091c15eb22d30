"""The active (non-terminal) versions of a listing, held compactly: one array per field.

The active share of a tenant is not ours to choose, and a parsed record (a dict with its values,
about 600 bytes) per active version was most of the exporter's memory at a large share
(docs/performance.md). :class:`Active` keeps only what the snapshot and incremental polls read,
about 50 bytes a version and no Python object per version:

- the gauge key and the user key (status, pool, flavor and card counts as the API sent them),
  each as the number of a key in :class:`Keys`, the distinct keys of one listing: a tenant has a
  few hundred whatever its size;
- ``version_id`` and ``create_time`` in arrays;
- ``version_name`` and ``v2_id``, read only to name the oldest version of a phase, as UTF-8 in one
  buffer each.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from itertools import compress
from operator import attrgetter
from typing import TypeVar

from modelarts_exporter.cloud.models import Version

GaugeKey = tuple[int, str | None, str | None, int | None, int | None]
"""``(status, pool_id, flavor_code, gpu_num, npu_num)`` as the API sent them."""
# attrgetter runs in C: the builder's fast path maps these over whole pages.
gauge_key: Callable[[Version], GaugeKey] = attrgetter(
    "status", "pool_id", "flavor_code", "gpu_num", "npu_num"
)
UserKey = tuple[str | None, int, int | None, int | None]
"""``(user_name, status, gpu_num, npu_num)`` as the API sent them."""
user_key: Callable[[Version], UserKey] = attrgetter("user_name", "status", "gpu_num", "npu_num")
K = TypeVar("K", GaugeKey, UserKey)


class Keys:
    """The distinct gauge and user keys of one listing, numbered in order of first use. Shared by
    every :class:`Active` of a listing, so that joining two is joining their arrays."""

    __slots__ = ("_gauge_numbers", "_user_numbers", "gauge", "user")

    def __init__(self) -> None:
        self.gauge: list[GaugeKey] = []
        self.user: list[UserKey] = []
        self._gauge_numbers: dict[GaugeKey, int] = {}
        self._user_numbers: dict[UserKey, int] = {}

    def gauge_number(self, key: GaugeKey) -> int:
        return _number(key, self._gauge_numbers, self.gauge)

    def user_number(self, key: UserKey) -> int:
        return _number(key, self._user_numbers, self.user)


def _number(key: K, numbers: dict[K, int], keys: list[K]) -> int:
    """The number of ``key`` in ``keys``, appending it when it is new."""
    number = numbers.get(key)
    if number is None:
        number = numbers[key] = len(keys)
        keys.append(key)
    return number


class Strings:
    """Strings in one UTF-8 buffer. ``None`` is kept as ``""``: every reader of these fields
    treats both alike (as "no name")."""

    __slots__ = ("data", "ends")

    def __init__(self) -> None:
        self.data = bytearray()
        self.ends: array[int] = array("q")

    def __len__(self) -> int:
        return len(self.ends)

    def append(self, text: str | None) -> None:
        if text:
            # surrogatepass: whatever str the parser made comes back the same.
            self.data += text.encode("utf-8", "surrogatepass")
        self.ends.append(len(self.data))

    def __getitem__(self, row: int) -> str:
        start = self.ends[row - 1] if row else 0
        return self.data[start : self.ends[row]].decode("utf-8", "surrogatepass")

    def extend(self, other: Strings) -> None:
        offset = len(self.data)
        self.data += other.data
        self.ends.extend(end + offset for end in other.ends)

    def compress(self, keep: list[bool]) -> Strings:
        """The rows where ``keep`` is true."""
        kept = Strings()
        for row in compress(range(len(self)), keep):
            start = self.ends[row - 1] if row else 0
            kept.data += self.data[start : self.ends[row]]
            kept.ends.append(len(kept.data))
        return kept


@dataclass(frozen=True, slots=True)
class ActiveVersion:
    """What is kept of an active version beyond its keys (to name the oldest of a phase)."""

    version_id: int
    create_time: int
    """ms; 0 when the API gave none."""
    version_name: str
    v2_id: str
    """A v2 job's ``metadata.id``; ``""`` for v1."""


class Active:
    """Active versions in the order they were added (that order decides nothing but which phase
    a snapshot names first)."""

    __slots__ = ("created", "gauge", "ids", "keys", "names", "user", "v2_ids")

    def __init__(self, keys: Keys | None = None) -> None:
        self.keys = Keys() if keys is None else keys
        self.ids: array[int] = array("q")
        self.created: array[int] = array("q")
        """``create_time`` (ms; 0 when the API gave none, which every reader treats alike)."""
        self.gauge: array[int] = array("I")
        """Numbers of gauge keys in :attr:`keys`."""
        self.user: array[int] = array("I")
        self.names = Strings()
        self.v2_ids = Strings()

    def __len__(self) -> int:
        return len(self.ids)

    def append(self, version: Version) -> None:
        self.ids.append(version.version_id)
        self.created.append(version.create_time or 0)
        self.gauge.append(self.keys.gauge_number(gauge_key(version)))
        self.user.append(self.keys.user_number(user_key(version)))
        self.names.append(version.version_name)
        self.v2_ids.append(version.v2_id)

    def extend(self, other: Active) -> None:
        if other.keys is not self.keys:
            raise ValueError("only active versions numbered by the same keys can be joined")
        self.ids.extend(other.ids)
        self.created.extend(other.created)
        self.gauge.extend(other.gauge)
        self.user.extend(other.user)
        self.names.extend(other.names)
        self.v2_ids.extend(other.v2_ids)

    def without(self, ids: Container[int]) -> Active:
        """A copy (numbered by the same keys) without the versions of ``ids``."""
        keep = [vid not in ids for vid in self.ids]
        kept = Active(self.keys)
        kept.ids = array("q", compress(self.ids, keep))
        kept.created = array("q", compress(self.created, keep))
        kept.gauge = array("I", compress(self.gauge, keep))
        kept.user = array("I", compress(self.user, keep))
        kept.names = self.names.compress(keep)
        kept.v2_ids = self.v2_ids.compress(keep)
        return kept

    def statuses(self) -> Iterator[int]:
        """The status code of each version, in order."""
        keys = self.keys.gauge
        return (keys[number][0] for number in self.gauge)

    def gauge_counts(self) -> dict[GaugeKey, int]:
        """Versions per gauge key."""
        keys = self.keys.gauge
        return {keys[number]: n for number, n in Counter(self.gauge).items()}

    def user_counts(self) -> dict[UserKey, int]:
        """Versions per user key."""
        keys = self.keys.user
        return {keys[number]: n for number, n in Counter(self.user).items()}

    def version(self, row: int) -> ActiveVersion:
        return ActiveVersion(self.ids[row], self.created[row], self.names[row], self.v2_ids[row])
