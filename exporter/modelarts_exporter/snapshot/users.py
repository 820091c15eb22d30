"""Per-user showback (``USER_METRICS``, v2 ``metadata.user_name``): the jobs listed now and the
cards they request, per user and phase, and the card-seconds of jobs that finished since the
exporter started, per user and the terminal phase they finished in.

Opt-in, because a user label multiplies series: without it the builder keeps no counts by user
and no :class:`UserLedger` exists, so nothing per user is kept at all.

User names are bounded like pools (:mod:`.labelcap`): the ``MAX_USERS`` users with the most jobs
listed now keep series of their own (ties by name), the rest are summed under ``_other``, so sums
over users equal the project's totals. Card-seconds follow the ledger's rules: observed once, when
a job is first seen finished, never at the baseline, and a user once given a series there keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from modelarts_exporter.cloud.statuses import Phase, status_of
from modelarts_exporter.listing.inventory import Listed, Observations
from modelarts_exporter.listing.v2_jobs import MAX_NAME
from modelarts_exporter.snapshot.counts import tally
from modelarts_exporter.snapshot.labelcap import OTHER, Admitted, kept, totals
from modelarts_exporter.text import one_line

NO_USER = "_none"
"""The ``user`` of a job without one (an empty ``user_name``, every v1 version)."""
DEFAULT_MAX_USERS = 100

UserPhase = tuple[str, Phase]
"""``(user, phase)``"""


def user_label(raw: str | None) -> str:
    """The ``user`` label of a ``user_name`` as the API sent it: one bounded printable line."""
    return (one_line(raw, MAX_NAME) if raw else "") or NO_USER


@dataclass(frozen=True, slots=True)
class UserCards:
    jobs: int = 0
    gpus: int = 0
    npus: int = 0


@dataclass(frozen=True, slots=True)
class UserUsage:
    """The per-user part of a snapshot."""

    cards: Mapping[UserPhase, UserCards]
    """Jobs listed now and the cards they request (an unknown count adds nothing)."""
    gpu_seconds: Mapping[UserPhase, float]
    npu_seconds: Mapping[UserPhase, float]
    overflow: int
    """Distinct users listed now whose jobs are summed under ``_other``."""


def count_users(listed: Listed) -> dict[UserPhase, list[int]]:
    """``[jobs, gpus, npus]`` per user and phase of a listing kept with per-user counts."""
    counts: dict[UserPhase, list[int]] = {}
    labels: dict[str | None, str] = {}  # one_line once per distinct name, not once per job

    def add(raw: str | None, status: int, gpus: int | None, npus: int | None, n: int) -> None:
        label = labels.get(raw)
        if label is None:
            label = labels[raw] = user_label(raw)
        tally(counts, (label, status_of(status).phase), n, gpus, npus)

    for (raw, status, gpus, npus), n in (listed.users or {}).items():
        add(raw, status, gpus, npus, n)
    for (raw, status, gpus, npus), n in listed.active.user_counts().items():
        add(raw, status, gpus, npus, n)
    return counts


class UserLedger:
    """The card-seconds per user of one target, and how its user labels are capped."""

    def __init__(self, max_users: int = DEFAULT_MAX_USERS) -> None:
        self._cap = max_users
        self._admitted = Admitted(max_users)
        self._gpu_ms: dict[UserPhase, int] = {}
        self._npu_ms: dict[UserPhase, int] = {}

    def commit(self, listed: Listed, found: Observations, observe: bool) -> UserUsage:
        """The per-user numbers of ``listed``, observing what ``found`` holds unless this is
        the baseline (``observe`` false)."""
        counts = count_users(listed)
        users = kept(totals((user, c[0]) for (user, _), c in counts.items()), self._cap)
        if observe:
            for _, _, phase, ran, gpus, npus, raw in found.finished:
                key = (self._admitted.label(user_label(raw), users), phase)
                if gpus:
                    self._gpu_ms[key] = self._gpu_ms.get(key, 0) + gpus * ran
                if npus:
                    self._npu_ms[key] = self._npu_ms.get(key, 0) + npus * ran
        folded: dict[UserPhase, list[int]] = {}
        for (user, phase), c in counts.items():
            summed = folded.setdefault((user if user in users else OTHER, phase), [0, 0, 0])
            for i, n in enumerate(c):
                summed[i] += n
        return UserUsage(
            cards=MappingProxyType({k: UserCards(*c) for k, c in sorted(folded.items())}),
            gpu_seconds=_seconds(self._gpu_ms),
            npu_seconds=_seconds(self._npu_ms),
            overflow=len({user for user, _ in counts} - users),
        )


def _seconds(millis: Mapping[UserPhase, int]) -> Mapping[UserPhase, float]:
    return MappingProxyType({key: ms / 1000.0 for key, ms in sorted(millis.items())})
