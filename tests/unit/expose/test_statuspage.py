"""The status page's text, from a hand-made state (the browser test renders a real poll's)."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from modelarts_exporter.cloud.statuses import Phase
from modelarts_exporter.expose.statuspage import render_status_page
from modelarts_exporter.snapshot.aggregate import PoolUsage, Snapshot
from modelarts_exporter.snapshot.counts import OldestJob
from modelarts_exporter.snapshot.pool_state import Cards, PoolRecord, PoolSnapshot, PoolState
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


def test_stuck_jobs_and_pools_are_escaped_and_say_what_is_unknown() -> None:
    base = _snapshot(PoolUsage(0, gpus=0, npus=0), PoolUsage(1, gpus=8, npus=0))
    snapshot = replace(
        base,
        oldest_jobs=MappingProxyType(
            {
                Phase.PENDING: OldestJob("job-1", "<b>x</b>", 3 * 3600 + 5 * 60 + 9),
                Phase.RUNNING: OldestJob("job-2", "train", 2 * 86400 + 4 * 3600),
                Phase.UNKNOWN: OldestJob("job-3", "", 42.9),
            }
        ),
    )
    pool = PoolRecord(
        pool_id="pool-<a>",
        pool_name="gpu pool",
        pool_type="Dedicate",
        workspace_id="0",
        parent_pool_id="",
        phases=MappingProxyType({"Running": 1}),
        nodes=MappingProxyType({("f", "available"): 2, ("f", "abnormal"): 1}),
        desired=MappingProxyType({"f": 3}),
        cards=MappingProxyType({("gpu", "flavors"): Cards(capacity=16.0)}),
    )
    pools = PoolState(
        up=False,
        last_success=0.0,
        last_error="server_error: <ModelArts.0010>",
        snapshot=PoolSnapshot((pool,), complete=True),
    )
    state = TargetState("t", "p", snapshot=snapshot, up=True, last_success=0.0, pools=pools)
    page = render_status_page([state], now=0.0, version="test")
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert '<td class="n">3 h 05 min</td>' in page
    assert '<td class="n">2 d 4 h</td>' in page
    assert '<td class="n">42 s</td>' in page
    # Phases in life-cycle order: unknown, pending, running.
    assert page.index("job-3") < page.index("job-1") < page.index("job-2")
    assert "pool-&lt;a&gt;" in page and "&lt;ModelArts.0010&gt;" in page
    assert '<span class="down">down</span>, last success' in page
    # The flavor table tells capacity only: free is unknown, not 0; no NPUs at all.
    assert (
        '<td class="n">? / 16</td><td class="n">none</td><td class="n">1</td><td>flavors</td>'
        in page
    )
