"""Incremental polls publish exactly what full listings publish, over real HTTP, across hundreds
of polls of an evolving tenant — including the events that force a fallback to a full listing."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import replace

import pytest

from modelarts_exporter.snapshot.aggregate import Snapshot
from support.simulation import Clock, InProcessExporter, SimFactory, select

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]


def job_samples(exporter: InProcessExporter) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        key: value
        for key, value in exporter.samples().items()
        if key[0].startswith("modelarts_training_job_")
    }


def snapshot(exporter: InProcessExporter) -> Snapshot:
    """The snapshot, except the count of listings by kind (which differs by design)."""
    current = exporter.target.poller.state.snapshot
    assert current is not None
    return replace(current, listings={})


def requests(exporter: InProcessExporter) -> float:
    return select(exporter.samples(), "modelarts_exporter_api_requests_total")


@pytest.mark.timeout(240)
async def test_incremental_and_full_polls_agree_on_every_snapshot(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(
        size=1200,
        seed=21,
        tenant_options={
            "active_fraction": 0.05,
            "unknown_status_fraction": 0.002,
            "creation_rate_per_s": 0.01,
        },
    )
    tenant = sim.tenant
    # Per-user counts too (every v1 version is user _none).
    full = exporter_for(sim, page_size=100, user_metrics=True)
    incremental = exporter_for(
        sim, page_size=100, poll_mode="incremental", full_listing_every=100_000, user_metrics=True
    )
    clock = Clock()
    for exporter in (full, incremental):
        exporter.target.poller._clock = clock
    rng = random.Random(4)
    polls = int(os.environ.get("DIFF_POLLS", "520"))
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
        assert await full.poll()
        assert await incremental.poll()
        assert snapshot(incremental) == snapshot(full), f"poll {n}"
        if n % 50 == 0:  # and what Prometheus sees, now and then (parsing it is slow)
            assert job_samples(incremental) == job_samples(full), f"poll {n}"

    samples = incremental.samples()
    incremental_polls = select(samples, "modelarts_exporter_listings_total", kind="incremental")
    assert incremental_polls >= 0.9 * polls
    assert select(samples, "modelarts_exporter_listings_total", kind="full") >= 1 + polls // 97
    assert select(samples, "modelarts_training_job_duration_seconds_count") > 100
    assert select(samples, "modelarts_training_job_oldest_job_seconds") > 0
    assert select(samples, "modelarts_training_job_user_gpu_seconds_total") > 0
    assert requests(incremental) < 0.7 * requests(full)  # a small tenant: see the benchmark


async def test_every_nth_poll_is_a_full_listing(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(size=400)
    exporter = exporter_for(sim, page_size=50, poll_mode="incremental", full_listing_every=3)
    for _ in range(7):
        sim.tenant.advance(60)
        assert await exporter.poll()
    samples = exporter.samples()
    assert select(samples, "modelarts_exporter_listings_total", kind="full") == 3  # 1st, 4th, 7th
    assert select(samples, "modelarts_exporter_listings_total", kind="incremental") == 4
