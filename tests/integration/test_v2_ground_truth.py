"""The v2 API over real HTTP: every family equals what an independent computation from the
simulator's own record of its jobs says, under both readings of ``offset`` and of ``count``,
across an evolving tenant, a restart, and with ``API_VERSION=both``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from modelarts_exporter.simulator import V2Tenant
from modelarts_exporter.simulator.v2_jobs import WORKSPACE_2, JobTruth
from support.simulation import InProcessExporter, SimFactory, select
from support.truth import V2_TERMINAL, assert_matches_truth, truth, v2_group

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]
Samples = Mapping[tuple[str, frozenset[tuple[str, str]]], float]

BOTH_WORKSPACES = f"0,{WORKSPACE_2}"


def _family(samples: Samples, name: str, *keys: str, nonzero: bool = False) -> dict[Any, float]:
    return {
        tuple(dict(labels)[key] for key in keys): value
        for (n, labels), value in samples.items()
        if n == name and (value or not nonzero)
    }


def assert_v2_matches(samples: Samples, jobs: list[JobTruth]) -> None:
    by_status: Counter[tuple[str]] = Counter()
    by_kind: Counter[tuple[str, str, str]] = Counter()
    pools: Counter[tuple[str, str, str]] = Counter()
    gpus: Counter[tuple[str, str, str]] = Counter()
    npus: Counter[tuple[str, str, str]] = Counter()
    unknown: Counter[tuple[str, str, str]] = Counter()
    for job in jobs:
        key = (job.pool_id, job.flavor, v2_group(job))
        by_status[(job.phase,)] += 1
        by_kind[(job.kind, job.phase, v2_group(job))] += 1
        pools[key] += 1
        gpus[key] += job.gpus or 0
        npus[key] += job.npus or 0
        if job.gpus is None:
            unknown[key] += 1
    assert _family(samples, "modelarts_training_job_versions", "status", nonzero=True) == by_status
    assert _family(
        samples, "modelarts_training_jobs", "job_kind", "status", "phase", nonzero=True
    ) == dict(by_kind)
    where = ("pool_id", "flavor_code", "phase")
    assert _family(samples, "modelarts_training_job_pool_versions", *where) == dict(pools)
    assert _family(samples, "modelarts_training_job_gpus", *where) == {k: gpus[k] for k in pools}
    assert _family(samples, "modelarts_training_job_npus", *where) == {k: npus[k] for k in pools}
    assert _family(samples, "modelarts_training_job_accelerators_unknown", *where) == dict(unknown)
    assert select(samples, "modelarts_training_job_versions_reported") == len(jobs)


def _observed(
    before: list[JobTruth], after: list[JobTruth]
) -> tuple[Counter[tuple[str, str]], Counter[tuple[str]], dict[tuple[str, str], float]]:
    """Duration counts by (pool, phase), queue counts by pool, GPU+NPU-seconds by (pool, flavor)
    of what happened between two listings."""
    finished = {j.id for j in before if v2_group(j) in V2_TERMINAL}
    started = {j.id for j in before if j.start_ms or v2_group(j) in V2_TERMINAL}
    durations: Counter[tuple[str, str]] = Counter()
    queue: Counter[tuple[str]] = Counter()
    card_seconds: Counter[tuple[str, str]] = Counter()
    for job in after:
        if v2_group(job) in V2_TERMINAL and job.id not in finished:
            durations[(job.pool_id, v2_group(job))] += 1
            cards = (job.gpus or 0) + (job.npus or 0)
            if cards:
                card_seconds[(job.pool_id, job.flavor)] += cards * job.duration_ms / 1000
        if job.start_ms and job.create_ms and job.id not in started:
            queue[(job.pool_id,)] += 1
    return durations, queue, dict(card_seconds)


def _card_seconds(samples: Samples) -> dict[tuple[str, str], float]:
    total: Counter[tuple[str, str]] = Counter()
    for name in (
        "modelarts_training_job_gpu_seconds_total",
        "modelarts_training_job_npu_seconds_total",
    ):
        for key, value in _family(samples, name, "pool_id", "flavor_code").items():
            total[key] += value
    return dict(total)


@pytest.mark.parametrize(
    ("offset_mode", "count_mode"),
    [("page", "matching"), ("record", "matching"), ("page", "page"), ("record", "page")],
)
async def test_v2_jobs_match_ground_truth_across_polls_and_a_restart(
    simulator: SimFactory, exporter_for: MakeExporter, offset_mode: str, count_mode: str
) -> None:
    jobs = V2Tenant(size=1200, seed=5, now_ms=1_763_632_800_000)
    sim = simulator(size=0, v2=jobs, offset_mode=offset_mode, count_mode=count_mode)
    exporter = exporter_for(sim, api_version="v2", workspace_id=BOTH_WORKSPACES, max_concurrency=4)

    before = jobs.truth()
    assert await exporter.poll(), exporter.target.poller.state.last_error
    first = exporter.samples()
    assert_v2_matches(first, before)
    # The baseline observes nothing, however many jobs had already finished.
    assert select(first, "modelarts_training_job_duration_seconds_count") == 0
    assert select(first, "modelarts_training_job_queue_seconds_count") == 0
    # v1's families of statuses stay out of a v2 target.
    assert (
        "modelarts_training_job_versions",
        frozenset({("project_id", sim.project_id), ("status", "running"), ("phase", "running")}),
    ) not in first

    jobs.advance(1800)
    after = jobs.truth()
    assert await exporter.poll()
    second = exporter.samples()
    assert_v2_matches(second, after)
    durations, queue, card_seconds = _observed(before, after)
    assert sum(durations.values()) > 0 and sum(queue.values()) > 0
    got = _family(
        second, "modelarts_training_job_duration_seconds_count", "pool_id", "phase", nonzero=True
    )
    assert got == dict(durations)
    got = _family(second, "modelarts_training_job_queue_seconds_count", "pool_id", nonzero=True)
    assert got == dict(queue)
    assert _card_seconds(second) == pytest.approx(card_seconds)

    # A restarted exporter takes a new baseline: no spike of everything already finished.
    restarted = exporter_for(sim, api_version="v2", workspace_id=BOTH_WORKSPACES)
    assert await restarted.poll()
    third = restarted.samples()
    assert_v2_matches(third, jobs.truth())
    assert select(third, "modelarts_training_job_duration_seconds_count") == 0
    detected = {"page": "page", "record": "offset"}[offset_mode]
    assert exporter.target.poller._source.pagination == detected  # type: ignore[attr-defined]


async def test_offset_reading_is_found_once_and_remembered(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(size=0, v2=V2Tenant(size=300, seed=2), offset_mode="record")
    exporter = exporter_for(sim, api_version="v2", page_size=50, max_concurrency=1)
    assert await exporter.poll()
    first = [q.offset for q in sim.stats.queries]
    assert first[:2] == [0, 1]
    sim.reset_stats()
    assert await exporter.poll()
    assert [q.offset for q in sim.stats.queries] == [0, 50, 100, 150]


async def test_both_publishes_v1_versions_and_v2_jobs_as_one_target(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    jobs = V2Tenant(size=400, seed=9, workspaces=("0",))
    sim = simulator(size=600, seed=4, v2=jobs, offset_mode="page")
    exporter = exporter_for(sim, api_version="both")
    assert await exporter.poll(), exporter.target.poller.state.last_error
    samples = exporter.samples()
    v1 = truth(sim.tenant.records_in("0"))
    v2 = jobs.truth()
    # The two generations never share a status label value ...
    v2_statuses = {job.phase for job in v2}
    assert not v2_statuses & set(v1.by_status)
    got_status = _family(samples, "modelarts_training_job_versions", "status", nonzero=True)
    assert got_status == {
        **{(k,): v for k, v in v1.by_status.items()},
        **Counter((j.phase,) for j in v2),
    }
    # ... and pool, flavor and phase series add up both.
    pools = Counter(v1.by_pool)
    gpus = Counter(v1.gpus)
    for job in v2:
        key = (job.pool_id, job.flavor, v2_group(job))
        pools[key] += 1
        gpus[key] += job.gpus or 0
    where = ("pool_id", "flavor_code", "phase")
    assert _family(samples, "modelarts_training_job_pool_versions", *where) == dict(pools)
    assert _family(samples, "modelarts_training_job_gpus", *where) == {k: gpus[k] for k in pools}
    assert select(samples, "modelarts_training_job_versions_reported") == v1.total + len(v2)
    # One sample per label set: the exposition parses into as many keys as it has lines.
    lines = [line for line in exporter.exposition().splitlines() if line and line[0] != "#"]
    assert len(lines) == len(exporter.samples())


async def test_v1_target_metrics_are_unchanged_by_a_v2_simulator(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(size=300, v2=V2Tenant(size=100))
    exporter = exporter_for(sim)
    assert await exporter.poll()
    samples = exporter.samples()
    assert_matches_truth(samples, truth(sim.tenant.records_in("0")))
    names = {name for name, _ in samples}
    assert "modelarts_training_jobs" not in names
    assert "modelarts_training_job_accelerators_unknown" not in names
