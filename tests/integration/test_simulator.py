"""The ModelArts simulator itself: listing semantics, auth, faults and its server, over real HTTP
with httpx against 127.0.0.1 — the exporter's integration tests trust all of this.
(unit/simulator/test_tenant.py: the tenant's records and evolution.)"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import pytest

from modelarts_exporter.cloud.signing import format_date, sign
from modelarts_exporter.simulator import (
    ABSENT,
    FaultKind,
    FaultPlan,
    FaultRule,
    QueryRecord,
    RequestInfo,
    SimulatorServer,
    Tenant,
    V2Tenant,
)
from modelarts_exporter.simulator.faults import WrongShape
from support.simulation import NOW_MS, Record, all_records, make_tenant
from support.waiting import eventually

PROJECT = "simproject"
VERSIONS = f"/v1/{PROJECT}/training-jobs/versions"


def sort_key(field: str) -> Callable[[Record], tuple[Any, Any]]:
    def key(record: Record) -> tuple[Any, Any]:
        if field == "job_desc":
            value = record.get("version_desc") or ""
        elif field == "job_name":
            value = record["version_name"]
        else:
            value = record[field]
        return (value, record["version_id"])

    return key


def expected(
    tenant: Tenant,
    *,
    workspace: str = "0",
    sort_by: str = "create_time",
    order: str = "desc",
    where: Callable[[Record], bool] = lambda record: True,
) -> list[Record]:
    records = [r for r in all_records(tenant, workspace) if where(r)]
    return sorted(records, key=sort_key(sort_by), reverse=order == "desc")


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def tenant() -> Tenant:
    return make_tenant()


@pytest.fixture
def server(tenant: Tenant) -> Iterator[SimulatorServer]:
    with SimulatorServer(tenant, project_id=PROJECT) as running:
        yield running


@pytest.fixture
def client(server: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        yield http


def get_versions(client: httpx.Client, **params: object) -> dict[str, Any]:
    response = client.get(VERSIONS, params={k: str(v) for k, v in params.items()})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# ------------------------------------------------------------------------------------- listing


def test_default_listing_is_newest_first_in_workspace_0(
    client: httpx.Client, tenant: Tenant
) -> None:
    response = client.get(VERSIONS)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["versions", "offset", "limit", "total_count", "is_success"]
    want = expected(tenant)
    assert body["total_count"] == len(want) < len(tenant)
    assert (body["offset"], body["limit"], body["is_success"]) == (0, 20, True)
    assert body["versions"] == want[:20]


def test_record_offsets_return_consecutive_slices(client: httpx.Client, tenant: Tenant) -> None:
    want = expected(tenant)
    body = get_versions(client, offset=40, limit=15)
    assert body["versions"] == want[40:55]
    assert (body["offset"], body["limit"], body["total_count"]) == (40, 15, len(want))
    assert get_versions(client, offset=len(want) + 5, limit=15)["versions"] == []


def test_page_offsets_count_pages(tenant: Tenant) -> None:
    want = expected(tenant)
    with (
        SimulatorServer(tenant, offset_mode="page") as server,
        httpx.Client(base_url=server.url) as client,
    ):
        body = get_versions(client, offset=2, limit=15)
        assert body["versions"] == want[30:45]
        assert body["total_count"] == len(want)


def test_limit_zero_returns_every_record(client: httpx.Client, tenant: Tenant) -> None:
    body = get_versions(client, limit=0)
    assert body["versions"] == expected(tenant)
    assert body["total_count"] == len(expected(tenant))


@pytest.mark.parametrize(
    ("params", "where", "workspace"),
    [
        ({"status": 10}, lambda r: r["status"] == 10, "0"),
        ({"status": 42}, lambda r: r["status"] == 42, "0"),
        ({"pool_id": "pool9928813f"}, lambda r: r.get("pool_id") == "pool9928813f", "0"),
        ({"pool_id": "no-such-pool"}, lambda r: False, "0"),
        ({"workspace_id": "ws-b"}, lambda r: True, "ws-b"),
        ({"workspace_id": "ws-b", "status": 11}, lambda r: r["status"] == 11, "ws-b"),
        ({"status": ""}, lambda r: True, "0"),  # empty means absent
    ],
)
def test_filters(
    client: httpx.Client,
    tenant: Tenant,
    params: dict[str, object],
    where: Callable[[Record], bool],
    workspace: str,
) -> None:
    body = get_versions(client, limit=0, **params)
    want = expected(tenant, workspace=workspace, where=where)
    assert body["versions"] == want
    assert body["total_count"] == len(want)


def test_unknown_workspace_is_empty(client: httpx.Client) -> None:
    body = get_versions(client, workspace_id="nope")
    assert (body["versions"], body["total_count"]) == ([], 0)


@pytest.mark.parametrize("sort_by", ["create_time", "job_desc", "status", "duration", "job_name"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sorting_is_total_and_pages_tile(
    client: httpx.Client, tenant: Tenant, sort_by: str, order: str
) -> None:
    want = expected(tenant, sort_by=sort_by, order=order)
    pages: list[Record] = []
    for offset in range(0, len(want), 37):
        body = get_versions(client, offset=offset, limit=37, sort_by=sort_by, order=order)
        pages += body["versions"]
    assert pages == want


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"offset": "-1"}, "ModelArts.2764"),
        ({"offset": "abc"}, "ModelArts.2764"),
        ({"limit": "1.5"}, "ModelArts.2764"),
        ({"limit": "-20"}, "ModelArts.2764"),
        ({"status": "running"}, "ModelArts.2764"),
        ({"offset": "9" * 40}, "ModelArts.2764"),
        ({"order": "up"}, "ModelArts.2764"),
        ({"sort_by": "gpu_num"}, "ModelArts.2790"),
    ],
)
def test_bad_parameters_are_400(client: httpx.Client, params: dict[str, str], code: str) -> None:
    response = client.get(VERSIONS, params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["is_success"] is False
    assert body["error_code"] == code
    assert body["error_message"]


def test_wrong_project_and_unknown_paths_are_404(client: httpx.Client) -> None:
    response = client.get("/v1/other-project/training-jobs/versions")
    assert response.status_code == 404
    assert response.json()["error_code"] == "ModelArts.2786"
    for method, path in [("GET", "/v1/simproject/training-jobs"), ("POST", VERSIONS)]:
        response = client.request(method, path)
        assert response.status_code == 404
        assert response.json()["error_code"] == "APIG.0101"


def test_tenant_changes_invalidate_cached_listings(client: httpx.Client, tenant: Tenant) -> None:
    first = get_versions(client, status=11, limit=0)
    victim = get_versions(client, status=10, limit=1)["versions"][0]["version_id"]
    tenant.set_status(victim, 11)
    after = get_versions(client, status=11, limit=0)
    assert after["total_count"] == first["total_count"] + 1
    tenant.delete_version(victim)
    assert get_versions(client, status=11, limit=0)["versions"] == first["versions"]
    with pytest.raises(KeyError):
        tenant.record(victim)


def test_added_versions_keep_null_and_absent_fields(client: httpx.Client, tenant: Tenant) -> None:
    version_id = tenant.add_version(
        status=8,
        version_name="handmade",
        create_time=NOW_MS + 1,
        start_time=NOW_MS + 2,
        pool_id="pool-new",
        flavor_code=ABSENT,
        gpu_num=None,
        npu_num=ABSENT,
        version_desc=ABSENT,
    )
    newest = get_versions(client, limit=1)["versions"][0]
    assert newest == {
        "version_id": version_id,
        "version_name": "handmade",
        "status": 8,
        "create_time": NOW_MS + 1,
        "start_time": NOW_MS + 2,
        "end_time": 0,
        "duration": 0,
        "pool_id": "pool-new",
        "gpu_num": None,
    }
    assert get_versions(client, pool_id="pool-new")["total_count"] == 1
    with pytest.raises(ValueError, match="version_id"):
        tenant.add_version(version_id=1)
    with pytest.raises(TypeError, match="unknown"):
        tenant.add_version(gpus=2)


# ---------------------------------------------------------------------------------------- auth


def signed_headers(
    server: SimulatorServer,
    params: Mapping[str, str],
    *,
    access_key: str,
    secret_key: str,
    when: datetime | None = None,
    security_token: str | None = None,
) -> dict[str, str]:
    headers = {
        "Host": f"127.0.0.1:{server.port}",
        "X-Sdk-Date": format_date(when or datetime.now(UTC)),
    }
    if security_token is not None:
        headers["X-Security-Token"] = security_token
    headers["Authorization"] = sign(
        access_key=access_key,
        secret_key=secret_key,
        method="GET",
        path=VERSIONS,
        query=list(params.items()),
        headers=headers,
        body=b"",
    )
    return headers


def test_token_auth_accepts_known_tokens_and_follows_rotation(tenant: Tenant) -> None:
    with (
        SimulatorServer(tenant, tokens={"good"}) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        missing = client.get(VERSIONS)
        assert missing.status_code == 401
        assert missing.json()["error_code"] == "APIG.0301"
        assert "Incorrect IAM authentication information" in missing.json()["error_msg"]
        assert client.get(VERSIONS, headers={"X-Auth-Token": "bad"}).status_code == 401
        assert client.get(VERSIONS, headers={"X-Auth-Token": "good"}).status_code == 200
        server.set_tokens({"rotated"})
        assert client.get(VERSIONS, headers={"X-Auth-Token": "good"}).status_code == 401
        assert client.get(VERSIONS, headers={"X-Auth-Token": "rotated"}).status_code == 200
        assert server.stats.by_status == Counter({401: 3, 200: 2})


def test_aksk_auth_accepts_good_signatures_and_rejects_bad_ones(tenant: Tenant) -> None:
    params = {"limit": "5", "offset": "10", "sort_by": "status"}
    with (
        SimulatorServer(tenant, credentials={"AK1": "SK1"}) as server,
        httpx.Client(base_url=server.url) as client,
    ):

        def call(access_key: str, secret_key: str, when: datetime | None = None) -> httpx.Response:
            headers = signed_headers(
                server, params, access_key=access_key, secret_key=secret_key, when=when
            )
            return client.get(VERSIONS, params=params, headers=headers)

        good = call("AK1", "SK1")
        assert good.status_code == 200, good.text
        assert len(good.json()["versions"]) == 5
        stale = datetime.now(UTC) - timedelta(minutes=20)
        for bad in (call("AK1", "wrong"), call("AK2", "SK1"), call("AK1", "SK1", stale)):
            assert bad.status_code == 401
            assert bad.json()["error_code"] == "APIG.0303"
        # The signature covers the query: changing it after signing must fail.
        headers = signed_headers(server, params, access_key="AK1", secret_key="SK1")
        tampered = client.get(VERSIONS, params={**params, "limit": "6"}, headers=headers)
        assert tampered.status_code == 401
        undated = {k: v for k, v in headers.items() if k != "X-Sdk-Date"}
        assert client.get(VERSIONS, params=params, headers=undated).status_code == 401
        assert client.get(VERSIONS, headers={"X-Auth-Token": "x"}).json()["error_code"] == (
            "APIG.0301"
        )


def test_temporary_credentials_need_their_signed_security_token(tenant: Tenant) -> None:
    params = {"limit": "1"}
    with (
        SimulatorServer(
            tenant, credentials={"TMP": "SK"}, security_tokens={"TMP": "sectoken"}
        ) as server,
        httpx.Client(base_url=server.url) as client,
    ):

        def status(token: str | None) -> int:
            headers = signed_headers(
                server, params, access_key="TMP", secret_key="SK", security_token=token
            )
            return client.get(VERSIONS, params=params, headers=headers).status_code

        assert status("sectoken") == 200
        assert status(None) == 401
        assert status("other") == 401


# -------------------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("kind", "error_key", "status", "code"),
    [
        (FaultKind.THROTTLE, "error_msg", 429, "APIG.0308"),
        (FaultKind.THROTTLE_MODELARTS, "error_message", 429, "ModelArts.2799"),
        (FaultKind.SERVER_ERROR, "error_message", 500, "ModelArts.0010"),
        (FaultKind.BUSY_500, "error_message", 500, "ModelArts.5039"),
        (FaultKind.API_ERROR, "error_message", 200, "ModelArts.0105"),
        (FaultKind.API_ERROR, "error_msg", 200, "ModelArts.0105"),
    ],
)
def test_json_error_faults_fire_once_with_times_1(
    server: SimulatorServer,
    client: httpx.Client,
    kind: FaultKind,
    error_key: Literal["error_message", "error_msg"],
    status: int,
    code: str,
) -> None:
    server.faults.add(FaultRule(kind, times=1, error_key=error_key))
    response = client.get(VERSIONS)
    assert response.status_code == status
    body = response.json()
    assert body["error_code"] == code
    assert body[error_key]
    if status == 429:
        assert response.headers["Retry-After"] == "1"
    if code.startswith("ModelArts."):
        assert body["is_success"] is False
    assert client.get(VERSIONS).status_code == 200  # expired after one
    assert server.faults.fired == Counter({kind: 1})
    assert server.faults.rules == ()


def test_non_json_faults(server: SimulatorServer, client: httpx.Client) -> None:
    for kind in (FaultKind.BAD_GATEWAY_HTML, FaultKind.MALFORMED_JSON, FaultKind.EMPTY_BODY):
        server.faults.add(FaultRule(kind, times=1))
    html = client.get(VERSIONS)
    assert html.status_code == 502
    assert html.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in html.text
    malformed = client.get(VERSIONS)
    assert malformed.status_code == 200
    assert "versions:[" in malformed.text
    with pytest.raises(json.JSONDecodeError):
        malformed.json()
    empty = client.get(VERSIONS)
    assert (empty.status_code, empty.content) == (200, b"")


SHAPES: list[WrongShape] = [
    "versions_string",
    "missing_total_count",
    "top_level_array",
    "versions_not_objects",
]


@pytest.mark.parametrize("shape", SHAPES)
def test_wrong_shape_is_valid_json_of_another_shape(
    server: SimulatorServer, client: httpx.Client, shape: WrongShape
) -> None:
    server.faults.add(FaultRule(FaultKind.WRONG_SHAPE, times=1, shape=shape))
    body = client.get(VERSIONS).json()
    is_list = isinstance(body, dict) and isinstance(body.get("versions"), list)
    well_formed = (
        is_list and "total_count" in body and all(isinstance(v, dict) for v in body["versions"])
    )
    assert not well_formed


def test_reset_is_a_transport_error(server: SimulatorServer, client: httpx.Client) -> None:
    server.faults.add(FaultRule(FaultKind.RESET, times=1))
    with pytest.raises(httpx.ReadError, match="reset"):
        client.get(VERSIONS)
    assert client.get(VERSIONS).status_code == 200
    assert server.stats.by_status == Counter({0: 1, 200: 1})


def test_truncated_body_is_a_protocol_error(server: SimulatorServer, client: httpx.Client) -> None:
    server.faults.add(FaultRule(FaultKind.TRUNCATED, times=1))
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(VERSIONS, params={"limit": "50"})
    assert client.get(VERSIONS).status_code == 200


def test_slow_drip_trips_read_timeouts_but_delivers_the_real_body(
    server: SimulatorServer, tenant: Tenant
) -> None:
    def drip() -> FaultRule:
        return FaultRule(FaultKind.SLOW_DRIP, times=1, drip_seconds=0.6, drip_interval_seconds=0.2)

    server.faults.add(drip())
    with (
        httpx.Client(base_url=server.url, timeout=0.1) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.get(VERSIONS)
    server.faults.add(drip())
    with httpx.Client(base_url=server.url, timeout=5.0) as patient:
        started = time.monotonic()
        body = patient.get(VERSIONS).json()
        assert time.monotonic() - started >= 0.5
    assert body["versions"] == expected(tenant)[:20]


def test_hang_trips_read_timeouts(server: SimulatorServer) -> None:
    server.faults.add(FaultRule(FaultKind.HANG, times=1, hang_seconds=0.5))
    with (
        httpx.Client(base_url=server.url, timeout=0.1) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.get(VERSIONS)
    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        server.faults.add(FaultRule(FaultKind.HANG, times=1, hang_seconds=0.2))
        with pytest.raises(httpx.RemoteProtocolError):  # closed without an answer
            client.get(VERSIONS)


def test_shift_creates_versions_mid_poll(
    server: SimulatorServer, client: httpx.Client, tenant: Tenant
) -> None:
    first = get_versions(client, offset=0, limit=20)
    server.faults.add(
        FaultRule(FaultKind.SHIFT, times=1, shift_count=3, when=lambda r: (r.offset or 0) > 0)
    )
    second = get_versions(client, offset=20, limit=20)
    assert second["total_count"] == first["total_count"] + 3
    # Three newer versions pushed everything down: the new page starts 3 records earlier.
    assert second["versions"][:3] == first["versions"][-3:]
    assert len(tenant.records_in("0")) == second["total_count"]


def test_when_targets_only_matching_requests(server: SimulatorServer, client: httpx.Client) -> None:
    seen: list[RequestInfo] = []

    def mid_poll(request: RequestInfo) -> bool:
        seen.append(request)
        return (request.offset or 0) > 0

    server.faults.add(FaultRule(FaultKind.THROTTLE, when=mid_poll))
    assert client.get(VERSIONS, params={"offset": "0"}).status_code == 200
    assert client.get(VERSIONS, params={"offset": "20"}).status_code == 429
    assert client.get(VERSIONS, params={"offset": "40"}).status_code == 429
    assert client.get(VERSIONS).status_code == 200
    assert [r.sequence for r in seen] == [1, 2, 3, 4]
    assert seen[1].query == {"offset": "20"}


def test_probability_is_seeded(tenant: Tenant) -> None:
    def run() -> list[int]:
        plan = FaultPlan([FaultRule(FaultKind.SERVER_ERROR, probability=0.3)], seed=3)
        with (
            SimulatorServer(tenant, faults=plan) as server,
            httpx.Client(base_url=server.url) as client,
        ):
            return [client.get(VERSIONS, params={"limit": "1"}).status_code for _ in range(60)]

    codes = run()
    assert 8 <= codes.count(500) <= 30
    assert run() == codes


def test_latency_delays_each_request_without_blocking_others(tenant: Tenant) -> None:
    """All eight requests are in the server at once: one after the other, the second would be
    read only once the first was answered. The latency is the room the eight threads have to
    send theirs on a busy machine, not a bound on how long anything takes."""
    latency = 3.0
    plan = FaultPlan(latency_seconds=latency)
    with SimulatorServer(tenant, faults=plan) as server:
        durations: list[float] = []

        def fetch() -> None:
            with httpx.Client(base_url=server.url, timeout=latency + 30) as client:
                started = time.monotonic()
                assert client.get(VERSIONS).status_code == 200
                durations.append(time.monotonic() - started)

        workers = [threading.Thread(target=fetch) for _ in range(8)]
        for worker in workers:
            worker.start()
        assert eventually(lambda: server.stats.requests == 8)
        assert not server.stats.by_status  # none answered yet: all eight wait side by side
        for worker in workers:
            worker.join()
    assert len(durations) == 8 and min(durations) >= latency


# --------------------------------------------------------------------------- server and stats


def test_stats_record_each_request(server: SimulatorServer, client: httpx.Client) -> None:
    client.get(VERSIONS, params={"offset": "20", "limit": "10", "status": "8"})
    client.get(VERSIONS, params={"offset": "x"})
    client.get("/_sim/health")
    stats = server.stats
    assert stats.requests == 2
    assert stats.by_status == Counter({200: 1, 400: 1})
    assert stats.queries == (QueryRecord(20, 10, 8), QueryRecord(None, None, None))
    server.reset_stats()
    assert server.stats.requests == 0
    assert server.stats.queries == ()


def test_control_endpoints(server: SimulatorServer, client: httpx.Client, tenant: Tenant) -> None:
    health = client.get("/_sim/health")
    assert (health.status_code, health.text) == (200, "ok")
    advanced = client.post("/_sim/advance", params={"seconds": "60"})
    assert advanced.json() == {"now_ms": NOW_MS + 60_000, "versions": len(tenant)}
    assert tenant.now_ms == NOW_MS + 60_000
    assert client.post("/_sim/advance", params={"seconds": "-1"}).status_code == 400
    assert client.post("/_sim/advance", params={"seconds": "soon"}).status_code == 400
    client.get(VERSIONS)
    stats = client.get("/_sim/stats").json()
    assert stats["requests"] == 1
    assert stats["by_status"] == {"200": 1}
    assert stats["now_ms"] == NOW_MS + 60_000
    assert client.get("/_sim/nothing").status_code == 404


def test_advancing_moves_the_v2_jobs_too(tenant: Tenant) -> None:
    jobs = V2Tenant(size=50, seed=4, now_ms=NOW_MS)
    server = SimulatorServer(tenant, v2=jobs).start()
    try:
        with httpx.Client(base_url=server.url) as http:
            advanced = http.post("/_sim/advance", params={"seconds": "600"}).json()
            stats = http.get("/_sim/stats").json()
    finally:
        server.stop()
    assert jobs.now_ms == tenant.now_ms == NOW_MS + 600_000
    expected = {
        "now_ms": NOW_MS + 600_000,
        "versions": len(tenant),
        "jobs": len(jobs),
        "jobs_now_ms": NOW_MS + 600_000,
    }
    assert advanced == expected
    assert {key: stats[key] for key in expected} == expected


def test_stop_closes_idle_keep_alive_connections(tenant: Tenant) -> None:
    server = SimulatorServer(tenant).start()
    client = httpx.Client(base_url=server.url)
    try:
        assert client.get(VERSIONS).status_code == 200  # connection stays open
        # Waiting for the idle connection, stop() would never return.
        stopping = threading.Thread(target=server.stop)
        stopping.start()
        stopping.join(30)
        assert not stopping.is_alive(), "stop() waits for an idle keep-alive connection"
        server.stop()  # idempotent
        with pytest.raises(httpx.TransportError):
            client.get(VERSIONS)
    finally:
        client.close()


def test_stop_interrupts_hanging_requests(tenant: Tenant) -> None:
    server = SimulatorServer(tenant).start()
    server.faults.add(FaultRule(FaultKind.HANG, hang_seconds=60))
    errors: list[BaseException] = []

    def hang() -> None:
        with httpx.Client(base_url=server.url, timeout=90) as client:
            try:
                client.get(VERSIONS)
            except httpx.HTTPError as error:
                errors.append(error)

    worker = threading.Thread(target=hang)
    worker.start()
    assert eventually(lambda: server.stats.requests == 1)  # received: it hangs from now on
    # Not interrupted, the request would hang for 60 s, and stop() with it.
    stopping = threading.Thread(target=server.stop)
    stopping.start()
    stopping.join(20)
    worker.join(20)
    assert not stopping.is_alive() and not worker.is_alive()
    assert len(errors) == 1


def test_realtime_speed_moves_the_tenant_clock(tenant: Tenant) -> None:
    with SimulatorServer(tenant, realtime_speed=600.0):
        assert eventually(lambda: tenant.now_ms - NOW_MS >= 300_000)  # 5 minutes in 0.5 s
