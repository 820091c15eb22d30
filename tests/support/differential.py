"""Two exporters on one simulator, one listing in full and one incrementally: what the
differential tests (tests/soak/test_differential_*.py, tests/integration/test_incremental.py)
compare after every poll."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import replace

from modelarts_exporter.simulator import SimulatorServer, V2Tenant
from modelarts_exporter.simulator.v2_tenant import WORKSPACE_2
from modelarts_exporter.snapshot.aggregate import Snapshot
from support.simulation import Clock, InProcessExporter, Samples, SimFactory, select

MakeExporter = Callable[..., InProcessExporter]


def job_samples(exporter: InProcessExporter) -> Samples:
    """The job series of the exposition (not the exporter's self-metrics, which differ)."""
    return {
        key: value
        for key, value in exporter.samples().items()
        if key[0].startswith("modelarts_training_job")
    }


def comparable(exporter: InProcessExporter) -> Snapshot:
    """The snapshot, except the count of listings by kind (which differs by design)."""
    current = exporter.target.poller.state.snapshot
    assert current is not None
    return replace(current, listings={})


def on_one_clock(*exporters: InProcessExporter) -> Clock:
    """A wall clock the exporters share, so that ages (``oldest_seconds``) compare."""
    clock = Clock()
    for exporter in exporters:
        exporter.target.poller._clock = clock
    return clock


def requests(exporter: InProcessExporter) -> float:
    return select(exporter.samples(), "modelarts_exporter_api_requests_total")


def listings(exporter: InProcessExporter, kind: str) -> float:
    return select(exporter.samples(), "modelarts_exporter_listings_total", kind=kind)


async def v1_agree(
    sim: SimulatorServer, exporter_for: MakeExporter, polls: int
) -> InProcessExporter:
    """``polls`` polls of an evolving v1 tenant by both exporters: every snapshot equal (the
    incremental exporter returned)."""
    tenant = sim.tenant
    # Per-user counts too (every v1 version is user _none).
    full = exporter_for(sim, page_size=100, user_metrics=True)
    incremental = exporter_for(
        sim, page_size=100, poll_mode="incremental", full_listing_every=100_000, user_metrics=True
    )
    clock = on_one_clock(full, incremental)
    rng = random.Random(4)
    for n in range(polls):
        tenant.advance(rng.choice([5.0, 20.0, 60.0, 120.0, 600.0]))
        clock.now += 60
        if n % 97 == 50:  # a deletion: the counts disagree, the poll lists in full
            tenant.delete_version(rng.choice(tenant.records_in("0"))["version_id"])  # type: ignore[arg-type]
        if n % 89 == 30:  # a burst of new versions spanning several pages
            tenant.create_versions(rng.randint(40, 130), workspace_id="0")
        if n % 61 == 10:  # an unrecognized status, new or reached by an active version
            tenant.add_version(status=42, start_time=None, end_time=0, duration=0)
            active = [r for r in tenant.records_in("0") if r["status"] in (1, 2, 7, 8)]
            tenant.set_status(int(rng.choice(active)["version_id"]), 23)  # type: ignore[arg-type]
        await _both(full, incremental, n)
    _assert_compared(full, incremental, polls)
    return incremental


async def v2_agree(
    sim: SimulatorServer, exporter_for: MakeExporter, polls: int
) -> InProcessExporter:
    """The same for a v2 tenant (``sim.v2``), in both workspaces, with per-user series."""
    jobs = sim.v2
    options = {
        "api_version": "v2",
        "page_size": 50,
        "workspace_id": f"0,{WORKSPACE_2}",
        # Per-user series as well, 5 users ("" too) capped to 3: the folding must agree.
        "user_metrics": True,
        "max_users": 3,
    }
    full = exporter_for(sim, **options)
    incremental = exporter_for(sim, **options, poll_mode="incremental", full_listing_every=100_000)
    clock = on_one_clock(full, incremental)
    rng = random.Random(5)
    for n in range(polls):
        jobs.advance(rng.choice([5.0, 20.0, 60.0, 120.0, 600.0]))
        clock.now += 60
        if n % 97 == 50:  # a deletion: the counts disagree, the poll lists in full
            ended = [job for job in jobs.truth("0") if job.phase in ("Completed", "Failed")]
            jobs.delete_job(rng.choice(ended).id)
        if n % 89 == 30:  # a burst of new jobs spanning several pages
            for _ in range(rng.randint(40, 130)):
                jobs.add_job("Pending", workspace="0")
        if n % 61 == 10:  # a phase the documentation does not list, new or reached
            jobs.add_job("Waiting")
            running = [job for job in jobs.truth() if job.phase == "Running"]
            if running:
                jobs.set_phase(rng.choice(running).id, "Suspended")
        await _both(full, incremental, n)
    _assert_compared(full, incremental, polls)
    return incremental


async def _both(full: InProcessExporter, incremental: InProcessExporter, n: int) -> None:
    assert await full.poll(), full.target.poller.state.last_error
    assert await incremental.poll(), incremental.target.poller.state.last_error
    assert comparable(incremental) == comparable(full), f"poll {n}"
    if n % 50 == 0:  # and what Prometheus sees, now and then (parsing it is slow)
        assert job_samples(incremental) == job_samples(full), f"poll {n}"


def _assert_compared(full: InProcessExporter, incremental: InProcessExporter, polls: int) -> None:
    """The polls were mostly incremental, cheaper, and compared families with data in them."""
    samples = incremental.samples()
    assert listings(incremental, "incremental") >= 0.9 * polls, listings(incremental, "incremental")
    assert listings(incremental, "full") >= 1 + polls // 97
    assert select(samples, "modelarts_training_job_duration_seconds_count") > 0
    assert select(samples, "modelarts_training_job_oldest_job_seconds") > 0
    assert select(samples, "modelarts_training_job_user_gpu_seconds_total") > 0
    assert requests(incremental) < 0.7 * requests(full), (requests(incremental), requests(full))


def soak_polls() -> int:
    """How many polls the soak tier's differential tests run (``DIFF_POLLS``)."""
    return int(os.environ.get("DIFF_POLLS", "520"))


async def v2_soak(simulator: SimFactory, exporter_for: MakeExporter, offset_mode: str) -> None:
    """The v2 differential soak under one reading of ``offset`` (a file per reading, so that
    the two run in different pytest workers)."""
    jobs = V2Tenant(size=600, seed=31, active_fraction=0.05, creation_rate_per_s=0.01)
    sim = simulator(size=0, v2=jobs, offset_mode=offset_mode)
    incremental = await v2_agree(sim, exporter_for, soak_polls())
    assert select(incremental.samples(), "modelarts_training_job_duration_seconds_count") > 100
