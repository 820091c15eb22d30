"""v1: incremental polls publish exactly what full listings publish, over real HTTP, across hundreds
of polls of an evolving tenant, including the events that force a fallback to a full listing
(``DIFF_POLLS`` sets how many polls; the scenarios are in tests/support/differential.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from support.differential import soak_polls, v1_agree
from support.simulation import InProcessExporter, SimFactory, select

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]


@pytest.mark.timeout(120 + 3 * soak_polls())  # ~0.15 s a poll of both when quiet
async def test_incremental_and_full_polls_agree_on_every_snapshot(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    tenant_options = {
        "active_fraction": 0.05,
        "unknown_status_fraction": 0.002,
        "creation_rate_per_s": 0.01,
    }
    sim = simulator(size=1200, seed=21, tenant_options=tenant_options)
    incremental = await v1_agree(sim, exporter_for, soak_polls())
    assert select(incremental.samples(), "modelarts_training_job_duration_seconds_count") > 100
