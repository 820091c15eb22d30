"""The simulator's tenant without a server: records of the documented shape, and a deterministic
evolution that keeps the active population and the timestamps consistent.
(integration/test_simulator.py: the API the simulator serves over real HTTP.)"""

from __future__ import annotations

import time

import pytest

from modelarts_exporter.cloud.statuses import KNOWN, Phase, status_of
from modelarts_exporter.simulator import Tenant
from support.simulation import NOW_MS, Record, all_records, make_tenant

ACTIVE_PHASES = {Phase.PENDING, Phase.RUNNING, Phase.STOPPING}
RECORD_KEYS = [
    "version_id",
    "version_name",
    "status",
    "create_time",
    "start_time",
    "end_time",
    "duration",
    "version_desc",
    "pool_id",
    "flavor_code",
    "npu_num",
    "gpu_num",
]


def phase(record: Record) -> Phase:
    return status_of(record["status"]).phase


@pytest.fixture
def tenant() -> Tenant:
    return make_tenant()


def active_share(tenant: Tenant) -> float:
    records = all_records(tenant)
    active = sum(phase(r) in ACTIVE_PHASES for r in records)
    return active / len(records)


def test_records_have_the_documented_shape_with_sparse_fields(tenant: Tenant) -> None:
    records = all_records(tenant)
    assert all(list(r) == [k for k in RECORD_KEYS if k in r] for r in records)
    assert any(list(r) == RECORD_KEYS for r in records)
    assert any("pool_id" not in r for r in records)  # the shared public pool
    assert any(r.get("start_time", 0) is None for r in records)
    assert any("flavor_code" not in r for r in records)
    assert any("flavor_code" in r and r["flavor_code"] is None for r in records)
    assert any(r.get("gpu_num", 0) is None for r in records)
    assert any(r.get("version_desc", "") is None for r in records)
    assert any(r["status"] not in KNOWN for r in records)
    ascend = {
        r.get("npu_num") for r in records if r.get("flavor_code") == "modelarts.bm.ascend.d910.8"
    }
    assert ascend <= {8, None}
    ids = [r["version_id"] for r in records]
    assert ids == sorted(set(ids))
    for r in records:
        if r["end_time"] and r["start_time"]:
            assert r["duration"] == r["end_time"] - r["start_time"]
        if phase(r) is Phase.PENDING:
            assert (r["start_time"] or 0, r["end_time"], r["duration"]) == (0, 0, 0)


def test_same_seed_same_tenant_and_same_evolution() -> None:
    a, b = make_tenant(size=2000), make_tenant(size=2000)
    assert all_records(a) == all_records(b)
    a.advance(1800)
    b.advance(900)
    b.advance(900)
    assert all_records(a) == all_records(b)
    assert all_records(make_tenant(size=2000, seed=8)) != all_records(a)


def test_advance_evolves_statuses_and_creates_versions() -> None:
    tenant = make_tenant(size=5000)
    before = {r["version_id"]: r for r in all_records(tenant)}
    tenant.advance(3600)
    after = {r["version_id"]: r for r in all_records(tenant)}
    assert tenant.now_ms == NOW_MS + 3_600_000
    new = [r for vid, r in after.items() if vid not in before]
    assert len(new) > 50
    assert min(r["version_id"] for r in new) > max(before)
    assert all(NOW_MS < r["create_time"] <= tenant.now_ms for r in new)
    changed = [vid for vid, r in before.items() if after[vid]["status"] != r["status"]]
    assert len(changed) > 20
    for vid in changed:
        old, now = before[vid], after[vid]
        if phase(now).terminal and now["start_time"]:
            assert now["end_time"] > now["start_time"]
            assert now["duration"] == now["end_time"] - now["start_time"]
        assert phase(old) in ACTIVE_PHASES  # finished versions stay finished


def test_active_population_stays_near_active_fraction() -> None:
    tenant = make_tenant(size=20_000, unknown_status_fraction=0.0)
    initial_active = round(active_share(tenant) * len(tenant))
    assert initial_active == 400
    for _ in range(4):
        tenant.advance(3600)
        active = active_share(tenant) * len(tenant)
        assert 300 <= active <= 500


def test_set_status_keeps_timestamps_consistent(tenant: Tenant) -> None:
    version_id = tenant.add_version(status=7)
    assert tenant.record(version_id)["start_time"] == 0
    tenant.set_status(version_id, 8)
    assert tenant.record(version_id)["start_time"] == NOW_MS
    tenant.advance(10)
    tenant.set_status(version_id, 11)
    finished = tenant.record(version_id)
    assert finished["end_time"] == NOW_MS + 10_000
    assert finished["duration"] == 10_000


def test_generating_200k_versions_is_fast() -> None:
    """Budgets of this thread's CPU time, generous ones: other work on a busy machine does not
    eat into them as it does into the wall-clock time."""
    started = time.thread_time()
    tenant = Tenant(size=200_000, seed=1, now_ms=NOW_MS)
    elapsed = time.thread_time() - started
    assert len(tenant) == 200_000
    assert elapsed < 3.0
    started = time.thread_time()
    total, page = tenant.list_page(offset=150_000, limit=100)
    for offset in range(0, 10_000, 100):
        tenant.list_page(offset=offset, limit=100)
    assert (total, len(page)) == (200_000, 100)
    assert time.thread_time() - started < 1.5  # sorted once, then sliced


def test_a_faster_tenant_creates_more_versions_in_the_same_time() -> None:
    """The demo's tenant: busier, on the same clock (its timestamps stay real)."""
    normal = Tenant(size=1000, seed=2, now_ms=NOW_MS)
    fast = Tenant(size=1000, seed=2, now_ms=NOW_MS, speed=60)
    for tenant in (normal, fast):
        tenant.advance(600)
    assert normal.now_ms == fast.now_ms == NOW_MS + 600_000
    assert len(normal) - 1000 < 100 < len(fast) - 1000
    with pytest.raises(ValueError, match="speed"):
        Tenant(size=1, speed=0)
