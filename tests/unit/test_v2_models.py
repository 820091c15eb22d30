"""The v2 page parser, the accelerator derivation, the job → version mapping and the phase
table: pure functions, fed the notes' sample and hostile JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelarts_exporter.cloud import v2_statuses
from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.cloud.statuses import Phase, status_of
from modelarts_exporter.cloud.v2_models import parse_v2_error_body, parse_v2_page
from modelarts_exporter.cloud.v2_statuses import OTHER, status_for
from modelarts_exporter.listing.v2_jobs import accelerators, job_id, to_version
from support.hostile import json_values
from support.properties import examples

# The notes' §7 sample, abridged to what differs between its five jobs.
SAMPLE: dict[str, Any] = {
    "total": 5,
    "count": 5,
    "limit": 50,
    "offset": 0,
    "items": [
        {
            "kind": "job",
            "metadata": {"id": "7d1f0c52", "create_time": 1763632500000, "user_name": "alice"},
            "status": {"phase": "Pending", "secondary_phase": "Queuing", "duration": 0},
            "spec": {
                "resource": {
                    "flavor_id": "modelarts.pool.visual.8xlarge",
                    "flavor_name": "Ascend: 8 cards",
                    "node_count": 4,
                    "pool_id": "pool-3c9e1b7a",
                }
            },
        },
        {
            "kind": "job",
            "metadata": {"id": "c04b6e2d", "create_time": 1763631000000},
            "status": {"phase": "Running", "duration": 1700000, "start_time": 1763631100000},
            "spec": {
                "resource": {
                    "flavor_id": "modelarts.pool.visual.8xlarge",
                    "node_count": 2,
                    "pool_id": "pool-3c9e1b7a",
                    "main_container_allocated_resources": {
                        "accelerator_num": 8.0,
                        "accelerator_type": "ascend-snt9b",
                    },
                }
            },
        },
        {
            "kind": "job",
            "metadata": {"id": "3a9e5f17", "create_time": 1763625600000},
            "status": {"phase": "Running", "duration": 7010000, "start_time": 1763625790000},
            "spec": {
                "resource": {
                    "flavor_id": "modelarts.vm.gpu.2v100.example",
                    "node_count": 2,
                    "flavor_detail": {
                        "flavor_type": "GPU",
                        "billing": {"unit_num": 1},
                        "flavor_info": {"gpu": {"unit_num": 2}, "disk": {"size": "780"}},
                    },
                }
            },
        },
        {
            "kind": "job",
            "metadata": {"id": "e2c7a0b9", "create_time": 1763589600000},
            "status": {
                "phase": "Completed",
                "duration": 11675000,
                "start_time": 1763589665000,
                "running_records": [{"start_at": 1763589665, "end_at": 1763601340}],
            },
            "spec": {
                "resource": {
                    "flavor_id": "modelarts.vm.cpu.8u",
                    "node_count": 1,
                    "flavor_detail": {"flavor_type": "CPU", "flavor_info": {"cpu": {}}},
                }
            },
        },
        {
            "kind": "job",
            "metadata": {"id": "5b8d2e6f", "create_time": 1763589000000},
            "status": {"phase": "Abnormal", "secondary_phase": "CreateFailed", "start_time": 0},
            "spec": {
                "resource": {
                    "node_count": 1,
                    "flavor_detail": {
                        "flavor_type": "Ascend",
                        "flavor_info": {"npu": {"unit_num": "1"}},
                    },
                }
            },
        },
    ],
}


def _page(document: object) -> bytes:
    return json.dumps(document).encode()


def test_the_notes_sample_yields_the_notes_accelerators() -> None:
    page = parse_v2_page(_page(SAMPLE))
    assert page.items is not None
    cards = [accelerators(job["spec"]["resource"]) for job in page.items if job["spec"]]
    assert cards == [(0, 32), (0, 16), (4, 0), (0, 0), (0, 1)]


def test_a_job_without_accelerator_information_is_unknown_not_zero() -> None:
    page = parse_v2_page(
        _page({"items": [{"metadata": {"id": "x"}, "spec": {"resource": {"pool_id": "cpu-pool"}}}]})
    )
    assert page.items is not None
    version = to_version(page.items[0])
    assert version.gpu_num is None and version.npu_num is None


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        # Cards of a dedicated-pool flavor id, but of no known type: unknown.
        ({"flavor_id": "modelarts.pool.visual.4xlarge"}, None),
        ({"flavor_id": "modelarts.pool.visual.4xlarge", "flavor_name": "GPU: 4"}, (4, 0)),
        (
            {"main_container_customized_flavor": {"accelerator_num": 2.0}, "flavor_name": "GPU"},
            (2, 0),
        ),
        ({"pool_info": {"accelerator_num": "4", "accelerator_type": "ascend-snt9"}}, (0, 4)),
        ({"main_container_allocated_resources": {"accelerator_num": 0.0}}, (0, 0)),
        (
            {
                "main_container_allocated_resources": {
                    "accelerator_num": 0.5,
                    "accelerator_type": "nvidia-t4",
                }
            },
            (1, 0),
        ),
        (
            {"node_count": "3", "flavor_detail": {"flavor_info": {"npu": {"unit_num": "8"}}}},
            (0, 24),
        ),
    ],
)
def test_accelerator_fallbacks(resource: dict[str, Any], expected: tuple[int, int] | None) -> None:
    page = parse_v2_page(
        _page({"items": [{"metadata": {"id": "x"}, "spec": {"resource": resource}}]})
    )
    assert page.items is not None and page.items[0]["spec"] is not None
    assert accelerators(page.items[0]["spec"]["resource"]) == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("npu", {"unit_num": "eight"}),
        ("npu", {"unit_num": True}),
        ("gpu", {"unit_num": [2]}),
        ("gpu", {"unit_num": -1}),
        ("gpu", {"unit_num": 10**400}),  # an int no float holds
        ("gpu", {"unit_num": 1e300}),
    ],
)
def test_a_number_that_is_not_one_names_its_field(field: str, value: object) -> None:
    item = {
        "metadata": {"id": "x"},
        "spec": {"resource": {"flavor_detail": {"flavor_info": {field: value}}}},
    }
    with pytest.raises(PollError) as raised:
        parse_v2_page(_page({"items": [item]}))
    assert raised.value.reason is Reason.INVALID_RESPONSE
    assert f"items.0.spec.resource.flavor_detail.flavor_info.{field}.unit_num" in str(raised.value)


def test_times_and_identity_map_onto_a_version() -> None:
    page = parse_v2_page(_page(SAMPLE))
    assert page.items is not None
    done = to_version(page.items[3])
    assert done.create_time == 1763589600000 and done.duration == 11675000
    assert done.end_time == 1763589665000 + 11675000
    assert status_of(done.status).phase is Phase.SUCCEEDED
    assert done.version_id < 0 and done.version_id == job_id("e2c7a0b9")
    # No start_time: the first running record's start (seconds) is the start.
    started = parse_v2_page(
        _page(
            {
                "items": [
                    {
                        "metadata": {"id": "y"},
                        "status": {
                            "phase": "Running",
                            "start_time": 0,
                            "running_records": [{"start_at": 1763631100}],
                        },
                    }
                ]
            }
        )
    )
    assert started.items is not None
    assert to_version(started.items[0]).start_time == 1763631100000


def test_phases_group_as_documented_and_unknown_ones_stay_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The table of unknown phases is process-wide: this test fills its own.
    monkeypatch.setattr(v2_statuses, "_unknown_phases", {})
    monkeypatch.setattr(v2_statuses, "_overflowed", set())
    assert status_for("job", "Creating").phase is Phase.PENDING
    assert status_for("job", "Abnormal").phase is Phase.FAILED
    assert status_for("job", "Terminating").phase is Phase.STOPPING
    assert status_for(None, "Running").kind == "job"
    assert status_for("quantum_job", "Running").kind == OTHER
    strange = status_for("job", "Hibernating")
    assert (strange.name, strange.phase) == ("Hibernating", Phase.UNKNOWN)
    # A v2 phase spelled like a v1 status never merges into it.
    assert status_for("job", "running").name == "v2_running"
    names = {status_for("job", f"Odd phase {n}!").name for n in range(40)}
    assert OTHER in names and len(names) <= 17
    assert all(len(name) <= 67 for name in names)


@pytest.mark.parametrize(
    ("body", "code", "text"),
    [
        (
            {
                "error_code": "ModelArts.2808",
                "error_msg": "Unsupported operator",
                "error_solution": "Use in.",
            },
            "ModelArts.2808",
            "Unsupported operator (solution: Use in.)",
        ),
        ({"errorCode": "APIG.0308", "errorMsg": "throttled"}, "APIG.0308", "throttled"),
        ({"error": {"code": "APIGW.0301", "message": "bad token"}}, "APIGW.0301", "bad token"),
    ],
)
def test_error_envelopes_in_every_shape(body: object, code: str, text: str) -> None:
    envelope = parse_v2_error_body(_page(body))
    assert envelope is not None
    assert (envelope.error_code, envelope.message) == (code, text)


def test_bodies_without_an_error_envelope() -> None:
    assert parse_v2_error_body(b"<html>502</html>") is None
    assert parse_v2_error_body(b"") is None
    assert parse_v2_error_body(b"[" * 100_000) is None


_items = st.lists(
    st.fixed_dictionaries(
        {"metadata": st.fixed_dictionaries({"id": st.text(max_size=8)}) | json_values},
        optional={"kind": json_values, "status": json_values, "spec": json_values},
    ),
    max_size=4,
)


@settings(max_examples=examples(300), deadline=None)
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"items": _items}, optional={"count": json_values, "limit": json_values}
        ),
    )
)
def test_hostile_pages_never_crash_the_parser(document: object) -> None:
    try:
        page = parse_v2_page(json.dumps(document).encode())
        assert page.items is not None
        for job in page.items:
            to_version(job)
    except PollError as error:
        assert error.reason is Reason.INVALID_RESPONSE


@settings(max_examples=examples(200), deadline=None)
@given(st.binary(max_size=200))
def test_hostile_bytes_never_crash_the_parsers(body: bytes) -> None:
    try:
        parse_v2_page(body)
    except PollError as error:
        assert error.reason is Reason.INVALID_RESPONSE
    parse_v2_error_body(body)
