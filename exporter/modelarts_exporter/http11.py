"""One HTTP/1.1 connection of the exporter's server: requests parsed by h11, answered by a WSGI
application, on the server's event loop (:class:`~modelarts_exporter.server.HttpServer` runs it).

What a scraper is promised: keep-alive; pipelined requests answered in order; every answer in one
write, headers and body together (with Nagle off, which asyncio does for TCP, two writes would
be two packets); HEAD answered with the headers of GET. What a misbehaving client gets: a
malformed request is answered 400 (431 for a head still incomplete at :data:`MAX_HEAD_BYTES`)
and its connection closed; a request carrying a body, which nothing here reads, is answered and its
connection closed; a connection that has not sent a complete request within
:data:`KEEPALIVE_SECONDS` of connecting or of its last answer, whether idle or sending a byte at a
time, is closed. None of that is logged above debug.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import logging
import sys
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from wsgiref.types import WSGIApplication

import h11

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 60.0
"""How long a connection may take to send its next complete request; then it is closed."""
MAX_HEAD_BYTES = 64 * 1024
"""A request line with its headers still incomplete at this length is refused (wsgiref allowed
as much for the line alone)."""
LINGER_SECONDS = 2.0
"""How long a connection closed while its client may still be sending reads what comes."""
_READ_BYTES = 64 * 1024

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, Any] | tuple[None, None, None]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Site:
    """What every connection of one server shares."""

    app: WSGIApplication
    environ: Environ
    """The part of the WSGI environ that is the same for every request."""
    may_block: Callable[[Environ], bool] | None
    """Which requests the application may take long to answer (a password check), if it says."""
    executor: Executor
    """Where those are answered, off the event loop."""

    async def answer(self, environ: Environ) -> Answer:
        if self.may_block is not None and self.may_block(environ):
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, call, self.app, environ)
        return call(self.app, environ)


async def serve(site: Site, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers the requests on one connection until either side ends it; the caller closes it.
    Raises :class:`OSError` when the connection fails (a reset, a client that stops reading)."""
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    peer = writer.get_extra_info("peername")
    remote = str(peer[0]) if isinstance(peer, tuple) else ""
    while True:
        try:
            received = await _next_request(connection, reader)
        except h11.RemoteProtocolError as error:
            log.debug("http bad request client=%s error=%s", remote, error)
            await _send(writer, _refusal(connection, error.error_status_hint))
            await _linger(reader, writer)
            return
        except TimeoutError:
            log.debug("http no request within %.0f s, closing client=%s", KEEPALIVE_SECONDS, remote)
            return
        if received is None:
            return
        request, complete = received
        answer = await site.answer(_environ(site.environ, request, remote))
        headers = answer.headers
        if not complete:  # the unread body would be taken for the next request
            headers = [*headers, ("Connection", "close")]
        try:
            data = _encode(connection, request, answer, headers)
        except h11.LocalProtocolError:
            log.exception("http the application's answer is not valid HTTP")
            return
        await _send(writer, data)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                'http "%s %s HTTP/%s" %d %d client=%s',
                request.method.decode(),
                request.target.decode(),
                request.http_version.decode(),
                answer.status,
                len(answer.body),
                remote,
            )
        if not complete:
            await _linger(reader, writer)
            return
        if connection.our_state is not h11.DONE:  # HTTP/1.0, or the client asked to close
            return
        connection.start_next_cycle()


async def _next_request(
    connection: h11.Connection, reader: asyncio.StreamReader
) -> tuple[h11.Request, bool] | None:
    """The next request, and whether it came without a body; ``None`` when the client closed
    the connection between requests."""
    async with asyncio.timeout(KEEPALIVE_SECONDS):
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await reader.read(_READ_BYTES))
            elif isinstance(event, h11.Request):
                return event, isinstance(connection.next_event(), h11.EndOfMessage)
            else:  # ConnectionClosed: between two requests, the only other event h11 gives
                return None


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    if not data:
        return
    writer.write(data)
    # A client that stops reading an answer larger than the buffers holds it up to this long.
    async with asyncio.timeout(KEEPALIVE_SECONDS):
        await writer.drain()


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Before closing a connection whose client may still be sending: a socket closed with
    bytes unread is reset by the kernel, and a reset can make the client drop the answer it was
    just sent. So say that nothing more comes, and read and drop what arrives for a while."""
    if writer.can_write_eof():
        writer.write_eof()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(LINGER_SECONDS):
            while await reader.read(_READ_BYTES):
                pass


def _encode(
    connection: h11.Connection,
    request: h11.Request,
    answer: Answer,
    headers: list[tuple[str, str]],
) -> bytes:
    head = connection.send(
        h11.Response(status_code=answer.status, reason=answer.reason, headers=_dated(headers))
    )
    parts = [head or b""]
    if request.method != b"HEAD" and answer.body:
        # The body as it is, not copied by h11: the join below is its one copy.
        parts += connection.send_with_data_passthrough(h11.Data(data=answer.body)) or []
    parts.append(connection.send(h11.EndOfMessage()) or b"")
    return b"".join(parts)


def _refusal(connection: h11.Connection, status: int) -> bytes:
    """A short answer to a request that cannot be served; empty when one cannot be sent."""
    if connection.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return b""
    phrase = HTTPStatus(status).phrase
    body = f"{status} {phrase}\n".encode()
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
    ]
    response = h11.Response(status_code=status, reason=phrase, headers=_dated(headers))
    return b"".join(
        connection.send(event) or b""
        for event in (response, h11.Data(data=body), h11.EndOfMessage())
    )


def _dated(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` and the Date header, which an origin server with a clock must send."""
    return [*headers, ("Date", _http_date(int(time.time())))]


@functools.lru_cache(maxsize=1)
def _http_date(second: int) -> str:
    return formatdate(second, usegmt=True)


def base_environ(host: str, port: int, https: bool) -> Environ:
    return {
        "SERVER_NAME": host,
        "SERVER_PORT": str(port),
        "SCRIPT_NAME": "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https" if https else "http",
        "wsgi.errors": sys.stderr,
        # The application is called on the event loop's thread and from worker threads.
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def _environ(base: Environ, request: h11.Request, remote: str) -> Environ:
    path, _, query = request.target.partition(b"?")
    environ = {
        **base,
        "REQUEST_METHOD": request.method.decode("ascii"),
        # As wsgiref: percent-decoded, then bytes as Latin-1 characters (PEP 3333).
        "PATH_INFO": urllib.parse.unquote(path.decode("ascii"), "latin-1"),
        "QUERY_STRING": query.decode("ascii"),
        "SERVER_PROTOCOL": "HTTP/" + request.http_version.decode("ascii"),
        "REMOTE_ADDR": remote,
        "wsgi.input": io.BytesIO(),
    }
    for name, value in request.headers:  # names come lower-cased
        if b"_" in name:
            # X_Forwarded and X-Forwarded would be one HTTP_X_FORWARDED: such a header could
            # pose as another one (as gunicorn and nginx, drop it).
            continue
        key = name.decode("ascii").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        text = value.decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    return environ


def call(app: WSGIApplication, environ: Environ) -> Answer:
    """The application's whole answer. One that fails (a bug) is logged once and becomes a 500,
    so the server goes on serving."""
    started: list[tuple[str, list[tuple[str, str]]]] = []
    body: list[bytes] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None, /
    ) -> Callable[[bytes], object]:
        # Nothing is sent before the application returns, so with exc_info it may always
        # replace the headers it gave (PEP 3333 re-raises only once they are sent).
        if started and exc_info is None:
            raise RuntimeError("start_response called a second time without exc_info")
        started[:] = [(status, headers)]
        return body.append

    try:
        result = app(environ, start_response)
        try:
            body.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not started:
            raise RuntimeError("the application returned without calling start_response")
        (status, headers), *_ = started
        code, _, reason = status.partition(" ")
        return Answer(int(code), reason, headers, b"".join(body))
    except Exception:
        log.exception(
            "http the application failed method=%s path=%s",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
        )
    text = b"internal server error\n"
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(text))),
    ]
    return Answer(500, "Internal Server Error", headers, text)
