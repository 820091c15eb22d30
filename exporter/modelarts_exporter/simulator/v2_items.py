"""How a v2 job looks in a ``training-job-searches`` answer: one item, as the API writes it.

Where the cards show depends on the job's profile (:mod:`.v2_jobs`); an item says only what the
real API's would, so the exporter has to find them the way it does against ModelArts.
"""

from __future__ import annotations

import copy
from typing import Any

from .v2_jobs import Job


def item(job: Job, duration_ms: int) -> dict[str, Any]:
    """The search item of ``job``, a fresh dict; ``duration_ms`` as of the tenant's clock."""
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
        resource["pool_name"] = profile.pool_id.rsplit("-", 1)[0]  # the display name
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
        "duration": duration_ms,
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
