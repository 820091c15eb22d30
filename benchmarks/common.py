"""Pieces every benchmark uses: an exporter target wired to a simulator, a bare client, rows."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.targets import resolve
from modelarts_exporter.runtime.wiring import Target, build_target
from modelarts_exporter.snapshot.store import StateStore

from .simproc import SimProcess


@dataclass(frozen=True)
class Row:
    """One line of the result table: ``measured`` against ``limit`` (``None``: for information)."""

    name: str
    measured: float
    limit: float | None = None
    lower_is_better: bool = True
    unit: str = "x"
    detail: str = ""

    @property
    def passed(self) -> bool | None:
        if self.limit is None:
            return None
        return self.measured <= self.limit if self.lower_is_better else self.measured >= self.limit


def target_for(sim: SimProcess, store: StateStore | None = None, **overrides: Any) -> Target:
    values: dict[str, Any] = {
        "endpoint": sim.url,
        "project_id": sim.project_id,
        "auth_token": "benchmark-token",  # the simulator asks for none; the exporter needs one
        "poll_interval_seconds": 3600,
        "request_timeout_seconds": 60,
        "page_size": 100,
    }
    values.update(overrides)
    (settings,) = resolve(Settings(**values), environ={})
    return build_target(settings, store or StateStore())


def requests_sent(target: Target) -> int:
    return sum(target.poller.state.api_requests.values())


async def timed_poll(target: Target) -> tuple[float, float]:
    """Wall and CPU seconds of one (successful) poll."""
    wall, cpu = time.monotonic(), time.process_time()
    if not await target.poller.poll():
        raise RuntimeError(f"poll failed: {target.poller.state.last_error}")
    return time.monotonic() - wall, time.process_time() - cpu


async def fetch_pages(
    sim: SimProcess, pages: int, size: int, concurrency: int, keep: bool = False
) -> tuple[float, list[bytes]]:
    """Fetch ``pages`` pages with a bare httpx client and ``concurrency`` workers: wall seconds
    and (if ``keep``) the bodies."""
    path = f"/v1/{sim.project_id}/training-jobs/versions"
    bodies: list[bytes] = []
    cursor = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=sim.url, limits=limits, timeout=60) as http:

        async def worker() -> None:
            nonlocal cursor
            while cursor < pages:
                index = cursor
                cursor += 1
                params = {"offset": index * size, "limit": size, "sort_by": "create_time"}
                response = await http.get(path, params={**params, "order": "asc"})
                response.raise_for_status()
                if keep:
                    bodies.append(response.content)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.monotonic() - started, bodies
