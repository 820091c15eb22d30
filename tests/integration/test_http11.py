"""The HTTP/1.1 server (http/http11.py, http/server.py) over real sockets: pipelining, framing,
limits, slow and vanishing clients, keep-alive, the WSGI contract (PEP 3333), IPv6 and its
life cycle. (test_server.py: what the exporter's WSGI application answers.)"""

from __future__ import annotations

import logging
import os
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from wsgiref.types import StartResponse, WSGIEnvironment

import httpx
import pytest

from modelarts_exporter.http import http11
from modelarts_exporter.http.app import WebApp
from modelarts_exporter.http.server import HttpServer
from modelarts_exporter.runtime.wiring import build_registry
from modelarts_exporter.snapshot.store import StateStore, TargetState
from support.simulation import ServeWsgi


@pytest.fixture
def exporter_port(serve_wsgi: ServeWsgi) -> int:
    store = StateStore()
    store.publish(TargetState(target="t", project_id="p"))
    return serve_wsgi(WebApp(store, build_registry(store), ready_intervals=3, version="9"))


def _request(path: str, method: str = "GET", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


def _read_all(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, bool]:
    """What the server sends until it closes the connection (True) or ``timeout`` passes."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data, False
    return data, True


_LAST = "Connection: close\r\n"
"""Ends a test's pipelined requests: the server closes after answering, and reading ends."""


def _statuses(data: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"^HTTP/1\.1 (\d{3}) ", data, re.MULTILINE)]


def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    """No record above debug and no traceback: a client's fault is not the server's problem."""
    loud = [
        r
        for r in caplog.records
        if r.name.startswith(("modelarts_exporter", "asyncio"))
        and (r.levelno > logging.DEBUG or r.exc_info)
    ]
    assert not loud, [r.getMessage() for r in loud]


def test_construction_binds_the_port_and_start_serves_from_one_new_thread() -> None:
    store = StateStore()
    app = WebApp(store, build_registry(store), ready_intervals=3, version="9")
    threads = threading.active_count()
    server = HttpServer(app, "127.0.0.1", 0)
    try:
        assert threading.active_count() == threads  # a parent may fork now and start in the child
        with pytest.raises(OSError, match="in use"):
            HttpServer(app, "127.0.0.1", server.port)
        # Listening already: the kernel completes the connection, nobody answers yet.
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as early:
            early.sendall(_request("/healthz", extra=_LAST))
            server.start()
            assert [t.name for t in threading.enumerate()].count("http-server") == 1
            data, _ = _read_all(early)
            assert _statuses(data) == [200]
    finally:
        server.stop()
    assert threading.active_count() == threads


def test_close_releases_the_port_of_a_server_never_started() -> None:
    store = StateStore()
    app = WebApp(store, build_registry(store), ready_intervals=3, version="9")
    server = HttpServer(app, "127.0.0.1", 0)
    server.close()
    again = HttpServer(app, "127.0.0.1", server.port)  # the port is free again
    again.start()
    try:
        with pytest.raises(RuntimeError, match="stop"):
            again.close()
        assert httpx.get(f"http://127.0.0.1:{again.port}/healthz").status_code == 200
    finally:
        again.stop()


def test_pipelined_requests_are_answered_in_order_on_one_connection(exporter_port: int) -> None:
    paths = ["/healthz", "/nope", "/readyz", "/metrics"]
    with socket.create_connection(("127.0.0.1", exporter_port)) as sock:
        sock.sendall(b"".join(_request(path) for path in paths) + _request("/healthz", extra=_LAST))
        data, _ = _read_all(sock)
    assert _statuses(data) == [200, 404, 503, 200, 200]
    assert data.index(b"ok\n") < data.index(b"not found\n") < data.index(b"no recent")
    assert data.endswith(b"\r\n\r\nok\n")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 200_000, 431),
        (b"GET /" + b"a" * 200_000, 431),
    ],
    ids=["garbage", "no-host", "bad-header-name", "long-header", "long-request-line"],
)
def test_a_malformed_or_oversized_request_gets_an_error_and_the_connection_closes(
    exporter_port: int, caplog: pytest.LogCaptureFixture, request_bytes: bytes, status: int
) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.create_connection(("127.0.0.1", exporter_port)) as sock:
        sock.sendall(request_bytes)
        data, closed = _read_all(sock)
    assert closed and _statuses(data) == [status]
    assert b"Connection: close" in data
    assert httpx.get(f"http://127.0.0.1:{exporter_port}/healthz").status_code == 200
    _quiet(caplog)


@pytest.mark.parametrize(
    "framing",
    [
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5, 6\r\n",
    ],
    ids=["cl-then-te", "te-then-cl", "two-lengths", "a-list-of-lengths"],
)
def test_a_request_framed_two_ways_is_refused_and_what_it_smuggles_never_answered(
    exporter_port: int, caplog: pytest.LogCaptureFixture, framing: str
) -> None:
    """RFC 9112 §6.3: a proxy in front may frame the body otherwise, and pass on what follows
    as a request of its own; so the connection must end at this request."""
    caplog.set_level(logging.DEBUG)
    smuggled = _request("/healthz", extra=_LAST)
    with socket.create_connection(("127.0.0.1", exporter_port)) as sock:
        sock.sendall(_request("/metrics", "POST", framing) + b"0\r\n\r\n" + smuggled)
        data, closed = _read_all(sock)
    assert closed and _statuses(data) == [400]
    assert b"Connection: close" in data and b"ok\n" not in data
    _quiet(caplog)


def test_equal_content_lengths_are_one_and_the_connection_closes(exporter_port: int) -> None:
    """RFC 9110 §8.6 lets equal values be read as one; the body still ends the connection."""
    post = _request("/metrics", "POST", "Content-Length: 5\r\nContent-Length: 5\r\n")
    with socket.create_connection(("127.0.0.1", exporter_port)) as sock:
        sock.sendall(post + b"12345" + _request("/healthz"))
        data, closed = _read_all(sock)
    assert closed and _statuses(data) == [405]


def _head_of(size: int) -> bytes:
    """A request head of exactly ``size`` bytes, the blank line included."""
    start, end = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ", b"\r\nConnection: close\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


@pytest.mark.parametrize(
    ("size", "status"),
    [
        (http11.MAX_HEAD_BYTES, 200),
        (http11.MAX_HEAD_BYTES + 1, 431),
        (http11.MAX_HEAD_BYTES + 1000, 431),
        (100_000, 431),
    ],
    ids=["at-the-limit", "one-byte-over", "over", "far-over"],
)
def test_the_head_limit_is_exactly_64_kib_however_the_head_arrives(
    exporter_port: int, size: int, status: int
) -> None:
    assert http11.MAX_HEAD_BYTES == 64 * 1024  # docs/reliability.md says 64 KiB
    for pieces in (1, 7):  # in one write, or a few
        head = _head_of(size)
        with socket.create_connection(("127.0.0.1", exporter_port)) as sock:
            step = -(-len(head) // pieces)
            for at in range(0, len(head), step):
                sock.sendall(head[at : at + step])
            data, closed = _read_all(sock)
        assert closed and _statuses(data) == [status], (pieces, data[:100])


def test_pipelined_requests_after_a_long_head_count_from_their_own_start(
    exporter_port: int,
) -> None:
    """The limit is per request: what came before a pipelined head does not count toward it."""
    long = _head_of(http11.MAX_HEAD_BYTES).replace(b"Connection: close", b"X-A: b")
    with socket.create_connection(("127.0.0.1", exporter_port)) as sock:
        sock.sendall(long + long + _request("/healthz", extra=_LAST))
        data, closed = _read_all(sock)
    assert closed and _statuses(data) == [200, 200, 200]


def _server_side_of(client: socket.socket) -> socket.socket:
    """The server's end of ``client``'s connection, found among this process's descriptors
    (the server runs in this process): a duplicate, for the caller to close."""
    want = (client.getpeername(), client.getsockname())
    for entry in Path("/proc/self/fd").iterdir():
        try:
            candidate = socket.socket(fileno=os.dup(int(entry.name)))
        except OSError:
            continue
        try:
            if (candidate.getsockname(), candidate.getpeername()) == want:
                return candidate
        except OSError:
            pass
        candidate.close()
    raise AssertionError("the server's end of the connection was not found")


def test_every_accepted_connection_has_nagle_off(exporter_port: int) -> None:
    """Answers are single writes, but a pipelined answer written after another would wait for
    a delayed ACK with Nagle on."""
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", exporter_port)) as sock:
            sock.sendall(_request("/healthz"))
            sock.settimeout(5)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            with _server_side_of(sock) as served:
                assert served.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_a_request_with_a_body_is_answered_and_its_connection_closed(exporter_port: int) -> None:
    """Nothing reads request bodies: what follows one must not be taken for another request."""
    smuggled = _request("/healthz")
    body = b"x" * 5
    post = _request("/metrics", "POST", f"Content-Length: {len(body) + len(smuggled)}\r\n")
    with socket.create_connection(("127.0.0.1", exporter_port)) as sock:
        sock.sendall(post + body + smuggled)
        data, closed = _read_all(sock)
    assert closed and _statuses(data) == [405]
    with httpx.Client(base_url=f"http://127.0.0.1:{exporter_port}") as http:
        empty = http.post("/metrics")  # no body: the connection stays usable
        assert empty.status_code == 405 and http.get("/healthz").status_code == 200


def test_head_has_the_headers_of_get_and_no_body(exporter_port: int) -> None:
    def head_of(method: str) -> dict[str, str]:
        with socket.create_connection(("127.0.0.1", exporter_port)) as sock:
            sock.sendall(_request("/metrics", method, "Connection: close\r\n"))
            data, closed = _read_all(sock)
        assert closed
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines)}
        assert len(body) == (0 if method == "HEAD" else int(headers["content-length"]))
        del headers["date"]
        return headers

    get = head_of("GET")
    assert int(get["content-length"]) > 0 and head_of("HEAD") == get


def test_an_idle_or_stalled_connection_is_closed_after_the_keepalive_time(
    exporter_port: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(http11, "KEEPALIVE_SECONDS", 0.5)
    started = time.monotonic()  # before either connection: the keep-alive time starts later
    with (
        socket.create_connection(("127.0.0.1", exporter_port)) as idle,
        socket.create_connection(("127.0.0.1", exporter_port)) as stalled,
    ):
        idle.sendall(_request("/healthz"))
        stalled.sendall(b"GET /metr")
        # Closed by the server (waited for as long as a busy machine needs)...
        answered, idle_closed = _read_all(idle, timeout=30)
        assert idle_closed and _statuses(answered) == [200]
        assert _read_all(stalled, timeout=30) == (b"", True)
        assert time.monotonic() - started >= 0.5  # ...and not before the keep-alive time
    _quiet(caplog)


def test_a_slowloris_holds_up_no_other_client(exporter_port: int) -> None:
    """A client sending half a request line and waiting costs one idle coroutine, no thread."""
    stalled = []
    try:
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", exporter_port))
            sock.sendall(b"GET /metr")
            stalled.append(sock)
        # Held up, a scrape would wait for the stalled clients' 60 s keep-alive time, beyond
        # this time-out, which leaves a busy machine room for a healthy scrape.
        with httpx.Client(base_url=f"http://127.0.0.1:{exporter_port}", timeout=40) as http:
            for _ in range(20):
                assert http.get("/metrics").status_code == 200
    finally:
        for sock in stalled:
            sock.close()


def test_clients_leaving_mid_request_or_mid_answer_break_nothing(
    exporter_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{exporter_port}"
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", exporter_port)) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHo")
        with socket.create_connection(("127.0.0.1", exporter_port)) as sock:
            sock.sendall(_request("/metrics") * 50)
            # An abortive close (RST): the answers being written meet a reset connection.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert httpx.get(f"{url}/metrics").status_code == 200
    _quiet(caplog)


def test_an_application_error_is_a_500_logged_once_and_serving_goes_on(
    serve_wsgi: ServeWsgi, caplog: pytest.LogCaptureFixture
) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/bug":
            raise ZeroDivisionError("a bug")
        start_response("200 OK", [("Content-Length", "3")])
        return [b"ok\n"]

    with httpx.Client(base_url=f"http://127.0.0.1:{serve_wsgi(app)}") as http:
        failed = http.get("/bug")
        assert (failed.status_code, failed.text) == (500, "internal server error\n")
        assert http.get("/fine").text == "ok\n"  # on the same connection
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.exc_info is not None and "path=/bug" in record.getMessage()


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        ("200 OK", [("X-Split", "a\r\nSet-Cookie: session=stolen")]),
        ("200 OK", [("Bad Name", "x")]),
        ("200 OK", [("X-Wide", "\u2603")]),  # not Latin-1 (PEP 3333)
        ("200 OK", [("Transfer-Encoding", "chunked")]),  # hop-by-hop: the server's
        ("200 OK\r\nSet-Cookie: session=stolen", []),
        ("OK", []),
    ],
    ids=["line-break", "bad-name", "not-latin-1", "hop-by-hop", "split-status", "no-code"],
)
def test_an_answer_that_is_not_valid_http_is_a_500_and_never_sent(
    serve_wsgi: ServeWsgi, status: str, headers: list[tuple[str, str]]
) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response(status, headers)
        return [b"body\n"]

    with socket.create_connection(("127.0.0.1", serve_wsgi(app))) as sock:
        sock.sendall(_request("/") + _request("/", extra=_LAST))
        data, _ = _read_all(sock)
    assert _statuses(data) == [500, 500]  # and the connection still serves
    assert b"stolen" not in data and b"\xe2" not in data


def test_the_body_frames_the_answer_and_the_client_may_close(serve_wsgi: ServeWsgi) -> None:
    """A wrong Content-Length from the application cannot desync a kept-alive connection;
    HTTP/1.0 and ``Connection: close`` end it after the answer."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Length", "100")])
        return [b"short\n"]

    port = serve_wsgi(app)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_request("/") + _request("/", extra=_LAST))
        data, _ = _read_all(sock)
    assert _statuses(data) == [200, 200]
    assert data.count(b"Content-Length: 6\r\n") == 2 and b"100" not in data
    for request in (b"GET / HTTP/1.0\r\n\r\n", _request("/", extra="Connection: Close\r\n")):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request * 2)  # the second is never answered
            data, closed = _read_all(sock)
        assert closed and _statuses(data) == [200] and b"Connection: close\r\n" in data


class _Closing(list[bytes]):
    closed = False

    def close(self) -> None:
        self.closed = True


def test_the_wsgi_environ_and_start_response_are_as_pep_3333_says(serve_wsgi: ServeWsgi) -> None:
    seen: list[WSGIEnvironment] = []
    answers: list[_Closing] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(environ)
        try:
            raise ValueError("replaced by a better answer")
        except ValueError:
            start_response("500 Oops", [])
            start_response("201 Created", [("X-A", "1")], sys.exc_info())
        answers.append(_Closing([b"iterated"]))
        return answers[-1]

    port = serve_wsgi(app)
    response = httpx.get(
        f"http://127.0.0.1:{port}/a%20b/%C3%A9?q=1%202&r",
        headers=[("X-Twice", "one"), ("X-Twice", "two"), ("Content-Type", "text/plain")],
    )
    assert (response.status_code, response.headers["x-a"], response.text) == (201, "1", "iterated")
    assert answers[0].closed
    environ = seen[0]
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["PATH_INFO"] == "/a b/\xc3\xa9"  # UTF-8 bytes as Latin-1 characters
    assert environ["QUERY_STRING"] == "q=1%202&r"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["HTTP_X_TWICE"] == "one,two"
    assert environ["CONTENT_TYPE"] == "text/plain" and "HTTP_CONTENT_TYPE" not in environ
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("127.0.0.1", str(port))
    assert environ["wsgi.url_scheme"] == "http" and environ["wsgi.input"].read() == b""
    assert environ["SCRIPT_NAME"] == "" and environ["wsgi.version"] == (1, 0)


def test_the_write_callable_comes_before_the_iterable(serve_wsgi: ServeWsgi) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [])
        write(b"written, ")
        return [b"then iterated"]

    assert httpx.get(f"http://127.0.0.1:{serve_wsgi(app)}/").text == "written, then iterated"


def test_ipv6_hosts_are_served() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    store = StateStore()
    app = WebApp(store, build_registry(store), ready_intervals=3, version="9")
    try:
        server = HttpServer(app, "::1", 0)
    except OSError as error:
        pytest.skip(f"no IPv6 loopback: {error}")
    server.start()
    try:
        assert httpx.get(f"http://[::1]:{server.port}/healthz").status_code == 200
    finally:
        server.stop()


def test_starting_a_closed_server_raises() -> None:
    store = StateStore()
    app = WebApp(store, build_registry(store), ready_intervals=3, version="9")
    server = HttpServer(app, "127.0.0.1", 0)
    server.close()
    with pytest.raises(OSError):
        server.start()
    server.stop()  # nothing left to stop
