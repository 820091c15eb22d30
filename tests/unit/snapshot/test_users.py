"""Per-user counts and their cap (snapshot/users.py), and the oldest version named
(snapshot/counts.py), on plain versions."""

from __future__ import annotations

import json

import msgspec
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from modelarts_exporter.cloud.models import Version, parse_page
from modelarts_exporter.cloud.statuses import Phase
from modelarts_exporter.expose.collector import StateCollector
from modelarts_exporter.snapshot.aggregate import Ledger, Snapshot
from modelarts_exporter.snapshot.store import TargetState
from modelarts_exporter.snapshot.users import UserCards, user_label
from support.simulation import make_version

NOW = 1_800_000_000.0
T0 = int(NOW * 1000) - 3_600_000
RUNNING, COMPLETED, FAILED = 8, 10, 11  # v1 codes; users are set by hand as v2 would


def job(vid: int, status: int, user: str | None, gpus: int = 1, **fields: object) -> Version:
    values: dict[str, object] = {
        "create_time": T0,
        "start_time": T0 + 1000,
        "gpu_num": gpus,
        "npu_num": 0,
        "user_name": user,
        "version_name": f"job-{vid}",
    }
    if status in (COMPLETED, FAILED):
        values |= {"end_time": T0 + 61_000, "duration": 60_000}
    return make_version(vid, status, **(values | fields))


def cards(snapshot: Snapshot) -> dict[tuple[str, str], tuple[int, int]]:
    assert snapshot.users is not None
    return {(u, p.value): (c.jobs, c.gpus) for (u, p), c in snapshot.users.cards.items()}


def test_users_without_a_name_are_none_and_the_cards_add_up() -> None:
    versions = [
        job(1, RUNNING, "alice", gpus=4),
        job(2, COMPLETED, "alice", gpus=2),
        job(3, RUNNING, None),
        job(4, RUNNING, ""),
        job(5, COMPLETED, " \x00\u202e "),  # nothing printable left
        job(6, RUNNING, "bob", gpus=None, npu_num=None),  # unknown: adds no card
    ]
    snapshot = Ledger(max_users=10).update(versions, len(versions), NOW)
    assert cards(snapshot) == {
        ("alice", "running"): (1, 4),
        ("alice", "succeeded"): (1, 2),
        ("_none", "running"): (2, 2),
        ("_none", "succeeded"): (1, 1),
        ("bob", "running"): (1, 0),
    }
    assert snapshot.users is not None and snapshot.users.overflow == 0


def test_beyond_max_users_the_smallest_are_summed_under_other_ties_by_name() -> None:
    users = ["dave"] * 3 + ["carol"] * 2 + ["bob"] * 2 + ["alice"]
    versions = [job(i, COMPLETED, user) for i, user in enumerate(users, start=1)]
    snapshot = Ledger(max_users=2).update(versions, len(versions), NOW)
    # dave (3), then bob before carol (2 each, by name); carol and alice are folded.
    assert cards(snapshot) == {
        ("dave", "succeeded"): (3, 3),
        ("bob", "succeeded"): (2, 2),
        ("_other", "succeeded"): (3, 3),
    }
    assert snapshot.users is not None and snapshot.users.overflow == 2
    total = sum(c.jobs for c in snapshot.users.cards.values())
    assert total == sum(u.versions for u in snapshot.by_pool.values()) == len(users)


def test_card_seconds_are_observed_once_after_the_baseline_by_user_and_end_phase() -> None:
    ledger = Ledger(max_users=1)
    ledger.update([job(1, COMPLETED, "old", gpus=8)], 1, NOW)  # the baseline: not observed
    listing = [
        job(1, COMPLETED, "old", gpus=8),
        job(2, COMPLETED, "alice", gpus=2),
        job(3, FAILED, "alice", gpus=1),
        job(4, COMPLETED, "bob", gpus=4),
        job(5, RUNNING, "alice", gpus=16),  # running: accrues nothing yet
    ]
    snapshot = ledger.update(listing, len(listing), NOW + 60)
    assert snapshot.users is not None
    # alice has the most jobs listed: the one user with a series; bob's seconds are _other's.
    assert dict(snapshot.users.gpu_seconds) == {
        ("alice", Phase.SUCCEEDED): 120.0,
        ("alice", Phase.FAILED): 60.0,
        ("_other", Phase.SUCCEEDED): 240.0,
    }
    assert sum(snapshot.users.gpu_seconds.values()) == sum(snapshot.gpu_seconds.values())
    # Seen again, nothing is added; and alice keeps her series once bob has more jobs.
    later = [*listing, *(job(10 + i, RUNNING, "bob") for i in range(5))]
    again = ledger.update(later, len(later), NOW + 120)
    assert again.users is not None
    assert again.users.gpu_seconds == snapshot.users.gpu_seconds
    assert ("bob", "running") in cards(again) and ("_other", "running") in cards(again)


def test_without_max_users_nothing_per_user_is_kept() -> None:
    ledger = Ledger()
    snapshot = ledger.update([job(1, COMPLETED, "alice"), job(2, RUNNING, "bob")], 2, NOW)
    assert snapshot.users is None
    assert ledger.listed is not None and ledger.listed.users is None


def _exposition(snapshot: Snapshot) -> str:
    state = TargetState("t", "p1", snapshot=snapshot, up=True)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(lambda: [state], "test"))
    return generate_latest(registry).decode()


def test_the_user_families_are_served_only_when_asked_for() -> None:
    versions = [job(1, COMPLETED, "alice"), job(2, RUNNING, "bob")]
    off = _exposition(Ledger().update(versions, 2, NOW))
    on = _exposition(Ledger(max_users=5).update(versions, 2, NOW))
    assert "_user_" not in off and 'label="user"' not in off
    assert 'modelarts_training_job_user_jobs{phase="running",project_id="p1",user="bob"} 1.0' in on
    assert 'modelarts_exporter_label_values_overflow{label="user",project_id="p1"} 0.0' in on
    # Off, the exposition is the one with the user lines taken out.
    assert [line for line in on.splitlines() if "_user_" not in line and "user" not in line] == [
        line for line in off.splitlines() if "user" not in line
    ]


def test_the_oldest_version_of_each_phase_is_named_and_ties_go_to_the_lowest_id() -> None:
    versions = [
        job(9, RUNNING, None, version_name="later", create_time=T0 + 5),
        job(7, RUNNING, None, version_name="tied-high"),
        job(3, RUNNING, None, version_name="tied-low"),
        job(4, 1, None, version_name=None),  # pending, no name
        job(5, 1, None, create_time=None),  # no create time: never the oldest
        job(6, COMPLETED, None),  # terminal: never named
    ]
    for order in (versions, versions[::-1]):
        snapshot = Ledger().update(order, len(order), NOW)
        named = {
            p.value: (j.job_id, j.job_name, j.seconds) for p, j in snapshot.oldest_jobs.items()
        }
        assert named == {"running": ("3", "tied-low", 3600.0), "pending": ("4", "", 3600.0)}
        assert snapshot.oldest_seconds[Phase.RUNNING] == 3600.0


def v2_job(vid: int, status: int, uuid: str) -> Version:
    # As v2_jobs hashes it: negative (which a v1 page, and so make_version, refuses).
    return msgspec.structs.replace(job(vid, status, None, v2_id=uuid), version_id=-vid)


def test_v2_ids_name_v2_jobs_and_sort_after_v1_versions_of_the_same_time() -> None:
    versions = [
        v2_job(5, RUNNING, "b-uuid"),
        v2_job(9, RUNNING, "a-uuid"),
        job(12, 1, None),
        v2_job(1, 1, "0-uuid"),
    ]
    snapshot = Ledger().update(versions, len(versions), NOW)
    assert {p.value: j.job_id for p, j in snapshot.oldest_jobs.items()} == {
        "running": "a-uuid",
        "pending": "12",
    }


def test_a_huge_hostile_name_does_not_fail_the_page_and_ends_bounded() -> None:
    hostile = "\x1b[31m\u202eevil\r\nname\x07" + "é" * 10_000
    record = {"version_id": 1, "status": RUNNING, "create_time": T0, "version_name": hostile}
    page = parse_page(
        json.dumps({"is_success": True, "total_count": 1, "versions": [record]}).encode()
    )
    snapshot = Ledger().update(page.versions, 1, NOW)
    name = snapshot.oldest_jobs[Phase.RUNNING].job_name
    assert name.startswith("evil name éé") and name.endswith("…")
    assert name.isprintable() and len(name) == 128


@given(st.text(max_size=2000) | st.none())
def test_any_user_name_is_one_bounded_printable_label(raw: str | None) -> None:
    label = user_label(raw)
    assert label and label.isprintable() and len(label) <= 128
    assert label == user_label(label) or label == "_none"


def test_user_cards_default_to_zero() -> None:
    assert UserCards() == UserCards(0, 0, 0)
