"""One HTTP/1.1 connection of the exporter's server: requests parsed by h11, answered by a WSGI
application (:mod:`.wsgi` builds its environ and collects its answer), on the server's event
loop (:class:`~.server.HttpServer` runs it).

h11 parses what clients send, the hostile direction. Answers are written here: the application's
whole answer is in memory, so one framing serves them all (``Content-Length`` of the body), and
h11's writing half cost a large share of a scrape (docs/performance.md).

What a scraper is promised: keep-alive; pipelined requests answered in order; every answer in one
write, headers and body together (with Nagle off, which asyncio does for TCP, two writes would
be two packets); HEAD answered with the headers of GET. What a misbehaving client gets: a
malformed request is answered 400 (431 for a head longer than :data:`MAX_HEAD_BYTES`, however
it arrives) and its connection closed, and so is one framed both by ``Content-Length`` and by
``Transfer-Encoding`` (RFC 9112 §6.3: what follows it could be read as a request); a request
carrying a body, which nothing here reads, is answered and its connection closed; a connection
that has not sent a complete request within :data:`KEEPALIVE_SECONDS` of connecting or of its
last answer, whether idle or sending a byte at a time, is closed.
None of that is logged above debug.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from wsgiref.types import WSGIApplication

import h11

from modelarts_exporter.http.wsgi import Answer, Environ, call, environ_of

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 60.0
"""How long a connection may take to send its next complete request (or to take an answer);
then it is closed."""
MAX_HEAD_BYTES = 64 * 1024
"""The longest request head (request line, headers and the blank line) answered; a longer one is
refused with 431 (wsgiref allowed as much for the line alone). h11 only refuses a head still
incomplete beyond this many buffered bytes, so a longer head read in one piece would pass it:
:func:`_next_request` never feeds it more than this before a request is complete."""
LINGER_SECONDS = 2.0
"""How long a connection closed while its client may still be sending reads what comes."""
_READ_BYTES = 64 * 1024

_NO_BODY = frozenset({204, 304})
"""Statuses whose answers never carry a body."""


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
    peer = writer.get_extra_info("peername")
    remote = str(peer[0]) if isinstance(peer, tuple) else ""
    deadline = _Deadline(writer, remote)
    parser, buffered = _parser(), 0
    try:
        while True:
            deadline.start()
            try:
                received = await _next_request(parser, reader, buffered)
            except h11.RemoteProtocolError as error:
                if deadline.passed:  # what h11 says of a connection cut short
                    return
                log.debug("http bad request client=%s error=%s", remote, error)
                await _send(writer, _refusal(error.error_status_hint), deadline)
                await _linger(reader, writer)
                return
            deadline.stop()
            if received is None:
                return
            request, complete = received
            answer = await site.answer(environ_of(site.environ, request, remote))
            # Without its body read, the connection cannot serve another request.
            keep_alive = complete and _keeps_alive(request)
            with_body = request.method != b"HEAD" and answer.status not in _NO_BODY
            await _send(writer, _encode(answer, with_body, keep_alive), deadline)
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
            if not keep_alive:
                return
            trailing = parser.trailing_data
            parser, buffered = _parser(trailing), len(trailing[0])
    finally:
        deadline.cancel()


class _Deadline:
    """Closes a connection that makes no progress for :data:`KEEPALIVE_SECONDS`: no complete
    request since the last answer, or an answer it does not take. One timer per connection,
    moved lazily: a timer per request (``asyncio.timeout``) cost a sixth of the throughput."""

    def __init__(self, writer: asyncio.StreamWriter, remote: str) -> None:
        self._loop = asyncio.get_running_loop()
        self._writer = writer
        self._remote = remote
        self._at = math.inf
        self._timer: asyncio.TimerHandle | None = None
        self.passed = False

    def start(self) -> None:
        self._at = self._loop.time() + KEEPALIVE_SECONDS
        if self._timer is None:
            self._timer = self._loop.call_at(self._at, self._check)

    def stop(self) -> None:
        self._at = math.inf

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _check(self) -> None:
        self._timer = None
        if self._at == math.inf:
            return
        if self._loop.time() < self._at:
            self._timer = self._loop.call_at(self._at, self._check)
            return
        self.passed = True
        log.debug("http no progress for %.0f s, closing client=%s", KEEPALIVE_SECONDS, self._remote)
        # The pending read sees the end of the stream, a pending drain a lost connection.
        self._writer.transport.abort()


def _parser(trailing: tuple[bytes, bool] = (b"", False)) -> h11.Connection:
    """h11, to parse one request, given what was read beyond the last one (pipelined requests,
    or the end of the stream). Only requests go through h11, so each gets a parser of its own:
    h11's next cycle would need its own account of the answer."""
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    data, closed = trailing
    if data:
        parser.receive_data(data)
    if closed:
        parser.receive_data(b"")
    return parser


async def _next_request(
    parser: h11.Connection, reader: asyncio.StreamReader, fed: int
) -> tuple[h11.Request, bool] | None:
    """The next request, and whether it came without a body; ``None`` when the connection ended
    between requests. Until a request's head is complete, everything fed to the parser is that
    head: ``fed`` counts it, from what the parser was given of it already."""
    while True:
        event = parser.next_event()
        if event is h11.NEED_DATA:
            room = MAX_HEAD_BYTES - fed
            if room <= 0:
                raise h11.RemoteProtocolError("request head too long", error_status_hint=431)
            data = await reader.read(min(room, _READ_BYTES))
            fed += len(data)
            parser.receive_data(data)
        elif isinstance(event, h11.Request):
            if _framed_twice(event):
                raise h11.RemoteProtocolError(
                    "both Content-Length and Transfer-Encoding", error_status_hint=400
                )
            return event, isinstance(parser.next_event(), h11.EndOfMessage)
        else:  # ConnectionClosed: before a request, the only other event h11 gives
            return None


def _framed_twice(request: h11.Request) -> bool:
    """h11 lets ``Transfer-Encoding`` win over ``Content-Length``; a proxy in front may read the
    other, and take the rest of the body for a request of its own (request smuggling). (h11
    refuses conflicting ``Content-Length`` values, and merges equal ones.)"""
    names = {name for name, _ in request.headers}
    return b"content-length" in names and b"transfer-encoding" in names


def _keeps_alive(request: h11.Request) -> bool:
    """HTTP/1.1 keeps the connection unless the client says ``Connection: close``. HTTP/1.0's
    keep-alive is not offered (h11 does not either)."""
    if request.http_version != b"1.1":
        return False
    return not any(
        name == b"connection" and b"close" in (token.strip() for token in value.lower().split(b","))
        for name, value in request.headers
    )


async def _send(writer: asyncio.StreamWriter, data: bytes, deadline: _Deadline) -> None:
    writer.write(data)
    # Waiting is needed only for a large answer or a client slow to read; or to hear from
    # drain() that the client is gone, rather than answer its pipelined requests into the void.
    transport = writer.transport
    if transport.get_write_buffer_size() or transport.is_closing():
        deadline.start()
        await writer.drain()
        deadline.stop()


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


def _encode(answer: Answer, with_body: bool, keep_alive: bool) -> bytes:
    """The answer as sent: its headers (checked by :func:`call`), the framing, ``Date`` (which an
    origin server with a clock must send), and the body in the same bytes."""
    lines = [f"HTTP/1.1 {answer.status} {answer.reason}"]
    dated = False
    for name, value in answer.headers:
        lowered = name.lower()
        if lowered == "content-length" and with_body:
            continue  # from the body itself, below: a wrong one would desync the connection
        dated = dated or lowered == "date"
        lines.append(f"{name}: {value}")
    if with_body:
        lines.append(f"Content-Length: {len(answer.body)}")
    if not dated:
        lines.append(f"Date: {_http_date(int(time.time()))}")
    if not keep_alive:
        lines.append("Connection: close")
    head = "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n"
    return head + answer.body if with_body else head


async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, text: str) -> None:
    """Answers a connection that cannot be served, without reading its request, with a 400
    saying why in ``text`` (one line), and ends it as a malformed request's; the caller closes
    it."""
    deadline = _Deadline(writer, "")
    deadline.start()
    try:
        await _send(writer, _refusal(400, text), deadline)
        await _linger(reader, writer)
    finally:
        deadline.cancel()


def _refusal(status: int, text: str = "") -> bytes:
    """A short answer to a request that cannot be served; the connection closes after it."""
    phrase = HTTPStatus(status).phrase
    body = f"{text or f'{status} {phrase}'}\n".encode()
    answer = Answer(status, phrase, [("Content-Type", "text/plain; charset=utf-8")], body)
    return _encode(answer, with_body=True, keep_alive=False)


@functools.lru_cache(maxsize=1)
def _http_date(second: int) -> str:
    return formatdate(second, usegmt=True)
