"""Every metric the exporter exposes, declared once: name, type, help (with the unit) and labels.

These names and labels are a public contract: dashboards, alert rules and users' queries depend on
them, and ``docs/metrics.md`` lists them (a test keeps the two in step). Change them deliberately.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["gauge", "counter", "histogram", "info"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    """The exposed name (counters with ``_total``, info metrics with ``_info``)."""
    kind: Kind
    help: str
    labels: tuple[str, ...]


def _spec(name: str, kind: Kind, help_text: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, kind, help_text, labels)


VERSIONS = _spec(
    "modelarts_training_job_versions",
    "gauge",
    "Training-job versions currently listed, per status; every known status is always present.",
    "project_id", "status", "phase",
)  # fmt: skip
POOL_VERSIONS = _spec(
    "modelarts_training_job_pool_versions",
    "gauge",
    "Training-job versions currently listed, per resource pool, flavor and phase.",
    "project_id", "pool_id", "flavor_code", "phase",
)  # fmt: skip
GPUS = _spec(
    "modelarts_training_job_gpus",
    "gauge",
    "GPUs requested by the listed versions (sum of gpu_num), per pool, flavor and phase.",
    "project_id", "pool_id", "flavor_code", "phase",
)  # fmt: skip
NPUS = _spec(
    "modelarts_training_job_npus",
    "gauge",
    "NPUs requested by the listed versions (sum of npu_num), per pool, flavor and phase.",
    "project_id", "pool_id", "flavor_code", "phase",
)  # fmt: skip
DURATION = _spec(
    "modelarts_training_job_duration_seconds",
    "histogram",
    "Run time in seconds of versions that reached a terminal phase, observed once per version "
    "(versions finished before the exporter's first poll are not observed).",
    "project_id", "pool_id", "phase",
)  # fmt: skip
QUEUE = _spec(
    "modelarts_training_job_queue_seconds",
    "histogram",
    "Seconds from creation to start of a version, observed once when it has started "
    "(versions started before the exporter's first poll are not observed).",
    "project_id", "pool_id",
)  # fmt: skip
GPU_SECONDS = _spec(
    "modelarts_training_job_gpu_seconds_total",
    "counter",
    "GPU-seconds (gpu_num times run time) of versions that finished since the exporter started.",
    "project_id", "pool_id", "flavor_code",
)  # fmt: skip
NPU_SECONDS = _spec(
    "modelarts_training_job_npu_seconds_total",
    "counter",
    "NPU-seconds (npu_num times run time) of versions that finished since the exporter started.",
    "project_id", "pool_id", "flavor_code",
)  # fmt: skip
OLDEST = _spec(
    "modelarts_training_job_oldest_seconds",
    "gauge",
    "Age in seconds (now minus create time) of the oldest version in each non-terminal phase; "
    "0 when none.",
    "project_id", "phase",
)  # fmt: skip
OLDEST_JOB = _spec(
    "modelarts_training_job_oldest_job_seconds",
    "gauge",
    "Age in seconds of the oldest version in each non-terminal phase (as _oldest_seconds), "
    "naming it: job_id (v1 version_id, v2 metadata.id) and job_name; absent when none.",
    "project_id", "phase", "job_id", "job_name",
)  # fmt: skip
USER_JOBS = _spec(
    "modelarts_training_job_user_jobs",
    "gauge",
    "Training jobs currently listed, per user (v2 metadata.user_name; _none without one) and "
    "phase; only with USER_METRICS.",
    "project_id", "user", "phase",
)  # fmt: skip
USER_GPUS = _spec(
    "modelarts_training_job_user_gpus",
    "gauge",
    "GPUs requested by the listed jobs, per user and phase; only with USER_METRICS.",
    "project_id", "user", "phase",
)  # fmt: skip
USER_NPUS = _spec(
    "modelarts_training_job_user_npus",
    "gauge",
    "NPUs requested by the listed jobs, per user and phase; only with USER_METRICS.",
    "project_id", "user", "phase",
)  # fmt: skip
USER_GPU_SECONDS = _spec(
    "modelarts_training_job_user_gpu_seconds_total",
    "counter",
    "GPU-seconds (GPUs times run time) of jobs that finished since the exporter started, per "
    "user and the terminal phase they finished in; only with USER_METRICS.",
    "project_id", "user", "phase",
)  # fmt: skip
USER_NPU_SECONDS = _spec(
    "modelarts_training_job_user_npu_seconds_total",
    "counter",
    "NPU-seconds (NPUs times run time) of jobs that finished since the exporter started, per "
    "user and the terminal phase they finished in; only with USER_METRICS.",
    "project_id", "user", "phase",
)  # fmt: skip
USER_FAMILIES: tuple[MetricSpec, ...] = (
    USER_JOBS, USER_GPUS, USER_NPUS, USER_GPU_SECONDS, USER_NPU_SECONDS,
)  # fmt: skip
"""Exposed only when a target has USER_METRICS on: otherwise not even their HELP lines."""
JOBS = _spec(
    "modelarts_training_jobs",
    "gauge",
    "Training jobs of the v2 API currently listed, per job kind (job, visualization_job, …), phase "
    "as the API names it (status) and phase group; the documented phases of kind job are always "
    "present for a v2 target.",
    "project_id", "job_kind", "status", "phase",
)  # fmt: skip
ACCELERATORS_UNKNOWN = _spec(
    "modelarts_training_job_accelerators_unknown",
    "gauge",
    "Training jobs of the v2 API currently listed whose GPU/NPU count cannot be derived from "
    "their flavor (counted in neither _gpus nor _npus), per pool, flavor and phase.",
    "project_id", "pool_id", "flavor_code", "phase",
)  # fmt: skip
REPORTED = _spec(
    "modelarts_training_job_versions_reported",
    "gauge",
    "Versions the API reported (total_count of the listing, summed over workspaces).",
    "project_id",
)  # fmt: skip
UP = _spec(
    "modelarts_exporter_up",
    "gauge",
    "1 when the last poll of the project succeeded, 0 when it failed or none has finished yet.",
    "project_id",
)  # fmt: skip
LAST_SUCCESS = _spec(
    "modelarts_exporter_last_success_timestamp_seconds",
    "gauge",
    "Unix time in seconds of the last successful poll (absent before the first).",
    "project_id",
)  # fmt: skip
POLL_DURATION = _spec(
    "modelarts_exporter_poll_duration_seconds",
    "histogram",
    "Wall-clock seconds one poll took, successful or not.",
    "project_id",
)  # fmt: skip
POLL_ERRORS = _spec(
    "modelarts_exporter_poll_errors_total",
    "counter",
    "Failed polls, by reason (auth, throttled, timeout, connection, server_error, client_error, "
    "invalid_response, api_error).",
    "project_id", "reason",
)  # fmt: skip
API_REQUESTS = _spec(
    "modelarts_exporter_api_requests_total",
    "counter",
    "HTTP requests sent to the ModelArts API, by response status code ('none': no response).",
    "project_id", "code",
)  # fmt: skip
LISTINGS = _spec(
    "modelarts_exporter_listings_total",
    "counter",
    "Successful polls by how the versions were listed: full (every page) or incremental (only "
    "what can have changed since the last poll).",
    "project_id", "kind",
)  # fmt: skip
LABEL_OVERFLOW = _spec(
    "modelarts_exporter_label_values_overflow",
    "gauge",
    "Distinct values of a label from the API (pool_id, flavor_code, status) in the last listing "
    "beyond MAX_LABEL_VALUES, whose series are summed under the value _other; 0 when none.",
    "project_id", "label",
)  # fmt: skip
BUILD_INFO = _spec(
    "modelarts_exporter_build_info",
    "info",
    "Always 1; the exporter's version as a label.",
    "version",
)  # fmt: skip

SHARD_INFO = _spec(
    "modelarts_exporter_shard_info",
    "info",
    "Always 1; which shard of how many this replica is (targets are split by a hash of "
    "their name).",
    "shard", "total_shards",
)  # fmt: skip

WEB_CONFIG_RELOAD_OK = _spec(
    "modelarts_exporter_web_config_last_reload_successful",
    "gauge",
    "1 when the last reading of the web configuration file (and of the files it names) gave the "
    "configuration in use, 0 when it failed and the previous one is kept; absent without one.",
)  # fmt: skip
WEB_CONFIG_RELOAD_TIME = _spec(
    "modelarts_exporter_web_config_last_reload_success_timestamp_seconds",
    "gauge",
    "Unix time in seconds at which the web configuration in use was read (start-up counts); "
    "absent without one.",
)  # fmt: skip

ALL: tuple[MetricSpec, ...] = (
    VERSIONS, JOBS, POOL_VERSIONS, GPUS, NPUS, ACCELERATORS_UNKNOWN, DURATION, QUEUE, GPU_SECONDS,
    NPU_SECONDS, OLDEST, REPORTED, UP, LAST_SUCCESS, POLL_DURATION, POLL_ERRORS, API_REQUESTS,
    LISTINGS, LABEL_OVERFLOW, BUILD_INFO, SHARD_INFO, WEB_CONFIG_RELOAD_OK, WEB_CONFIG_RELOAD_TIME,
    OLDEST_JOB, *USER_FAMILIES,
)  # fmt: skip

POLL_DURATION_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

# --- Resource pools (the pool poller; docs/metrics.md "Resource pools") ---------------------
POOL_INFO = _spec(
    "modelarts_pool_info",
    "info",
    "Always 1; a Train resource pool: its display name, type (Dedicate: physical, Logical: a "
    "sub-pool of parent_pool_id), workspace and parent.",
    "project_id", "pool_id", "pool_name", "pool_type", "workspace_id", "parent_pool_id",
)  # fmt: skip
POOL_PHASE = _spec(
    "modelarts_pool_phase",
    "gauge",
    "1 for the pool's current phase as the API spells it (Running, Abnormal, Creating, …); "
    "for pool_id _other, the number of pools in that phase.",
    "project_id", "pool_id", "phase",
)  # fmt: skip
POOL_NODES = _spec(
    "modelarts_pool_nodes",
    "gauge",
    "Nodes of the pool by node flavor and state in lower case (available, creating, abnormal, "
    "deleting, checking, …): from the node list, else from the pool's status.",
    "project_id", "pool_id", "node_flavor", "state",
)  # fmt: skip
POOL_NODES_DESIRED = _spec(
    "modelarts_pool_nodes_desired",
    "gauge",
    "Nodes the pool is meant to have per node flavor (spec.resources[].count).",
    "project_id", "pool_id", "node_flavor",
)  # fmt: skip
POOL_CAPACITY = _spec(
    "modelarts_pool_accelerators_capacity",
    "gauge",
    "Usable accelerator cards of the pool (on its Available nodes), by kind (gpu, npu) and by "
    "the source the number comes from (nodes, runtime, flavors).",
    "project_id", "pool_id", "accelerator", "source",
)  # fmt: skip
POOL_ALLOCATED = _spec(
    "modelarts_pool_accelerators_allocated",
    "gauge",
    "Cards of the pool's usable capacity taken by workloads of any type (training, inference, "
    "notebooks); absent when the source does not tell (flavors).",
    "project_id", "pool_id", "accelerator", "source",
)  # fmt: skip
POOL_FREE = _spec(
    "modelarts_pool_accelerators_free",
    "gauge",
    "Cards of the pool's usable capacity still free; absent when the source does not tell "
    "(flavors).",
    "project_id", "pool_id", "accelerator", "source",
)  # fmt: skip
POOL_UNAVAILABLE = _spec(
    "modelarts_pool_accelerators_unavailable",
    "gauge",
    "Cards on the pool's nodes that are not Available (abnormal, creating, …); only the node "
    "list tells.",
    "project_id", "pool_id", "accelerator",
)  # fmt: skip
POOL_UP = _spec(
    "modelarts_exporter_pool_up",
    "gauge",
    "1 when the last pool poll read every Train pool, 0 when it failed, left pools without "
    "card numbers, or pool polling is off or has not finished yet.",
    "project_id",
)  # fmt: skip
POOL_ENABLED = _spec(
    "modelarts_exporter_pool_enabled",
    "gauge",
    "1 while pools are polled, 0 once a 403 on the pool list turned pool polling off.",
    "project_id",
)  # fmt: skip
POOL_LAST_SUCCESS = _spec(
    "modelarts_exporter_pool_last_success_timestamp_seconds",
    "gauge",
    "Unix time in seconds of the last pool poll that read every Train pool (absent before).",
    "project_id",
)  # fmt: skip
POOL_POLL_DURATION = _spec(
    "modelarts_exporter_pool_poll_duration_seconds",
    "histogram",
    "Wall-clock seconds one pool poll took, successful or not.",
    "project_id",
)  # fmt: skip
POOL_POLL_ERRORS = _spec(
    "modelarts_exporter_pool_poll_errors_total",
    "counter",
    "Failed pool API reads by endpoint (pools, nodes, runtime, flavors) and reason (as for "
    "modelarts_exporter_poll_errors_total); a failed nodes, runtime or flavors read falls back "
    "to the next source.",
    "project_id", "endpoint", "reason",
)  # fmt: skip
POOL_METRICS: tuple[MetricSpec, ...] = (
    POOL_INFO, POOL_PHASE, POOL_NODES, POOL_NODES_DESIRED, POOL_CAPACITY, POOL_ALLOCATED,
    POOL_FREE, POOL_UNAVAILABLE, POOL_UP, POOL_ENABLED, POOL_LAST_SUCCESS, POOL_POLL_DURATION,
    POOL_POLL_ERRORS,
)  # fmt: skip
ALL = (*ALL, *POOL_METRICS)
