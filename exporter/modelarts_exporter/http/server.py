"""The HTTP server: an event loop of its own, in its own thread (never the poller's), a
coroutine per connection (:mod:`.http11`), so a slow or stalled client holds up no other; HTTPS
with a TLS context taken afresh for each new connection, so renewed certificates apply at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable
from wsgiref.types import WSGIApplication

from modelarts_exporter.http import http11, wsgi

log = logging.getLogger(__name__)

Environ = dict[str, Any]

HANDSHAKE_TIMEOUT_SECONDS = 10.0
"""A TLS client that has not finished its handshake by then is dropped."""
LISTEN_BACKLOG = 128
"""A backlog of 5 (socketserver's) dropped connections of concurrent scrapers, which then waited
for a SYN retransmit, a second (docs/performance.md)."""
STOP_SECONDS = 5.0
OFFLOAD_THREADS = 2
"""Threads answering the requests an application says may block: password checks, which bcrypt
runs one at a time anyway."""


@runtime_checkable
class MayBlock(Protocol):
    """A WSGI application that tells which requests it may take long to answer (see
    :class:`~.guard.Protected`): those are answered from worker threads,
    every other one on the event loop, without handing it over between threads."""

    def may_block(self, environ: Environ) -> bool: ...


class HttpServer:
    """Serves a :class:`~.app.WebApp` (or it behind :func:`~.guard.protect`)
    from an event loop in a background thread, between :meth:`start` and :meth:`stop`; HTTPS when
    given a ``tls`` context, or a callable giving the context for each new connection (see
    :mod:`~modelarts_exporter.http.reload`). One thread for all connections: a thread per
    kept-alive scraper spent its time taking the GIL from the others (docs/performance.md).

    Constructing it binds the socket (an address in use is an error here) but starts nothing, so
    that a process can construct it, fork, and :meth:`start` it in the child and :meth:`close` it
    in the parent."""

    def __init__(
        self,
        app: WSGIApplication,
        host: str,
        port: int,
        tls: ssl.SSLContext | Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        self._app = app
        self._host = host
        self._tls = _fixed(tls) if isinstance(tls, ssl.SSLContext) else tls
        self._socket = _listen(host, port)
        self._port = int(self._socket.getsockname()[1])
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> None:
        """Returns once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("the HTTP server was started already")
        accepting: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(accepting,), name="http-server", daemon=True
        )
        self._thread.start()
        accepting.result()

    def stop(self) -> None:
        """Stops accepting, closes every connection and waits (a few seconds at most) for the
        thread to end; of a server never started, closes the socket."""
        if self._thread is None:
            self.close()
            return
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=STOP_SECONDS)

    def close(self) -> None:
        """Closes the listening socket of a server that was not started (in the process that
        handed it over to a child)."""
        if self._thread is not None:
            raise RuntimeError("close() is for a server that was not started; stop() this one")
        self._socket.close()

    def _run(self, accepting: Future[None]) -> None:
        try:
            asyncio.run(self._serve(accepting))
        finally:
            if not accepting.done():
                accepting.set_exception(RuntimeError("the HTTP server ended before accepting"))

    async def _serve(self, accepting: Future[None]) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        executor = ThreadPoolExecutor(OFFLOAD_THREADS, thread_name_prefix="http-offload")
        site = http11.Site(
            self._app,
            wsgi.base_environ(self._host, self._port, https=self._tls is not None),
            self._app.may_block if isinstance(self._app, MayBlock) else None,
            executor,
        )
        connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            connections[task] = writer
            try:
                await self._connection(site, reader, writer)
            except asyncio.CancelledError:
                # By stop(), and the end of this task. Python 3.11's streams log a cancelled
                # connection task as an error ("Exception in callback"): end it normally.
                pass
            finally:
                del connections[task]

        try:
            server = await asyncio.start_server(
                connected, sock=self._socket, backlog=LISTEN_BACKLOG
            )
        except OSError as error:  # a closed socket: start() raises it
            accepting.set_exception(error)
            return
        accepting.set_result(None)
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task, writer in list(connections.items()):
                writer.transport.abort()  # not TLS's goodbye: its socket is closed right away
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)
            executor.shutdown(cancel_futures=True)

    async def _connection(
        self, site: http11.Site, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        try:
            if self._tls is not None:
                # Nothing may be awaited before the transport stops reading. The loop reads a
                # new connection only after this task's first step; a ClientHello read into
                # the plain stream would never reach TLS.
                transport = writer.transport
                assert isinstance(transport, asyncio.Transport)  # a socket's: it reads too
                transport.pause_reading()
                first = await _first_byte(writer)
                if first != _TLS_HANDSHAKE:
                    if first:
                        log.debug("http plain request to the HTTPS port client=%s", peer)
                        transport.resume_reading()
                        await http11.refuse(reader, writer, _PLAIN_TO_HTTPS)
                    return
                await writer.start_tls(self._tls(), ssl_handshake_timeout=HANDSHAKE_TIMEOUT_SECONDS)
            await http11.serve(site, reader, writer)
        except OSError as error:  # resets, time-outs, failed handshakes (ssl.SSLError)
            log.debug("http connection ended client=%s error=%r", peer, error)
        except Exception:
            # A bug: this connection ends, the server goes on serving the others.
            log.exception("http connection failed client=%s", peer)
        finally:
            writer.close()


_TLS_HANDSHAKE = b"\x16"
"""The first byte of a TLS record carrying a handshake message: every ClientHello."""
_PLAIN_TO_HTTPS = "Client sent an HTTP request to an HTTPS server."
"""Go's servers' words for it, which their users know."""


async def _first_byte(writer: asyncio.StreamWriter) -> bytes:
    """The first byte the client sent, left unread for TLS to read (``b""`` when the client
    closed first), from a connection whose transport does not read; waits at most
    :data:`HANDSHAKE_TIMEOUT_SECONDS`. The transport owns its descriptor (the loop watches
    none twice), so a duplicate of it is watched and peeked at."""
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()
    fd = os.dup(writer.get_extra_info("socket").fileno())
    peek = socket.socket(fileno=fd)

    def ready() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(fd, ready)
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT_SECONDS):
            await readable
        return peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except TimeoutError:
        raise OSError("no TLS handshake began") from None
    finally:
        loop.remove_reader(fd)
        peek.close()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they
    # are TCP, and accepted sockets inherit it. With Nagle on, an answer written after a
    # pipelined one waits for a delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # As socketserver did: a restarted exporter rebinds while old connections linger in
        # TIME_WAIT. (Not socket.create_server: it would make "::" refuse IPv4 clients.)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as error:
        sock.close()
        raise ListenError.of(host, port, error) from None
    return sock


class ListenError(OSError):
    """A listening socket that could not be made: one line naming the address and the cause
    (the OS's own text names neither the address nor, for a name, the host)."""

    def __init__(self, errno: int | None, message: str) -> None:
        super().__init__(errno, message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    @classmethod
    def of(cls, host: str, port: int, error: OSError) -> ListenError:
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        cause = error.strerror or str(error)
        if isinstance(error, socket.gaierror):
            cause = f"the host {host!r} does not resolve ({cause})"
        else:
            cause = cause[:1].lower() + cause[1:]
        return cls(error.errno, f"cannot listen on {address}: {cause}")


def _fixed(context: ssl.SSLContext) -> Callable[[], ssl.SSLContext]:
    return lambda: context
