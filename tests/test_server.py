"""The HTTP side over real HTTP: formats, compression, health, readiness, status page."""

from __future__ import annotations

import gzip
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry

from conftest import Clock, Exporter, SimFactory
from modelarts_exporter import __version__
from modelarts_exporter.app import build_registry
from modelarts_exporter.server import ExporterApp, HttpServer
from modelarts_exporter.simulator import FaultKind, FaultRule
from modelarts_exporter.state import StateStore, TargetState

MakeExporter = Callable[..., Exporter]


Serve = Callable[[StateStore, CollectorRegistry, "Clock"], tuple[ExporterApp, str]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[HttpServer] = []

    def start(
        store: StateStore, registry: CollectorRegistry, clock: Clock
    ) -> tuple[ExporterApp, str]:
        app = ExporterApp(store, registry, ready_intervals=3, version="9.9.9", clock=clock)
        server = HttpServer(app, "127.0.0.1", 0)
        server.start()
        servers.append(server)
        return app, f"http://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        server.stop()


@pytest.mark.anyio
async def test_metrics_formats_gzip_and_one_render_per_snapshot(
    simulator: SimFactory,
    exporter_for: MakeExporter,
    serve: Serve,
) -> None:
    sim = simulator(size=200)
    exporter = exporter_for(sim)
    app, url = serve(exporter.store, build_registry(exporter.store), Clock())
    assert await exporter.poll()
    async with httpx.AsyncClient(base_url=url) as http:
        plain = await http.get("/metrics")
        assert plain.status_code == 200
        assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "modelarts_training_job_versions{" in plain.text
        assert f'modelarts_exporter_build_info{{version="{__version__}"}} 1.0' in plain.text
        for _ in range(5):
            again = await http.get("/metrics")
            assert again.content == plain.content
        assert app.renders == 1

        om = await http.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.endswith("# EOF\n")

        raw = await http.get("/metrics", headers={"Accept-Encoding": "gzip"})
        assert raw.headers["content-encoding"] == "gzip"
        assert raw.content == plain.content  # httpx decompressed it
        assert app.renders == 2  # text and OpenMetrics; gzip reused the text render

        assert await exporter.poll()
        await http.get("/metrics")
        assert app.renders == 3  # a new snapshot, a new render


def test_compressed_body_is_really_gzip(
    serve: Serve,
) -> None:
    store = StateStore()
    _, url = serve(store, build_registry(store), Clock())
    with (
        httpx.Client() as http,
        http.stream("GET", f"{url}/metrics", headers={"Accept-Encoding": "gzip"}) as response,
    ):
        body = b"".join(response.iter_raw())
    assert b"modelarts_exporter_build_info" in gzip.decompress(body)


@pytest.mark.anyio
async def test_health_and_readiness_follow_the_last_success(
    simulator: SimFactory,
    exporter_for: MakeExporter,
    serve: Serve,
) -> None:
    sim = simulator(size=50)
    exporter = exporter_for(sim, poll_interval_seconds=60)
    clock = Clock()
    exporter.target.poller._clock = clock  # polls and readiness share one clock
    _, url = serve(exporter.store, build_registry(exporter.store), clock)
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/healthz")).status_code == 200
        not_yet = await http.get("/readyz")
        assert not_yet.status_code == 503 and sim.project_id in not_yet.text
        assert await exporter.poll()
        assert (await http.get("/readyz")).status_code == 200
        clock.now += 3 * 60 + 1
        assert (await http.get("/readyz")).status_code == 503
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/nope")).status_code == 404
        assert (await http.post("/metrics")).status_code == 405


@pytest.mark.anyio
async def test_status_page_shows_each_target_with_api_text_escaped(
    simulator: SimFactory,
    exporter_for: MakeExporter,
    serve: Serve,
) -> None:
    sim = simulator(size=100)
    exporter = exporter_for(sim)
    _, url = serve(exporter.store, build_registry(exporter.store), Clock())
    assert await exporter.poll()
    async with httpx.AsyncClient(base_url=url) as http:
        healthy = await http.get("/")
        sim.faults.add(FaultRule(FaultKind.API_ERROR, error_message="<script>alert(1)</script>"))
        assert not await exporter.poll()
        failing = await http.get("/")
    assert healthy.headers["content-type"].startswith("text/html")
    assert 'class="up"' in healthy.text and sim.project_id in healthy.text
    assert 'href="/metrics"' in healthy.text and "running:" in healthy.text
    assert 'class="down"' in failing.text and "api_error" in failing.text
    assert "&lt;script&gt;" in failing.text and "<script>" not in failing.text


def test_connections_are_kept_alive_and_head_has_no_body(serve: Serve) -> None:
    store = StateStore()
    _, url = serve(store, build_registry(store), Clock())
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        stream = sock.makefile("rwb")
        for path in ("/healthz", "/metrics"):
            stream.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            stream.flush()
            status = stream.readline()
            assert status.startswith(b"HTTP/1.1 200"), status
            headers = {}
            while (line := stream.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            assert headers.get("connection", "") != "close"
            stream.read(int(headers["content-length"]))  # the same connection answers again
        stream.write(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        stream.flush()
        assert stream.readline().startswith(b"HTTP/1.1 200")
        while (line := stream.readline()) != b"\r\n":
            pass
        stream.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        stream.flush()
        # Had HEAD sent a body, this would read exposition text instead of a status line.
        assert stream.readline().startswith(b"HTTP/1.1 200")


class _SlowReadStore(StateStore):
    """A store whose readers are held up for a while right after reading, as a scrape thread is
    when the poll takes the GIL between its reading the generation and its rendering: readers
    come back in another order than they read."""

    def current(self) -> tuple[int, tuple[TargetState, ...]]:
        read = super().current()
        time.sleep(random.uniform(0, 0.01))
        return read


def test_scrapes_racing_with_polls_render_at_most_once_per_generation() -> None:
    store = _SlowReadStore()
    store.publish(TargetState(target="t", project_id="p"))
    app = ExporterApp(store, build_registry(store), ready_intervals=3, version="9.9.9")
    server = HttpServer(app, "127.0.0.1", 0)
    server.start()
    stop = threading.Event()

    def scrape() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as http:
            while not stop.is_set():
                assert http.get("/metrics").status_code == 200

    scrapers = [threading.Thread(target=scrape) for _ in range(16)]
    try:
        for thread in scrapers:
            thread.start()
        renders, generations = app.renders, store.current()[0]
        for n in range(40):
            store.publish(TargetState(target="t", project_id="p", last_poll_end=float(n)))
            time.sleep(0.02)
        stop.set()
        for thread in scrapers:
            thread.join()
        assert app.renders - renders <= store.current()[0] - generations + 1
    finally:
        stop.set()
        server.stop()
