"""The v2 jobs' vocabulary: the profiles jobs are drawn from, a job's record and its ground truth.

A *profile* fixes where a job's accelerators show in its item (notes §3): public flavors with
``gpu.unit_num`` (an int) or ``npu.unit_num`` (a string), CPU flavors, dedicated pools whose
allocated resources appear only once the job has started, customised flavors, the undocumented
``pool_info``, and dedicated CPU pools with no accelerator information at all.
"""

from __future__ import annotations

import random
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
MEAN_DWELL_S: Final = 300.0
# The dedicated pools' ids (pool metadata.name, as the pool API writes them, notes §1): the
# pools the simulator serves (:mod:`.pools`) and the pool_id of the jobs in them.
GPU_POOL: Final = "gpu-train-95d7537eef7effc27248525aa5aaa506"
NPU_POOL: Final = "npu-train-c3140c1ea4c8531c182579c4eb9c727d"
NPU_SUBPOOL: Final = "npu-team-a-c2fee1c7b838ca5a6c98106b58409f22"
"""A logical sub-pool of :data:`NPU_POOL`."""
CPU_POOL: Final = "cpu-train-f10ff439a3ee16326ef4f1f6a8c448c9"


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
            NPU_POOL,
            "modelarts.pool.visual.8xlarge",
            "npu",
            8,
            "allocated",
            "Ascend: 8 cards",
        ),
        0.15,
    ),
    (
        Profile("pool-gpu", GPU_POOL, "modelarts.pool.visual.4xlarge", "gpu", 4, "allocated"),
        0.1,
    ),
    (
        Profile("pool-custom", GPU_POOL, None, "gpu", 2, "customized", "GPU: 2 cards"),
        0.08,
    ),
    (Profile("pool-info", NPU_SUBPOOL, "modelarts.pool.custom.npu", "npu", 4, "pool_info"), 0.05),
    (Profile("pool-cpu", CPU_POOL, None, None, 0, "nothing"), 0.07),
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
    user: str = ""
    """``metadata.user_name`` as served ("" for none)."""
    name: str = ""
    """``metadata.name`` as served."""


def pick(rng: random.Random, table: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([value for value, _ in table], [weight for _, weight in table])[0]


@dataclass(slots=True)
class Job:
    """One job as the tenant keeps it; its item is rendered from it (:mod:`.v2_items`)."""

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
