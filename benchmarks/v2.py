"""6. The v2 API: a full listing's wall time against a bare client, and the requests of an
incremental v2 poll against a full listing's."""

from __future__ import annotations

import asyncio
import json
import math
import time

import httpx

from .common import Row, target_for, timed_poll
from .economy import POLLS, steady_requests
from .simproc import SimProcess

SIZE = 20_000
PAGE = 50
LATENCY_S = 0.05
CONCURRENCY = 8  # the default MAX_CONCURRENCY


async def bare_listing(sim: SimProcess, pages: int, concurrency: int) -> float:
    """Wall seconds for a bare httpx client with ``concurrency`` workers to POST for ``pages``
    pages of ``PAGE`` (record offsets) and ``json.loads`` each answer."""
    url = f"{sim.url}/v2/{sim.project_id}/training-job-searches"
    cursor = 0

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal cursor
        while cursor < pages:
            index = cursor
            cursor += 1
            body = {"offset": index * PAGE, "limit": PAGE, "sort_by": "create_time", "order": "asc"}
            response = await http.post(url, json=body)
            response.raise_for_status()
            json.loads(response.content)

    # One connection per worker, as the exporter's client does.
    clients = [httpx.AsyncClient(timeout=60) for _ in range(concurrency)]
    started = time.monotonic()
    await asyncio.gather(*(worker(http) for http in clients))
    elapsed = time.monotonic() - started
    for http in clients:
        await http.aclose()
    return elapsed


async def wall_time() -> list[Row]:
    pages = math.ceil(SIZE / PAGE)
    with SimProcess(SIZE, latency_seconds=LATENCY_S, v2=True) as sim:
        target = target_for(sim, api_version="v2", page_size=PAGE, pagination="offset")
        await timed_poll(target)  # baseline
        exporter, _ = await timed_poll(target)
        await target.client.aclose()
        bare = await bare_listing(sim, pages, CONCURRENCY)
    bound = math.ceil(pages / CONCURRENCY) * LATENCY_S
    return [
        Row(
            "6a. v2 full listing wall time ÷ bare concurrent client (20k, page 50, 50 ms)",
            exporter / bare,
            1.2,
            detail=(
                f"exporter {exporter:.2f} s, bare httpx + json.loads {bare:.2f} s, "
                f"latency bound {bound:.2f} s"
            ),
        )
    ]


async def economy() -> list[Row]:
    with SimProcess(SIZE, active_fraction=0.02, v2=True) as sim:
        options = {"api_version": "v2", "page_size": PAGE, "pagination": "offset"}
        steady, per_full, fallbacks = await steady_requests(sim, **options)
    mean = sum(steady) / len(steady)
    return [
        Row(
            "6b. v2 incremental requests/poll ÷ full listing's (20k, 2% active, 60 s apart)",
            mean / per_full,
            0.05,
            detail=(
                f"{mean:.1f} vs {per_full} requests per poll (max {max(steady)}); "
                f"{fallbacks} fallbacks to a full listing in {POLLS} polls"
            ),
        )
    ]
