"""v2 errors over real HTTP (notes §6): any non-2xx fails the poll with the code, message and
solution in its one line and the right reason; ``Retry-After`` is honoured; AK/SK signs the
POST body; a hostile listing cannot make a poll read forever."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from modelarts_exporter.cloud.auth import AkSkAuth
from modelarts_exporter.cloud.client import ApiClient, RetryPolicy
from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.cloud.v2_models import V2Page, parse_v2_error_body, parse_v2_page
from modelarts_exporter.listing.v2 import V2Options, V2Source
from modelarts_exporter.simulator import FaultKind, FaultRule, V2Tenant
from modelarts_exporter.snapshot.aggregate import Ledger
from support.secrets import SECRET_KEY, TOKEN
from support.simulation import InProcessExporter, SimFactory

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]


@pytest.mark.parametrize(
    ("status", "code", "shape", "reason"),
    [
        (404, "ModelArts.2786", "flat", Reason.AUTH),
        (403, "ModelArts.2784", "flat", Reason.AUTH),
        (403, "ModelArts.2785", "flat", Reason.AUTH),
        (400, "ModelArts.2788", "flat", Reason.CLIENT_ERROR),
        (400, "ModelArts.2790", "flat", Reason.CLIENT_ERROR),
        (429, "ModelArts.2799", "flat", Reason.THROTTLED),
        (429, "APIG.0308", "nested", Reason.THROTTLED),
        (500, "ModelArts.2950", "flat", Reason.SERVER_ERROR),
        (401, "APIG.0301", "nested", Reason.AUTH),
    ],
)
async def test_error_answers_are_classified_with_their_code(
    simulator: SimFactory,
    exporter_for: MakeExporter,
    status: int,
    code: str,
    shape: str,
    reason: Reason,
) -> None:
    sim = simulator(size=0, v2=V2Tenant(size=20))
    sim.faults.add(
        FaultRule(
            FaultKind.V2_ERROR,
            http_status=status,
            error_code=code,
            error_message="Something is wrong.",
            error_solution="Fix it.",
            v2_shape=shape,  # type: ignore[arg-type]
        )
    )
    exporter = exporter_for(sim, api_version="v2")
    assert not await exporter.poll()
    state = exporter.target.poller.state
    assert state.last_error_reason is reason
    assert state.last_error is not None and "\n" not in state.last_error
    assert f"HTTP {status}" in state.last_error and code in state.last_error
    assert "Something is wrong." in state.last_error
    if shape == "flat":
        assert "solution: Fix it." in state.last_error


async def test_a_wrong_project_is_auth(simulator: SimFactory, exporter_for: MakeExporter) -> None:
    sim = simulator(size=0, v2=V2Tenant(size=20))
    exporter = exporter_for(sim, api_version="v2", project_id="not-this-one")
    assert not await exporter.poll()
    assert exporter.target.poller.state.last_error_reason is Reason.AUTH
    assert "ModelArts.2786" in (exporter.target.poller.state.last_error or "")


async def test_retry_after_is_honoured(simulator: SimFactory) -> None:
    sim = simulator(size=0, v2=V2Tenant(size=20))
    sim.faults.add(FaultRule(FaultKind.THROTTLE, times=1, retry_after="7"))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    http = httpx.AsyncClient(base_url=sim.url, headers={"X-Auth-Token": TOKEN})
    client = ApiClient(
        [http],
        retry=RetryPolicy(max_retries=2),
        request_deadline=5,
        max_response_bytes=1 << 20,
        sleep=sleep,
    )
    body = b'{"offset":0,"limit":50}'
    path = f"/v2/{sim.project_id}/training-job-searches"
    try:
        page = await client.post(path, body, parse_v2_page, parse_v2_error_body)
    finally:
        await client.aclose()
    assert page.items is not None and len(page.items) > 0
    assert slept == [7.0]


async def test_aksk_signs_the_post_body(simulator: SimFactory, exporter_for: MakeExporter) -> None:
    sim = simulator(size=0, v2=V2Tenant(size=60), tokens=None, credentials={"AK-V2": SECRET_KEY})
    exporter = exporter_for(
        sim, api_version="v2", auth_token=None, access_key="AK-V2", secret_key=SECRET_KEY
    )
    assert await exporter.poll(), exporter.target.poller.state.last_error


def test_a_post_body_changed_after_signing_is_rejected(simulator: SimFactory) -> None:
    """The AK/SK signature covers the v2 search's body: the same signed headers with another
    body of the same length are refused by the gateway."""
    sim = simulator(size=0, v2=V2Tenant(size=60), tokens=None, credentials={"AK-V2": SECRET_KEY})
    auth = AkSkAuth("AK-V2", SecretStr(SECRET_KEY))
    url = f"{sim.url}/v2/{sim.project_id}/training-job-searches"
    body = b'{"offset":0,"limit":20,"sort_by":"create_time","order":"desc"}'
    headers = {"Content-Type": "application/json;charset=UTF-8"}
    signed = httpx.Request("POST", url, content=body, headers=headers)
    auth.sign(signed)
    with httpx.Client() as client:
        good = client.send(signed)
        assert good.status_code == 200, good.text
        assert len(good.json()["items"]) == 20
        changed = body.replace(b'"limit":20', b'"limit":30')
        tampered = client.post(url, content=changed, headers=dict(signed.headers))
    assert tampered.status_code == 401
    assert tampered.json()["error_code"] == "APIG.0303"


class _Canned:
    """A client answering every search with full pages of 50 jobs: new ones each time
    (``fresh``) or always the same (an ``offset`` ignored); ``count`` claims ten billion."""

    def __init__(self, *, fresh: bool) -> None:
        self.fresh = fresh
        self.served = 0

    async def post(self, path: str, body: bytes, parse: object, envelope: object) -> V2Page:
        self.served += 1
        prefix = self.served if self.fresh else 0
        items = [{"metadata": {"id": f"{prefix}-{n}"}} for n in range(50)]
        return parse_v2_page(json.dumps({"count": 10**10, "items": items}).encode())


async def _list(client: _Canned, **options: Any) -> PollError:
    source = V2Source(client, "p", V2Options(**options))  # type: ignore[arg-type]
    with pytest.raises(PollError) as raised:
        await source.list_versions(Ledger().builder())
    assert raised.value.reason is Reason.INVALID_RESPONSE
    return raised.value


async def test_hostile_count_cannot_make_a_poll_read_forever() -> None:
    client = _Canned(fresh=True)
    error = await _list(client, pagination="page", max_pages=30)
    assert "did not end within 30 pages" in str(error)
    assert client.served <= 30 + 8  # the workers in flight when the cap is reached


async def test_an_offset_ignored_fails_the_poll() -> None:
    error = await _list(_Canned(fresh=False), pagination="auto")
    assert "could not tell whether offset is a page index or a record offset" in str(error)
    client = _Canned(fresh=False)
    error = await _list(client, pagination="page", max_concurrency=1)
    assert "held only jobs already read" in str(error)
    assert client.served == 2
