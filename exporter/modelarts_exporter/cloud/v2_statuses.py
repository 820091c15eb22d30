"""The v2 training-job phases and kinds, and the status codes they are counted under.

v2 has no numeric status: ``status.phase`` is a string and ``kind`` says what sort of job it is
(notes §3, §4). The aggregation counts statuses by integer code, so every ``(kind, phase)`` pair
met gets a code of its own, 256 and up (v1's are 0-255), registered with
:func:`~.statuses.register` so that ``status_of`` answers for it everywhere.

Grouping (the ``phase`` label, shared with v1 so that dashboards and alerts work unchanged):
``Creating`` is *pending* (nothing runs yet, the job waits for its resources like v1's
``init``); ``Abnormal`` is *failed* (the vendor's samples show it for jobs that failed to be
created, ``CreateFailed``, and it does not change afterwards: the job is over and did not
succeed). ``secondary_phase`` is never read: the vendor says it may change without notice.

Both label sets stay bounded whatever the API sends: a kind outside :data:`KINDS` is ``other``;
a phase outside :data:`PHASES` keeps its own name (made label-safe) for the first
:data:`MAX_UNKNOWN_PHASES` such names this process meets, in phase group ``unknown``, and later
ones are all ``other``. Each is logged once.
"""

from __future__ import annotations

import logging
import re
import threading

from modelarts_exporter.cloud.statuses import KNOWN, Phase, Status, register, status_of

log = logging.getLogger(__name__)

PHASES: dict[str, Phase] = {
    "Creating": Phase.PENDING,
    "Pending": Phase.PENDING,
    "Running": Phase.RUNNING,
    "Terminating": Phase.STOPPING,
    "Completed": Phase.SUCCEEDED,
    "Failed": Phase.FAILED,
    "Terminated": Phase.STOPPED,
    "Abnormal": Phase.FAILED,
}
"""Every phase the API documents (case as sent) and its group."""
KINDS = (
    "job",
    "visualization_job",
    "diag_job",
    "autosearch_job",
    "hetero_job",
    "mrs_job",
    "edge_job",
    "federated_pool_job",
)
"""Every ``kind`` the SDK documents; ``job`` is a training job proper."""
DEFAULT_KIND = "job"
OTHER = "other"
"""The ``kind`` and ``status`` label of values beyond the bounds."""
MISSING_PHASE = "Unknown"
"""The ``status`` label of a job that came without a phase."""
MAX_UNKNOWN_PHASES = 16
FIRST_CODE = 256

_V1_NAMES = frozenset(status.name for status in KNOWN.values())
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_lock = threading.Lock()
_codes: dict[tuple[str, str], Status] = {}
_unknown_phases: dict[str, str] = {}
_overflowed: set[str] = set()
"""Holds ``other`` once the overflow has been logged."""


def _phase_label(raw: str) -> str:
    """The ``status`` label of a phase outside the table: its name, label-safe, never one a v1
    status uses (``both`` must not merge a v2 phase into a v1 status by accident)."""
    label = _UNSAFE.sub("_", raw)[:64] or "_"
    if label in _V1_NAMES or label == OTHER or label.startswith("code_"):
        label = f"v2_{label}"
    return label


def status_for(kind: str | None, phase: str | None) -> Status:
    """The status a job of ``kind`` in ``phase`` is counted under (registered, so
    ``status_of(result.code)`` is ``result``)."""
    kind_label = kind if kind in KINDS else (DEFAULT_KIND if not kind else OTHER)
    raw = phase or MISSING_PHASE
    with _lock:
        if raw in PHASES:
            label, group = raw, PHASES[raw]
        else:
            group = Phase.UNKNOWN
            label = _unknown_phases.get(raw, "")
            if not label:
                if len(_unknown_phases) < MAX_UNKNOWN_PHASES:
                    label = _unknown_phases[raw] = _phase_label(raw)
                    log.warning(
                        "unknown v2 training-job phase phase=%s "
                        "(exported as status=%s phase=unknown)",
                        label,
                        label,
                    )
                else:
                    label = OTHER
                    if not _overflowed:
                        _overflowed.add(OTHER)
                        log.warning(
                            "more than %d unknown v2 training-job phases: further ones are "
                            "exported as status=other",
                            MAX_UNKNOWN_PHASES,
                        )
        status = _codes.get((kind_label, label))
        if status is None:
            status = Status(FIRST_CODE + len(_codes), label, group, kind_label)
            _codes[(kind_label, label)] = status
            register(status)
        return status


def documented() -> tuple[Status, ...]:
    """The documented phases of plain jobs: always exported for a v2 target, 0 when none."""
    return tuple(status_for(DEFAULT_KIND, phase) for phase in PHASES)


def filter_phase(code: int) -> str | None:
    """The ``phase`` a search filter selects the jobs of status ``code`` by, when one phase
    alone makes that status: not for ``other``, a name made label-safe, or a missing phase."""
    status = status_of(code)
    if status.kind is None or status.name == MISSING_PHASE:
        return None
    with _lock:
        if status.name in PHASES or _unknown_phases.get(status.name) == status.name:
            return status.name
    return None
