"""The WSGI side of a request: the environ built from what h11 parsed, and the application's
whole answer collected and checked before a byte of it is sent.

An answer goes into the response head verbatim, so its status and headers are checked here:
one with a line break would add headers of its choosing (response splitting), and hop-by-hop
headers are the server's to send (PEP 3333).
"""

from __future__ import annotations

import io
import logging
import re
import sys
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from wsgiref.types import WSGIApplication

import h11

log = logging.getLogger(__name__)

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, Any] | tuple[None, None, None]


@dataclass(frozen=True, slots=True)
class Answer:
    """An application's whole answer, its status and headers checked (:func:`call`)."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


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


def environ_of(base: Environ, request: h11.Request, remote: str) -> Environ:
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
        return _checked(status, headers, b"".join(body))
    except Exception:
        log.exception(
            "http the application failed method=%s path=%s",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
        )
    text = b"internal server error\n"
    headers = [("Content-Type", "text/plain; charset=utf-8")]
    return Answer(500, "Internal Server Error", headers, text)


_STATUS = re.compile(r"([2-5][0-9][0-9]) ([\t\x20-\x7e\x80-\xff]*)")
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
"""What RFC 9110 allows in a field value, as Latin-1 text (PEP 3333): never a line break."""
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
"""The server's to send; PEP 3333 forbids them to applications."""


def _checked(status: str, headers: list[tuple[str, str]], body: bytes) -> Answer:
    """The application's answer, as sent: its status and headers go into the head verbatim, so
    one with a line break would add headers of its choosing (response splitting)."""
    matched = _STATUS.fullmatch(status)
    if matched is None:
        raise ValueError(f"not an HTTP status line: {status!r}")
    for name, value in headers:
        if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise ValueError(f"not a valid header: {name!r}")
        if name.lower() in _HOP_BY_HOP:
            raise ValueError(f"a hop-by-hop header from the application: {name}")
    return Answer(int(matched[1]), matched[2], headers, body)
