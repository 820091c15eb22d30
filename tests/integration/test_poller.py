"""Every fault the simulator can throw ends in the right reason; the last good snapshot stays
served, ``up`` drops to 0, and the next healthy poll recovers."""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import pytest

from modelarts_exporter.cloud.errors import Reason
from modelarts_exporter.simulator import FaultKind, FaultRule
from support.secrets import SECRET_KEY, SECURITY_TOKEN, TOKEN, WRONG_SECRET_KEY, WRONG_TOKEN
from support.simulation import InProcessExporter, SimFactory, select
from support.truth import assert_matches_truth, truth

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]
REQUEST_TIMEOUT = 2.0
"""Read time-out of these polls: healthy answers take milliseconds, but one took longer than the
0.4 s this was once on a busy machine. The drips and hangs below stall three times as long."""

FAULT_REASONS = [
    (FaultRule(FaultKind.THROTTLE), Reason.THROTTLED),
    (FaultRule(FaultKind.THROTTLE_MODELARTS), Reason.THROTTLED),
    (FaultRule(FaultKind.BUSY_500), Reason.THROTTLED),
    (FaultRule(FaultKind.SERVER_ERROR), Reason.SERVER_ERROR),
    (FaultRule(FaultKind.BAD_GATEWAY_HTML), Reason.SERVER_ERROR),
    (FaultRule(FaultKind.MALFORMED_JSON), Reason.INVALID_RESPONSE),
    (FaultRule(FaultKind.WRONG_SHAPE), Reason.INVALID_RESPONSE),
    (FaultRule(FaultKind.WRONG_SHAPE, shape="missing_total_count"), Reason.INVALID_RESPONSE),
    (FaultRule(FaultKind.WRONG_SHAPE, shape="top_level_array"), Reason.INVALID_RESPONSE),
    (FaultRule(FaultKind.WRONG_SHAPE, shape="versions_not_objects"), Reason.INVALID_RESPONSE),
    (FaultRule(FaultKind.EMPTY_BODY), Reason.INVALID_RESPONSE),
    (FaultRule(FaultKind.API_ERROR), Reason.API_ERROR),
    (FaultRule(FaultKind.API_ERROR, error_key="error_msg"), Reason.API_ERROR),
    (FaultRule(FaultKind.RESET), Reason.CONNECTION),
    (FaultRule(FaultKind.TRUNCATED), Reason.CONNECTION),
    (
        FaultRule(
            FaultKind.SLOW_DRIP,
            drip_seconds=9 * REQUEST_TIMEOUT,
            drip_interval_seconds=3 * REQUEST_TIMEOUT,
        ),
        Reason.TIMEOUT,
    ),
    (FaultRule(FaultKind.HANG, hang_seconds=3 * REQUEST_TIMEOUT), Reason.TIMEOUT),
]


@pytest.mark.parametrize(
    ("rule", "reason"), FAULT_REASONS, ids=[f"{r.kind}-{reason}" for r, reason in FAULT_REASONS]
)
async def test_fault_ends_in_reason_keeps_last_snapshot_and_recovers(
    simulator: SimFactory, exporter_for: MakeExporter, rule: FaultRule, reason: Reason
) -> None:
    sim = simulator(size=300)
    exporter = exporter_for(sim, request_timeout_seconds=REQUEST_TIMEOUT, page_size=100)
    assert await exporter.poll()
    good = exporter.samples()
    assert select(good, "modelarts_exporter_up") == 1

    sim.tenant.advance(600)  # the truth moves on; a failed poll must not show half of it
    sim.faults.add(rule)  # fires on every request until cleared: retries cannot hide it
    assert not await exporter.poll()
    failed = exporter.samples()
    assert select(failed, "modelarts_exporter_up") == 0
    assert select(failed, "modelarts_exporter_poll_errors_total", reason=reason.value) == 1
    assert select(failed, "modelarts_exporter_poll_errors_total") == 1
    for key, value in good.items():
        if key[0].startswith("modelarts_training_job_"):
            assert failed[key] == value, key
    state = exporter.target.poller.state
    assert state.last_error and "\n" not in state.last_error

    sim.faults.clear()
    assert await exporter.poll()
    recovered = exporter.samples()
    assert select(recovered, "modelarts_exporter_up") == 1
    assert_matches_truth(recovered, truth(sim.tenant.records_in("0")))
    assert exporter.target.poller.state.last_error is None


async def test_transient_faults_are_retried_honouring_retry_after(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(size=80)
    sim.faults.add(FaultRule(FaultKind.THROTTLE, times=1, retry_after="1"))
    sim.faults.add(FaultRule(FaultKind.RESET, times=1))
    exporter = exporter_for(sim, max_retries=3, page_size=100)
    assert await exporter.poll()
    samples = exporter.samples()
    assert select(samples, "modelarts_exporter_api_requests_total", code="429") == 1
    assert select(samples, "modelarts_exporter_api_requests_total", code="none") == 1
    assert select(samples, "modelarts_exporter_api_requests_total", code="200") == 1
    duration = select(samples, "modelarts_exporter_poll_duration_seconds_sum")
    assert duration >= 1.0  # waited for Retry-After


async def test_client_errors_are_not_retried(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(size=10)
    exporter = exporter_for(sim, max_retries=3)
    client = exporter.target.client
    path = f"/v1/{sim.project_id}/training-jobs/versions"
    with pytest.raises(Exception) as caught:
        await client.get_page(path, {"limit": "-1"})
    assert getattr(caught.value, "reason", None) is Reason.CLIENT_ERROR
    assert "ModelArts.2764" in str(caught.value)
    assert sim.stats.requests == 1


async def test_bad_token_is_auth_and_never_logged(
    simulator: SimFactory, exporter_for: MakeExporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = simulator(size=10)
    wrong = WRONG_TOKEN
    exporter = exporter_for(sim, auth_token=wrong)
    assert not await exporter.poll()
    state = exporter.target.poller.state
    assert state.last_error_reason is Reason.AUTH
    assert "APIG.0301" in (state.last_error or "")
    assert wrong not in caplog.text and TOKEN not in caplog.text
    assert wrong not in exporter.exposition()


async def test_aksk_credentials_are_accepted_and_a_wrong_secret_is_auth(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(size=150, tokens=None, credentials={"AK-TEST": SECRET_KEY})
    good = exporter_for(sim, auth_token=None, access_key="AK-TEST", secret_key=SECRET_KEY)
    assert await good.poll()
    assert_matches_truth(good.samples(), truth(sim.tenant.records_in("0")))
    bad = exporter_for(sim, auth_token=None, access_key="AK-TEST", secret_key=WRONG_SECRET_KEY)
    assert not await bad.poll()
    assert bad.target.poller.state.last_error_reason is Reason.AUTH
    assert "APIG.0303" in (bad.target.poller.state.last_error or "")


async def test_temporary_credentials_sign_the_security_token(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(
        size=30,
        tokens=None,
        credentials={"AK-TMP": SECRET_KEY},
        security_tokens={"AK-TMP": SECURITY_TOKEN},
    )
    settings = {"auth_token": None, "access_key": "AK-TMP", "secret_key": SECRET_KEY}
    assert await exporter_for(sim, security_token=SECURITY_TOKEN, **settings).poll()
    assert not await exporter_for(sim, **settings).poll()


async def test_poll_deadline_reports_timeout(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(size=500)
    sim.faults.latency_seconds = 0.3
    exporter = exporter_for(sim, page_size=50, max_concurrency=4, poll_timeout_seconds=0.5)
    assert not await exporter.poll()
    state = exporter.target.poller.state
    assert state.last_error_reason is Reason.TIMEOUT
    assert "deadline" in (state.last_error or "")
    # Abandoned: nothing of that poll goes on behind it. Before its deadline it can have sent the
    # first page and the offset probe, one after the other (each answered after 0.3 s); going
    # on, it would have sent four more pages 0.6 s after it began.
    await anyio.sleep(1.0)
    assert sim.stats.requests <= 2


async def test_response_size_cap(simulator: SimFactory, exporter_for: MakeExporter) -> None:
    sim = simulator(size=400)
    exporter = exporter_for(sim, pagination="all", max_response_bytes=4096)
    assert not await exporter.poll()
    state = exporter.target.poller.state
    assert state.last_error_reason is Reason.INVALID_RESPONSE
    assert "4096-byte cap" in (state.last_error or "")


async def test_unknown_status_codes_are_exported_and_logged_once(
    simulator: SimFactory, exporter_for: MakeExporter, caplog: pytest.LogCaptureFixture
) -> None:
    sim = simulator(size=200)
    sim.tenant.add_version(status=42)
    exporter = exporter_for(sim, page_size=100)
    caplog.set_level(logging.WARNING)
    assert await exporter.poll()
    assert await exporter.poll()
    samples = exporter.samples()
    assert (
        select(samples, "modelarts_training_job_versions", status="code_42", phase="unknown") == 1
    )
    assert caplog.text.count("unrecognized status codes") == 1


FORGED = "2026-12-02 15:00:00,000 ERROR modelarts_exporter.runtime.poller forged"
HOSTILE = f"denied\n{FORGED}\r\n\x1b[2J\x1b]0;owned\x07\u202ehidden\x85{FORGED}"


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule(FaultKind.API_ERROR, error_message=HOSTILE),
        FaultRule(FaultKind.API_ERROR, error_key="error_msg", error_message=HOSTILE),
        FaultRule(FaultKind.V2_ERROR, http_status=400, error_code=HOSTILE, error_message=HOSTILE),
    ],
    ids=["error_message", "error_msg", "v2"],
)
async def test_a_hostile_error_message_cannot_forge_a_log_line(
    simulator: SimFactory,
    exporter_for: MakeExporter,
    caplog: pytest.LogCaptureFixture,
    rule: FaultRule,
) -> None:
    sim = simulator(size=20)
    sim.faults.add(rule)
    caplog.set_level(logging.WARNING)
    assert not await exporter_for(sim).poll()
    failures = [r for r in caplog.records if r.getMessage().startswith("poll failed")]
    assert len(failures) == 1
    lines = caplog.text.splitlines()
    assert len(lines) == len(caplog.records)  # every record one line: none was split in two
    for line in lines:
        assert line.isprintable() and not line.startswith(FORGED[:10]), repr(line)
    assert "denied" in failures[0].getMessage()
