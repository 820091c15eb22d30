"""1. Poll wall time against the network bound, and 2. CPU per poll against parsing (100k)."""

from __future__ import annotations

import json
import math
import statistics
import time

from .common import Row, fetch_pages, target_for, timed_poll
from .simproc import SimProcess

SIZE = 100_000
LATENCY_S = 0.05
PAGE = 100
CONCURRENCY = 8  # the default MAX_CONCURRENCY
SEQUENTIAL_SAMPLE = 150
CPU_PAGE = 1000
ROUNDS = 5


async def wall_time() -> list[Row]:
    pages = math.ceil(SIZE / PAGE)
    with SimProcess(SIZE, latency_seconds=LATENCY_S) as sim:
        target = target_for(sim, page_size=PAGE)
        await timed_poll(target)  # baseline (and pagination detection)
        exporter, _ = await timed_poll(target)
        await target.client.aclose()
        bare, _ = await fetch_pages(sim, pages, PAGE, CONCURRENCY)
        sample, _ = await fetch_pages(sim, SEQUENTIAL_SAMPLE, PAGE, 1)
    sequential = sample * pages / SEQUENTIAL_SAMPLE
    bound = math.ceil(pages / CONCURRENCY) * LATENCY_S
    return [
        Row(
            "1a. poll wall time ÷ bare concurrent client (100k, page 100, 50 ms)",
            exporter / bare,
            1.2,
            detail=(
                f"exporter {exporter:.2f} s, bare httpx {bare:.2f} s, "
                f"latency bound {bound:.2f} s (+{bare - bound:.2f} s serving)"
            ),
        ),
        Row(
            "1b. speed-up over sequential paging",
            sequential / exporter,
            6.0,
            lower_is_better=False,
            detail=f"sequential {sequential:.1f} s ({SEQUENTIAL_SAMPLE} pages timed, scaled)",
        ),
    ]


async def cpu_per_poll() -> list[Row]:
    rows = []
    with SimProcess(SIZE) as sim:
        for page in (CPU_PAGE, PAGE):
            pages = math.ceil(SIZE / page)
            target = target_for(sim, page_size=page, pagination="offset")
            await timed_poll(target)  # baseline: the inventory is empty before it
            _, bodies = await fetch_pages(sim, pages, page, 1, keep=True)
            # Alternate the three, so that noise from other processes hits them alike.
            polls, parses, bare = [], [], []
            for _ in range(ROUNDS):
                polls.append((await timed_poll(target))[1])
                started = time.process_time()
                for body in bodies:
                    json.loads(body)
                parses.append(time.process_time() - started)
                started = time.process_time()
                await fetch_pages(sim, pages, page, CONCURRENCY)
                bare.append(time.process_time() - started)
            await target.client.aclose()
            cpu, parse = statistics.median(polls), statistics.median(parses)
            fetch = statistics.median(bare)
            letter = "a" if page == CPU_PAGE else "b"
            rows.append(
                Row(
                    f"2{letter}. CPU per poll ÷ json.loads (100k, page {page})",
                    cpu / parse,
                    2.0 if page == CPU_PAGE else None,
                    detail=f"poll {cpu:.3f} s CPU, json.loads {parse:.3f} s (medians)",
                )
            )
            rows.append(
                Row(
                    f"2{letter}, for scale: bare httpx client's CPU, same pages ÷ json.loads",
                    fetch / parse,
                    detail=f"{fetch:.3f} s CPU: what HTTP alone costs, without parsing",
                )
            )
    return rows
