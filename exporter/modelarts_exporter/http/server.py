"""The HTTP side: ``/metrics``, ``/healthz``, ``/readyz`` and a status page at ``/``.

The application is WSGI; :class:`HttpServer` serves it from an event loop of its own, in its own
thread (never the poller's), a coroutine per connection (:mod:`.http11`), so a slow or stalled
client holds up no other. Scrapes only read published states. The exposition is rendered at most
once per state generation and format (and compressed at most once), then served from that cache:
``N`` scrapers between two polls cost one render.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable
from wsgiref.types import WSGIApplication

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from modelarts_exporter.expose.statuspage import render_status_page
from modelarts_exporter.http import http11
from modelarts_exporter.http.reload import ReloadStatus
from modelarts_exporter.http.webconfig import HANDSHAKE_TIMEOUT_SECONDS
from modelarts_exporter.snapshot.store import StateStore, TargetState

log = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], object]
Environ = dict[str, Any]


class _RenderCache:
    """Exposition bytes by (generation, content type, gzip). A scrape of what is cached takes no
    lock: with 32 scrapers, a lock held by a thread that lost the GIL kept all the others
    waiting. Rendering is serialized, so concurrent scrapes of a new generation wait for one
    render instead of each doing it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._current: tuple[Hashable, dict[tuple[str, bool], bytes]] = (None, {})
        """The generation and its entries, replaced together by one assignment."""
        self.renders = 0
        """How many times the exposition was rendered (tests and benchmarks read it)."""

    def get(
        self, generation_now: Callable[[], Hashable], accept: str, want_gzip: bool
    ) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept)
        generation, entries = self._current
        body = entries.get((content_type, want_gzip))
        if body is not None and generation == generation_now():
            return body, content_type
        with self._lock:
            # Read again under the lock: a scrape that read the generation before a poll
            # published and got here after one that read it afterwards would otherwise take the
            # cache back to the old generation, and the next scrape forward again, a render each.
            generation = generation_now()
            if generation != self._current[0]:
                self._current = (generation, {})
            entries = self._current[1]
            body = entries.get((content_type, want_gzip))
            if body is None:
                plain = entries.get((content_type, False))
                if plain is None:
                    plain = encoder(self._registry)
                    self.renders += 1
                    entries[(content_type, False)] = plain
                body = gzip.compress(plain, compresslevel=6) if want_gzip else plain
                entries[(content_type, want_gzip)] = body
        return body, content_type


class ExporterApp:
    """The WSGI application; ``web_config`` is the state of the web configuration that the
    registry exports, if any (the exposition is cached until it or the states change)."""

    def __init__(
        self,
        store: StateStore,
        registry: CollectorRegistry,
        *,
        ready_intervals: float,
        version: str,
        clock: Callable[[], float] = time.time,
        web_config: Callable[[], ReloadStatus | None] = lambda: None,
    ) -> None:
        self._store = store
        self._web_config = web_config
        self._cache = _RenderCache(registry)
        self._ready_intervals = ready_intervals
        self._version = version
        self._clock = clock

    @property
    def renders(self) -> int:
        return self._cache.renders

    def _generation(self) -> Hashable:
        """What the exposition depends on: the states and the web configuration's status."""
        return self._store.current()[0], self._web_config()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        body = self._route(environ, start_response)
        # HEAD: the same headers (Content-Length included), no body.
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else body

    def _route(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _reply(start_response, "405 Method Not Allowed", b"method not allowed\n")
        if path == "/metrics":
            return self._metrics(environ, start_response)
        if path == "/healthz":
            return _reply(start_response, "200 OK", b"ok\n")
        if path == "/readyz":
            return self._ready(start_response)
        if path == "/":
            _, states = self._store.current()
            page = render_status_page(states, now=self._clock(), version=self._version)
            return _reply(start_response, "200 OK", page.encode(), "text/html; charset=utf-8")
        return _reply(start_response, "404 Not Found", b"not found\n")

    def _metrics(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        want_gzip = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
        body, content_type = self._cache.get(
            self._generation, environ.get("HTTP_ACCEPT", ""), want_gzip
        )
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if want_gzip:
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Vary", "Accept, Accept-Encoding"))
        start_response("200 OK", headers)
        return [body]

    def unready_targets(self) -> list[str]:
        """Targets without a success in the last ``ready_intervals`` intervals."""
        _, states = self._store.current()
        now = self._clock()
        return [state.target for state in states if not _fresh(state, now, self._ready_intervals)]

    def _ready(self, start_response: StartResponse) -> Iterable[bytes]:
        _, states = self._store.current()
        stale = self.unready_targets()
        if not states:
            return _reply(start_response, "503 Service Unavailable", b"no targets\n")
        if stale:
            text = "no recent successful poll: " + ", ".join(stale) + "\n"
            return _reply(start_response, "503 Service Unavailable", text.encode())
        return _reply(start_response, "200 OK", b"ready\n")


def _fresh(state: TargetState, now: float, intervals: float) -> bool:
    return (
        state.last_success is not None
        and now - state.last_success <= intervals * state.interval_seconds
    )


def _reply(
    start_response: StartResponse,
    status: str,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
) -> list[bytes]:
    start_response(
        status,
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]


LISTEN_BACKLOG = 128
"""A backlog of 5 (socketserver's) dropped connections of concurrent scrapers, which then waited
for a SYN retransmit (a second): p99 of 0.45 s instead of milliseconds at 32 clients."""
STOP_SECONDS = 5.0
OFFLOAD_THREADS = 2
"""Threads answering the requests an application says may block: password checks, which bcrypt
runs one at a time anyway."""


@runtime_checkable
class MayBlock(Protocol):
    """A WSGI application that tells which requests it may take long to answer (see
    :class:`~modelarts_exporter.http.webconfig.Protected`): those are answered from worker threads,
    every other one on the event loop, without handing it over between threads."""

    def may_block(self, environ: Environ) -> bool: ...


class HttpServer:
    """Serves an :class:`ExporterApp` (or it behind :func:`~.webconfig.protect`)
    from an event loop in a background thread, between :meth:`start` and :meth:`stop`; HTTPS when
    given a ``tls`` context, or a callable giving the context for each new connection (see
    :mod:`~modelarts_exporter.http.reload`). One thread for all connections: 32 threads, one per
    kept-alive scraper, spent their time taking the GIL from each other (docs/performance.md).

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
            http11.base_environ(self._host, self._port, https=self._tls is not None),
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
                # Nothing may be awaited before this. The loop reads a new connection only
                # after this task's first step; a ClientHello read into the plain stream would
                # never reach TLS.
                await writer.start_tls(self._tls(), ssl_handshake_timeout=HANDSHAKE_TIMEOUT_SECONDS)
            await http11.serve(site, reader, writer)
        except OSError as error:  # resets, time-outs, failed handshakes (ssl.SSLError)
            log.debug("http connection ended client=%s error=%r", peer, error)
        except Exception:
            # A bug: this connection ends, the server goes on serving the others.
            log.exception("http connection failed client=%s", peer)
        finally:
            writer.close()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As socketserver did: a restarted exporter rebinds while old connections linger in
        # TIME_WAIT. (Not socket.create_server: it would make "::" refuse IPv4 clients.)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def _fixed(context: ssl.SSLContext) -> Callable[[], ssl.SSLContext]:
    return lambda: context
