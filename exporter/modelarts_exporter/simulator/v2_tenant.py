"""The v2 jobs behind the simulator: what ``training-job-searches`` lists, and how it evolves.

Deterministic for a seed, like :class:`~.tenant.Tenant`. Every job comes from a *profile* that
fixes where its accelerators show in the item (notes §3): public flavors with ``gpu.unit_num``
(an int) or ``npu.unit_num`` (a string), CPU flavors, dedicated pools whose allocated resources
appear only once the job has started, customised flavors, the undocumented ``pool_info``, and
dedicated CPU pools with no accelerator information at all. Kinds, users, two workspaces and now
and then a phase the documentation does not list are mixed in.

Ground truth (:meth:`V2Tenant.truth`) is kept beside each job from how it was generated, not
read back from the items: the cards it really has, and whether its item says so.
"""

from __future__ import annotations

import copy
import heapq
import math
import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

WORKSPACE_2: Final = "2f6e8a0c4b1d4e9fa3c75d2e8b6a1f04"
ACTIVE: Final = ("Creating", "Pending", "Running", "Terminating")
UNDOCUMENTED_PHASES: Final = ("Waiting", "Suspended")
KINDS: Final = (
    ("job", 0.8),
    ("visualization_job", 0.08),
    ("diag_job", 0.06),
    ("autosearch_job", 0.06),
)
USERS: Final = ("alice", "bob", "carol", "dave", "")
_NEXT: Final = {
    "Creating": (("Pending", 0.9), ("Abnormal", 0.1)),
    "Pending": (("Running", 1.0),),
    "Running": (("Completed", 0.6), ("Failed", 0.2), ("Terminating", 0.2)),
    "Terminating": (("Terminated", 1.0),),
}
MEAN_DWELL_S: Final = 300.0


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    pool_id: str | None
    flavor_id: str | None
    card: str | None
    """``gpu``, ``npu`` or ``None`` (no cards)."""
    per_node: int
    shows: str
    """Where the item says how many cards: ``flavor`` (always), ``allocated`` (once started),
    ``customized``, ``pool_info``, ``cpu`` (a CPU flavor: 0, known), ``nothing``."""
    flavor_name: str | None = None


PROFILES: Final = (
    (Profile("public-gpu", None, "modelarts.vm.gpu.2v100", "gpu", 2, "flavor"), 0.2),
    (Profile("public-npu", None, "modelarts.vm.npu.1snt9b", "npu", 1, "flavor"), 0.1),
    (Profile("public-npu8", None, "modelarts.vm.npu.8snt9b", "npu", 8, "flavor"), 0.1),
    (Profile("public-cpu", None, "modelarts.vm.cpu.8u", None, 0, "cpu"), 0.15),
    (
        Profile(
            "pool-ascend",
            "pool-ascend",
            "modelarts.pool.visual.8xlarge",
            "npu",
            8,
            "allocated",
            "Ascend: 8 cards",
        ),
        0.15,
    ),
    (
        Profile("pool-gpu", "pool-gpu", "modelarts.pool.visual.4xlarge", "gpu", 4, "allocated"),
        0.1,
    ),
    (
        Profile("pool-custom", "pool-gpu", None, "gpu", 2, "customized", "GPU: 2 cards"),
        0.08,
    ),
    (Profile("pool-info", "pool-npu", "modelarts.pool.custom.npu", "npu", 4, "pool_info"), 0.05),
    (Profile("pool-cpu", "pool-cpu", None, None, 0, "nothing"), 0.07),
)


@dataclass(frozen=True, slots=True)
class JobTruth:
    """What the exporter must make of one job."""

    id: str
    kind: str
    phase: str
    workspace_id: str
    pool_id: str
    """``public`` on the shared pool."""
    flavor: str
    """``unknown`` without a flavor id."""
    gpus: int | None
    """``None`` (and ``npus`` too) when the item does not tell."""
    npus: int | None
    create_ms: int
    start_ms: int
    duration_ms: int


def _pick(rng: random.Random, table: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([value for value, _ in table], [weight for _, weight in table])[0]


@dataclass(slots=True)
class _Job:
    id: str
    name: str
    kind: str
    profile: Profile
    nodes: int
    user: str
    workspace: str
    create_ms: int
    phase: str
    start_ms: int = 0
    duration_ms: int = 0
    end_ms: int = 0


class V2Tenant:
    """A project's v2 training jobs in every workspace."""

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
    ) -> None:
        self._lock = threading.RLock()
        self._rng = random.Random(f"modelarts-sim-v2:{seed}")
        self._now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        self._workspaces = tuple(workspaces)
        self._rate = creation_rate_per_s
        self._jobs: dict[str, _Job] = {}
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
                phase = _pick(
                    self._rng,
                    (("Completed", 0.6), ("Failed", 0.2), ("Terminated", 0.15), ("Abnormal", 0.05)),
                )
            self._new(created, phase)
        self._next_create = self._now + self._gap()

    def _gap(self) -> int:
        return max(1, int(self._rng.expovariate(self._rate) * 1000))

    def _new(self, created: int, phase: str, **overrides: Any) -> str:
        rng = self._rng
        job = _Job(
            id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            name=f"job-{len(self._jobs):06d}",
            kind=_pick(rng, KINDS),
            profile=_pick(rng, PROFILES),
            nodes=rng.choice((1, 1, 2, 4)),
            user=rng.choice(USERS),
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

    def _schedule(self, job: _Job, at_ms: int) -> None:
        if job.phase not in _NEXT:
            return
        self._seq += 1
        due = at_ms + max(1, int(self._rng.expovariate(1 / MEAN_DWELL_S) * 1000))
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
                        self._move(job, _pick(self._rng, _NEXT[phase]), at)
                else:
                    at = self._next_create
                    self._now = max(self._now, at)
                    self._new(at, "Creating")
                    self._next_create = at + self._gap()
            self._now = target

    def _move(self, job: _Job, phase: str, at_ms: int) -> None:
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

    def _truth(self, job: _Job) -> JobTruth:
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
        )

    def _duration(self, job: _Job) -> int:
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
            return len(self._jobs), len(jobs), [self._item(job) for job in jobs[start:stop]]

    def _item(self, job: _Job) -> dict[str, Any]:
        profile = job.profile
        started = bool(job.start_ms)
        resource: dict[str, Any] = {"policy": "regular"}
        if profile.flavor_id is not None:
            resource["flavor_id"] = profile.flavor_id
        if profile.flavor_name is not None:
            resource["flavor_name"] = profile.flavor_name
        if job.nodes != 1 or int(job.id[0], 16) % 2:  # a single node's count is often left out
            resource["node_count"] = job.nodes
        if profile.pool_id is not None:
            resource["pool_id"] = profile.pool_id
            resource["pool_name"] = f"{profile.pool_id}-name"
        if profile.shows == "flavor":
            info: dict[str, Any] = {"max_num": 8, "cpu": {"arch": "x86", "core_num": 16}}
            if profile.card == "gpu":
                info["gpu"] = {
                    "unit_num": profile.per_node,
                    "product_name": "NVIDIA-V100",
                    "memory": "32GB",
                }
                flavor_type = "GPU"
            else:
                info["npu"] = {
                    "unit_num": str(profile.per_node),
                    "product_name": "Ascend-snt9b",
                    "memory": "64GB",
                }
                flavor_type = "Ascend"
            info["disk"] = {"size": "780", "unit": "GB"}
            resource["flavor_detail"] = {
                "flavor_type": flavor_type,
                "billing": {"code": profile.flavor_id, "unit_num": 1},
                "flavor_info": info,
            }
        elif profile.shows == "cpu":
            resource["flavor_detail"] = {
                "flavor_type": "CPU",
                "billing": {"code": profile.flavor_id, "unit_num": 1},
                "flavor_info": {
                    "cpu": {"arch": "x86", "core_num": 8},
                    "memory": {"size": 32, "unit": "GB"},
                    "disk": {"size": "50", "unit": "GB"},
                },
            }
        elif profile.shows == "allocated" and started:
            resource["main_container_allocated_resources"] = {
                "cpu_arch": "aarch64" if profile.card == "npu" else "x86",
                "cpu_core_num": 184.0,
                "mem_size": 1400.0,
                "accelerator_num": float(profile.per_node),
                "accelerator_type": "ascend-snt9b" if profile.card == "npu" else "nvidia-a100",
            }
        elif profile.shows == "customized":
            resource["main_container_customized_flavor"] = {
                "cpu_core_num": 8.0,
                "mem_size": 64.0,
                "accelerator_num": float(profile.per_node),
            }
        elif profile.shows == "pool_info":
            resource["pool_info"] = {
                "accelerator_num": str(profile.per_node),
                "accelerator_type": "ascend-snt9",
                "core_num": 192,
            }
        status: dict[str, Any] = {
            "phase": job.phase,
            "secondary_phase": "Queuing" if job.phase == "Pending" else job.phase,
            "duration": self._duration(job),
            "start_time": job.start_ms,
            "tasks": [f"worker-{n}" for n in range(job.nodes)],
        }
        if started:
            record: dict[str, Any] = {
                "start_at": job.start_ms // 1000,
                "start_type": "init_or_rescheduled",
            }
            if job.end_ms:
                record["end_at"] = job.end_ms // 1000
            status["running_records"] = [record]
        if job.phase == "Abnormal":
            status["secondary_phase"] = "CreateFailed"
            status["task_statuses"] = [
                {"task": "worker-0", "exit_code": 1, "message": "image pull failed"}
            ]
        return copy.deepcopy(
            {
                "kind": job.kind,
                "metadata": {
                    "id": job.id,
                    "name": job.name,
                    "workspace_id": job.workspace,
                    "description": "",
                    "create_time": job.create_ms,
                    "user_name": job.user,
                },
                "status": status,
                "spec": {
                    "resource": resource,
                    "schedule_policy": {"priority": 1, "preemptible": False},
                },
                "algorithm": {"engine": {"engine_name": "PyTorch", "engine_version": "2.1.0"}},
            }
        )
