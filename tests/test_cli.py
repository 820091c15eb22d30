"""The ``modelarts-exporter`` command, run as a user runs it: a subprocess against the simulator."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

from conftest import (
    TOKEN,
    SimFactory,
    background,
    free_port,
    parse_samples,
    run_cli,
    select,
    sim_env,
    wait_for,
)

PROMTOOL = shutil.which("promtool")


def test_once_prints_an_exposition_promtool_accepts(simulator: SimFactory, tmp_path: Path) -> None:
    assert PROMTOOL, "promtool is installed by the test command (Debian package prometheus)"
    sim = simulator(size=3000)
    result = run_cli("once", "--page-size", "500", env=sim_env(sim.url, sim.project_id))
    assert result.returncode == 0, result.stderr
    samples = parse_samples(result.stdout)
    assert select(samples, "modelarts_exporter_up") == 1
    assert select(samples, "modelarts_training_job_versions") == len(sim.tenant.records_in("0"))
    check = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=result.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert TOKEN not in result.stdout + result.stderr


def test_once_failure_is_one_line_with_the_reason(simulator: SimFactory) -> None:
    sim = simulator(size=10)
    env = sim_env(sim.url, sim.project_id) | {"MODELARTS_EXPORTER_AUTH_TOKEN": "wrong-token-x1"}
    result = run_cli("once", env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modelarts-exporter: poll failed: auth:")
    assert "wrong-token-x1" not in result.stderr


def test_once_against_nothing_is_a_connection_error() -> None:
    env = {
        "MODELARTS_EXPORTER_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "MODELARTS_EXPORTER_PROJECT_ID": "p1",
        "MODELARTS_EXPORTER_MAX_RETRIES": "0",
    }
    result = run_cli("once", env=env)
    assert result.returncode == 1
    assert "poll failed: connection:" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_masks_secrets_and_reports_problems() -> None:
    env = {
        "MODELARTS_EXPORTER_ENDPOINT": "https://modelarts.example",
        "MODELARTS_EXPORTER_PROJECT_ID": "p1",
        "MODELARTS_EXPORTER_ACCESS_KEY": "AKVISIBLE",
        "MODELARTS_EXPORTER_SECRET_KEY": "sk-hidden-123",
    }
    ok = run_cli("check-config", env=env)
    assert ok.returncode == 0, ok.stderr
    assert "AKVISIBLE" in ok.stdout and "sk-hidden-123" not in ok.stdout
    assert "MODELARTS_EXPORTER_SECRET_KEY" in ok.stdout and "**********" in ok.stdout

    bad = run_cli("check-config", "--page-size", "0", "--poll-interval-seconds", "soon", env=env)
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 2, bad.stderr
    assert all(line.startswith("modelarts-exporter: configuration error: ") for line in lines)
    assert "Traceback" not in bad.stderr and "sk-hidden-123" not in bad.stderr

    missing = run_cli("check-config")
    assert missing.returncode == 2
    assert "MODELARTS_EXPORTER_ENDPOINT (--endpoint) is required" in missing.stderr


def test_serve_answers_and_stops_on_sigterm_within_five_seconds(simulator: SimFactory) -> None:
    sim = simulator(size=400)
    port = free_port()
    env = sim_env(sim.url, sim.project_id) | {
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "MODELARTS_EXPORTER_POLL_INTERVAL_SECONDS": "0.5",
        "MODELARTS_EXPORTER_LOG_FORMAT": "json",
    }
    with background(["serve"], env) as process:
        ready = wait_for(f"http://127.0.0.1:{port}/readyz", 200)
        assert ready
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert select(parse_samples(metrics), "modelarts_exporter_up") == 1
        # A first poll at start (a probe and 4 pages), then one every interval (4 pages each).
        deadline = time.monotonic() + 10
        while sim.stats.requests < 5 + 4 + 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sim.stats.requests >= 13
        sim.faults.latency_seconds = 5  # a poll is now in flight and stuck
        time.sleep(0.8)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
        assert time.monotonic() - started < 5
        assert code == 0
        stderr = process.stderr.read() if process.stderr else ""
    assert '"level": "info"' in stderr and "Traceback" not in stderr
    assert TOKEN not in stderr


def test_demo_shows_changing_metrics_within_one_poll_interval() -> None:
    port = free_port()
    with background(
        [
            "demo",
            "--listen-address",
            f"127.0.0.1:{port}",
            "--poll-interval-seconds",
            "1",
            "--speed",
            "600",
        ],
        {},
    ) as process:
        assert wait_for(f"http://127.0.0.1:{port}/readyz", 200), process
        first = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        time.sleep(1.5)
        second = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert select(parse_samples(first), "modelarts_exporter_up") == 1
        versions = "modelarts_training_job_versions"
        changed = [
            key
            for key, value in parse_samples(second).items()
            if key[0].startswith(versions) and parse_samples(first).get(key) != value
        ]
        assert changed, "the demo tenant should evolve between polls"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
