"""2c. CPU scaling from 10k to 1M versions and 3. memory: the exporter measured in a process of
its own (:mod:`benchmarks.worker`), the simulator in another."""

from __future__ import annotations

import json
import subprocess
import sys

from .common import Row
from .simproc import PROJECT_ID, SimProcess

SOAK_POLLS = 200


def _worker(*args: object) -> dict[str, object]:
    output = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "benchmarks.worker", *map(str, args)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, object] = json.loads(output.splitlines()[-1])
    return result


def _float(value: object) -> float:
    assert isinstance(value, int | float)
    return float(value)


def run() -> list[Row]:
    per_version = {}
    peak = 0.0
    for size in (10_000, 1_000_000):
        with SimProcess(size) as sim:
            result = _worker("memory", sim.url, PROJECT_ID)
        per_version[size] = _float(result["cpu"]) / _float(result["versions"])
        peak = _float(result["peak_rss_mb"])
    with SimProcess(100_000) as sim:
        rss = _worker("soak", sim.url, PROJECT_ID, SOAK_POLLS)["rss_mb"]
    assert isinstance(rss, list)
    growth = rss[-1] / rss[9]
    return [
        Row(
            "2c. CPU per version at 1M ÷ at 10k (page 1000)",
            per_version[1_000_000] / per_version[10_000],
            1.3,
            detail=(
                f"{per_version[10_000] * 1e6:.2f} µs at 10k, "
                f"{per_version[1_000_000] * 1e6:.2f} µs at 1M"
            ),
        ),
        Row(
            "3a. peak RSS polling 1M versions (MB)",
            peak,
            200.0,
            unit=" MB",
            detail="two polls (baseline and steady state), page 1000",
        ),
        Row(
            f"3b. RSS after poll {SOAK_POLLS} ÷ after poll 10 (100k, evolving)",
            growth,
            1.1,
            detail=f"{rss[9]:.1f} MB → {rss[-1]:.1f} MB",
        ),
    ]
