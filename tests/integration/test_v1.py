"""Paging through the v1 listing over real HTTP against the simulator."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.listing.v1 import V1Source
from modelarts_exporter.simulator import FaultKind, FaultRule
from support.simulation import InProcessExporter, SimFactory, select
from support.truth import assert_matches_truth, truth

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]


def source_of(exporter: InProcessExporter) -> V1Source:
    source = exporter.target.poller._source  # the wiring under test
    assert isinstance(source, V1Source)
    return source


@pytest.mark.parametrize(
    ("offset_mode", "pagination"),
    [("record", "offset"), ("page", "page"), ("record", "all"), ("page", "all")],
)
async def test_explicit_pagination_modes_read_every_version(
    simulator: SimFactory, exporter_for: MakeExporter, offset_mode: str, pagination: str
) -> None:
    sim = simulator(size=1234, offset_mode=offset_mode)
    exporter = exporter_for(sim, pagination=pagination, page_size=100)
    assert await exporter.poll()
    assert_matches_truth(exporter.samples(), truth(sim.tenant.records_in("0")))
    expected_requests = 1 if pagination == "all" else -(-len(sim.tenant.records_in("0")) // 100)
    assert sim.stats.requests == expected_requests


@pytest.mark.parametrize(("offset_mode", "detected"), [("record", "offset"), ("page", "page")])
async def test_auto_finds_out_what_offset_means(
    simulator: SimFactory, exporter_for: MakeExporter, offset_mode: str, detected: str
) -> None:
    sim = simulator(size=777, offset_mode=offset_mode)
    exporter = exporter_for(sim, pagination="auto", page_size=50)
    assert await exporter.poll()
    assert source_of(exporter).detected_pagination == detected
    assert_matches_truth(exporter.samples(), truth(sim.tenant.records_in("0")))
    pages = -(-len(sim.tenant.records_in("0")) // 50)
    assert sim.stats.requests == pages + 1  # one probe, reused as data
    sim.reset_stats()
    assert await exporter.poll()
    assert sim.stats.requests == pages  # remembered: no probe again


async def test_auto_on_a_single_page_needs_no_probe(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(size=20)
    exporter = exporter_for(sim, page_size=1000)
    assert await exporter.poll()
    assert sim.stats.requests == 1
    assert_matches_truth(exporter.samples(), truth(sim.tenant.records_in("0")))


async def test_wrong_pagination_mode_fails_loudly_instead_of_losing_versions(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(size=600, offset_mode="page")
    exporter = exporter_for(sim, pagination="offset", page_size=50)
    assert not await exporter.poll()
    state = exporter.target.poller.state
    assert state.last_error_reason is Reason.INVALID_RESPONSE
    assert "does PAGINATION match" in (state.last_error or "")


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_listing_that_shifts_mid_poll_is_neither_lost_nor_double_counted(
    simulator: SimFactory, exporter_for: MakeExporter, order: str
) -> None:
    sim = simulator(size=1500, offset_mode="record")
    sim.faults.add(
        FaultRule(FaultKind.SHIFT, times=4, shift_count=7, when=lambda r: (r.offset or 0) > 0)
    )
    exporter = exporter_for(sim, pagination="offset", page_size=100, max_concurrency=4, order=order)
    before = len(sim.tenant.records_in("0"))
    assert await exporter.poll()
    records = sim.tenant.records_in("0")
    assert len(records) == before + 4 * 7  # the listing really grew while it was read
    assert sim.faults.fired[FaultKind.SHIFT] == 4
    assert_matches_truth(exporter.samples(), truth(records))
    assert exporter.target.poller.state.snapshot is not None
    assert exporter.target.poller.state.snapshot.version_count == len(records)


async def test_filters_are_sent_and_workspaces_merged(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(size=900, tenant_options={"workspaces": ("0", "ws-a", "ws-b")})
    exporter = exporter_for(sim, workspace_id=("ws-a", "ws-b"), page_size=100)
    assert await exporter.poll()
    records = sim.tenant.records_in("ws-a") + sim.tenant.records_in("ws-b")
    assert_matches_truth(exporter.samples(), truth(records))
    samples = exporter.samples()
    assert select(samples, "modelarts_training_job_versions_reported") == len(records)

    pool = next(str(r["pool_id"]) for r in records if r.get("pool_id"))
    filtered = exporter_for(sim, workspace_id=("ws-a",), pool_id=pool, status=10)
    assert await filtered.poll()
    expected = [
        r for r in sim.tenant.records_in("ws-a") if r.get("pool_id") == pool and r["status"] == 10
    ]
    assert_matches_truth(filtered.samples(), truth(expected))
    assert {q.status for q in sim.stats.queries[-1:]} == {10}


async def test_hostile_total_count_does_not_schedule_endless_pages(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(size=120)
    exporter = exporter_for(sim, pagination="offset", page_size=50, max_concurrency=4)
    source = source_of(exporter)
    original = exporter.target.client.get_page

    async def lying(path: str, params: Any) -> Any:
        page = await original(path, params)
        return type(page)(total_count=2**50, versions=page.versions)

    exporter.target.client.get_page = lying  # type: ignore[method-assign]
    with pytest.raises(PollError) as caught:
        await source.list_versions(exporter.target.poller._ledger.builder())
    assert caught.value.reason is Reason.INVALID_RESPONSE
    assert sim.stats.requests < 40  # three passes of a few pages, not 2**50 / 50


async def test_a_failed_page_stops_the_other_workers(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(size=2000)
    sim.faults.latency_seconds = 0.02
    sim.faults.add(FaultRule(FaultKind.SERVER_ERROR, times=1, when=lambda r: r.offset == 200))
    exporter = exporter_for(sim, pagination="offset", page_size=50, max_concurrency=4)
    assert not await exporter.poll()
    assert exporter.target.poller.state.last_error_reason is Reason.SERVER_ERROR
    await anyio.sleep(1.0)  # left running, the other workers would read all 40 pages by now
    # Pages 0-4, plus at most one page per worker already on the wire when page 4 failed.
    assert sim.stats.requests <= 5 + 4


async def test_cancelled_pages_give_their_connection_back(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    """Pages cancelled mid-request (a sibling page failed, the poll's deadline passed) must hand
    their connection back: two lost ones would leave this exporter waiting for a free connection
    in every later poll, reported as time-outs for ever."""
    sim = simulator(size=300)
    # A read time-out well above a healthy answer on a busy machine: a time-out here must be a
    # request that waited for a connection that was never given back.
    exporter = exporter_for(
        sim, page_size=40, max_concurrency=2, request_timeout_seconds=5, max_retries=0
    )
    poller = exporter.target.poller
    sim.faults.add(FaultRule(FaultKind.API_ERROR, probability=0.15))
    sim.faults.add(FaultRule(FaultKind.TRUNCATED, probability=0.1))
    sim.faults.latency_seconds = 0.005
    rng = random.Random(3)
    reasons: set[Reason | None] = set()
    for number in range(60):
        poller._timeout = rng.uniform(0.01, 0.06) if number % 2 else 30.0
        await exporter.poll()
        reasons.add(poller.state.last_error_reason)
        assert "no complete answer" not in (poller.state.last_error or ""), number
    assert {Reason.API_ERROR, Reason.CONNECTION, Reason.TIMEOUT} <= reasons
    sim.faults.clear()
    poller._timeout = 30.0
    assert await exporter.poll()


@pytest.mark.parametrize(
    ("offset_mode", "pagination"),
    [("record", "auto"), ("page", "auto"), ("record", "offset"), ("page", "page")],
)
async def test_an_api_that_caps_its_pages_is_read_by_its_own_page_size(
    simulator: SimFactory,
    exporter_for: MakeExporter,
    caplog: pytest.LogCaptureFixture,
    offset_mode: str,
    pagination: str,
) -> None:
    # Asking for 100 per page from an API that serves 40: reading on by 100 would skip 60
    # versions after every page.
    sim = simulator(size=555, offset_mode=offset_mode, max_limit=40)
    exporter = exporter_for(sim, pagination=pagination, page_size=100)
    assert await exporter.poll()
    assert_matches_truth(exporter.samples(), truth(sim.tenant.records_in("0")))
    assert source_of(exporter).page_size == 40
    warnings = [r.getMessage() for r in caplog.records if "versions per page" in r.getMessage()]
    assert len(warnings) == 1 and "served 40 versions per page where 100 were asked" in warnings[0]
    sim.reset_stats()
    assert await exporter.poll()
    assert sim.stats.requests == -(-555 // 40)  # the short first page costs nothing more
    assert len([r for r in caplog.records if "versions per page" in r.getMessage()]) == 1
    # The cap is lifted (a gateway reconfigured; or the short page was a one-off): re-learned
    # on the next pass, never kept for good.
    sim.max_limit = None
    sim.reset_stats()
    assert await exporter.poll()
    assert source_of(exporter).page_size == 100
    assert sim.stats.requests == -(-555 // 100)
    assert_matches_truth(exporter.samples(), truth(sim.tenant.records_in("0")))


async def test_incremental_polls_page_by_the_capped_size_too(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    sim = simulator(
        size=900,
        seed=3,
        max_limit=30,
        tenant_options={"active_fraction": 0.05, "creation_rate_per_s": 0.05},
    )
    full = exporter_for(sim, page_size=100)
    incremental = exporter_for(
        sim, page_size=100, poll_mode="incremental", full_listing_every=100_000
    )
    for _ in range(12):
        sim.tenant.advance(120.0)
        assert await full.poll()
        assert await incremental.poll()
        incremental_state = incremental.target.poller.state.snapshot
        full_state = full.target.poller.state.snapshot
        assert incremental_state is not None and full_state is not None
        assert incremental_state.by_status == full_state.by_status
        assert incremental_state.by_pool == full_state.by_pool
    assert (
        select(incremental.samples(), "modelarts_exporter_listings_total", kind="incremental") >= 10
    )
