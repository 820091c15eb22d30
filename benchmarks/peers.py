"""1c. A big project at every default, 3c/3d. its peak memory, and 2d-2f. the whole ``once``
process's CPU against the best bare Python client's (aiohttp, :mod:`benchmarks.bare_aiohttp`),
2f over the v2 search:
each a process of its own measured by the kernel (``wait4``), alternated so that noise hits
both alike."""

from __future__ import annotations

import compileall
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import modelarts_exporter
from modelarts_exporter.config.listing import ListingOptions
from modelarts_exporter.config.target_fields import TargetFields

from .common import Row
from .simproc import PROJECT_ID, SimProcess
from .v2 import PAGE as V2_PAGE
from .v2 import SIZE as V2_SIZE

LATENCY_S = 0.05
BIG = 1_000_000
SIZE = 100_000
ACTIVE = 0.02
ROUNDS = 3
DEFAULT_PAGE = ListingOptions().page_size
DEFAULT_CONCURRENCY = ListingOptions().max_concurrency
DEFAULT_INTERVAL = TargetFields.model_fields["poll_interval_seconds"].default


def _measured(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """CPU seconds and peak RSS (MB) of one process run to its end (it must succeed)."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
        [sys.executable, *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{args[:3]} failed ({process.returncode}): {stderr[-500:]}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _once(sim: SimProcess, **settings: object) -> tuple[float, float]:
    env = {
        "MODELARTS_EXPORTER_ENDPOINT": sim.url,
        "MODELARTS_EXPORTER_PROJECT_ID": sim.project_id,
        "MODELARTS_EXPORTER_AUTH_TOKEN": "bench-token",  # the benchmark's simulator checks none
        **{f"MODELARTS_EXPORTER_{key.upper()}": str(value) for key, value in settings.items()},
    }
    return _measured(["-m", "modelarts_exporter", "once"], env)


def _bare(sim: SimProcess, size: int, concurrency: int, *, v2: bool = False) -> float:
    pages = math.ceil((V2_SIZE if v2 else SIZE) / size)
    args = ["-m", "benchmarks.bare_aiohttp", sim.url, PROJECT_ID, pages, size, concurrency]
    return _measured([str(arg) for arg in args] + (["v2"] if v2 else []))[0]


def _cpu_row(name: str, sim: SimProcess, page: int, v2: bool, **settings: object) -> Row:
    once, bare = [], []
    for _ in range(ROUNDS):
        once.append(_once(sim, **settings)[0])
        bare.append(_bare(sim, page, DEFAULT_CONCURRENCY, v2=v2))
    cpu, peer = statistics.median(once), statistics.median(bare)
    return Row(
        name,
        cpu / peer,
        1.5,
        detail=f"once {cpu:.2f} s, aiohttp + json.loads {peer:.2f} s (medians, whole processes)",
    )


def run() -> list[Row]:
    # The package's bytecode, as installing a wheel writes it: a source tree run with
    # PYTHONDONTWRITEBYTECODE (as here) would charge every ``once`` the compiling of every
    # module (~0.08 s), which no installed exporter pays and the peer (an installed aiohttp)
    # does not either.
    compileall.compile_dir(Path(modelarts_exporter.__file__).parent, quiet=1)
    rows = []
    big = SimProcess(BIG, active_fraction=ACTIVE, latency_seconds=LATENCY_S, idle_priority=True)
    with big as sim:
        started = time.monotonic()
        _, peak = _once(sim)  # every setting at its default
        wall = time.monotonic() - started
    rows.append(
        Row(
            "1c. `once` at every default ÷ the default interval (1M, 2% active, 50 ms)",
            wall / DEFAULT_INTERVAL,
            0.5,
            detail=(
                f"{wall:.1f} s of a {DEFAULT_INTERVAL:g} s interval (page {DEFAULT_PAGE}, "
                f"{DEFAULT_CONCURRENCY} at once), the process start included; "
                f"peak RSS {peak:.0f} MB"
            ),
        )
    )
    for letter, active, limit in (("c", ACTIVE, 150.0), ("d", 0.35, 200.0)):
        with SimProcess(BIG, active_fraction=active, idle_priority=True) as sim:
            _, peak = _once(sim)
        rows.append(
            Row(
                f"3{letter}. `once` peak RSS at every default (1M, {active:.0%} active) (MB)",
                peak,
                limit,
                unit=" MB",
                detail="the whole process, the kernel's figure",
            )
        )
    with SimProcess(SIZE, active_fraction=ACTIVE, idle_priority=True) as sim:
        for letter, page in (("d", 100), ("e", DEFAULT_PAGE)):
            name = f"2{letter}. `once` CPU ÷ bare aiohttp client's (100k, 2% active, page {page})"
            rows.append(_cpu_row(name, sim, page, False, page_size=page))
    with SimProcess(V2_SIZE, active_fraction=ACTIVE, v2=True, idle_priority=True) as sim:
        name = f"2f. v2 `once` CPU ÷ bare aiohttp client's (20k, 2% active, page {V2_PAGE})"
        rows.append(_cpu_row(name, sim, V2_PAGE, True, api_version="v2"))
    return rows
