"""The HTTP side: ``/metrics``, ``/healthz``, ``/readyz`` and a status page at ``/``.

A threaded WSGI server, as prometheus-client's own, so a slow scraper never holds up another and
nothing here shares the poller's event loop. Scrapes only read published states. The exposition
is rendered at most once per state generation and format (and compressed at most once), then
served from that cache: ``N`` scrapers between two polls cost one render.
"""

from __future__ import annotations

import gzip
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from socketserver import ThreadingMixIn
from typing import IO, Any, cast
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import WSGIApplication

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from modelarts_exporter.state import StateStore, TargetState
from modelarts_exporter.statuspage import render_status_page
from modelarts_exporter.webconfig import handshake
from modelarts_exporter.webreload import ReloadStatus

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 60.0
StartResponse = Callable[[str, list[tuple[str, str]]], object]
Environ = dict[str, Any]


class _RenderCache:
    """Exposition bytes by (generation, content type, gzip). A scrape of what is cached takes no
    lock: with 32 scrapers, a lock held by a thread that lost the GIL kept all the others
    waiting. Rendering is serialized, so concurrent scrapes of a new generation wait for one
    render instead of each doing it; and while :meth:`refresh` renders a new generation ahead
    of the scrapes, they get the last one rendered instead of waiting (it is at most one render
    old, about 20 ms at 2,000 series)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._current: tuple[Hashable, dict[tuple[str, bool], bytes]] = (None, {})
        """The generation and its entries, replaced together by one assignment."""
        self._encoders: dict[str, Callable[[CollectorRegistry], bytes]] = {}
        """Each content type's encoder, as chosen for the scrape that first asked for it."""
        self.renders = 0
        """How many times the exposition was rendered (tests and benchmarks read it)."""

    def get(
        self, generation_now: Callable[[], Hashable], accept: str, want_gzip: bool
    ) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept)
        generation, entries = self._current
        body = entries.get((content_type, want_gzip))
        if body is not None and (generation == generation_now() or self._lock.locked()):
            return body, content_type
        with self._lock:
            # The generation is read under the lock: a scrape that read it before a poll
            # published and got here after one that read it afterwards would otherwise take
            # the cache back to the old generation, and the next scrape forward again.
            generation = generation_now()
            current, entries = self._current
            if generation != current:
                entries = {}
            body = self._fill(entries, encoder, content_type, want_gzip)
            self._current = (generation, entries)
        return body, content_type

    def refresh(self, change: Callable[[], None], generation_now: Callable[[], Hashable]) -> None:
        """Make ``change`` and render its exposition in every format scraped before; the
        entries of the last generation stay in place until all of them are rendered."""
        with self._lock:
            change()
            entries: dict[tuple[str, bool], bytes] = {}
            for content_type, want_gzip in self._current[1]:
                self._fill(entries, self._encoders[content_type], content_type, want_gzip)
            self._current = (generation_now(), entries)

    def _fill(
        self,
        entries: dict[tuple[str, bool], bytes],
        encoder: Callable[[CollectorRegistry], bytes],
        content_type: str,
        want_gzip: bool,
    ) -> bytes:
        """The entry for a format, rendered (or compressed) into ``entries`` unless there
        already; call with the lock held."""
        body = entries.get((content_type, want_gzip))
        if body is None:
            plain = entries.get((content_type, False))
            if plain is None:
                self._encoders[content_type] = encoder
                plain = encoder(self._registry)
                self.renders += 1
                entries[(content_type, False)] = plain
            body = gzip.compress(plain, compresslevel=6) if want_gzip else plain
            entries[(content_type, want_gzip)] = body
        return body


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

    def refresh(self, change: Callable[[], None]) -> None:
        """Make ``change`` to the states and render the exposition ahead of the scrapes, in
        each format scraped before; scrapes meanwhile get the previous exposition instead of
        waiting for the render (the server's process applies what the poller publishes so)."""
        self._cache.refresh(change, self._generation)

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


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops connections of concurrent scrapers, which then
    # wait for a SYN retransmit (a second): p99 of 0.45 s instead of milliseconds at 32 clients.
    request_queue_size = 128
    tls: Callable[[], ssl.SSLContext] | None = None
    """Asked for each new connection, so that a renewed certificate is used from the next one."""

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        secured = handshake(self.tls(), request)  # in this connection's own thread
        if secured is not None:
            with secured:
                super().finish_request(secured, client_address)


def _fixed(context: ssl.SSLContext) -> Callable[[], ssl.SSLContext]:
    return lambda: context


class _ThreadingServerV6(_ThreadingServer):
    address_family = socket.AF_INET6


class _Http11Handler(ServerHandler):
    http_version = "1.1"


class _QuietHandler(WSGIRequestHandler):
    """HTTP/1.1 with keep-alive (wsgiref's own handler answers one request per connection, so a
    scraper would pay a TCP handshake and a new thread for every scrape); access lines go to the
    debug log instead of stderr."""

    protocol_version = "HTTP/1.1"
    # An answer larger than the write buffer still leaves in two writes (headers, then body); with
    # Nagle on, a kept-alive connection waits for the client's delayed ACK (~40 ms) in between.
    disable_nagle_algorithm = True
    # wsgiref writes the status line, Date, Server, the other headers and the body one by one:
    # unbuffered (socketserver's default) that is five sends, five packets with Nagle off. It
    # flushes after the body, so buffered they leave together.
    wbufsize = 64 * 1024
    timeout = KEEPALIVE_SECONDS
    """An idle connection is closed after this long, freeing its thread."""

    def handle(self) -> None:
        self.close_connection = False
        try:
            while not self.close_connection:
                self._handle_one()
                self.wfile.flush()  # what wsgiref did not flush itself (send_error's answers)
        except (TimeoutError, ConnectionError):
            self.close_connection = True

    def _handle_one(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            self.close_connection = True
            return
        if not self.parse_request():
            return
        if self.command not in ("GET", "HEAD"):
            self.close_connection = True  # we never read request bodies: do not reuse the stream
        handler = _Http11Handler(
            self.rfile,
            cast(IO[bytes], self.wfile),
            self.get_stderr(),
            self.get_environ(),
            multithread=True,
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.run(self.server.get_app())  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", format % args)


class HttpServer:
    """Serves an :class:`ExporterApp` (or it behind :func:`~modelarts_exporter.webconfig.protect`)
    from a background thread until :meth:`stop`; HTTPS when given a ``tls`` context, or a callable
    giving the context for each new connection (see :mod:`~modelarts_exporter.webreload`)."""

    def __init__(
        self,
        app: WSGIApplication,
        host: str,
        port: int,
        tls: ssl.SSLContext | Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        server_class = _ThreadingServerV6 if ":" in host else _ThreadingServer
        self._server = make_server(
            host, port, app, server_class=server_class, handler_class=_QuietHandler
        )
        self._server.tls = _fixed(tls) if isinstance(tls, ssl.SSLContext) else tls
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="http-server", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def close(self) -> None:
        """Close the listening socket of a server that was never started (a parent process
        that handed it to a forked child, :mod:`~modelarts_exporter.serving`)."""
        self._server.server_close()
