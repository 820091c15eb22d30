"""One HTTP/1.1 connection without a socket: what :func:`http11.serve` writes for the bytes a client
sends, and what :func:`http11.call` makes of an application's answer. (integration/test_server.py:
the same over real connections.)"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import Executor

import pytest

from modelarts_exporter.http import http11, wsgi
from modelarts_exporter.http.app import WebApp
from modelarts_exporter.runtime.wiring import build_registry
from modelarts_exporter.snapshot.store import StateStore


def _request(path: str, method: str = "GET", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


def _statuses(data: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"^HTTP/1\.1 (\d{3}) ", data, re.MULTILINE)]


class _RecordingWriter:
    """Stands in for a connection's StreamWriter: what the server writes, write by write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.transport = self  # whose buffer is always empty: every write left at once

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 1234) if name == "peername" else None


@pytest.mark.anyio
async def test_each_answer_leaves_in_one_write_headers_and_body_together() -> None:
    """With Nagle off, two writes would be two packets, and a client's delayed ACK in between."""
    store = StateStore()
    app = WebApp(store, build_registry(store), ready_intervals=3, version="9")
    reader = asyncio.StreamReader()
    reader.feed_data(_request("/metrics") + _request("/healthz") + _request("/metrics", "HEAD"))
    reader.feed_eof()
    writer = _RecordingWriter()
    # No executor is needed: nothing may block (not given may_block).
    site = http11.Site(app, wsgi.base_environ("127.0.0.1", 1, https=False), None, Executor())
    await http11.serve(site, reader, writer)  # type: ignore[arg-type]
    assert [_statuses(data) for data in writer.writes] == [[200], [200], [200]]
    body_length = int(re.findall(rb"Content-Length: (\d+)", writer.writes[0])[0])
    assert len(writer.writes[0].partition(b"\r\n\r\n")[2]) == body_length
    assert writer.writes[2].endswith(b"\r\n\r\n")  # HEAD: the same headers, no body
