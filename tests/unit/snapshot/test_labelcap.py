"""The label cap: beyond ``max_label_values`` distinct pools, flavors or odd status codes, the rest
are summed under ``_other``: totals exact, the same values kept whatever the order, counters that
never decrease; and gauge series of values the API stops reporting disappear."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from modelarts_exporter.cloud.models import Version
from modelarts_exporter.expose.collector import StateCollector
from modelarts_exporter.snapshot.aggregate import OTHER_STATUS, Ledger, Snapshot
from modelarts_exporter.snapshot.labelcap import OTHER, kept
from modelarts_exporter.snapshot.store import TargetState
from support.simulation import make_version

NOW = 1_800_000_000.0
T0 = int(NOW * 1000) - 3_600_000

_jobs = st.lists(
    st.tuples(
        st.integers(0, 30).map(lambda n: f"pool-{n}"),
        st.integers(0, 8).map(lambda n: f"flavor-{n}"),
        st.sampled_from([8, 10, 11, 77, 78, 79, 80]),  # 77.. are codes outside the table
        st.integers(0, 8),
    ),
    max_size=80,
)


def _versions(jobs: list[tuple[str, str, int, int]]) -> list[Version]:
    return [
        make_version(
            i,
            status,
            pool_id=pool,
            flavor_code=flavor,
            gpu_num=gpus,
            npu_num=0,
            create_time=T0,
            start_time=T0 + 1000,
            end_time=T0 + 61_000,
            duration=60_000,
        )
        for i, (pool, flavor, status, gpus) in enumerate(jobs, start=1)
    ]


@given(_jobs, st.integers(1, 6), st.randoms(use_true_random=False))
def test_capped_totals_are_exact_and_the_largest_values_keep_their_series(
    jobs: list[tuple[str, str, int, int]], cap: int, rng: object
) -> None:
    versions = _versions(jobs)
    full = Ledger().update(versions, len(versions), NOW)
    shuffled = list(versions)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    capped = Ledger(max_label_values=cap).update(shuffled, len(versions), NOW)

    def summed(snap: Snapshot) -> tuple[int, int, dict[str, int]]:
        phases = Counter[str]()
        for (_, _, phase), usage in snap.by_pool.items():
            phases[phase.value] += usage.versions
        return (
            sum(u.versions for u in snap.by_pool.values()),
            sum(u.gpus for u in snap.by_pool.values()),
            dict(phases),
        )

    assert summed(capped) == summed(full)
    assert sum(capped.by_status.values()) == sum(full.by_status.values()) == len(versions)
    assert capped.phase_totals() == full.phase_totals()
    for position, label in ((0, "pool_id"), (1, "flavor_code")):
        counts = Counter[str]()
        for key, usage in full.by_pool.items():
            counts[key[position]] += usage.versions
        values = {key[position] for key in capped.by_pool}
        ranked = sorted(counts, key=lambda v: (-counts[v], v))
        assert values - {OTHER} == set(ranked[:cap])
        assert capped.overflow[label] == max(0, len(counts) - cap)
        assert (OTHER in values) == (len(counts) > cap)
    odd = [s for s in full.by_status if s.name.startswith("code_") and full.by_status[s]]
    assert len([s for s in capped.by_status if s.name.startswith("code_")]) == min(cap, len(odd))
    assert capped.overflow["status"] == max(0, len(odd) - cap)
    assert (OTHER_STATUS in capped.by_status) == (len(odd) > cap)


def test_ties_are_broken_by_name() -> None:
    assert kept({"b": 2, "a": 2, "c": 3, "d": 1}, 2) == {"a", "c"}
    assert kept({"b": 1}, 5) == {"b"}


@given(st.lists(_jobs, min_size=2, max_size=5), st.integers(1, 4))
def test_observe_once_series_never_decrease_and_add_up(
    polls: list[list[tuple[str, str, int, int]]], cap: int
) -> None:
    """Each poll lists finished versions that are new (fresh ids), so each is observed once;
    whatever the pools kept at each poll, every series only grows and they sum to the truth."""
    ledger = Ledger(max_label_values=cap)
    ledger.update([], 0, NOW)  # the baseline
    previous: dict[tuple[str, str], float] = {}
    seen: list[Version] = []
    gpu_seconds = 0
    for n, jobs in enumerate(polls):
        ended = [job for job in jobs if job[2] in (10, 11)]
        fresh = [
            make_version(
                len(seen) + i,
                status,
                pool_id=pool,
                flavor_code=flavor,
                gpu_num=gpus,
                create_time=T0,
                start_time=T0 + 1000,
                duration=60_000,
            )
            for i, (pool, flavor, status, gpus) in enumerate(ended, start=1)
        ]
        seen.extend(fresh)
        gpu_seconds += sum(60 * (v.gpu_num or 0) for v in fresh)
        snap = ledger.update(seen, len(seen), NOW + 60 * (n + 1))
        current = dict(snap.gpu_seconds)
        assert all(current.get(key, 0) >= value for key, value in previous.items())
        assert abs(sum(current.values()) - gpu_seconds) < 1e-6
        assert len({pool for pool, _ in current} - {OTHER}) <= cap
        assert len({pool for pool in snap.queue} - {OTHER}) <= cap
        previous = current


def _exposition(snap: Snapshot) -> str:
    registry = CollectorRegistry()
    state = TargetState(target="t", project_id="p", snapshot=snap, up=True)
    registry.register(StateCollector(lambda: [state], "1"))
    return generate_latest(registry).decode()


def test_gauge_series_of_a_pool_the_api_stops_reporting_disappear() -> None:
    ledger = Ledger()
    first = [
        make_version(1, 8, pool_id="pool-gone", flavor_code="f-gone", gpu_num=2, create_time=T0),
        make_version(2, 8, pool_id="pool-kept", flavor_code="f", gpu_num=1, create_time=T0),
    ]
    before = _exposition(ledger.update(first, 2, NOW))
    assert 'pool_id="pool-gone"' in before and 'flavor_code="f-gone"' in before
    after = _exposition(ledger.update(first[1:], 1, NOW + 60))
    assert "pool-gone" not in after and "f-gone" not in after
    assert (
        'modelarts_training_job_gpus{flavor_code="f",phase="running",pool_id="pool-kept"' in after
    )


def test_the_overflow_is_exported_per_label() -> None:
    versions = _versions([(f"pool-{n}", "f", 8, 1) for n in range(5)])
    text = _exposition(Ledger(max_label_values=2).update(versions, 5, NOW))
    assert 'modelarts_exporter_label_values_overflow{label="pool_id",project_id="p"} 3.0' in text
    assert (
        'modelarts_exporter_label_values_overflow{label="flavor_code",project_id="p"} 0.0' in text
    )
    assert 'pool_id="_other"' in text
