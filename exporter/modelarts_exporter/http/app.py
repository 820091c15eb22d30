"""The WSGI application: ``/metrics``, ``/healthz``, ``/readyz`` and a status page at ``/``.

Scrapes only read published states. The exposition is rendered at most once per state
generation and format (and compressed at most once), then served from that cache: ``N``
scrapers between two polls cost one render. What changes without a poll (the processes'
metrics) is read at most once a second and joins it. :class:`~.server.HttpServer` serves it, and
answers a scrape that has to render from a worker thread (:meth:`WebApp.may_block`): a render of
a large exposition takes seconds, and ``/healthz`` and ``/readyz`` are answered meanwhile.
"""

from __future__ import annotations

import gzip
import math
import threading
import time
import zlib
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from modelarts_exporter.expose.statuspage import render_status_page
from modelarts_exporter.snapshot.store import ReloadStatus, StateStore, TargetState

StartResponse = Callable[[str, list[tuple[str, str]]], object]
Environ = dict[str, Any]


LIVE_SECONDS = 1.0
"""The live part (the processes' metrics) is read again when it is this old: scrapers in step
cost one read of /proc a second at most."""
_EOF = b"# EOF\n"
"""How an OpenMetrics exposition ends; what is appended to one goes before it."""


class _Rendered:
    """One generation's exposition in one format, and what gzip made of it. The live part (the
    processes' metrics) joins it before its end: the gzip stream is kept open there, so joining
    compresses only the live part."""

    def __init__(self, plain: bytes) -> None:
        self._whole = plain
        self._head = plain.removesuffix(_EOF)
        self._gzip: bytes | None = None
        self._open: tuple[bytes, Any] | None = None
        """The gzip stream of the head so far, and the compressor to go on from."""
        self._last: dict[bool, tuple[bytes, bytes]] = {}
        """By compressed or not: the live part last joined, and the body it made."""

    @property
    def compressed(self) -> bool:
        """Whether a gzipped answer costs no more than compressing the live part."""
        return self._gzip is not None or self._open is not None

    def plain(self, live: bytes) -> bytes:
        if not live:
            return self._whole
        return self._joined(live, False)

    def gzipped(self, live: bytes) -> bytes:
        # Two threads may fill these at once: the same bytes, made once too many.
        if not live:
            if self._gzip is None:
                self._gzip = gzip.compress(self._whole, compresslevel=6)
            return self._gzip
        return self._joined(live, True)

    def _joined(self, live: bytes, compressed: bool) -> bytes:
        """With ``live``, kept while ``live`` is the very same part (read less than
        :data:`LIVE_SECONDS` ago): copying the compressor costs 40 µs."""
        last_live, body = self._last.get(compressed, (b"", b""))
        if last_live is live:
            return body
        end = self._whole[len(self._head) :]
        if not compressed:
            body = self._head + live + end
        else:
            if self._open is None:
                compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
                start = compressor.compress(self._head) + compressor.flush(zlib.Z_SYNC_FLUSH)
                self._open = (start, compressor)
            start, compressor = self._open
            going_on = compressor.copy()
            body = start + going_on.compress(live + end) + going_on.flush()
        self._last = {**self._last, compressed: (live, body)}
        return body


class _RenderCache:
    """Exposition renders by generation and content type. A scrape of what is cached takes no
    lock: with 32 scrapers, a lock held by a thread that lost the GIL kept all the others
    waiting. Rendering is serialized, so concurrent scrapes of a new generation wait for one
    render instead of each doing it. ``live`` is read again for scrapes :data:`LIVE_SECONDS`
    apart, whatever the generation."""

    def __init__(self, registry: CollectorRegistry, live: CollectorRegistry | None) -> None:
        self._registry = registry
        self._live = live
        self._lock = threading.Lock()
        self._current: tuple[Hashable, dict[str, _Rendered]] = (None, {})
        """The generation and its renders, replaced together by one assignment."""
        self.renders = 0
        """How many times the exposition was rendered (tests and benchmarks read it)."""
        self._live_parts: tuple[float, dict[str, bytes]] = (-math.inf, {})
        """When the live parts were read, and what they were by content type."""

    def has(self, generation: Hashable, accept: str, want_gzip: bool) -> bool:
        """Whether :meth:`get` would answer from the cache, without rendering or compressing."""
        _, content_type = choose_encoder(accept)
        current, renders = self._current
        rendered = renders.get(content_type)
        if current != generation or rendered is None:
            return False
        return not want_gzip or rendered.compressed

    def get(
        self, generation_now: Callable[[], Hashable], accept: str, want_gzip: bool
    ) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept)
        generation, renders = self._current
        rendered = renders.get(content_type)
        if rendered is None or generation != generation_now():
            with self._lock:
                # Read again under the lock: a scrape that read the generation before a poll
                # published and got here after one that read it afterwards would otherwise take
                # the cache back to the old generation, and the next scrape forward again, a
                # render each.
                generation = generation_now()
                if generation != self._current[0]:
                    self._current = (generation, {})
                renders = self._current[1]
                rendered = renders.get(content_type)
                if rendered is None:
                    rendered = renders[content_type] = _Rendered(encoder(self._registry))
                    self.renders += 1
        live = b"" if self._live is None else self._live_part(encoder, content_type)
        body = rendered.gzipped(live) if want_gzip else rendered.plain(live)
        return body, content_type

    def _live_part(self, encoder: Callable[[CollectorRegistry], bytes], content_type: str) -> bytes:
        # Reading /proc for two processes took 0.2 ms, twice what a cached scrape costs.
        assert self._live is not None
        now = time.monotonic()
        read_at, parts = self._live_parts
        if now - read_at >= LIVE_SECONDS:
            read_at, parts = now, {}
            self._live_parts = (read_at, parts)
        part = parts.get(content_type)
        if part is None:
            part = parts[content_type] = encoder(self._live).removesuffix(_EOF)
        return part


class WebApp:
    """The WSGI application; ``web_config`` is the state of the web configuration that the
    registry exports, if any (the exposition is cached until it or the states change); ``live``
    what changes without them (the processes' metrics): read at most :data:`LIVE_SECONDS` before
    a scrape, it joins the exposition. ``idle_shard`` names this replica's shard when it got no
    target at start-up, which makes it ready while it has none."""

    def __init__(
        self,
        store: StateStore,
        registry: CollectorRegistry,
        *,
        ready_intervals: float,
        version: str,
        clock: Callable[[], float] = time.time,
        web_config: Callable[[], ReloadStatus | None] = lambda: None,
        live: CollectorRegistry | None = None,
        idle_shard: str | None = None,
    ) -> None:
        self._store = store
        self._idle_shard = idle_shard
        self._web_config = web_config
        self._cache = _RenderCache(registry, live)
        self._ready_intervals = ready_intervals
        self._version = version
        self._clock = clock

    @property
    def renders(self) -> int:
        return self._cache.renders

    def _generation(self) -> Hashable:
        """What the exposition depends on: the states and the web configuration's status."""
        return self._store.current()[0], self._web_config()

    def may_block(self, environ: Environ) -> bool:
        """Whether answering may take long: a scrape that the cache cannot answer, which renders
        (and maybe compresses) the exposition. The server answers those from worker threads, so
        that ``/healthz``, ``/readyz`` and cached scrapes on other connections never wait for a
        render. (A poll publishing between this and the answer can still make one scrape render
        on the event loop: once per publish at most, and only when scrapes race with it.)"""
        if environ.get("PATH_INFO") != "/metrics":
            return False
        want_gzip = accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
        return not self._cache.has(self._generation(), environ.get("HTTP_ACCEPT", ""), want_gzip)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        body = self._route(environ, start_response)
        # HEAD: the same headers (Content-Length included), no body.
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else body

    def _route(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _reply(
                start_response,
                "405 Method Not Allowed",
                b"method not allowed\n",
                extra=[("Allow", "GET, HEAD")],
            )
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
        want_gzip = accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
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
        if not states and self._idle_shard is not None:
            # Sharded with more replicas than targets: this one has nothing to wait for, and a
            # replica that is never ready blocks a rollout for good.
            text = f"ready: no targets for {self._idle_shard}\n"
            return _reply(start_response, "200 OK", text.encode())
        if not states:
            return _reply(start_response, "503 Service Unavailable", b"no targets\n")
        if stale:
            text = "no recent successful poll: " + ", ".join(stale) + "\n"
            return _reply(start_response, "503 Service Unavailable", text.encode())
        return _reply(start_response, "200 OK", b"ready\n")


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (RFC 9110 §12.5.3): names are case-insensitive,
    ``q=0`` refuses, and ``*`` stands for any coding not named."""
    allowed: dict[str, bool] = {}
    for item in accept_encoding.split(","):
        name, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name:
            allowed[name.lower()] = quality > 0
    if "gzip" in allowed:
        return allowed["gzip"]
    return allowed.get("*", False)


def _fresh(state: TargetState, now: float, intervals: float) -> bool:
    # A poll slower than its interval is let finish, so successes come a poll's length apart:
    # measured in polls, not intervals, a slow target is not unready for being slow.
    period = max(state.interval_seconds, state.last_poll_seconds or 0.0)
    return state.last_success is not None and now - state.last_success <= intervals * period


def _reply(
    start_response: StartResponse,
    status: str,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    start_response(
        status,
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *(extra or []),
        ],
    )
    return [body]
