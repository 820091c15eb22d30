"""v2, ``offset`` read as a record offset: incremental polls publish exactly what full listings publish, over real HTTP, across hundreds
of polls of an evolving tenant, including the events that force a fallback to a full listing
(``DIFF_POLLS`` sets how many polls; the scenarios are in tests/support/differential.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from support.differential import soak_polls, v2_soak
from support.simulation import InProcessExporter, SimFactory

pytestmark = pytest.mark.anyio


@pytest.mark.timeout(120 + 3 * soak_polls())  # ~0.4 s a poll of both when quiet, 4x when busy
async def test_incremental_and_full_v2_polls_agree_on_every_snapshot(
    simulator: SimFactory, exporter_for: Callable[..., InProcessExporter]
) -> None:
    await v2_soak(simulator, exporter_for, "record")
