"""The v2 tenant: the jobs ``training-job-searches`` lists, and how they evolve.

Deterministic for a seed, like :class:`~.tenant.Tenant`. Every job comes from a profile
(:mod:`.v2_jobs`) and is shown as an item (:mod:`.v2_items`). Kinds, users, two workspaces and
now and then a phase the documentation does not list are mixed in.

Ground truth (:meth:`V2Tenant.truth`) is kept beside each job from how it was generated, not
read back from the items: the cards it really has, and whether its item says so.
"""

from __future__ import annotations

import heapq
import math
import random
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any, Final

from .v2_items import item
from .v2_jobs import (
    ACTIVE,
    KINDS,
    MEAN_DWELL_S,
    PROFILES,
    UNDOCUMENTED_PHASES,
    USERS,
    WORKSPACE_2,
    Job,
    JobTruth,
    pick,
)

_NEXT: Final = {
    "Creating": (("Pending", 0.9), ("Abnormal", 0.1)),
    "Pending": (("Running", 1.0),),
    "Running": (("Completed", 0.6), ("Failed", 0.2), ("Terminating", 0.2)),
    "Terminating": (("Terminated", 1.0),),
}


class V2Tenant:
    """A project's v2 training jobs in every workspace.

    ``speed``, as for :class:`~.tenant.Tenant`: jobs are created ``speed`` times as often and
    each phase lasts ``1/speed`` as long, while the clock keeps the pace :meth:`advance` gives it.
    ``users``: the ``user_name`` values jobs are drawn from, evenly ("" is none).
    """

    def __init__(
        self,
        *,
        size: int,
        seed: int = 0,
        now_ms: int | None = None,
        workspaces: Sequence[str] = ("0", WORKSPACE_2),
        active_fraction: float = 0.1,
        undocumented_fraction: float = 0.02,
        creation_rate_per_s: float = 0.02,
        speed: float = 1.0,
        users: Sequence[str] = USERS,
    ) -> None:
        if not (speed > 0 and math.isfinite(speed)):
            raise ValueError(f"speed must be a finite number > 0, got {speed}")
        self._lock = threading.RLock()
        self._rng = random.Random(f"modelarts-sim-v2:{seed}")
        self._now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        self._workspaces = tuple(workspaces)
        self._users = tuple(users)
        self._rate = creation_rate_per_s * speed
        self._mean_dwell_s = MEAN_DWELL_S / speed
        self._jobs: dict[str, Job] = {}
        self._events: list[tuple[int, int, str, str]] = []
        self._seq = 0
        for index in range(size):
            created = self._now - int((size - index) * 60_000 * self._rng.uniform(0.5, 1.5))
            draw = self._rng.random()
            if draw < undocumented_fraction:
                phase = self._rng.choice(UNDOCUMENTED_PHASES)
            elif draw < undocumented_fraction + active_fraction:
                phase = self._rng.choice(ACTIVE)
            else:
                phase = pick(
                    self._rng,
                    (("Completed", 0.6), ("Failed", 0.2), ("Terminated", 0.15), ("Abnormal", 0.05)),
                )
            self._new(created, phase)
        self._next_create = self._now + self._gap()

    def _gap(self) -> int:
        return max(1, int(self._rng.expovariate(self._rate) * 1000))

    def _new(self, created: int, phase: str, **overrides: Any) -> str:
        rng = self._rng
        job = Job(
            id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            name=f"job-{len(self._jobs):06d}",
            kind=pick(rng, KINDS),
            profile=pick(rng, PROFILES),
            nodes=rng.choice((1, 1, 2, 4)),
            user=rng.choice(self._users),
            workspace=rng.choice(self._workspaces),
            create_ms=created,
            phase=phase,
        )
        for key, value in overrides.items():
            setattr(job, key, value)
        started_phases = ("Running", "Terminating", "Completed", "Failed")
        if job.phase in started_phases or (job.phase == "Terminated" and rng.random() < 0.7):
            job.start_ms = min(self._now, created + int(rng.expovariate(1 / 120) * 1000) + 1000)
            if job.phase in ("Completed", "Failed", "Terminated"):
                job.duration_ms = max(
                    1000, min(self._now - job.start_ms, int(rng.expovariate(1 / 3600) * 1000))
                )
                job.end_ms = job.start_ms + job.duration_ms
        self._jobs[job.id] = job
        self._schedule(job, created if created > self._now else self._now)
        return str(job.id)

    def _schedule(self, job: Job, at_ms: int) -> None:
        if job.phase not in _NEXT:
            return
        self._seq += 1
        due = at_ms + max(1, int(self._rng.expovariate(1 / self._mean_dwell_s) * 1000))
        heapq.heappush(self._events, (due, self._seq, job.id, job.phase))

    def advance(self, seconds: float) -> None:
        """Move the clock: jobs are created and change phase on the way, in time order."""
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise ValueError(f"seconds must be a finite number >= 0, got {seconds}")
        with self._lock:
            target = self._now + int(seconds * 1000)
            while True:
                due = self._events[0][0] if self._events else math.inf
                if min(due, self._next_create) > target:
                    break
                if due <= self._next_create:
                    at, _, job_id, phase = heapq.heappop(self._events)
                    job = self._jobs.get(job_id)
                    if job is not None and job.phase == phase:
                        self._now = max(self._now, at)
                        self._move(job, pick(self._rng, _NEXT[phase]), at)
                else:
                    at = self._next_create
                    self._now = max(self._now, at)
                    self._new(at, "Creating")
                    self._next_create = at + self._gap()
            self._now = target

    def _move(self, job: Job, phase: str, at_ms: int) -> None:
        if phase == "Running":
            job.start_ms = at_ms
        elif phase in ("Completed", "Failed", "Terminated") and job.start_ms:
            job.duration_ms = max(1, at_ms - job.start_ms)
            job.end_ms = at_ms
        job.phase = phase
        self._schedule(job, at_ms)

    # ------------------------------------------------------------------ test and demo hooks

    @property
    def now_ms(self) -> int:
        with self._lock:
            return self._now

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def add_job(self, phase: str = "Pending", **overrides: Any) -> str:
        """A job created now (``kind``, ``profile``, ``nodes``, ``workspace`` … may be given)."""
        with self._lock:
            return self._new(self._now, phase, **overrides)

    def set_phase(self, job_id: str, phase: str) -> None:
        with self._lock:
            self._move(self._jobs[job_id], phase, self._now)

    def delete_job(self, job_id: str) -> None:
        with self._lock:
            del self._jobs[job_id]

    def truth(self, workspace_id: str | None = None) -> list[JobTruth]:
        with self._lock:
            return [
                self._truth(job)
                for job in self._jobs.values()
                if workspace_id is None or job.workspace == workspace_id
            ]

    def _truth(self, job: Job) -> JobTruth:
        profile = job.profile
        known = profile.shows not in ("nothing",) and not (
            profile.shows == "allocated" and not job.start_ms and profile.flavor_name is None
        )
        total = profile.per_node * job.nodes
        gpus = total if profile.card == "gpu" else 0
        npus = total if profile.card == "npu" else 0
        return JobTruth(
            id=job.id,
            kind=job.kind,
            phase=job.phase,
            workspace_id=job.workspace,
            pool_id=profile.pool_id or "public",
            flavor=profile.flavor_id or "unknown",
            gpus=gpus if known else None,
            npus=npus if known else None,
            create_ms=job.create_ms,
            start_ms=job.start_ms,
            duration_ms=self._duration(job),
            user=job.user,
            name=job.name,
        )

    def _duration(self, job: Job) -> int:
        if job.phase in ("Running", "Terminating") and job.start_ms:
            return max(0, self._now - job.start_ms)
        return int(job.duration_ms)

    # ------------------------------------------------------------------------------ listing

    def listing(
        self,
        workspace_id: str,
        order: str,
        pool_ids: Sequence[str] | None,
        start: int,
        stop: int,
        phases: Sequence[str] | None = None,
    ) -> tuple[int, int, list[dict[str, Any]]]:
        """The number of all jobs (``total``, filters ignored), of the jobs of ``workspace_id``
        (optionally only some pools, some phases), and those of them from ``start`` to ``stop``
        as items, sorted by creation."""
        with self._lock:
            jobs = [
                job
                for job in self._jobs.values()
                if job.workspace == workspace_id
                and (pool_ids is None or job.profile.pool_id in pool_ids)
                and (phases is None or job.phase in phases)
            ]
            jobs.sort(key=lambda job: (job.create_ms, job.id), reverse=order == "desc")
            items = [item(job, self._duration(job)) for job in jobs[start:stop]]
            return len(self._jobs), len(jobs), items
