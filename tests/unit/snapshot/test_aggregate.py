"""Snapshot building: gauges from each listing, observe-once histograms across listings."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.cloud.models import Version, parse_page
from modelarts_exporter.cloud.statuses import KNOWN, Phase, status_of
from modelarts_exporter.expose.collector import StateCollector
from modelarts_exporter.snapshot.aggregate import DURATION_BUCKETS, Ledger, Snapshot, run_seconds
from modelarts_exporter.snapshot.store import TargetState
from support.hostile import hostile_pages
from support.properties import examples
from support.simulation import make_version

NOW = 1_800_000_000.0
T0 = int(NOW * 1000) - 3_600_000  # an hour ago, in ms


def version(vid: int, status: int, **fields: object) -> Version:
    base: dict[str, object] = {
        "create_time": T0,
        "pool_id": "pool-a",
        "flavor_code": "gpu.x4",
        "gpu_num": 4,
        "npu_num": 0,
    }
    base.update(fields)
    return make_version(vid, status, **base)


def finished(vid: int, status: int = 10, seconds: int = 600, **fields: object) -> Version:
    start = T0 + 30_000
    return version(
        vid,
        status,
        **{
            "start_time": start,
            "end_time": start + seconds * 1000,
            "duration": seconds * 1000,
            **fields,
        },
    )


def test_every_known_status_is_present_and_counts_are_per_status() -> None:
    snap = Ledger().update([version(1, 8), version(2, 8), version(3, 7)], 3, NOW)
    assert len(snap.by_status) == len(KNOWN)
    assert snap.by_status[status_of(8)] == 2
    assert snap.by_status[status_of(7)] == 1
    assert snap.by_status[status_of(10)] == 0
    assert snap.reported_total == 3 and snap.version_count == 3


def test_unrecognized_codes_are_counted_in_phase_unknown() -> None:
    snap = Ledger().update([version(1, 42), version(2, 42)], 2, NOW)
    assert snap.by_status[status_of(42)] == 2
    assert snap.unrecognized_codes == {42}
    assert snap.phase_totals()[Phase.UNKNOWN] == 2


def test_pool_flavor_phase_sums_and_public_pool() -> None:
    versions = [
        version(1, 8),
        version(2, 8, gpu_num=2),
        version(3, 7, pool_id=None, flavor_code=None, gpu_num=None, npu_num=8),
    ]
    snap = Ledger().update(versions, 3, NOW)
    running = snap.by_pool[("pool-a", "gpu.x4", Phase.RUNNING)]
    assert (running.versions, running.gpus, running.npus) == (2, 6, 0)
    public = snap.by_pool[("public", "unknown", Phase.PENDING)]
    assert (public.versions, public.gpus, public.npus) == (1, 0, 8)


def test_oldest_is_per_active_phase_and_zero_when_none() -> None:
    versions = [version(1, 7, create_time=T0), version(2, 7, create_time=T0 + 600_000)]
    snap = Ledger().update(versions, 2, NOW)
    assert snap.oldest_seconds[Phase.PENDING] == 3600.0
    assert snap.oldest_seconds[Phase.RUNNING] == 0.0
    assert Phase.SUCCEEDED not in snap.oldest_seconds


def test_first_poll_is_a_baseline_then_each_finish_is_observed_once() -> None:
    ledger = Ledger()
    first = ledger.update([finished(1), version(2, 8, start_time=T0 + 60_000)], 2, NOW)
    assert dict(first.durations) == {} and dict(first.queue) == {}
    assert dict(first.gpu_seconds) == {}

    later = [finished(1), finished(2, status=11, seconds=100), finished(3, seconds=7200)]
    second = ledger.update(later, 3, NOW + 60)
    failed = second.durations[("pool-a", Phase.FAILED)]
    succeeded = second.durations[("pool-a", Phase.SUCCEEDED)]
    assert (failed.count, failed.total) == (1, 100.0)
    assert (succeeded.count, succeeded.total) == (1, 7200.0)
    # Version 3 started between polls: one queue observation (30 s); version 2 was started at
    # the baseline so it is not observed.
    assert second.queue["pool-a"].count == 1 and second.queue["pool-a"].total == 30.0
    assert second.gpu_seconds[("pool-a", "gpu.x4")] == 4 * (100 + 7200)

    third = ledger.update(later, 3, NOW + 120)
    assert third.durations == second.durations
    assert third.gpu_seconds == second.gpu_seconds


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    ledger = Ledger()
    ledger.update([], 0, NOW)
    snap = ledger.update([finished(1, seconds=60), finished(2, seconds=61)], 2, NOW)
    histogram = snap.durations[("pool-a", Phase.SUCCEEDED)]
    assert histogram.bounds == DURATION_BUCKETS
    assert histogram.buckets[0] == 1  # le=60 includes exactly 60
    assert histogram.buckets[1] == 2
    assert histogram.count == 2


def test_run_seconds_falls_back_to_end_minus_start_then_zero() -> None:
    assert run_seconds(finished(1, seconds=42)) == 42.0
    no_duration = finished(1, seconds=42, duration=0)
    assert run_seconds(no_duration) == 42.0
    assert run_seconds(version(1, 3)) == 0.0


def test_deleted_versions_are_forgotten_and_reobserved_if_they_return() -> None:
    ledger = Ledger()
    ledger.update([], 0, NOW)
    ledger.update([finished(1)], 1, NOW)
    ledger.update([], 0, NOW)
    snap = ledger.update([finished(1)], 1, NOW)
    assert snap.durations[("pool-a", Phase.SUCCEEDED)].count == 2


codes = st.sampled_from([*KNOWN, 42, 99])
versions_strategy = st.lists(
    st.builds(
        lambda vid, status, gpus, pool: version(vid, status, gpu_num=gpus, pool_id=pool),
        st.integers(0, 10_000),
        codes,
        st.none() | st.integers(0, 16),
        st.none() | st.sampled_from(["pool-a", "pool-b"]),
    ),
    max_size=60,
    unique_by=lambda v: v.version_id,
)


@given(versions_strategy)
def test_gauges_match_an_independent_count(versions: list[Version]) -> None:
    snap = Ledger().update(versions, len(versions), NOW)
    assert sum(snap.by_status.values()) == len(versions)
    assert sum(u.versions for u in snap.by_pool.values()) == len(versions)
    assert sum(u.gpus for u in snap.by_pool.values()) == sum(v.gpu_num or 0 for v in versions)
    for phase in Phase:
        expected = sum(1 for v in versions if status_of(v.status).phase is phase)
        assert snap.phase_totals()[phase] == expected


def _check_snapshot(snap: Snapshot, versions: int) -> None:
    """What any snapshot must be, whatever the API sent: counts that add up, no negative or
    non-finite number, cumulative histograms."""
    assert snap.version_count == versions == sum(snap.by_status.values())
    assert sum(u.versions for u in snap.by_pool.values()) == versions
    for usage in snap.by_pool.values():
        assert min(usage.versions, usage.gpus, usage.npus) >= 0
    numbers = [
        *snap.oldest_seconds.values(),
        *snap.gpu_seconds.values(),
        *snap.npu_seconds.values(),
        *(h.total for h in (*snap.durations.values(), *snap.queue.values())),
    ]
    assert all(math.isfinite(x) and x >= 0 for x in numbers)
    for histogram in (*snap.durations.values(), *snap.queue.values()):
        assert list(histogram.buckets) == sorted(histogram.buckets)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pages=st.lists(hostile_pages, min_size=1, max_size=3))
def test_hostile_pages_end_as_a_valid_snapshot_or_invalid_response(
    pages: list[dict[str, object]],
) -> None:
    """Parser and aggregator together, over successive polls: every page ends as an error with
    a bounded reason or as a snapshot that the collector renders and Prometheus' parser reads
    back, label values (quotes, newlines, any Unicode) intact."""
    ledger = Ledger()
    for number, page in enumerate(pages):
        try:
            parsed = parse_page(json.dumps(page).encode())
        except PollError as error:
            assert error.reason in (Reason.INVALID_RESPONSE, Reason.API_ERROR)
            assert "\n" not in str(error)
            continue
        assert parsed.versions is not None and parsed.total_count is not None
        unique = {v.version_id: v for v in parsed.versions}
        snap = ledger.update(list(unique.values()), parsed.total_count, NOW + 60 * number)
        _check_snapshot(snap, len(unique))
        state = TargetState(target="t", project_id="p", snapshot=snap, up=True, last_success=NOW)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StateCollector(lambda state=state: [state], "1.0"))
        exposition = generate_latest(registry).decode()
        samples = [s for f in text_string_to_metric_families(exposition) for s in f.samples]
        assert all(math.isfinite(s.value) and s.value >= 0 for s in samples)
        pools = {s.labels["pool_id"] for s in samples if s.name == "modelarts_training_job_gpus"}
        assert pools == {v.pool_id or "public" for v in unique.values()}
