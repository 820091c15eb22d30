"""Incremental v2 polls publish exactly what full v2 listings publish, over real HTTP, across
hundreds of polls of an evolving simulated tenant, under both readings of ``offset`` and of
``count`` — including the events that force a fallback to a full listing."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from modelarts_exporter.simulator import V2Tenant, v2_api
from modelarts_exporter.simulator.v2_tenant import WORKSPACE_2
from modelarts_exporter.snapshot.aggregate import Snapshot
from support.simulation import Clock, InProcessExporter, SimFactory, select

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]


def job_samples(exporter: InProcessExporter) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        key: value
        for key, value in exporter.samples().items()
        if key[0].startswith("modelarts_training_job")
    }


def snapshot(exporter: InProcessExporter) -> Snapshot:
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


@pytest.mark.timeout(300)
@pytest.mark.parametrize("offset_mode", ["page", "record"])
async def test_incremental_and_full_v2_polls_agree_on_every_snapshot(
    simulator: SimFactory, exporter_for: MakeExporter, offset_mode: str
) -> None:
    jobs = V2Tenant(size=600, seed=31, active_fraction=0.05, creation_rate_per_s=0.01)
    sim = simulator(size=0, v2=jobs, offset_mode=offset_mode)
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
    polls = int(os.environ.get("DIFF_POLLS", "520"))
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
        assert await full.poll()
        assert await incremental.poll()
        assert snapshot(incremental) == snapshot(full), f"poll {n}"
        if n % 50 == 0:  # and what Prometheus sees, now and then (parsing it is slow)
            assert job_samples(incremental) == job_samples(full), f"poll {n}"

    assert listings(incremental, "incremental") >= 0.9 * polls
    assert listings(incremental, "full") >= 1 + polls // 97
    assert select(incremental.samples(), "modelarts_training_job_duration_seconds_count") > 100
    assert requests(incremental) < 0.7 * requests(full)
    # The named and per-user families were compared with something in them.
    assert select(incremental.samples(), "modelarts_training_job_oldest_job_seconds") > 0
    assert select(incremental.samples(), "modelarts_training_job_user_gpu_seconds_total") > 0


async def test_count_of_the_items_on_a_page_makes_every_poll_a_full_listing(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    """``count`` read as the items on the page cannot say how many jobs the listing holds: the
    exporter cannot vouch for an incremental poll, so it lists in full, and says the same."""
    jobs = V2Tenant(size=300, seed=3)
    sim = simulator(size=0, v2=jobs, offset_mode="page", count_mode="page")
    full = exporter_for(sim, api_version="v2", workspace_id=f"0,{WORKSPACE_2}")
    incremental = exporter_for(
        sim, api_version="v2", workspace_id=f"0,{WORKSPACE_2}", poll_mode="incremental"
    )
    on_one_clock(full, incremental)
    for _ in range(4):
        jobs.advance(60)
        assert await full.poll()
        assert await incremental.poll()
        assert job_samples(incremental) == job_samples(full)
    assert listings(incremental, "incremental") == 0
    assert listings(incremental, "full") == 4


async def test_a_phase_filter_not_honoured_gives_full_listings_with_the_same_metrics(
    simulator: SimFactory, exporter_for: MakeExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API that ignores the ``phase`` filter answers with jobs of every phase: the
    incremental poll notices on the first filtered page and lists in full instead."""
    original = v2_api._filters

    def without_phase(body: dict[str, Any]) -> dict[str, list[str]]:
        found = original(body)
        found.pop("phase", None)
        return found

    monkeypatch.setattr(v2_api, "_filters", without_phase)
    jobs = V2Tenant(size=300, seed=8)
    sim = simulator(size=0, v2=jobs, offset_mode="record")
    full = exporter_for(sim, api_version="v2")
    incremental = exporter_for(sim, api_version="v2", poll_mode="incremental")
    on_one_clock(full, incremental)
    for _ in range(4):
        jobs.advance(60)
        assert await full.poll()
        assert await incremental.poll()
        assert job_samples(incremental) == job_samples(full)
    assert listings(incremental, "incremental") == 0
    assert listings(incremental, "full") == 4
