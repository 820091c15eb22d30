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


def test_summary_line_names_the_targets_down_and_lists_them_first() -> None:
    states = [
        TargetState("alpha", "p1", up=True, last_success=0.0, interval_seconds=60.0),
        TargetState("beta", "p2", up=False, interval_seconds=30.0),
        TargetState("gamma", "p3", up=True, last_success=0.0, interval_seconds=60.0),
    ]
    page = render_status_page(states, now=0.0, version="test")
    assert "3 targets: 1 down (beta), 2 up." in page
    order = [page.index(f'id="target-{name}"') for name in ("beta", "alpha", "gamma")]
    assert order == sorted(order)
    # It reloads itself at the shortest poll interval.
    assert '<meta http-equiv="refresh" content="30">' in page


def test_refresh_is_bounded_and_an_empty_page_says_so() -> None:
    fast = [TargetState("t", "p", interval_seconds=0.5)]
    assert '<meta http-equiv="refresh" content="5">' in render_status_page(
        fast, now=0.0, version="test"
    )
    empty = render_status_page([], now=0.0, version="test")
    assert "No targets configured." in empty
    assert '<meta http-equiv="refresh" content="300">' in empty


def test_many_targets_down_are_summarised_not_all_named() -> None:
    states = [TargetState(f"t{i:02d}", "p", up=False) for i in range(8)]
    page = render_status_page(states, now=0.0, version="test")
    assert "8 targets: 8 down (t00, t01, t02, t03, t04 and 3 more), 0 up." in page
