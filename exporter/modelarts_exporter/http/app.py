"""The WSGI application: ``/metrics``, ``/healthz``, ``/readyz`` and a status page at ``/``.

Scrapes only read published states. The exposition is rendered at most once per state
generation and format (and compressed at most once), then served from that cache: ``N``
scrapers between two polls cost one render. :class:`~.server.HttpServer` serves it, and answers
a scrape that has to render from a worker thread (:meth:`WebApp.may_block`): a render of a large
exposition takes seconds, and ``/healthz`` and ``/readyz`` are answered meanwhile.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from modelarts_exporter.expose.statuspage import render_status_page
from modelarts_exporter.snapshot.store import ReloadStatus, StateStore, TargetState

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

    def has(self, generation: Hashable, accept: str, want_gzip: bool) -> bool:
        """Whether :meth:`get` would answer from the cache, without rendering or compressing."""
        _, content_type = choose_encoder(accept)
        current, entries = self._current
        return current == generation and (content_type, want_gzip) in entries

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


class WebApp:
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
