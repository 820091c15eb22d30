"""A v2 job as the aggregation's :class:`~modelarts_exporter.cloud.models.Version`.

The snapshot, observe-once and the inventory work on versions; a v2 job maps onto one, so run
time, queue time and accelerator-seconds mean exactly what they mean for v1 (notes §3, §8):

- ``version_id``: the job's UUID hashed to a *negative* 64-bit integer (v1 ids are never
  negative, so ``both`` cannot mix a job up with a version).
- ``status``: the code of ``(kind, phase)`` (:mod:`~modelarts_exporter.cloud.v2_statuses`).
- times in milliseconds: ``create_time``, ``start_time`` (else the first running record's
  ``start_at``, which is in seconds), ``duration``; v2 has no end time, so a finished job's is
  ``start_time + duration``, else its last running record's ``end_at``.
- ``gpu_num``/``npu_num`` from :func:`accelerators`; both ``None`` when they cannot be known
  (the snapshot counts such jobs in a series of their own, never as 0).
- ``v2_id``, ``version_name``, ``user_name``: ``metadata.id``, ``.name`` and ``.user_name``, the
  last two made one bounded printable line (:data:`MAX_NAME`); the name only for an active job,
  the one kind shown by name.
"""

from __future__ import annotations

import math
from hashlib import blake2b

from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.cloud.models import Version
from modelarts_exporter.cloud.v2_models import Accelerators, Job, Resource
from modelarts_exporter.cloud.v2_statuses import status_for
from modelarts_exporter.text import one_line

POOL_FLAVOR_CARDS = {"xlarge": 1, "2xlarge": 2, "4xlarge": 4, "8xlarge": 8}
"""Cards per node of the dedicated-pool flavors ``modelarts.pool.visual.<size>`` (notes §3)."""
_POOL_FLAVOR = "modelarts.pool.visual."
MAX_CARDS_PER_NODE = 1024
MAX_NODES = 100_000

GPU, NPU = "gpu", "npu"
MAX_NAME = 128
"""Longest job or user name kept (labels ``job_name``, ``user``)."""


def job_id(uuid: str) -> int:
    """A stable negative int64 for ``metadata.id``."""
    digest = blake2b(uuid.encode(), digest_size=8).digest()
    return -1 - (int.from_bytes(digest, "big") >> 1)


def _card_kind(text: str | None) -> str | None:
    """GPU or NPU from a ``flavor_type`` (``GPU``, ``Ascend``, ``CPU``), an ``accelerator_type``
    (``ascend-snt9b``, ``nvidia-…``) or a display name (``Ascend: 8 cards``)."""
    if not text:
        return None
    lowered = text.strip().lower()
    if lowered.startswith(("ascend", "npu")):
        return NPU
    if lowered.startswith(("gpu", "nvidia")):
        return GPU
    return None


def _cards(value: float, field: str) -> int:
    """Whole cards: a fraction of a card occupies a card."""
    if value > MAX_CARDS_PER_NODE:
        raise PollError(
            Reason.INVALID_RESPONSE, f"unexpected response ({field}: {value:g} cards per node)"
        )
    return math.ceil(value)


def _amount(found: Accelerators | None) -> float | None:
    return None if found is None else found["accelerator_num"]


def accelerators(resource: Resource | None) -> tuple[int, int] | None:
    """``(gpus, npus)`` a job requests in total, or ``None`` when that cannot be known.

    Cards per node come from the first of (notes §3): the public flavor's ``gpu``/``npu``
    ``unit_num``; the main container's allocated ``accelerator_num``; the dedicated-pool flavor
    id's size; the customised flavor's ``accelerator_num``; the undocumented ``pool_info``. A
    ``CPU`` flavor has none. The card type comes from ``flavor_type``, else an
    ``accelerator_type``, else the flavor's display name; a count of cards of no known type is
    unknown. The total is cards per node times ``node_count`` (1 when missing).
    """
    if resource is None:
        return None
    nodes = resource["node_count"]
    node_count = 1 if nodes is None else math.ceil(nodes)
    if node_count > MAX_NODES:
        raise PollError(
            Reason.INVALID_RESPONSE, f"unexpected response (spec.resource.node_count: {nodes:g})"
        )
    detail = resource["flavor_detail"]
    flavor_type = detail["flavor_type"] if detail else None
    allocated = resource["main_container_allocated_resources"]
    pool_info = resource["pool_info"]
    kind = (
        _card_kind(flavor_type)
        or _card_kind(allocated["accelerator_type"] if allocated else None)
        or _card_kind(pool_info["accelerator_type"] if pool_info else None)
        or _card_kind(resource["flavor_name"])
    )
    per_node: tuple[str, int] | None = None
    info = detail["flavor_info"] if detail else None
    gpu, npu = (info["gpu"], info["npu"]) if info else (None, None)
    where = "spec.resource.flavor_detail.flavor_info"
    if gpu is not None and gpu["unit_num"] is not None:
        per_node = GPU, _cards(gpu["unit_num"], f"{where}.gpu.unit_num")
    elif npu is not None and npu["unit_num"] is not None:
        per_node = NPU, _cards(npu["unit_num"], f"{where}.npu.unit_num")
    elif flavor_type is not None and flavor_type.strip().upper() == "CPU":
        return 0, 0
    else:
        flavor_id = resource["flavor_id"] or ""
        size = POOL_FLAVOR_CARDS.get(flavor_id.removeprefix(_POOL_FLAVOR), 0)
        sources: tuple[tuple[str, float | None], ...] = (
            ("main_container_allocated_resources", _amount(allocated)),
            ("flavor_id", float(size) if flavor_id.startswith(_POOL_FLAVOR) and size else None),
            (
                "main_container_customized_flavor",
                _amount(resource["main_container_customized_flavor"]),
            ),
            ("pool_info", _amount(pool_info)),
        )
        for field, amount in sources:
            if amount is None:
                continue
            cards = _cards(amount, f"spec.resource.{field}.accelerator_num")
            if cards == 0:
                return 0, 0
            if kind is None:
                return None
            per_node = kind, cards
            break
    if per_node is None:
        return None
    card, cards = per_node
    total = cards * node_count
    return (total, 0) if card == GPU else (0, total)


def _millis(value: float | None) -> int | None:
    return None if not value else int(value)


def to_version(job: Job) -> Version:
    """The version the aggregation counts ``job`` as."""
    status = job["status"]
    spec = job["spec"]
    resource = spec["resource"] if spec else None
    code = status_for(job["kind"], status["phase"] if status else None)
    start = duration = end = None
    if status is not None:
        records = status["running_records"] or []
        start = _millis(status["start_time"])
        if start is None and records and records[0]["start_at"]:
            start = int(records[0]["start_at"] * 1000)
        duration = _millis(status["duration"])
        if code.phase.terminal:
            if start and duration:
                end = start + duration
            elif records and records[-1]["end_at"]:
                end = int(records[-1]["end_at"] * 1000)
    cards = accelerators(resource)
    metadata = job["metadata"]
    name, user = metadata["name"], metadata["user_name"]
    return Version(
        version_id=job_id(metadata["id"]),
        status=code.code,
        create_time=_millis(metadata["create_time"]),
        start_time=start,
        end_time=end,
        duration=duration,
        pool_id=resource["pool_id"] if resource else None,
        flavor_code=resource["flavor_id"] if resource else None,
        gpu_num=None if cards is None else cards[0],
        npu_num=None if cards is None else cards[1],
        version_name=one_line(name, MAX_NAME) if name and not code.phase.terminal else None,
        user_name=one_line(user, MAX_NAME) if user else None,
        v2_id=metadata["id"],
    )
