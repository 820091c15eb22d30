"""One request to a hostile or broken server, through the real HTTP client as the app wires it:
every answer ends as a page or as a one-line error with a reason, and no answer — however large,
slow or endless — holds a poll longer than its deadline."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelarts_exporter.cloud.client import ApiClient
from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.cloud.models import Page
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.targets import resolve
from modelarts_exporter.runtime.wiring import build_target
from modelarts_exporter.simulator import FaultKind, FaultRule
from modelarts_exporter.snapshot.store import StateStore
from support.hostile import hostile_pages, json_values
from support.properties import examples
from support.secrets import TOKEN
from support.simulation import SimFactory, exporter_settings
from support.waiting import eventually

PATH = "/v1/p1/training-jobs/versions"
Behaviour = Callable[[socket.socket, threading.Event], None]
"""What the server does after reading a request; the event is set when the server stops."""


@dataclass
class RawServer:
    """A TCP server on 127.0.0.1 that reads one request per connection and then does whatever
    ``behaviour`` says with the socket: the answers no well-behaved server gives."""

    behaviour: Behaviour
    ended: list[float] = field(default_factory=list)
    """When each connection's behaviour ended (the client went away, or it was done)."""

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, name="raw-server")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(connection,), name="raw-conn")
            self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            request = b""
            try:
                while b"\r\n\r\n" not in request:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    request += chunk
                self.behaviour(connection, self._stop)
            except OSError:
                pass  # the client gave up: what the endless behaviours wait for
            finally:
                self.ended.append(time.monotonic())

    def start(self) -> RawServer:
        self._accepting.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._accepting.join()
        for thread in self._threads:
            thread.join()
        self._listener.close()


@contextmanager
def raw_server(behaviour: Behaviour) -> Iterator[RawServer]:
    server = RawServer(behaviour).start()
    try:
        yield server
    finally:
        server.stop()


def answer(status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> Behaviour:
    def send(connection: socket.socket, stop: threading.Event) -> None:
        head = [f"HTTP/1.1 {status} Whatever", f"Content-Length: {len(body)}", "Connection: close"]
        head += [f"{name}: {value}" for name, value in headers or []]
        connection.sendall("\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + body)

    return send


def client_for(url: str, **overrides: object) -> ApiClient:
    """The client exactly as the app builds it (deadline = 3 x request time-out)."""
    values: dict[str, object] = {
        "endpoint": url,
        "project_id": "p1",
        "auth_token": TOKEN,
        "max_retries": 0,
        "request_timeout_seconds": 1,
    }
    values.update(overrides)
    (target,) = resolve(Settings(**values), environ={})  # type: ignore[arg-type]
    return build_target(target, StateStore()).client


async def get(client: ApiClient) -> Page:
    try:
        return await client.get_page(PATH, {"offset": "0", "limit": "100"})
    finally:
        await client.aclose()


statuses = st.sampled_from([200, 201, 204, 301, 400, 401, 403, 404, 418, 429, 500, 502, 503, 599])
bodies = st.one_of(
    hostile_pages.map(lambda page: json.dumps(page).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=300),
    st.sampled_from([b"", b"<html>502 Bad Gateway</html>", b'{"error_code": "APIG.0308"}']),
)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=30)
headers = st.lists(
    st.tuples(st.sampled_from(["Content-Type", "Retry-After", "X-Whatever"]), header_values),
    max_size=3,
)


@dataclass
class Shared:
    server: RawServer
    client: ApiClient
    runner: asyncio.Runner


@pytest.fixture(scope="module")
def shared() -> Iterator[Shared]:
    """One server, client and event loop for every example of a property test (the server's
    behaviour is set per example): building an HTTP client costs more than a request."""
    with raw_server(answer(200, b"")) as server, asyncio.Runner() as runner:
        client = client_for(server.url)
        yield Shared(server, client, runner)
        runner.run(client.aclose())


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=statuses, body=bodies, extra=headers)
def test_any_answer_is_a_page_or_a_one_line_poll_error(
    shared: Shared, status: int, body: bytes, extra: list[tuple[str, str]]
) -> None:
    shared.server.behaviour = answer(status, body, extra)
    try:
        page = shared.runner.run(shared.client.get_page(PATH, {"offset": "0", "limit": "100"}))
    except PollError as error:
        assert isinstance(error.reason, Reason)
        assert "\n" not in str(error) and len(str(error)) < 400
        if status == 429:
            assert error.reason is Reason.THROTTLED
        elif status >= 500:
            assert error.reason in (Reason.SERVER_ERROR, Reason.THROTTLED, Reason.AUTH)
    else:
        assert 200 <= status < 300
        assert page.versions is not None and page.total_count is not None


def trickle_forever(connection: socket.socket, stop: threading.Event) -> None:
    """A 200 whose body never ends: a few bytes every 50 ms, each read well within the read
    time-out, the body far below the size cap."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
    connection.sendall(b'{"versions": [')
    while not stop.wait(0.05):
        connection.sendall(b" " * 8)


def flood_forever(connection: socket.socket, stop: threading.Event) -> None:
    """A 200 without Content-Length that streams as fast as the client reads, for ever."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
    block = b" " * 65536
    while not stop.is_set():
        connection.sendall(block)


def test_an_endless_trickle_is_cut_off_at_the_request_deadline() -> None:
    with raw_server(trickle_forever) as server:
        started = time.monotonic()
        with pytest.raises(PollError) as caught:
            asyncio.run(get(client_for(server.url, request_timeout_seconds=1)))
        elapsed = time.monotonic() - started
        assert caught.value.reason is Reason.TIMEOUT
        # Not before the whole-request deadline (three read time-outs of 1 s), so no single read
        # timed out: the trickle's gaps are 50 ms. (A bound that a busy machine cannot break.)
        assert elapsed >= 2.95
        # The client closed the connection, not just stopped waiting: the server's next write
        # failed and its behaviour ended.
        assert eventually(lambda: bool(server.ended))


def test_an_endless_flood_is_cut_off_at_the_size_cap() -> None:
    with raw_server(flood_forever) as server:
        with pytest.raises(PollError) as caught:
            asyncio.run(get(client_for(server.url, max_response_bytes=1_000_000)))
        assert caught.value.reason is Reason.INVALID_RESPONSE
        assert "1000000-byte cap" in str(caught.value)  # the cap, not the 3 s deadline (timeout)
        assert eventually(lambda: bool(server.ended))


def test_a_declared_oversize_body_is_refused_unread() -> None:
    def huge(connection: socket.socket, stop: threading.Event) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n{")
        stop.wait()  # the rest never comes: a client reading on would time out

    with raw_server(huge) as server:
        with pytest.raises(PollError) as caught:
            asyncio.run(get(client_for(server.url, max_response_bytes=4096)))
        assert caught.value.reason is Reason.INVALID_RESPONSE
        assert "4096-byte cap" in str(caught.value)


@pytest.mark.anyio
async def test_a_slow_drip_in_many_small_pieces_is_cut_off_at_the_deadline(
    simulator: SimFactory,
) -> None:
    """The simulator's drip sends a piece every 50 ms, so no single read times out; only the
    whole-request deadline (3 x 1 s) stops it."""
    sim = simulator(size=400)
    sim.faults.add(FaultRule(FaultKind.SLOW_DRIP, drip_seconds=60, drip_interval_seconds=0.05))
    settings_ = exporter_settings(sim, request_timeout_seconds=1, page_size=400)
    (target,) = resolve(settings_, environ={})
    client = build_target(target, StateStore()).client
    started = time.monotonic()
    with pytest.raises(PollError) as caught:
        await get(client)
    assert caught.value.reason is Reason.TIMEOUT
    assert time.monotonic() - started >= 2.95  # the deadline, not a read time-out


@pytest.mark.anyio
async def test_a_retry_after_longer_than_a_poll_waits_is_throttling_at_once(
    simulator: SimFactory,
) -> None:
    """``Retry-After: 999999999`` is the API saying "slow down": the poll ends as throttled
    (and the next interval tries again), not as a time-out after sleeping out its deadline."""
    sim = simulator(size=50, project_id="p1")
    sim.faults.add(FaultRule(FaultKind.THROTTLE, retry_after="999999999"))
    client = client_for(sim.url, auth_token=TOKEN, max_retries=3)
    with pytest.raises(PollError) as caught:
        await get(client)
    assert caught.value.reason is Reason.THROTTLED
    assert "asked to retry after 999999999 s" in str(caught.value)
    assert sim.stats.requests == 1
