"""The running exporter: independent targets, reload on SIGHUP, no overlapping polls, and the
clock-skew warning."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelarts_exporter.cloud import client as client_module
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.runtime.service import Service as Runtime
from modelarts_exporter.simulator import FaultKind, FaultRule, SimulatorServer
from support.processes import background, free_port
from support.secrets import TOKEN
from support.simulation import InProcessExporter, SimFactory, parse_samples, select
from support.truth import assert_matches_truth, truth
from support.waiting import wait_for

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]


def target_entry(sim: SimulatorServer, name: str, **extra: Any) -> str:
    options = {
        "name": name,
        "endpoint": sim.url,
        "project_id": sim.project_id,
        "auth_token": TOKEN,
        "page_size": 100,
        "request_timeout_seconds": 0.5,
        "max_retries": 1,
        **extra,
    }
    return "  - {" + ", ".join(f"{k}: {v}" for k, v in options.items()) + "}\n"


async def _scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient() as http:
        return parse_samples((await http.get(url)).text)


async def test_one_target_down_and_one_throttled_leave_the_third_exact_and_fresh(
    simulator: SimFactory, tmp_path: Path
) -> None:
    healthy = simulator(size=700, seed=1, project_id="healthy")
    throttled = simulator(size=300, seed=2, project_id="throttled")
    throttled.faults.add(FaultRule(FaultKind.THROTTLE, retry_after="1"))
    down = simulator(size=100, seed=3, project_id="down")
    down_url = down.url
    down.stop()  # nothing listens there any more
    config = tmp_path / "targets.yaml"
    config.write_text(
        "targets:\n"
        # A poll deadline well above the interval: on a loaded machine a 0.3 s deadline (the
        # default, the interval) made the healthy target's own polls time out now and then.
        + target_entry(healthy, "healthy", poll_interval_seconds=0.3, poll_timeout_seconds=5)
        # Throttled polls retry after Retry-After for a while; they must not hold up the others.
        + target_entry(throttled, "throttled", poll_interval_seconds=0.3, poll_timeout_seconds=5)
        + target_entry(
            healthy, "down", endpoint=down_url, project_id="down", poll_interval_seconds=0.3
        )
    )
    port = free_port()
    runtime = Runtime(Settings(config_file=config, listen_address=f"127.0.0.1:{port}"))
    running = asyncio.ensure_future(runtime.run())
    try:
        await asyncio.sleep(2.5)
        polled_before = healthy.stats.requests
        healthy.tenant.advance(900)  # the truth moves; the healthy target must follow it
        await asyncio.sleep(1.5)
        samples = await _scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        runtime.stop()
        await running
    assert healthy.stats.requests > polled_before  # kept polling at its own pace
    assert select(samples, "modelarts_exporter_up", project_id="healthy") == 1
    assert select(samples, "modelarts_exporter_up", project_id="throttled") == 0
    assert select(samples, "modelarts_exporter_up", project_id="down") == 0
    assert select(samples, "modelarts_exporter_up", project_id="healthy") == 1
    assert (
        select(
            samples,
            "modelarts_exporter_poll_errors_total",
            project_id="throttled",
            reason="throttled",
        )
        >= 1
    )
    assert (
        select(
            samples, "modelarts_exporter_poll_errors_total", project_id="down", reason="connection"
        )
        >= 1
    )
    healthy_only = {k: v for k, v in samples.items() if ("project_id", "healthy") in k[1]}
    assert_matches_truth(healthy_only, truth(healthy.tenant.records_in("0")))
    last = select(
        samples, "modelarts_exporter_last_success_timestamp_seconds", project_id="healthy"
    )
    assert time.time() - last < 2.0  # fresh: one held up by its throttled neighbour lags seconds


def test_sighup_reload_adds_and_removes_targets_and_keeps_the_others(
    simulator: SimFactory, tmp_path: Path
) -> None:
    first = simulator(size=200, seed=4, project_id="first")
    second = simulator(size=150, seed=5, project_id="second")
    config = tmp_path / "targets.yaml"
    config.write_text("targets:\n" + target_entry(first, "first"))
    port = free_port()
    env = {
        "MODELARTS_EXPORTER_CONFIG_FILE": str(config),
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "MODELARTS_EXPORTER_POLL_INTERVAL_SECONDS": "30",
    }
    metrics = f"http://127.0.0.1:{port}/metrics"
    with background(["serve"], env) as process:
        assert wait_for(f"http://127.0.0.1:{port}/readyz", 200)
        before = parse_samples(httpx.get(metrics).text)
        first_success = select(
            before, "modelarts_exporter_last_success_timestamp_seconds", project_id="first"
        )
        requests_first = first.stats.requests

        config.write_text(
            "targets:\n" + target_entry(second, "second") + target_entry(first, "first")
        )
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            after = parse_samples(httpx.get(metrics).text)
            if select(after, "modelarts_exporter_up", project_id="second") == 1:
                break
            time.sleep(0.1)
        assert select(after, "modelarts_exporter_up", project_id="second") == 1
        # The untouched target was not restarted: same last success, no new poll.
        assert (
            select(after, "modelarts_exporter_last_success_timestamp_seconds", project_id="first")
            == first_success
        )
        assert first.stats.requests == requests_first

        config.write_text("targets: [broken\n")
        process.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        kept = parse_samples(httpx.get(metrics).text)
        assert select(kept, "modelarts_exporter_up", project_id="second") == 1

        config.write_text("targets:\n" + target_entry(second, "second"))
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            gone = parse_samples(httpx.get(metrics).text)
            if not any(("project_id", "first") in labels for _, labels in gone):
                break
            time.sleep(0.1)
        assert not any(("project_id", "first") in labels for _, labels in gone)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        stderr = process.stderr.read() if process.stderr else ""
    assert "reload failed, keeping the current targets" in stderr
    assert "not valid YAML" in stderr
    assert "Traceback" not in stderr


async def test_slow_polls_never_overlap(simulator: SimFactory) -> None:
    sim = simulator(size=200)
    sim.faults.latency_seconds = 0.25  # a poll (2 pages, one at a time) takes ~0.5 s
    port = free_port()
    settings = Settings(
        endpoint=sim.url,
        project_id=sim.project_id,
        auth_token=TOKEN,
        page_size=100,
        max_concurrency=1,
        pagination="offset",
        poll_interval_seconds=0.1,
        poll_timeout_seconds=5,
        listen_address=f"127.0.0.1:{port}",
    )
    runtime = Runtime(settings)
    (name,) = [
        t.name
        for t in __import__("modelarts_exporter.config.targets", fromlist=["resolve"]).resolve(
            settings
        )
    ]
    _, target = None, None
    running = asyncio.ensure_future(runtime.run())
    concurrent = 0
    peak = 0
    try:
        await asyncio.sleep(0.05)
        _, target = runtime._targets[name]
        original = target.poller.poll

        async def counting() -> bool:
            nonlocal concurrent, peak
            concurrent += 1
            peak = max(peak, concurrent)
            try:
                return await original()
            finally:
                concurrent -= 1

        target.poller.poll = counting  # type: ignore[method-assign]
        await asyncio.sleep(2.0)
    finally:
        runtime.stop()
        await running
    assert peak == 1
    assert 2 <= sim.stats.requests // 2 <= 6  # a poll every ~0.5 s, not every 0.1 s


async def test_clock_skew_is_warned_once(
    simulator: SimFactory,
    exporter_for: MakeExporter,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = simulator(size=50)
    exporter = exporter_for(sim)
    monkeypatch.setattr(client_module, "time", lambda: time.time() + 1200)
    caplog.set_level(logging.WARNING)
    assert await exporter.poll()
    assert await exporter.poll()
    assert caplog.text.count("local clock is ahead of the API's by 120") == 1
