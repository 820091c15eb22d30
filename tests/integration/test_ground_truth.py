"""A 10,000-version tenant over real HTTP: every gauge, histogram count and counter equals what
an independent computation from the simulator's records says, across an evolving tenant and an
exporter restart."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from modelarts_exporter.cloud.statuses import TERMINAL_PHASES, status_of
from support.simulation import InProcessExporter, SimFactory, select
from support.truth import assert_matches_truth, truth

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]
Record = dict[str, object]
DURATION_COUNT = "modelarts_training_job_duration_seconds_count"
GPU_SECONDS = "modelarts_training_job_gpu_seconds_total"


def _int(record: Record, key: str) -> int:
    value = record.get(key)
    return int(value) if isinstance(value, int) else 0


def _terminal(record: Record) -> bool:
    return status_of(_int(record, "status")).phase in TERMINAL_PHASES


def _run_seconds(record: Record) -> float:
    if _int(record, "duration"):
        return _int(record, "duration") / 1000
    start, end = _int(record, "start_time"), _int(record, "end_time")
    return (end - start) / 1000 if start and end >= start else 0.0


def _expected_observations(
    before: list[Record], after: list[Record]
) -> tuple[Counter[tuple[str, str]], Counter[str], Counter[tuple[str, str]]]:
    """Duration counts by (pool, phase), queue counts by pool, GPU-seconds by (pool, flavor)."""
    finished_before = {r["version_id"] for r in before if _terminal(r)}
    started_before = {r["version_id"] for r in before if _int(r, "start_time") or _terminal(r)}
    durations: Counter[tuple[str, str]] = Counter()
    queue: Counter[str] = Counter()
    gpu_seconds: Counter[tuple[str, str]] = Counter()
    for r in after:
        pool = str(r.get("pool_id") or "public")
        if _terminal(r) and r["version_id"] not in finished_before:
            durations[(pool, status_of(_int(r, "status")).phase.value)] += 1
            gpus = _int(r, "gpu_num")
            if gpus:
                gpu_seconds[(pool, str(r.get("flavor_code") or "unknown"))] += gpus * _run_seconds(
                    r
                )
        if (
            _int(r, "start_time")
            and _int(r, "create_time")
            and r["version_id"] not in started_before
        ):
            queue[pool] += 1
    return durations, queue, gpu_seconds


async def test_ten_thousand_versions_match_ground_truth_across_polls_and_a_restart(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(size=10_000, seed=11, tenant_options={"active_fraction": 0.1})
    exporter = exporter_for(sim, page_size=200, max_concurrency=8)

    before = sim.tenant.records_in("0")
    assert await exporter.poll()
    first = exporter.samples()
    assert_matches_truth(first, truth(before))
    # The baseline observes nothing, however many versions had already finished.
    assert select(first, "modelarts_training_job_duration_seconds_count") == 0
    assert select(first, "modelarts_training_job_queue_seconds_count") == 0
    assert select(first, "modelarts_training_job_gpu_seconds_total") == 0
    assert select(first, "modelarts_training_job_versions_reported") == len(before)

    sim.tenant.advance(3 * 3600)
    after = sim.tenant.records_in("0")
    assert await exporter.poll()
    second = exporter.samples()
    assert_matches_truth(second, truth(after))
    durations, queue, gpu_seconds = _expected_observations(before, after)
    assert sum(durations.values()) > 50  # the tenant really evolved
    for (pool, phase), n in durations.items():
        got = select(
            second, "modelarts_training_job_duration_seconds_count", pool_id=pool, phase=phase
        )
        assert got == n, (pool, phase)
    assert select(second, "modelarts_training_job_duration_seconds_count") == sum(
        durations.values()
    )
    for pool, n in queue.items():
        assert select(second, "modelarts_training_job_queue_seconds_count", pool_id=pool) == n
    for (pool, flavor), seconds in gpu_seconds.items():
        got = select(
            second, "modelarts_training_job_gpu_seconds_total", pool_id=pool, flavor_code=flavor
        )
        assert got == pytest.approx(seconds)

    # A third poll with nothing new observes nothing twice.
    assert await exporter.poll()
    third = exporter.samples()
    for name in (
        "modelarts_training_job_duration_seconds_count",
        "modelarts_training_job_queue_seconds_count",
        "modelarts_training_job_gpu_seconds_total",
    ):
        assert select(third, name) == select(second, name)

    # A restarted exporter starts from a new baseline: no false spike of old finishes.
    restarted = exporter_for(sim, page_size=200)
    assert await restarted.poll()
    fresh = restarted.samples()
    assert_matches_truth(fresh, truth(after))
    assert select(fresh, "modelarts_training_job_duration_seconds_count") == 0
    assert select(fresh, "modelarts_training_job_gpu_seconds_total") == 0
