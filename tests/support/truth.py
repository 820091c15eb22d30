"""Ground truth: what the metrics must say, computed straight from the simulator's records,
independently of the exporter's aggregation code."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from modelarts_exporter.cloud.statuses import status_of
from modelarts_exporter.simulator.v2_jobs import JobTruth
from modelarts_exporter.snapshot.aggregate import Snapshot

# The v2 notes' table (§4), written out again here rather than imported from the exporter.
V2_GROUP = {
    "Creating": "pending",
    "Pending": "pending",
    "Running": "running",
    "Terminating": "stopping",
    "Completed": "succeeded",
    "Failed": "failed",
    "Terminated": "stopped",
    "Abnormal": "failed",
}
V2_TERMINAL = {"succeeded", "failed", "stopped"}


def v2_group(job: JobTruth) -> str:
    """The phase group a v2 job must be counted in."""
    return V2_GROUP.get(job.phase, "unknown")


@dataclass
class Truth:
    """What the metrics must say, computed straight from the simulator's records."""

    by_status: Counter[str]
    by_pool: Counter[tuple[str, str, str]]
    gpus: Counter[tuple[str, str, str]]
    npus: Counter[tuple[str, str, str]]
    total: int


def truth(records: list[dict[str, object]]) -> Truth:
    by_status: Counter[str] = Counter()
    by_pool: Counter[tuple[str, str, str]] = Counter()
    gpus: Counter[tuple[str, str, str]] = Counter()
    npus: Counter[tuple[str, str, str]] = Counter()
    for record in records:
        status = status_of(int(record["status"]))  # type: ignore[call-overload]
        key = (
            str(record.get("pool_id") or "public"),
            str(record.get("flavor_code") or "unknown"),
            status.phase.value,
        )
        by_status[status.name] += 1
        by_pool[key] += 1
        gpus[key] += int(record.get("gpu_num") or 0)  # type: ignore[call-overload]
        npus[key] += int(record.get("npu_num") or 0)  # type: ignore[call-overload]
    return Truth(by_status, by_pool, gpus, npus, len(records))


def assert_matches_truth(
    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float], expected: Truth
) -> None:
    got_status = {
        dict(labels)["status"]: value
        for (name, labels), value in samples.items()
        if name == "modelarts_training_job_versions" and value
    }
    assert got_status == {k: float(v) for k, v in expected.by_status.items()}
    for metric, counter in (
        ("modelarts_training_job_pool_versions", expected.by_pool),
        ("modelarts_training_job_gpus", expected.gpus),
        ("modelarts_training_job_npus", expected.npus),
    ):
        got = {
            (d["pool_id"], d["flavor_code"], d["phase"]): value
            for (name, labels), value in samples.items()
            if name == metric
            for d in [dict(labels)]
        }
        assert got == {k: float(v) for k, v in counter.items()}, metric


def assert_snapshot_matches_truth(snapshot: Snapshot, expected: Truth) -> None:
    """``assert_matches_truth`` on the snapshot itself: no exposition to render and parse, so
    cheap enough to run after every poll of a soak."""
    assert snapshot.version_count == expected.total
    assert snapshot.reported_total == expected.total
    got_status = {status.name: n for status, n in snapshot.by_status.items() if n}
    assert got_status == dict(expected.by_status)
    got_pools = {
        (pool, flavor, phase.value): u for (pool, flavor, phase), u in snapshot.by_pool.items()
    }
    assert {key: u.versions for key, u in got_pools.items()} == dict(expected.by_pool)
    assert {key: u.gpus for key, u in got_pools.items()} == dict(expected.gpus)
    assert {key: u.npus for key, u in got_pools.items()} == dict(expected.npus)
