"""The exporter's WSGI application over real HTTP: formats, compression, health, readiness,
status page, methods. (test_http11.py: the HTTP/1.1 server under it.)"""

from __future__ import annotations

import gzip
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.openmetrics import parser as openmetrics
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from modelarts_exporter import __version__
from modelarts_exporter.http import app as app_module
from modelarts_exporter.http.app import WebApp
from modelarts_exporter.http.guard import protect
from modelarts_exporter.http.server import HttpServer
from modelarts_exporter.http.webconfig import WebConfig
from modelarts_exporter.runtime.wiring import build_registry
from modelarts_exporter.simulator import FaultKind, FaultRule
from modelarts_exporter.snapshot.store import StateStore, TargetState
from support.simulation import Clock, InProcessExporter, ServeWsgi, SimFactory

MakeExporter = Callable[..., InProcessExporter]


Serve = Callable[[StateStore, CollectorRegistry, "Clock"], tuple[WebApp, str]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[HttpServer] = []

    def start(store: StateStore, registry: CollectorRegistry, clock: Clock) -> tuple[WebApp, str]:
        app = WebApp(store, registry, ready_intervals=3, version="9.9.9", clock=clock)
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


class _Ticks(Collector):
    """A live collector: a new value at each collect."""

    def __init__(self) -> None:
        self.count = 0

    def collect(self) -> Iterator[Metric]:
        self.count += 1
        yield CounterMetricFamily("ticks_total", "Collects so far.", value=self.count)


@pytest.mark.parametrize("accept", ["", "application/openmetrics-text"], ids=["text", "om"])
def test_live_metrics_are_fresh_at_every_scrape_and_the_rest_rendered_once(
    serve_wsgi: ServeWsgi, accept: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "LIVE_SECONDS", 0.0)
    store = StateStore()
    store.publish(TargetState(target="t", project_id="p"))
    live = CollectorRegistry(auto_describe=False)
    live_ticks = _Ticks()
    live.register(live_ticks)
    app = WebApp(store, build_registry(store), ready_intervals=3, version="9", live=live)
    port = serve_wsgi(app)
    parse = openmetrics.text_string_to_metric_families if accept else text_string_to_metric_families
    seen = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Accept": accept}) as http:
        for encoding in ("identity", "gzip", "gzip", "identity"):
            with http.stream("GET", "/metrics", headers={"Accept-Encoding": encoding}) as answer:
                raw = b"".join(answer.iter_raw())
            text = (gzip.decompress(raw) if encoding == "gzip" else raw).decode()
            families = {f.name: f for f in parse(text)}
            assert "modelarts_exporter_up" in families
            seen.append(families["ticks"].samples[0].value)
            if accept:
                assert text.endswith("\n# EOF\n") and text.count("# EOF") == 1
    assert seen == [1, 2, 3, 4]
    assert app.renders == 1
    monkeypatch.setattr(app_module, "LIVE_SECONDS", 3600.0)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Accept": accept}) as http:
        assert http.get("/metrics").status_code == http.get("/metrics").status_code == 200
    assert app.renders == 1 and live_ticks.count == 4  # read less than LIVE_SECONDS ago


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
        # Polls slower than their interval are let finish: readiness then counts in polls.
        slow = replace(exporter.target.poller.state, last_poll_seconds=200.0)
        exporter.store.publish(slow)
        assert (await http.get("/readyz")).status_code == 200
        clock.now += 3 * 200 - (3 * 60 + 1) + 1
        assert (await http.get("/readyz")).status_code == 503
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
    app = WebApp(store, build_registry(store), ready_intervals=3, version="9.9.9")
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


class _HeldCollector(Collector):
    """A render that takes as long as the test says: it blocks until released."""

    def __init__(self) -> None:
        self.rendering = threading.Event()
        self.release = threading.Event()

    def collect(self) -> Iterator[Metric]:
        self.rendering.set()
        assert self.release.wait(timeout=30)
        yield GaugeMetricFamily("held_render", "A render held by the test.", value=1.0)


@pytest.mark.parametrize("guarded", [False, True], ids=["app", "behind-guard"])
def test_health_and_readiness_answer_while_a_render_is_held(guarded: bool) -> None:
    store = StateStore()
    store.publish(TargetState(target="t", project_id="p"))
    registry = CollectorRegistry()
    held = _HeldCollector()
    registry.register(held)
    app = WebApp(store, registry, ready_intervals=3, version="9.9.9")
    server = HttpServer(protect(app, WebConfig()) if guarded else app, "127.0.0.1", 0)
    server.start()
    url = f"http://127.0.0.1:{server.port}"
    scraped: list[httpx.Response] = []
    scrape = threading.Thread(target=lambda: scraped.append(httpx.get(url + "/metrics")))
    try:
        scrape.start()
        assert held.rendering.wait(timeout=10)
        # The render is held: the probes are answered all the same, on other connections.
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200
        assert httpx.get(url + "/readyz", timeout=5).status_code == 503  # no poll succeeded yet
        assert held.release.is_set() is False and not scraped
    finally:
        held.release.set()
        scrape.join(timeout=30)
        server.stop()
    assert scraped[0].status_code == 200 and "held_render 1.0" in scraped[0].text


# --- the server itself, over raw sockets ---------------------------------------------------------


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("deflate, gzip;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0, identity", False),
        ("*;q=0", False),
        ("br", False),
        ("", False),
    ],
)
def test_gzip_follows_accept_encoding_as_rfc_9110_reads_it(
    serve: Serve, accept_encoding: str, gzipped: bool
) -> None:
    store = StateStore()
    _, url = serve(store, build_registry(store), Clock())
    with (
        httpx.Client() as http,
        http.stream(
            "GET", f"{url}/metrics", headers={"Accept-Encoding": accept_encoding}
        ) as response,
    ):
        body = b"".join(response.iter_raw())
    assert (response.headers.get("content-encoding") == "gzip") is gzipped
    assert b"modelarts_exporter_build_info" in (gzip.decompress(body) if gzipped else body)


def test_a_method_not_allowed_says_which_are(serve: Serve) -> None:
    store = StateStore()
    _, url = serve(store, build_registry(store), Clock())
    answer = httpx.post(f"{url}/metrics")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD"
