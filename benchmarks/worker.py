"""The exporter alone in a process, so that its memory is its own: ``python -m benchmarks.worker``.

``memory URL PROJECT SIZE`` polls a tenant twice (a baseline, then a steady-state poll) and prints
JSON with the CPU seconds of the second poll and the peak RSS. ``soak URL PROJECT POLLS`` polls
an evolving tenant (advancing it a minute between polls) and prints the RSS after each poll.
``serve URL PROJECT [URL PROJECT ...]`` serves ``/metrics`` for the targets after two polls each,
prints the port, then polls the first target over and over from the first line on stdin until the
second; the server's process then prints JSON with its renders, and this one with the polls and
the generations published.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import sys
import threading
import time
from typing import Any

import httpx

from modelarts_exporter.cli import freeze_startup_objects
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.targets import resolve
from modelarts_exporter.expose.processes import process_registry
from modelarts_exporter.http.app import WebApp
from modelarts_exporter.http.process import ServingProcess
from modelarts_exporter.http.server import HttpServer
from modelarts_exporter.runtime.service import POLL_NICENESS
from modelarts_exporter.runtime.wiring import Target, build_registry, build_target
from modelarts_exporter.snapshot.store import StateStore

PAGE = 1000


def _target(url: str, project: str, store: StateStore, **overrides: Any) -> Target:
    values: dict[str, Any] = {
        "endpoint": url,
        "project_id": project,
        "auth_token": "benchmark-token",  # the simulator asks for none; the exporter needs one
        "page_size": PAGE,
        "pagination": "offset",
        "poll_interval_seconds": 3600,
        "request_timeout_seconds": 120,
    }
    values.update(overrides)
    (settings,) = resolve(Settings(**values), environ={})
    return build_target(settings, store)


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:  # noqa: PTH123
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _poll(target: Target) -> float:
    started = time.process_time()
    if not await target.poller.poll():
        raise RuntimeError(target.poller.state.last_error)
    return time.process_time() - started


async def memory(url: str, project: str) -> dict[str, float]:
    target = _target(url, project, StateStore())
    await _poll(target)
    cpu = await _poll(target)
    snapshot = target.poller.state.snapshot
    assert snapshot is not None
    return {
        "cpu": cpu,
        "versions": snapshot.version_count,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


async def soak(url: str, project: str, polls: int) -> dict[str, list[float]]:
    target = _target(url, project, StateStore())
    rss = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as control:
        for _ in range(polls):
            await control.post("/_sim/advance", params={"seconds": 60})
            await _poll(target)
            rss.append(_rss_mb())
    return {"rss_mb": rss}


async def serve(pairs: list[tuple[str, str]]) -> dict[str, int]:
    """As ``serve`` runs: the server in a process of its own, forked before any poll."""
    store = StateStore()
    live = process_registry(os.getpid())
    app = WebApp(store, build_registry(store), ready_intervals=3, version="bench", live=live)

    def report_renders() -> None:  # in the server's process, after it stopped
        print(json.dumps({"renders": app.renders}), flush=True)

    serving = ServingProcess(
        HttpServer(app, "127.0.0.1", 0),
        store,
        niceness=POLL_NICENESS,
        on_exit=report_renders,
    )
    serving.start()
    targets = [_target(url, project, store, page_size=100) for url, project in pairs]
    for target in targets:
        for _ in range(2):
            await _poll(target)
    print(serving.port, flush=True)
    go, stop = threading.Event(), threading.Event()

    def read_commands() -> None:
        sys.stdin.readline()
        go.set()
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=read_commands, daemon=True).start()
    while not go.is_set():
        await asyncio.sleep(0.05)
    generation = store.current()[0]
    polls = 0
    while not stop.is_set():
        await _poll(targets[0])
        polls += 1
    result = {"polls": polls, "generations": store.current()[0] - generation}
    serving.stop()
    return result


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    freeze_startup_objects()  # as `serve` does
    command, *args = sys.argv[1:]
    result: object
    if command == "memory":
        result = asyncio.run(memory(args[0], args[1]))
    elif command == "soak":
        result = asyncio.run(soak(args[0], args[1], int(args[2])))
    else:
        pairs = list(zip(args[::2], args[1::2], strict=True))
        result = asyncio.run(serve(pairs))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
