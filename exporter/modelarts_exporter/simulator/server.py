"""The simulator's HTTP server: a tenant behind the versions API, a gateway and a fault plan.

Real HTTP/1.1 over TCP (stdlib ``ThreadingHTTPServer``, keep-alive, ``Content-Length`` on every
answer), so clients are tested with their real transport: connection reuse, timeouts, resets.
One thread per connection; the tenant guards itself with its lock, and sleeps (latency, hangs,
drips) happen outside every lock, so a slow answer never blocks another connection.

:meth:`SimulatorServer.stop` ends every thread it started and closes every socket, including idle
keep-alive connections, so tests can check for leaks. ``/_sim/*`` control endpoints (health,
advance, stats) have no authentication: this is a test tool, bound to 127.0.0.1 unless told
otherwise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import replace
from types import FrameType, TracebackType
from typing import Final, Self, TypedDict, Unpack

from .faults import FaultPlan
from .gateway import Gateway
from .handler import Api, Clock, Context, HTTPServer
from .iam import Iam
from .pool_api import PoolSim
from .pools import PoolModel
from .stats import Recorder, Stats
from .tenant import OffsetMode, Tenant
from .v2_api import CountMode
from .v2_tenant import V2Tenant

log = logging.getLogger(__name__)

_CLOCK_TICK_S: Final = 0.5


class ServerOptions(TypedDict, total=False):
    """Keyword arguments of :class:`SimulatorServer` (for :func:`serve`)."""

    project_id: str
    host: str
    port: int
    offset_mode: OffsetMode
    max_limit: int | None
    tokens: Collection[str] | None
    credentials: Mapping[str, str] | None
    security_tokens: Mapping[str, str] | None
    faults: FaultPlan | None
    max_clock_skew_s: float
    realtime_speed: float
    clock: Clock
    iam: Iam | None
    v2: V2Tenant | None
    count_mode: CountMode
    pools: PoolSim | None


class SimulatorServer:
    """Serves a :class:`Tenant` as ``GET /v1/{project_id}/training-jobs/versions`` until
    :meth:`stop`.

    Authentication is off unless ``tokens`` (IAM tokens) or ``credentials`` (AK → SK) are given;
    ``security_tokens`` (AK → token) marks temporary AK/SKs. ``max_limit`` caps the records a
    page holds whatever ``limit`` asks (the real API's cap is not documented).
    ``realtime_speed > 0`` advances the tenant by that many simulated seconds per real second
    while serving: with ``clock="ticks"`` every 0.5 s, with ``clock="listings"`` only when the
    first page of an unfiltered listing is asked for (each API generation's tenant by its own
    listing), so that a fast-evolving tenant never changes while a listing is read (the demo's:
    sped up, it would move under nearly every listing).
    """

    def __init__(
        self,
        tenant: Tenant,
        *,
        project_id: str = "simproject",
        host: str = "127.0.0.1",
        port: int = 0,
        offset_mode: OffsetMode = "record",
        max_limit: int | None = None,
        tokens: Collection[str] | None = None,
        credentials: Mapping[str, str] | None = None,
        security_tokens: Mapping[str, str] | None = None,
        faults: FaultPlan | None = None,
        max_clock_skew_s: float = 900,
        realtime_speed: float = 0.0,
        clock: Clock = "ticks",
        iam: Iam | None = None,
        v2: V2Tenant | None = None,
        count_mode: CountMode = "matching",
        pools: PoolSim | None = None,
    ) -> None:
        gateway = Gateway(
            tokens=tokens,
            credentials=credentials,
            security_tokens=security_tokens,
            max_clock_skew_s=max_clock_skew_s,
        )
        if iam is not None:
            iam.attach(gateway)
        self._context = Context(
            tenant=tenant,
            gateway=gateway,
            faults=faults if faults is not None else FaultPlan(),
            project_id=project_id,
            offset_mode=offset_mode,
            max_limit=max_limit,
            recorder=Recorder(),
            stopping=threading.Event(),
            iam=iam,
            v2=v2,
            count_mode=count_mode,
            # The pools always exist (a project has them whatever API lists its jobs), so the
            # exporter's pool polls never reach the job APIs' fault plan and statistics.
            pools=pools if pools is not None else PoolSim(PoolModel(v2)),
        )
        self._address = (host, port)
        self._realtime_speed = realtime_speed
        self._clock = clock
        self._caught_up = {"v1": time.monotonic(), "v2": time.monotonic()}
        self._catch_up_lock = threading.Lock()
        if clock == "listings" and realtime_speed > 0:
            self._context = replace(self._context, catch_up=self._catch_up)
        self._httpd: HTTPServer | None = None
        self._threads: list[threading.Thread] = []

    @property
    def tenant(self) -> Tenant:
        return self._context.tenant

    @property
    def v2(self) -> V2Tenant:
        """The v2 jobs served (an error when the simulator serves v1 only)."""
        if self._context.v2 is None:
            raise RuntimeError("this simulator serves no v2 jobs")
        return self._context.v2

    @property
    def pools(self) -> PoolSim:
        """The resource pools served, and their options (live, like :attr:`faults`)."""
        assert self._context.pools is not None
        return self._context.pools

    @property
    def faults(self) -> FaultPlan:
        """The live fault plan: rules added while serving apply to the next requests."""
        return self._context.faults

    @property
    def project_id(self) -> str:
        return self._context.project_id

    @property
    def max_limit(self) -> int | None:
        """Most records a page holds (``None``: no cap); settable while serving, as a gateway
        in front of the API can be reconfigured."""
        return self._context.max_limit

    @max_limit.setter
    def max_limit(self, value: int | None) -> None:
        # Handlers read the server's context per request: swapping it in is live and atomic.
        self._context = dataclasses.replace(self._context, max_limit=value)
        if self._httpd is not None:
            self._httpd.context = self._context

    # ---------------------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("simulator already started")
        self._context.stopping.clear()
        self._httpd = HTTPServer(self._address, self._context)
        serving = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="sim-http"
        )
        self._threads = [serving]
        if self._realtime_speed > 0 and self._clock == "ticks":
            self._threads.append(threading.Thread(target=self._run_clock, name="sim-clock"))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end every connection and thread, close the socket; idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._context.stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        for thread in self._threads:
            thread.join()
        self._threads = []

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("simulator not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._address[0]}:{self.port}"

    def _catch_up(self, api: Api) -> None:
        with self._catch_up_lock:
            now = time.monotonic()
            seconds = self._realtime_speed * (now - self._caught_up[api])
            self._caught_up[api] = now
        if api == "v1":
            self.tenant.advance(seconds)
        elif self._context.v2 is not None:
            self._context.v2.advance(seconds)

    def _run_clock(self) -> None:
        last = time.monotonic()
        while not self._context.stopping.wait(_CLOCK_TICK_S):
            now = time.monotonic()
            self.tenant.advance(self._realtime_speed * (now - last))
            if self._context.v2 is not None:
                self._context.v2.advance(self._realtime_speed * (now - last))
            last = now

    # ----------------------------------------------------------------------- runtime control

    def set_tokens(self, tokens: Collection[str] | None) -> None:
        """Rotate or revoke IAM tokens while serving (``None``: token auth off)."""
        self._context.gateway.set_tokens(tokens)

    def set_credentials(
        self,
        credentials: Mapping[str, str] | None,
        security_tokens: Mapping[str, str] | None = None,
    ) -> None:
        """Replace the accepted AK/SK pairs while serving."""
        self._context.gateway.set_credentials(credentials, security_tokens)

    @property
    def stats(self) -> Stats:
        """A snapshot: API requests, answers by HTTP status, (offset, limit, status) per request."""
        return self._context.recorder.snapshot()

    def reset_stats(self) -> None:
        self._context.recorder.reset()


def serve(tenant: Tenant, **options: Unpack[ServerOptions]) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM): the simulator as a standalone process."""
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_signal) if in_main else None
    try:
        with SimulatorServer(tenant, **options) as server:
            log.info("simulator serving url=%s versions=%d", server.url, len(tenant))
            with contextlib.suppress(KeyboardInterrupt):
                while not done.wait(1.0):
                    pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
