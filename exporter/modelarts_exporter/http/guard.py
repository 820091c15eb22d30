"""The WSGI middleware in front of the application: the password check and the configured
security headers, applied with the web configuration in use for each request (so a reload takes
effect on the next one). ``/healthz`` and ``/readyz`` stay open for Kubernetes probes;
``/readyz`` without a password says only whether the exporter is ready.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from modelarts_exporter.http.basicauth import BasicAuth
from modelarts_exporter.http.webconfig import OPEN_PATHS, WebConfig

_UNCHECKED_PATHS = OPEN_PATHS - {"/readyz"}
"""Where a password is never looked at: ``/readyz`` checks one it is given, to say more."""

StartResponse = Callable[..., object]
Wsgi = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class Guard:
    """What a request is checked against: a configuration and the password check built for it."""

    config: WebConfig
    auth: BasicAuth | None

    @classmethod
    def of(cls, config: WebConfig, previous: Guard | None = None) -> Guard:
        """The guard of ``config``; it keeps ``previous``'s password check (and so its verified
        passwords) only when the users and their hashes are exactly the same, so that a removed
        user or a changed hash stops working as soon as the new configuration is in use."""
        if not config.users:
            return cls(config, None)
        if previous is not None and previous.config.users == config.users:
            return cls(config, previous.auth)
        return cls(config, BasicAuth(config.users))


def protect(app: Wsgi, config: WebConfig | Callable[[], Guard]) -> Protected:
    """``app`` behind the configured password check, answers carrying the configured headers;
    given a callable, the guard it returns is applied, afresh for every request."""
    return Protected(app, _fixed(Guard.of(config)) if isinstance(config, WebConfig) else config)


class Protected:
    """A WSGI application: ``app`` behind the guard that ``current`` returns."""

    def __init__(self, app: Wsgi, current: Callable[[], Guard]) -> None:
        self._app = app
        self._current = current

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        guard = self._current()
        auth, extra = guard.auth, list(guard.config.headers)

        def respond(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> object:
            return start_response(status, headers + extra, *exc_info)

        if (
            auth is not None
            and environ.get("PATH_INFO", "/") not in OPEN_PATHS
            and not auth.check(environ.get("HTTP_AUTHORIZATION"))
        ):
            body = b"Unauthorized\n"
            respond(
                "401 Unauthorized",
                [
                    ("WWW-Authenticate", 'Basic realm="modelarts-exporter"'),
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        if (
            auth is not None
            and environ.get("PATH_INFO") == "/readyz"
            and not auth.check(environ.get("HTTP_AUTHORIZATION"))
        ):
            return _readiness_only(self._app, environ, respond)
        return self._app(environ, respond)

    def may_block(self, environ: dict[str, Any]) -> bool:
        """Whether answering may wait for bcrypt: a password not verified before, on a path that
        checks it; or whether the application behind says it may take long (a scrape that
        renders). The server answers such requests from worker threads, so that a flood of wrong
        passwords holds up no scrape whose password is verified, and a render no health check.
        (A reload between this and the answer may still make one answer check a password on the
        event loop: once per reload.)"""
        auth = self._current().auth
        path = environ.get("PATH_INFO", "/")
        if auth is not None and path not in _UNCHECKED_PATHS:
            header = environ.get("HTTP_AUTHORIZATION")
            if auth.needs_bcrypt(header):
                return True
            if path not in OPEN_PATHS and not auth.check(header):  # refused without bcrypt
                return False
        inner: Callable[[dict[str, Any]], bool] | None = getattr(self._app, "may_block", None)
        return inner is not None and inner(environ)


def _readiness_only(app: Wsgi, environ: dict[str, Any], respond: StartResponse) -> Iterable[bytes]:
    """``/readyz`` for a client without a password: the same status, but a 503 no longer says
    which targets are stale (their names and project ids are as private as ``/metrics``)."""
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def keep(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> object:
        started.append((status, headers))
        return lambda data: None

    answer = app(environ, keep)
    try:
        body = b"".join(answer)
    finally:
        close = getattr(answer, "close", None)
        if close is not None:
            close()
    status, headers = started[-1]
    if status.startswith("503"):
        body = b"not ready\n"
        headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        if environ.get("REQUEST_METHOD") == "HEAD":
            body = b""
    respond(status, headers)
    return [body]


def _fixed(guard: Guard) -> Callable[[], Guard]:
    return lambda: guard
