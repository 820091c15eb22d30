"""The running exporter: independent targets, reload on SIGHUP, no overlapping polls, and the
clock-skew warning."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelarts_exporter.cloud import client as client_module
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.targets import shard_of
from modelarts_exporter.runtime.service import Service as Runtime
from modelarts_exporter.simulator import FaultKind, FaultRule, SimulatorServer
from support.processes import background, free_port
from support.secrets import TOKEN
from support.simulation import InProcessExporter, ServeWsgi, SimFactory, parse_samples, select
from support.truth import assert_matches_truth, truth
from support.waiting import eventually_async, wait_for

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]


def target_entry(sim: SimulatorServer, name: str, **extra: Any) -> str:
    options = {
        "name": name,
        "endpoint": sim.url,
        "project_id": sim.project_id,
        "auth_token": TOKEN,
        "page_size": 100,
        "request_timeout_seconds": 5,  # healthy answers take milliseconds, a busy machine more
        "max_retries": 1,
        **extra,
    }
    return "  - {" + ", ".join(f"{k}: {v}" for k, v in options.items()) + "}\n"


async def _scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient() as http:
        return parse_samples((await http.get(url)).text)


async def _scrape_until(
    url: str, done: Callable[[dict[tuple[str, frozenset[tuple[str, str]]], float]], bool]
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The first scrape whose samples are ``done`` (the last one, if none was in time)."""
    scraped = [await _scrape(url)]

    async def scraped_done() -> bool:
        scraped.append(await _scrape(url))
        return done(scraped[-1])

    await eventually_async(scraped_done)
    return scraped[-1]


def _matches_truth(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], records: Any
) -> bool:
    try:
        assert_matches_truth(samples, truth(records))
    except AssertionError:
        return False
    return True


async def test_one_target_down_and_one_throttled_leave_the_third_exact_and_fresh(
    simulator: SimFactory, tmp_path: Path
) -> None:
    healthy = simulator(size=700, seed=1, project_id="healthy")
    throttled = simulator(size=300, seed=2, project_id="throttled")
    # The healthy target's requests so far as each throttled request arrives. A throttled poll
    # is two of them (max_retries 1), the second after waiting out Retry-After: 1.
    healthy_at: list[int] = []

    def throttle(request: object) -> bool:
        healthy_at.append(healthy.stats.requests)
        return True

    throttled.faults.add(FaultRule(FaultKind.THROTTLE, retry_after="1", when=throttle))
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
    metrics = f"http://127.0.0.1:{port}/metrics"
    errors = "modelarts_exporter_poll_errors_total"
    running = asyncio.ensure_future(runtime.run())
    try:
        await _scrape_until(  # every target has polled, the throttled one retried
            metrics,
            lambda s: (
                select(s, "modelarts_exporter_up", project_id="healthy") == 1
                and select(s, errors, project_id="throttled", reason="throttled") >= 1
                and select(s, errors, project_id="down", reason="connection") >= 1
            ),
        )
        polled_before = healthy.stats.requests
        healthy.tenant.advance(900)  # the truth moves; the healthy target must follow it
        records = healthy.tenant.records_in("0")
        samples = await _scrape_until(
            metrics,
            lambda s: _matches_truth(
                {k: v for k, v in s.items() if ("project_id", "healthy") in k[1]}, records
            ),
        )
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
    # Fresh: the healthy target polled while its throttled neighbour waited out a Retry-After,
    # between the two requests of one throttled poll. Held up by it, it would poll only between
    # throttled polls.
    throttled_polls = zip(healthy_at[0::2], healthy_at[1::2], strict=False)
    assert any(after > before for before, after in throttled_polls), healthy_at


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
        logged = _stderr_until(process, "reload failed")  # read, before the file changes again
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
        stderr = logged + (process.stderr.read() if process.stderr else "")
    assert "reload failed, keeping the current targets" in stderr
    assert "not valid YAML" in stderr
    assert "Traceback" not in stderr


def _stderr_until(process: subprocess.Popen[str], text: str) -> str:
    """What ``process`` wrote to stderr up to the first line with ``text``, waiting for it."""
    assert process.stderr is not None
    lines = [process.stderr.readline()]
    while text not in lines[-1]:
        assert lines[-1], f"stderr ended without {text!r}: {''.join(lines)}"
        lines.append(process.stderr.readline())
    return "".join(lines)


async def test_slow_polls_never_overlap_and_finish_past_the_interval(
    simulator: SimFactory, caplog: pytest.LogCaptureFixture
) -> None:
    sim = simulator(size=200)
    sim.faults.latency_seconds = 0.25  # a poll (2 pages, one at a time) takes ~0.5 s
    # Requests in flight (received, not answered) as each one is past its latency: a poll has
    # one at a time, so two would be two polls overlapping.
    in_flight: list[int] = []

    def note(request: object) -> bool:
        stats = sim.stats
        in_flight.append(stats.requests - sum(stats.by_status.values()))
        return False

    sim.faults.add(FaultRule(FaultKind.SHIFT, when=note))
    caplog.set_level(logging.INFO)
    port = free_port()
    settings = Settings(  # the default deadline: a poll five intervals long is let finish
        endpoint=sim.url,
        project_id=sim.project_id,
        auth_token=TOKEN,
        page_size=100,
        max_concurrency=1,
        pagination="offset",
        poll_interval_seconds=0.1,
        listen_address=f"127.0.0.1:{port}",
    )
    runtime = Runtime(settings)
    running = asyncio.ensure_future(runtime.run())
    successes = "modelarts_exporter_last_success_timestamp_seconds"
    seen: set[float] = set()

    async def polled_four_times() -> bool:
        seen.add(select(await _scrape(f"http://127.0.0.1:{port}/metrics"), successes))
        return len(seen - {0.0}) >= 4

    try:
        # Four polls, each of them due several times while the one before it ran.
        assert await eventually_async(polled_four_times), seen
    finally:
        runtime.stop()
        await running
    assert max(in_flight) == 1, in_flight
    assert "poll failed" not in caplog.text
    assert caplog.text.count("longer than its 0.1 s interval") == 1, caplog.text
    assert "maximum number of running instances" not in caplog.text  # APScheduler's skip


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


@pytest.mark.anyio
async def test_a_reload_that_leaves_a_shard_no_target_makes_it_idle_and_ready(
    simulator: SimFactory,
    tmp_path: Path,
    serve_wsgi: ServeWsgi,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = simulator(size=50, project_id="p1")
    elsewhere = simulator(size=50, project_id="p2")
    shard = shard_of("a", 2)
    other = next(name for name in ("b", "c", "d", "e", "f") if shard_of(name, 2) != shard)
    config = tmp_path / "targets.yaml"
    config.write_text("targets:\n" + target_entry(sim, "a") + target_entry(elsewhere, other))
    settings = Settings(config_file=config, total_shards=2, shard=shard)
    runtime = Runtime(settings)
    port = serve_wsgi(runtime.app)
    await runtime.reload()  # as run() starts: the shard's target ("a") added
    assert [s.target for s in runtime.store.current()[1]] == ["a"]
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
    assert (ready.status_code, ready.text) == (503, "no recent successful poll: a\n")

    config.write_text("targets:\n" + target_entry(elsewhere, other))  # "a" gone: none is left
    with caplog.at_level(logging.WARNING, "modelarts_exporter"):
        await runtime.reload()
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
    assert (ready.status_code, ready.text) == (200, f"ready: no targets for shard {shard} of 2\n")
    assert [r.message for r in caplog.records if "polls none of the 1 target" in r.message]
    runtime.stop()
