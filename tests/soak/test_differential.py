"""Incremental polls publish exactly what full listings publish, over real HTTP, across hundreds
of polls of an evolving tenant (v1, and v2 under both readings of ``offset``), including the
events that force a fallback to a full listing. ``DIFF_POLLS`` sets how many polls."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from modelarts_exporter.simulator import V2Tenant
from support.differential import v1_agree, v2_agree
from support.simulation import InProcessExporter, SimFactory, select

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]
POLLS = int(os.environ.get("DIFF_POLLS", "520"))


@pytest.mark.timeout(120 + 3 * POLLS)  # ~0.4 s a poll of both when quiet, 4x that when busy
async def test_incremental_and_full_polls_agree_on_every_snapshot(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    tenant_options = {
        "active_fraction": 0.05,
        "unknown_status_fraction": 0.002,
        "creation_rate_per_s": 0.01,
    }
    sim = simulator(size=1200, seed=21, tenant_options=tenant_options)
    incremental = await v1_agree(sim, exporter_for, POLLS)
    assert select(incremental.samples(), "modelarts_training_job_duration_seconds_count") > 100


@pytest.mark.timeout(120 + 3 * POLLS)  # ~0.4 s a poll of both when quiet, 4x that when busy
@pytest.mark.parametrize("offset_mode", ["page", "record"])
async def test_incremental_and_full_v2_polls_agree_on_every_snapshot(
    simulator: SimFactory, exporter_for: MakeExporter, offset_mode: str
) -> None:
    jobs = V2Tenant(size=600, seed=31, active_fraction=0.05, creation_rate_per_s=0.01)
    sim = simulator(size=0, v2=jobs, offset_mode=offset_mode)
    incremental = await v2_agree(sim, exporter_for, POLLS)
    assert select(incremental.samples(), "modelarts_training_job_duration_seconds_count") > 100
