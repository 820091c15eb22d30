"""One connection's requests: gateway, fault plan and API in order, and faults on the wire.

An API request goes: count it → latency → gateway (401s) → fault plan → service answer
(:mod:`.api`), possibly truncated or dripped. Connection-level faults happen here because only
the handler holds the socket (what it counts is in :mod:`.stats`, ``/_sim/*`` in :mod:`.control`).
Clients that give up mid-answer are expected, so socket errors are logged at debug level,
never printed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import SplitResult, parse_qsl, urlsplit

from . import control
from .api import answer_versions, lenient_uint
from .faults import TRANSPORT_KINDS, FaultKind, FaultPlan, FaultRule, RequestInfo, canned_response
from .gateway import Gateway
from .iam import Iam
from .pool_api import PoolSim, route
from .stats import QueryRecord, Recorder
from .tenant import OffsetMode, Tenant
from .v2_api import ROUTE as V2_ROUTE
from .v2_api import CountMode, answer_search, v2_paging
from .v2_tenant import V2Tenant

log = logging.getLogger(__name__)

Api = Literal["v1", "v2"]
Clock = Literal["ticks", "listings"]

_Request = socket.socket | tuple[bytes, socket.socket]


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a request handler needs from the simulator."""

    tenant: Tenant
    gateway: Gateway
    faults: FaultPlan
    project_id: str
    offset_mode: OffsetMode
    max_limit: int | None
    """Most records a page holds, whatever ``limit`` asks (``None``: no cap)."""
    recorder: Recorder
    stopping: threading.Event
    """Set when the server stops: ends every sleep (latency, hang, drip) at once."""
    iam: Iam | None = None
    """Serves ``POST /v3/auth/tokens`` when set (IAM and ModelArts share one port here)."""
    v2: V2Tenant | None = None
    """Serves ``POST /v2/{project_id}/training-job-searches`` when set."""
    count_mode: CountMode = "matching"
    catch_up: Callable[[Api], None] | None = None
    """Called before the first page of an unfiltered listing of that API is answered."""
    pools: PoolSim | None = None
    """Serves the resource-pool endpoints when set."""


class HTTPServer(ThreadingHTTPServer):
    """One daemon thread per connection, all tracked, so that stopping can wake idle keep-alive
    connections and join every thread (the stdlib joins only non-daemon ones)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], context: Context) -> None:
        self.context = context
        self._connections: set[socket.socket] = set()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() resolves the host name (getfqdn), which can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: _Request, client_address: object) -> None:
        worker = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="sim-connection",
            daemon=True,
        )
        with self._lock:
            if isinstance(request, socket.socket):
                self._connections.add(request)
            self._workers = [w for w in self._workers if w.is_alive()]
            self._workers.append(worker)
        worker.start()

    def shutdown_request(self, request: _Request) -> None:
        if isinstance(request, socket.socket):
            with self._lock:
                self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every connection thread (idle keep-alive ones block reading the next request)
        and wait for all of them; call after ``shutdown()``, when no new ones can start."""
        with self._lock:
            connections, workers = list(self._connections), list(self._workers)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)
        for worker in workers:
            worker.join()

    def handle_error(self, request: _Request, client_address: object) -> None:
        log.debug("connection error client=%s", client_address, exc_info=True)


def _encode(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "simulated-api-gateway"
    sys_version = ""
    # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms each.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    @property
    def context(self) -> Context:
        server = self.server
        assert isinstance(server, HTTPServer)
        return server.context

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        self._counted = False
        length = lenient_uint(self.headers.get("Content-Length")) or 0
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        if url.path.startswith("/_sim/"):
            self._control(url)
        elif url.path == "/v3/auth/tokens" and self.command == "POST" and self.context.iam:
            answer = self.context.iam.answer(body, dict(parse_qsl(url.query)))
            headers = (("X-Subject-Token", answer.token),) if answer.token else ()
            self._send(answer.status, _encode(answer.payload), headers=headers)
        else:
            self._api(url, body)

    # ------------------------------------------------------------------------------ sending

    def _head(
        self,
        status: int,
        length: int,
        content_type: str = "application/json",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        if self._counted:
            self.context.recorder.answer(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._head(status, len(body), content_type, headers)
        self.wfile.write(body)

    def _abandon(self) -> None:
        """End the connection without an answer."""
        self.context.recorder.answer(0)
        self.close_connection = True

    # ---------------------------------------------------------------------------------- API

    def _rejected(self, url: SplitResult, pairs: list[tuple[str, str]], body: bytes) -> bool:
        """Whether the gateway refused the request (its answer sent)."""
        headers = {name.lower(): value for name, value in self.headers.items()}
        rejection = self.context.gateway.check(
            method=self.command, path=url.path, query=pairs, headers=headers, body=body
        )
        if rejection is not None:
            self._send(rejection.status, _encode(rejection.payload))
        return rejection is not None

    def _pool_api(self, url: SplitResult, pairs: list[tuple[str, str]], body: bytes) -> bool:
        """Answer a resource-pool request (:mod:`.pool_api`); ``False`` if it is none."""
        pools = self.context.pools
        found = route(self.command, url.path) if pools is not None else None
        if pools is None or found is None:
            return False
        if pools.arrive(found[0], self.context.stopping):
            self.close_connection = True
        elif not self._rejected(url, pairs, body):
            answer = pools.answer(*found, dict(pairs), self.context.project_id)
            self._send(answer.status, _encode(answer.payload))
        return True

    def _api(self, url: SplitResult, body: bytes) -> None:
        context = self.context
        pairs = parse_qsl(url.query, keep_blank_values=True)
        if self._pool_api(url, pairs, body):
            return
        query = dict(pairs)
        v2_route = V2_ROUTE.fullmatch(url.path) if self.command == "POST" else None
        if v2_route is not None:
            query = v2_paging(body)
        record = QueryRecord(
            lenient_uint(query.get("offset")),
            lenient_uint(query.get("limit")),
            lenient_uint(query.get("status")),
        )
        request = RequestInfo(
            method=self.command,
            path=url.path,
            query=query,
            offset=record.offset,
            limit=record.limit,
            status=record.status,
            sequence=context.recorder.request(record),
        )
        self._counted = True
        latency = context.faults.latency_seconds
        if latency > 0 and context.stopping.wait(latency):
            self._abandon()
            return
        if self._rejected(url, pairs, body):
            return
        rule = context.faults.pick(request)
        if rule is not None and self._fault(rule, request):
            return
        first_page = not record.offset and record.status is None and "pool_id" not in query
        if context.catch_up is not None and first_page:
            context.catch_up("v2" if v2_route is not None else "v1")
        if v2_route is not None and context.v2 is not None:
            answer = answer_search(
                context.v2,
                project_id=context.project_id,
                project_in_path=v2_route.group(1),
                body=body,
                offset_mode=context.offset_mode,
                count_mode=context.count_mode,
            )
        else:
            answer = answer_versions(
                context.tenant,
                project_id=context.project_id,
                offset_mode=context.offset_mode,
                max_limit=context.max_limit,
                method=self.command,
                path=url.path,
                query=query,
            )
        payload = _encode(answer.payload)
        if rule is not None and rule.kind is FaultKind.TRUNCATED:
            self._head(answer.status, len(payload))
            self.wfile.write(payload[: len(payload) // 2])
            self.close_connection = True
        elif rule is not None and rule.kind is FaultKind.SLOW_DRIP:
            self._drip(answer.status, payload, rule)
        else:
            self._send(answer.status, payload)

    def _fault(self, rule: FaultRule, request: RequestInfo) -> bool:
        """Carry out a fault that replaces the answer; ``False`` if the real answer follows."""
        canned = canned_response(rule)
        if canned is not None:
            self._send(canned.status, canned.body, canned.content_type, canned.headers)
            return True
        if rule.kind is FaultKind.SHIFT:
            # Into the workspace being polled, so that the client's paging really shifts.
            workspace = request.query.get("workspace_id") or "0"
            v2 = self.context.v2
            if v2 is not None and V2_ROUTE.fullmatch(request.path):
                for _ in range(rule.shift_count):
                    v2.add_job("Creating", workspace=workspace)
                return False
            self.context.tenant.create_versions(rule.shift_count, workspace_id=workspace)
            return False
        if rule.kind is FaultKind.RESET:
            # Linger 0 turns close() into a RST; the socket really closes once the handler's
            # streams are released at the end of this request.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self._abandon()
            return True
        if rule.kind is FaultKind.HANG:
            self.context.stopping.wait(rule.hang_seconds)
            self._abandon()
            return True
        assert rule.kind in TRANSPORT_KINDS  # truncation and drip need the real body
        return False

    def _drip(self, status: int, payload: bytes, rule: FaultRule) -> None:
        pieces = max(1, math.ceil(rule.drip_seconds / rule.drip_interval_seconds))
        size = max(1, math.ceil(len(payload) / pieces))
        self._head(status, len(payload))
        stopping = self.context.stopping
        try:
            for start in range(0, len(payload), size):
                if stopping.wait(rule.drip_interval_seconds):
                    self.close_connection = True
                    return
                self.wfile.write(payload[start : start + size])
        except OSError:
            self.close_connection = True  # the client gave up, as intended

    # ------------------------------------------------------------------------------ control

    def _control(self, url: SplitResult) -> None:
        context = self.context
        answer = control.answer(
            self.command,
            url,
            tenant=context.tenant,
            v2=context.v2,
            recorder=context.recorder,
            faults=context.faults,
        )
        self._send(answer.status, answer.body, answer.content_type)
