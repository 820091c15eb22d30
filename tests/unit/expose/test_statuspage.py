"""The status page's text, from a hand-made state (the browser test renders a real poll's)."""

from __future__ import annotations

from types import MappingProxyType

from modelarts_exporter.cloud.statuses import Phase
from modelarts_exporter.expose.statuspage import render_status_page
from modelarts_exporter.snapshot.aggregate import PoolUsage, Snapshot
from modelarts_exporter.snapshot.store import TargetState


def _snapshot(running: PoolUsage, pending: PoolUsage) -> Snapshot:
    return Snapshot(
        taken_at=0.0,
        version_count=running.versions + pending.versions,
        reported_total=running.versions + pending.versions,
        by_status=MappingProxyType({}),
        by_pool=MappingProxyType(
            {
                ("pool-a", "flavor", Phase.RUNNING): running,
                ("pool-a", "flavor", Phase.PENDING): pending,
            }
        ),
        oldest_seconds=MappingProxyType({}),
        durations=MappingProxyType({}),
        queue=MappingProxyType({}),
        gpu_seconds=MappingProxyType({}),
        npu_seconds=MappingProxyType({}),
    )


def test_accelerator_counts_are_singular_for_one() -> None:
    snapshot = _snapshot(PoolUsage(1, gpus=1, npus=0), PoolUsage(2, gpus=2, npus=1))
    state = TargetState("t", "p", snapshot=snapshot, up=True, last_success=0.0)
    page = render_status_page([state], now=0.0, version="test")
    assert "running: 1 GPU, 0 NPUs; pending: 2 GPUs, 1 NPU" in page
