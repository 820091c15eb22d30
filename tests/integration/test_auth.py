"""IAM password logins against the simulator's IAM: tokens are cached, refreshed ahead of expiry
one at a time, re-obtained after a mid-poll 401, and IAM's refusals are clear ``auth`` failures
that never show the password."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from modelarts_exporter.cloud.auth import IamPasswordAuth
from modelarts_exporter.cloud.errors import Reason
from modelarts_exporter.simulator import FaultKind, FaultRule, Iam, IamUser, SimulatorServer
from support.simulation import InProcessExporter, SimFactory, select
from support.truth import assert_matches_truth, truth

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]
PASSWORD = "pa55-word-never-shown"


def iam_simulator(
    simulator: SimFactory, lifetime: float = 3600.0, **options: Any
) -> SimulatorServer:
    project_id = options.pop("project_id", "simproject")
    iam = Iam(
        {"alice": IamUser(PASSWORD, "acme"), "bob": IamUser(PASSWORD, "acme", locked=True)},
        project_id=project_id,
        project_name="eu-de_acme",
        token_lifetime_s=lifetime,
    )
    return simulator(tokens=None, iam=iam, project_id=project_id, **options)


def iam_of(sim: SimulatorServer) -> Iam:
    iam = sim._context.iam  # the simulator's own IAM, to count and revoke
    assert iam is not None
    return iam


def login(sim: SimulatorServer, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "auth_token": None,
        "iam_endpoint": f"{sim.url}/v3",
        "username": "alice",
        "password": PASSWORD,
        "domain_name": "acme",
    }
    values.update(overrides)
    return values


async def test_token_is_reused_across_polls(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = iam_simulator(simulator, size=300)
    exporter = exporter_for(sim, page_size=50, **login(sim))
    for _ in range(3):
        assert await exporter.poll()
    assert iam_of(sim).requests == 1
    assert_matches_truth(exporter.samples(), truth(sim.tenant.records_in("0")))


async def test_one_refresh_under_concurrent_page_fetches(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = iam_simulator(simulator, size=600)
    exporter = exporter_for(
        sim, page_size=20, max_concurrency=16, pagination="offset", **login(sim)
    )
    assert await exporter.poll()
    assert iam_of(sim).requests == 1
    assert sim.stats.requests == 30  # every page, each with the one token


async def test_refresh_happens_ahead_of_expiry_without_a_401(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = iam_simulator(simulator, lifetime=2.0, size=100)
    exporter = exporter_for(sim, page_size=50, max_concurrency=4, **login(sim))
    assert await exporter.poll()
    await asyncio.sleep(1.6)  # in the token's last quarter (expires at 2.0 s)
    assert await exporter.poll()
    assert iam_of(sim).requests == 2
    assert 401 not in sim.stats.by_status


async def test_mid_poll_revocation_reauthenticates_once_and_recovers(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = iam_simulator(simulator, size=400)
    iam = iam_of(sim)

    def revoke_on_third_page(request: Any) -> bool:
        if request.offset == 100:
            iam.revoke_all()  # a password change while the poll runs
        return False

    sim.faults.add(FaultRule(FaultKind.SHIFT, when=revoke_on_third_page))
    exporter = exporter_for(sim, page_size=50, max_concurrency=1, pagination="offset", **login(sim))
    assert await exporter.poll()
    assert iam.requests == 2
    assert sim.stats.by_status[401] == 1
    assert_matches_truth(exporter.samples(), truth(sim.tenant.records_in("0")))


async def test_a_token_that_keeps_being_rejected_is_auth(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = iam_simulator(simulator, lifetime=0.0, size=50)  # every token expired on arrival
    iam = iam_of(sim)
    exporter = exporter_for(sim, **login(sim))
    assert not await exporter.poll()
    state = exporter.target.poller.state
    assert state.last_error_reason is Reason.AUTH
    assert iam.requests == 2  # re-authenticated once, not in a loop


@pytest.mark.parametrize(
    ("user", "password", "message"),
    [
        ("alice", "wrong-password-1", "The username or password is wrong."),
        ("bob", PASSWORD, "The user is locked"),
    ],
)
async def test_iam_refusals_are_clear_auth_errors_without_the_password(
    simulator: SimFactory,
    exporter_for: MakeExporter,
    caplog: pytest.LogCaptureFixture,
    user: str,
    password: str,
    message: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = iam_simulator(simulator, size=10)
    exporter = exporter_for(sim, **login(sim, username=user, password=password))
    assert not await exporter.poll()
    state = exporter.target.poller.state
    assert state.last_error_reason is Reason.AUTH
    assert (state.last_error or "").startswith("IAM refused the token request: HTTP 401")
    assert message in (state.last_error or "")
    for text in (caplog.text, state.last_error or "", exporter.exposition()):
        assert password not in text
    assert sim.stats.requests == 0  # ModelArts never saw a request without a token


async def test_project_given_by_name_is_resolved_through_iam(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = iam_simulator(simulator, size=120, project_id="0a1b2c3d")
    exporter = exporter_for(sim, project_id=None, project_name="eu-de_acme", **login(sim))
    assert await exporter.poll()
    samples = exporter.samples()
    assert select(samples, "modelarts_exporter_up", project_id="0a1b2c3d") == 1
    assert select(samples, "modelarts_training_job_versions", project_id="0a1b2c3d") == 120
    assert iam_of(sim).requests == 1


async def test_auth_repr_hides_the_password(simulator: SimFactory) -> None:
    sim = iam_simulator(simulator, size=1)
    async with httpx.AsyncClient() as http:
        auth = IamPasswordAuth(
            http=http,
            iam_endpoint=f"{sim.url}/v3",
            username="alice",
            password=SecretStr(PASSWORD),
            domain_name="acme",
            project_name="eu-de_acme",
        )
        assert PASSWORD not in repr(auth)
        assert await auth.project_id() == "simproject"
