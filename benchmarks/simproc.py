"""The simulator in a process of its own, so that the exporter's CPU and memory are measured alone.

``python -m benchmarks.simproc --size N ...`` serves one tenant on 127.0.0.1 (no authentication)
and prints its URL on the first line of stdout; :class:`SimProcess` starts and stops it and drives
it through the simulator's ``/_sim/*`` control endpoints.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from typing import Self

import httpx

PROJECT_ID = "benchproject"


class SimProcess:
    """A running simulator process (a context manager)."""

    def __init__(
        self,
        size: int,
        *,
        seed: int = 1,
        active_fraction: float = 0.01,
        latency_seconds: float = 0.0,
        project_id: str = PROJECT_ID,
        idle_priority: bool = False,
        v2: bool = False,
    ) -> None:
        """``idle_priority``: run only on CPU time nothing else wants, as a stand-in for an API
        that is on another machine (whose serving costs the exporter's machine nothing).
        ``v2``: serve ``size`` v2 jobs in one workspace (and no v1 versions) instead."""
        self.project_id = project_id
        self._args = [
            sys.executable,
            "-m",
            "benchmarks.simproc",
            f"--size={size}",
            f"--seed={seed}",
            f"--active-fraction={active_fraction}",
            f"--latency={latency_seconds}",
            f"--project-id={project_id}",
            *(["--idle-priority"] if idle_priority else []),
            *(["--v2"] if v2 else []),
        ]
        self._process: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> Self:
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self._args, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.__exit__()
            raise RuntimeError("the simulator process did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)
            self._process = None

    def advance(self, seconds: float) -> None:
        httpx.post(f"{self.url}/_sim/advance", params={"seconds": seconds}, timeout=120)

    def requests(self) -> int:
        stats = httpx.get(f"{self.url}/_sim/stats", timeout=30).json()
        return int(stats["requests"])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.simproc")
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--active-fraction", type=float, default=0.01)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--project-id", default=PROJECT_ID)
    parser.add_argument("--idle-priority", action="store_true")
    parser.add_argument("--v2", action="store_true")
    options = parser.parse_args()
    if options.idle_priority:  # before any thread starts: threads inherit it
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))

    from modelarts_exporter.simulator import (  # noqa: PLC0415
        FaultPlan,
        SimulatorServer,
        Tenant,
        V2Tenant,
    )

    # Blocked before any thread starts (threads inherit the mask), then waited for below.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    jobs: V2Tenant | None = None

    class _AdvancingBoth(Tenant):
        """No v1 versions; ``/_sim/advance`` moves the v2 jobs' clock too."""

        def __init__(self, v2: V2Tenant) -> None:
            super().__init__(size=0, seed=options.seed)
            self._v2 = v2

        def advance(self, seconds: float) -> None:
            super().advance(seconds)
            self._v2.advance(seconds)

    if options.v2:
        jobs = V2Tenant(
            size=options.size,
            seed=options.seed,
            workspaces=("0",),
            active_fraction=options.active_fraction,
            undocumented_fraction=0.0,
        )
        tenant: Tenant = _AdvancingBoth(jobs)
    else:
        tenant = Tenant(
            size=options.size, seed=options.seed, active_fraction=options.active_fraction
        )
    faults = FaultPlan(latency_seconds=options.latency)
    with SimulatorServer(tenant, project_id=options.project_id, faults=faults, v2=jobs) as server:
        print(server.url, flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})


if __name__ == "__main__":
    main()
