"""Incremental polls over real HTTP: the full listing every n-th poll, and the v2 APIs under
which an incremental poll cannot be vouched for (``count`` of the page, a ``phase`` filter
ignored), so every poll lists in full and publishes what a full listing does. That incremental
polls publish exactly what full ones do, poll after poll of an evolving tenant, is the soak
tier's tests/soak/test_differential_*.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from modelarts_exporter.simulator import V2Tenant, v2_api
from modelarts_exporter.simulator.v2_tenant import WORKSPACE_2
from support.differential import job_samples, listings, on_one_clock
from support.simulation import InProcessExporter, SimFactory

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]


async def test_every_nth_poll_is_a_full_listing(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(size=400)
    exporter = exporter_for(sim, page_size=50, poll_mode="incremental", full_listing_every=3)
    for _ in range(7):
        sim.tenant.advance(60)
        assert await exporter.poll()
    assert listings(exporter, "full") == 3  # 1st, 4th, 7th
    assert listings(exporter, "incremental") == 4


async def _four_polls_all_full(
    jobs: V2Tenant, full: InProcessExporter, incremental: InProcessExporter
) -> None:
    on_one_clock(full, incremental)
    for _ in range(4):
        jobs.advance(60)
        assert await full.poll()
        assert await incremental.poll()
        assert job_samples(incremental) == job_samples(full)
    assert listings(incremental, "incremental") == 0
    assert listings(incremental, "full") == 4


async def test_count_of_the_items_on_a_page_makes_every_poll_a_full_listing(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    """``count`` read as the items on the page cannot say how many jobs the listing holds: the
    exporter cannot vouch for an incremental poll, so it lists in full, and says the same."""
    jobs = V2Tenant(size=300, seed=3)
    sim = simulator(size=0, v2=jobs, offset_mode="page", count_mode="page")
    options = {"api_version": "v2", "workspace_id": f"0,{WORKSPACE_2}"}
    full = exporter_for(sim, **options)
    await _four_polls_all_full(jobs, full, exporter_for(sim, **options, poll_mode="incremental"))


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
    await _four_polls_all_full(
        jobs, full, exporter_for(sim, api_version="v2", poll_mode="incremental")
    )
