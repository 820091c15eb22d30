"""``make bench``: every benchmark, each figure a ratio measured in this run, as one table.

Set ``BENCH`` to a comma-separated subset of ``throughput,cpu,memory,scrapes,economy,peers,v2``
to run only those.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import time
from collections.abc import Callable

from modelarts_exporter.cli import freeze_startup_objects

from . import economy, memory, peers, scrapes, throughput, v2
from .common import Row

BENCHMARKS: dict[str, Callable[[], list[Row]]] = {
    "throughput": lambda: asyncio.run(throughput.wall_time()),
    "cpu": lambda: asyncio.run(throughput.cpu_per_poll()),
    "memory": memory.run,
    "scrapes": scrapes.run,
    "economy": lambda: asyncio.run(economy.run()),
    "peers": peers.run,
    "v2": lambda: asyncio.run(v2.wall_time()) + asyncio.run(v2.economy()),
}


def machine() -> str:
    with open("/proc/cpuinfo") as cpuinfo:  # noqa: PTH123
        model = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
            platform.processor(),
        )
    return f"{os.cpu_count()} x {model}, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    freeze_startup_objects()  # as `serve` does
    chosen = os.environ.get("BENCH", ",".join(BENCHMARKS)).split(",")
    started = time.monotonic()
    rows: list[Row] = []
    for name in chosen:
        rows.extend(BENCHMARKS[name]())
    print(f"machine: {machine()}; took {time.monotonic() - started:.0f} s\n")
    print("| Benchmark | Target | Measured | Result | Details |")
    print("|---|---|---|---|---|")
    for row in rows:
        comparison = "≤" if row.lower_is_better else "≥"
        target = "—" if row.limit is None else f"{comparison} {row.limit:g}{row.unit}"
        result = {True: "PASS", False: "FAIL", None: "info"}[row.passed]
        print(f"| {row.name} | {target} | {row.measured:.3g}{row.unit} | {result} | {row.detail} |")
    if any(row.passed is False for row in rows):
        raise SystemExit(1)


main()
