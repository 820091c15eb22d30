"""4. Scrape latency under load (wrk), idle and while a 100k poll runs, served as ``serve`` does."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time

import httpx

from .common import Row
from .simproc import SimProcess

CONNECTIONS = 32
SECONDS = 10
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _wrk_p99_ms(wrk: str, url: str) -> tuple[float, float]:
    """p99 latency (ms) and requests per second of a wrk run against ``url``."""
    output = subprocess.run(  # noqa: S603 - wrk from the system, against 127.0.0.1
        [
            wrk,
            "--latency",
            # What Prometheus sends with every scrape; the exposition is ~10x smaller gzipped.
            *("-H", "Accept-Encoding: gzip"),
            f"-c{CONNECTIONS}",
            "-t2",
            f"-d{SECONDS}s",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)$", output, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if p99 is None or rate is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return float(p99[1]) * _UNITS[p99[2]], float(rate[1])


def run() -> list[Row]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (make bench installs it)")
    with (
        # The API is on another machine in production: its work must not take the CPU that
        # the question is about (how much the exporter's own poll costs its scrapes).
        SimProcess(100_000, project_id="big", idle_priority=True) as big,
        SimProcess(20_000, project_id="small-a", seed=2, idle_priority=True) as small_a,
        SimProcess(20_000, project_id="small-b", seed=3, idle_priority=True) as small_b,
    ):
        args = [x for sim in (big, small_a, small_b) for x in (sim.url, sim.project_id)]
        worker = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "benchmarks.worker", "serve", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert worker.stdin is not None and worker.stdout is not None
        url = f"http://127.0.0.1:{worker.stdout.readline().strip()}/metrics"
        body = httpx.get(url).text
        series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
        idle, idle_rate = _wrk_p99_ms(wrk, url)
        worker.stdin.write("go\n")
        worker.stdin.flush()
        time.sleep(0.5)
        busy, busy_rate = _wrk_p99_ms(wrk, url)
        worker.stdin.write("stop\n")
        worker.stdin.flush()
        result = json.loads(worker.stdout.readline())  # the server's process stops first
        result.update(json.loads(worker.stdout.readline()))
        worker.wait(timeout=120)
    return [
        Row(
            "4a. scrape p99 during a 100k poll ÷ idle p99",
            busy / idle,
            2.0,
            detail=(
                f"{busy:.1f} ms vs {idle:.1f} ms; {series} series, {CONNECTIONS} clients, "
                f"{busy_rate:.0f} vs {idle_rate:.0f} scrapes/s; {result['polls']} polls ran"
            ),
        ),
        Row("4b. idle scrape p99 (ms)", idle, 20.0, unit=" ms"),
        Row(
            "4c. renders per published snapshot during the polls",
            result["renders"] / max(1, result["generations"]),
            1.0,
            detail=f"{result['renders']} renders for {result['generations']} snapshots",
        ),
    ]
