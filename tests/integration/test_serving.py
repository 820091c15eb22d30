"""The HTTP server in a process of its own: fed every state the poller publishes, and never
outliving (nor outlived by) the polling process."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from prometheus_client.openmetrics import parser as openmetrics

from modelarts_exporter.http.app import WebApp
from modelarts_exporter.http.process import ServingProcess, apply, dumps, loads
from modelarts_exporter.http.server import HttpServer
from modelarts_exporter.runtime.service import POLL_NICENESS
from modelarts_exporter.runtime.wiring import build_registry
from modelarts_exporter.snapshot.store import StateStore
from support.processes import background, free_port, sim_env
from support.simulation import InProcessExporter, SimFactory, parse_samples, select
from support.waiting import wait_for

MakeExporter = Callable[..., InProcessExporter]


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:  # noqa: PTH123
        return [int(child) for child in children.read().split()]


def _gone(pid: int, timeout: float = 10) -> bool:
    """Whether ``pid`` exited (or is a zombie nobody reaped) within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:  # noqa: PTH123
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def serving() -> Iterator[Callable[[StateStore, WebApp], ServingProcess]]:
    started: list[ServingProcess] = []

    def start(store: StateStore, app: WebApp) -> ServingProcess:
        process = ServingProcess(HttpServer(app, "127.0.0.1", 0), store)
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.mark.anyio
async def test_states_cross_to_the_server_process_whole(
    simulator: SimFactory, exporter_for: MakeExporter
) -> None:
    """Every field of a real state (read-only mappings, enums, histograms) survives the pipe."""
    exporter = exporter_for(simulator(size=300))
    assert await exporter.poll()
    (state,) = exporter.store.current()[1]
    assert state.snapshot is not None and state.poll_duration is not None
    mirror = StateStore()
    apply(mirror, loads(dumps({state.target: state})))
    assert mirror.current()[1] == (state,)
    apply(mirror, {state.target: None})
    assert mirror.current()[1] == ()


@pytest.mark.anyio
async def test_scrapes_are_served_by_another_process_that_follows_every_publish(
    simulator: SimFactory,
    exporter_for: MakeExporter,
    serving: Callable[[StateStore, WebApp], ServingProcess],
) -> None:
    sim = simulator(size=400)
    exporter = exporter_for(sim)
    store = exporter.store
    app = WebApp(store, build_registry(store), ready_intervals=3, version="t")
    process = serving(store, app)
    assert process.pid is not None and process.pid != os.getpid()
    assert process.pid in _children(os.getpid())
    url = f"http://127.0.0.1:{process.port}"
    assert wait_for(f"{url}/readyz", 503)  # no target yet: what the parent had at the fork
    assert await exporter.poll()
    assert wait_for(f"{url}/readyz", 200)
    async with httpx.AsyncClient(base_url=url) as http:
        first = parse_samples((await http.get("/metrics")).text)
        assert select(first, "modelarts_training_job_versions") == 400
        sim.tenant.advance(3600)
        assert await exporter.poll()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = parse_samples((await http.get("/metrics")).text)
            if now != first:
                break
        total = len(sim.tenant.records_in("0"))
        assert select(now, "modelarts_training_job_versions") == total
        store.remove(exporter.target.poller.target)
        assert wait_for(f"{url}/readyz", 503)
    process.stop()
    assert _gone(process.pid)
    with pytest.raises(httpx.ConnectError):  # nobody kept the listening socket open
        httpx.get(f"{url}/healthz")


@contextmanager
def _serving(simulator: SimFactory) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """``serve`` against a small tenant, ready: its process, its server's process, its port."""
    sim = simulator(size=100)
    port = free_port()
    env = sim_env(sim.url, sim.project_id) | {
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}"
    }
    with background(["serve"], env) as exporter:
        assert wait_for(f"http://127.0.0.1:{port}/readyz", 200)
        (server,) = _children(exporter.pid)
        yield exporter, server, port


def test_serve_runs_http_in_a_second_process_at_a_higher_priority(simulator: SimFactory) -> None:
    with _serving(simulator) as (exporter, server, _):
        assert os.getpriority(os.PRIO_PROCESS, exporter.pid) == POLL_NICENESS
        assert os.getpriority(os.PRIO_PROCESS, server) == 0
        # Ctrl-C reaches the whole group: the server waits for the poller to stop first.
        os.kill(server, signal.SIGINT)
        os.kill(exporter.pid, signal.SIGTERM)
        assert exporter.wait(timeout=20) == 0
        assert _gone(server)


def test_serve_stops_with_an_error_when_its_server_process_dies(simulator: SimFactory) -> None:
    with _serving(simulator) as (exporter, server, _):
        os.kill(server, signal.SIGKILL)
        assert exporter.wait(timeout=20) == 1
        assert exporter.stderr is not None
        errors = [line for line in exporter.stderr.read().splitlines() if "HTTP server" in line]
    assert len(errors) == 1
    assert "exited unexpectedly (exit code -9): stopping" in errors[0]


def test_the_server_process_exits_when_the_poller_is_killed(simulator: SimFactory) -> None:
    """Else an orphan would go on serving states that no longer change."""
    with _serving(simulator) as (exporter, server, port):
        exporter.kill()
        exporter.wait(timeout=10)
        assert _gone(server)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz")


def _started_at(pid: int) -> float:
    """When ``pid`` started, in Unix seconds, as the process collector reckons it."""
    with open(f"/proc/{pid}/stat") as stat:  # noqa: PTH123
        ticks = float(stat.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat") as system:  # noqa: PTH123
        boot = next(float(line.split()[1]) for line in system if line.startswith("btime "))
    return boot + ticks / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("accept", ["", "application/openmetrics-text"], ids=["text", "om"])
def test_one_scrape_has_both_processes_metrics_apart(simulator: SimFactory, accept: str) -> None:
    with _serving(simulator) as (exporter, server, port):
        url = f"http://127.0.0.1:{port}/metrics"
        answer = httpx.get(url, headers={"Accept": accept, "Accept-Encoding": "gzip"})
        assert answer.headers["content-encoding"] == "gzip"
        parse = openmetrics.text_string_to_metric_families if accept else parse_samples
        if accept:
            samples = {
                (sample.name, frozenset(sample.labels.items())): sample.value
                for family in parse(answer.text)
                for sample in family.samples
            }
        else:
            samples = parse(answer.text)
        assert select(samples, "modelarts_exporter_up") == 1
        for prefix, pid in (
            ("process_", exporter.pid),
            ("modelarts_exporter_http_process_", server),
        ):
            assert select(samples, f"{prefix}start_time_seconds") == pytest.approx(
                _started_at(pid), abs=0.02
            ), prefix
            assert select(samples, f"{prefix}resident_memory_bytes") > 0
            assert select(samples, f"{prefix}virtual_memory_bytes") > 0
            assert select(samples, f"{prefix}open_fds") > 0
            assert select(samples, f"{prefix}max_fds") > 0
            # A counter from 0 at the fork for the server, which may not have used a tick yet.
            assert any(name == f"{prefix}cpu_seconds_total" for name, _ in samples)
            assert select(samples, f"{prefix}cpu_seconds_total") >= 0
