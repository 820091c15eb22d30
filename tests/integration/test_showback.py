"""The oldest job named and the per-user showback over real HTTP: every series equals what an
independent computation from the simulator's own records says (v1 records, v2 ``JobTruth``),
across polls; with ``USER_METRICS`` off not one per-user line is served."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from modelarts_exporter.cloud.statuses import status_of
from modelarts_exporter.simulator import V2Tenant
from modelarts_exporter.simulator.v2_jobs import WORKSPACE_2, JobTruth
from support.simulation import Clock, InProcessExporter, SimFactory, select
from support.truth import V2_TERMINAL, v2_group

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]
Samples = Mapping[tuple[str, frozenset[tuple[str, str]]], float]
OLDEST_JOB = "modelarts_training_job_oldest_job_seconds"
USER_FAMILIES = (
    "modelarts_training_job_user_jobs",
    "modelarts_training_job_user_gpus",
    "modelarts_training_job_user_npus",
    "modelarts_training_job_user_gpu_seconds_total",
    "modelarts_training_job_user_npu_seconds_total",
)
V2 = {"api_version": "v2", "workspace_id": f"0,{WORKSPACE_2}", "max_concurrency": 4}


def _family(samples: Samples, name: str, *keys: str) -> dict[Any, float]:
    return {
        tuple(dict(labels)[key] for key in keys): value
        for (n, labels), value in samples.items()
        if n == name
    }


def _oldest(samples: Samples) -> dict[str, tuple[str, str, float]]:
    return {
        phase: (job_id, name, value)
        for (phase, job_id, name), value in _family(
            samples, OLDEST_JOB, "phase", "job_id", "job_name"
        ).items()
    }


def _clocked(exporter: InProcessExporter, now_ms: int) -> Clock:
    clock = Clock()
    clock.now = now_ms / 1000
    exporter.target.poller._clock = clock
    return clock


async def test_v1_oldest_job_per_phase_is_the_simulators_oldest_version(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(size=2000, seed=13, tenant_options={"active_fraction": 0.2})
    exporter = exporter_for(sim, page_size=200)
    clock = _clocked(exporter, sim.tenant.now_ms + 5000)
    for _ in range(2):
        assert await exporter.poll(), exporter.target.poller.state.last_error
        samples = exporter.samples()
        expected: dict[str, tuple[int, int, str]] = {}
        for r in sim.tenant.records_in("0"):
            phase = status_of(int(r["status"])).phase  # type: ignore[call-overload]
            if phase.terminal or not r.get("create_time"):
                continue
            key = (int(r["create_time"]), int(r["version_id"]), str(r["version_name"]))  # type: ignore[call-overload]
            if phase.value not in expected or key < expected[phase.value]:
                expected[phase.value] = key
        assert len(expected) >= 3
        assert _oldest(samples) == {
            phase: (str(vid), name, clock.now - created / 1000)
            for phase, (created, vid, name) in expected.items()
        }
        # The same age as the unnamed family, which keeps its empty phases at 0.
        for phase, (_, _, age) in _oldest(samples).items():
            assert select(samples, "modelarts_training_job_oldest_seconds", phase=phase) == age
        sim.tenant.advance(900)
        clock.now += 900


async def test_v2_oldest_job_names_the_job_and_ties_go_to_the_lowest_id(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    jobs = V2Tenant(size=800, seed=3, now_ms=1_763_632_800_000, active_fraction=0.3)
    sim = simulator(size=0, v2=jobs)
    exporter = exporter_for(sim, **V2)
    clock = _clocked(exporter, jobs.now_ms)
    # Two pending jobs older than any other, created in the same millisecond.
    oldest = min(j.create_ms for j in jobs.truth()) - 60_000
    tied = [jobs.add_job("Pending", create_ms=oldest, name=f"tied-{n}") for n in range(2)]
    for _ in range(2):
        assert await exporter.poll(), exporter.target.poller.state.last_error
        expected: dict[str, tuple[int, str, str]] = {}
        for job in jobs.truth():
            if v2_group(job) in V2_TERMINAL or not job.create_ms:
                continue
            key = (job.create_ms, job.id, job.name)
            if v2_group(job) not in expected or key < expected[v2_group(job)]:
                expected[v2_group(job)] = key
        got = _oldest(exporter.samples())
        assert got == {
            phase: (job_id, name, clock.now - created / 1000)
            for phase, (created, job_id, name) in expected.items()
        }
        if clock.now * 1000 == jobs.now_ms:  # before the tied jobs may have moved on
            assert got["pending"][0] == min(tied)
        jobs.advance(120)
        clock.now += 120


def _users(jobs: list[JobTruth], max_users: int) -> tuple[dict[str, str], int]:
    """Each user's label: the ``max_users`` with the most jobs (ties by name) keep theirs."""
    counts = Counter(job.user or "_none" for job in jobs)
    ranked = sorted(counts, key=lambda user: (-counts[user], user))
    kept = set(ranked[:max_users])
    return {u: u if u in kept else "_other" for u in counts}, len(counts) - len(kept)


def assert_users_match(samples: Samples, jobs: list[JobTruth], max_users: int) -> None:
    label, overflow = _users(jobs, max_users)
    listed: Counter[tuple[str, str]] = Counter()
    gpus: Counter[tuple[str, str]] = Counter()
    npus: Counter[tuple[str, str]] = Counter()
    for job in jobs:
        key = (label[job.user or "_none"], v2_group(job))
        listed[key] += 1
        gpus[key] += job.gpus or 0
        npus[key] += job.npus or 0
    where = ("user", "phase")
    assert _family(samples, "modelarts_training_job_user_jobs", *where) == dict(listed)
    assert _family(samples, "modelarts_training_job_user_gpus", *where) == {
        k: gpus[k] for k in listed
    }
    assert _family(samples, "modelarts_training_job_user_npus", *where) == {
        k: npus[k] for k in listed
    }
    assert select(samples, "modelarts_exporter_label_values_overflow", label="user") == overflow
    # Totals over users are the project's totals.
    for per_user, total in (("jobs", "pool_versions"), ("gpus", "gpus"), ("npus", "npus")):
        assert select(samples, f"modelarts_training_job_user_{per_user}") == select(
            samples, f"modelarts_training_job_{total}"
        )


def _finished_card_seconds(
    before: list[JobTruth], after: list[JobTruth], label: Mapping[str, str]
) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    done = {j.id for j in before if v2_group(j) in V2_TERMINAL}
    gpu: Counter[tuple[str, str]] = Counter()
    npu: Counter[tuple[str, str]] = Counter()
    for job in after:
        if v2_group(job) in V2_TERMINAL and job.id not in done:
            key = (label[job.user or "_none"], v2_group(job))
            if job.gpus:
                gpu[key] += job.gpus * job.duration_ms / 1000
            if job.npus:
                npu[key] += job.npus * job.duration_ms / 1000
    return gpu, npu


@pytest.mark.parametrize("max_users", [100, 2])
async def test_per_user_series_equal_the_simulators_truth_across_polls(
    simulator: SimFactory, exporter_for: MakeExporter, max_users: int
) -> None:
    users = ("alice", "bob", "carol", "dave", "erin", "frank", "")
    jobs = V2Tenant(size=1000, seed=8, now_ms=1_763_632_800_000, users=users)
    sim = simulator(size=0, v2=jobs)
    exporter = exporter_for(sim, **V2, user_metrics=True, max_users=max_users)

    before = jobs.truth()
    assert await exporter.poll(), exporter.target.poller.state.last_error
    first = exporter.samples()
    assert_users_match(first, before, max_users)
    # Jobs without a user are _none (unless folded); with 7 users and a cap of 2, 5 are folded.
    none = "_none" if max_users > len(users) else _users(before, max_users)[0]["_none"]
    assert (none, "succeeded") in _family(first, USER_FAMILIES[0], "user", "phase")
    folded = select(first, "modelarts_exporter_label_values_overflow", label="user")
    assert folded == max(0, len(users) - max_users)
    # The baseline observes nothing.
    for name in USER_FAMILIES[3:]:
        assert not _family(first, name, "user", "phase")

    jobs.advance(1800)
    after = jobs.truth()
    assert await exporter.poll()
    second = exporter.samples()
    assert_users_match(second, after, max_users)
    # The users that kept a series at this poll are those the observations went to.
    label, _ = _users(after, max_users)
    gpu, npu = _finished_card_seconds(before, after, label)
    assert sum(gpu.values()) > 0 and sum(npu.values()) > 0
    where = ("user", "phase")
    got_gpu = _family(second, "modelarts_training_job_user_gpu_seconds_total", *where)
    got_npu = _family(second, "modelarts_training_job_user_npu_seconds_total", *where)
    assert got_gpu == pytest.approx(dict(gpu)) and got_npu == pytest.approx(dict(npu))
    # Their sums are the pools' counters.
    assert sum(got_gpu.values()) == pytest.approx(
        select(second, "modelarts_training_job_gpu_seconds_total")
    )
    assert sum(got_npu.values()) == pytest.approx(
        select(second, "modelarts_training_job_npu_seconds_total")
    )


async def test_without_user_metrics_no_per_user_line_is_served(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    jobs = V2Tenant(size=300, seed=4)
    sim = simulator(size=0, v2=jobs)
    exporter = exporter_for(sim, **V2)
    for _ in range(2):
        assert await exporter.poll()
        jobs.advance(1800)
    text = exporter.exposition()
    assert "_user_" not in text  # not even the HELP and TYPE lines
    assert 'label="user"' not in text
    # And nothing per user is kept.
    ledger = exporter.target.poller._ledger
    assert ledger.listed is not None and ledger.listed.users is None
    assert ledger._users is None


async def test_user_metrics_on_a_v1_target_count_every_version_as_none_with_a_warning(
    simulator: SimFactory, exporter_for: MakeExporter, caplog: pytest.LogCaptureFixture
) -> None:
    sim = simulator(size=300, seed=2)
    with caplog.at_level(logging.WARNING):
        exporter = exporter_for(sim, user_metrics=True)
    assert any("the v1 API names no user" in r.getMessage() for r in caplog.records)
    assert await exporter.poll()
    samples = exporter.samples()
    users = {user for (user, _) in _family(samples, USER_FAMILIES[0], "user", "phase")}
    assert users == {"_none"}
    assert select(samples, USER_FAMILIES[0]) == 300


HOSTILE = "\x1b]0;pwned\x07\u202eevil\u202c\n\tname\x00" + "x" * 10_000


async def test_hostile_user_and_job_names_end_bounded_and_printable(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    jobs = V2Tenant(size=20, seed=1, active_fraction=0.0, undocumented_fraction=0.0)
    sim = simulator(size=0, v2=jobs, offset_mode="page")
    jobs.add_job("Running", user=HOSTILE, name=HOSTILE)
    created = jobs.now_ms - 3_600_000
    v1 = sim.tenant.add_version(status=1, create_time=created, version_name=HOSTILE)
    exporter = exporter_for(sim, api_version="both", user_metrics=True)
    assert await exporter.poll(), exporter.target.poller.state.last_error
    samples = exporter.samples()
    oldest = _oldest(samples)
    assert oldest["pending"][0] == str(v1)
    users = {user for (user, _) in _family(samples, USER_FAMILIES[0], "user", "phase")}
    hostile = [oldest["pending"][1], oldest["running"][1], *(u for u in users if "evil" in u)]
    assert len(hostile) == 3  # the v1 name, the v2 name, the v2 user
    for value in hostile:
        # The escape sequence is removed, controls and bidi overrides are spaces (one per run).
        assert value.startswith("evil name xxx") and value.endswith("…")
        assert value.isprintable() and len(value) == 128
