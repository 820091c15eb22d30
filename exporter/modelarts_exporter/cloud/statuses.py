"""The v1 training-job status table: code → name → phase, declared once.

Source: the ModelArts "Job Statuses" page of the old-version training API and python-otcextensions'
``JobStatus.CHOICES_MAP`` (code 22 appears only there). The docs do not say which statuses are
terminal; the phase column is this project's grouping (see ``docs/metrics.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache


class Phase(StrEnum):
    """Coarse life-cycle phase; the label values of every ``phase`` label."""

    UNKNOWN = "unknown"
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_PHASES


TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.STOPPED})
ACTIVE_PHASES = tuple(phase for phase in Phase if phase not in TERMINAL_PHASES)


@dataclass(frozen=True, slots=True)
class Status:
    code: int
    name: str
    """Lower-case name without ``JOBSTAT_`` — the ``status`` label value."""
    phase: Phase
    kind: str | None = None
    """The job kind of a v2 status (:mod:`.v2_statuses`); ``None`` for every v1 status."""


_TABLE: tuple[tuple[int, str, Phase], ...] = (
    (0, "JOBSTAT_UNKNOWN", Phase.UNKNOWN),
    (1, "JOBSTAT_INIT", Phase.PENDING),
    (2, "JOBSTAT_IMAGE_CREATING", Phase.PENDING),
    (3, "JOBSTAT_IMAGE_FAILED", Phase.FAILED),
    (4, "JOBSTAT_SUBMIT_TRYING", Phase.PENDING),
    (5, "JOBSTAT_SUBMIT_FAILED", Phase.FAILED),
    (6, "JOBSTAT_DELETE_FAILED", Phase.FAILED),
    (7, "JOBSTAT_WAITING", Phase.PENDING),
    (8, "JOBSTAT_RUNNING", Phase.RUNNING),
    (9, "JOBSTAT_KILLING", Phase.STOPPING),
    (10, "JOBSTAT_COMPLETED", Phase.SUCCEEDED),
    (11, "JOBSTAT_FAILED", Phase.FAILED),
    (12, "JOBSTAT_KILLED", Phase.STOPPED),
    (13, "JOBSTAT_CANCELED", Phase.STOPPED),
    (14, "JOBSTAT_LOST", Phase.FAILED),
    (15, "JOBSTAT_SCALING", Phase.RUNNING),
    (16, "JOBSTAT_SUBMIT_MODEL_FAILED", Phase.FAILED),
    (17, "JOBSTAT_DEPLOY_SERVICE_FAILED", Phase.FAILED),
    (18, "JOBSTAT_CHECK_INIT", Phase.PENDING),
    (19, "JOBSTAT_CHECK_RUNNING", Phase.PENDING),
    (20, "JOBSTAT_CHECK_RUNNING_COMPLETED", Phase.SUCCEEDED),
    (21, "JOBSTAT_CHECK_FAILED", Phase.FAILED),
    (22, "MOUNT_FAILED", Phase.FAILED),
)

KNOWN: dict[int, Status] = {
    code: Status(code, name.removeprefix("JOBSTAT_").lower(), phase) for code, name, phase in _TABLE
}
"""Every status the API documents, by code; each is always exported, 0 when no version has it."""


_REGISTERED: dict[int, Status] = {}
"""Statuses of other API generations, by their codes (v2's are 256 and up: :mod:`.v2_statuses`)."""


def register(status: Status) -> None:
    """Make ``status_of(status.code)`` answer ``status``; the code must be outside 0-255."""
    assert status.code > 255
    _REGISTERED[status.code] = status
    is_terminal.cache_clear()


@cache
def _unrecognized(code: int) -> Status:
    return Status(code, f"code_{code}", Phase.UNKNOWN)


def status_of(code: int) -> Status:
    """The status for a code; codes outside the table become ``code_<n>`` in phase ``unknown``."""
    known = KNOWN.get(code)
    if known is not None:
        return known
    registered = _REGISTERED.get(code)
    return registered if registered is not None else _unrecognized(code)


@cache
def is_terminal(code: int) -> bool:
    """Whether a code's phase is terminal; cached, so that mapping it over a page stays in C."""
    return status_of(code).phase.terminal
