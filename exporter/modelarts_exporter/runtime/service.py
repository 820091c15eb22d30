"""Wiring: settings in, a running exporter out.

Builds, for each target, the HTTP client (auth, TLS, proxies from the environment), the API source
and the poller; schedules polls with APScheduler; serves HTTP; and takes it all down again on
SIGTERM/SIGINT, cancelling polls in flight.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry

from modelarts_exporter import __version__, logs
from modelarts_exporter.cloud import v2_statuses
from modelarts_exporter.cloud.auth import AkSkAuth, IamPasswordAuth, StaticTokenAuth
from modelarts_exporter.cloud.client import ApiClient, RetryPolicy
from modelarts_exporter.cloud.statuses import KNOWN
from modelarts_exporter.config.settings import ConfigError, Settings, TargetOptions, TargetSettings
from modelarts_exporter.config.targets import resolve
from modelarts_exporter.expose.collector import StateCollector
from modelarts_exporter.http.process import ServingProcess
from modelarts_exporter.http.reload import LiveWebConfig, ReloadStatus
from modelarts_exporter.http.server import ExporterApp, HttpServer
from modelarts_exporter.http.webconfig import WebConfig, WebConfigError, protect
from modelarts_exporter.listing.both import BothSources
from modelarts_exporter.listing.incremental import IncrementalLister
from modelarts_exporter.listing.source import JobSource
from modelarts_exporter.listing.v1 import V1Source
from modelarts_exporter.listing.v2 import V2Source
from modelarts_exporter.runtime.poller import TargetPoller
from modelarts_exporter.snapshot.store import StateStore

log = logging.getLogger(__name__)
USER_AGENT = f"modelarts-exporter/{__version__}"
POLL_NICENESS = 10
"""Added to the polling process's priority by ``serve``, so that under CPU contention scrapes
(served by a process of their own) come first and polls, which nobody waits for, second."""


def _http_options(settings: TargetOptions) -> dict[str, Any]:
    """What every client of a target shares: TLS, time-outs, proxies from the environment."""
    return {
        "verify": _verify(settings),
        "timeout": httpx.Timeout(settings.request_timeout_seconds),
        "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"},
        "trust_env": True,
    }


def _auth(settings: TargetOptions, transport: httpx.AsyncBaseTransport | None) -> httpx.Auth | None:
    if settings.auth_token is not None:
        return StaticTokenAuth(settings.auth_token)
    if settings.access_key and settings.secret_key is not None:
        return AkSkAuth(settings.access_key, settings.secret_key, settings.security_token)
    if settings.password is not None:
        assert settings.username and settings.domain_name and settings.iam_url
        return IamPasswordAuth(
            http=httpx.AsyncClient(transport=transport, **_http_options(settings)),
            iam_endpoint=settings.iam_url,
            username=settings.username,
            password=settings.password,
            domain_name=settings.domain_name,
            project_id=settings.project_id,
            project_name=settings.project_name,
        )
    log.warning("no credentials configured: requests are sent unauthenticated")
    return None


def _verify(settings: TargetOptions) -> ssl.SSLContext | bool:
    """One TLS context for all of a target's clients (loading the CA bundle costs ~30 ms)."""
    if not settings.verify_tls:
        log.warning("TLS verification is off: the API's identity is not checked")
        return False
    if settings.ca_bundle is not None:
        return ssl.create_default_context(cafile=str(settings.ca_bundle))
    return httpx.create_ssl_context()


@dataclass
class Target:
    poller: TargetPoller
    client: ApiClient
    auth: httpx.Auth | None = None

    async def aclose(self) -> None:
        await self.client.aclose()
        if isinstance(self.auth, IamPasswordAuth):
            await self.auth.aclose()


def build_target(
    settings: TargetSettings,
    store: StateStore,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Target:
    settings.require_target()
    assert settings.modelarts_url is not None
    # Whatever path a target comes from (flags, a config file, a test), its secrets are masked
    # in every log line and error text from the start.
    logs.redact(*settings.secrets())
    auth = _auth(settings, transport)
    options = _http_options(settings)
    one_connection = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    http = [
        httpx.AsyncClient(
            base_url=settings.modelarts_url,
            auth=auth,
            limits=one_connection,
            transport=transport,
            **options,
        )
        for _ in range(settings.max_concurrency)
    ]
    requests: Counter[str] = Counter()

    def count_response(code: str) -> None:
        requests[code] += 1

    client = ApiClient(
        http,
        retry=RetryPolicy(max_retries=settings.max_retries),
        request_deadline=settings.request_timeout_seconds * 3,
        max_response_bytes=settings.max_response_bytes,
        on_response=count_response,
    )

    # A project given by name is resolved through IAM (the token's scope) before its first page.
    resolve = auth.project_id if isinstance(auth, IamPasswordAuth) else None
    v1 = V1Source(client, settings.project_id, settings.listing_options(), resolve)
    source: JobSource = v1
    statuses = list(KNOWN.values())
    if settings.api_version != "v1":
        # Settings refuse incremental polling with v2, so only a V1Source meets IncrementalLister.
        base = len(v1.workspaces) if settings.api_version == "both" else 0
        v2 = V2Source(client, settings.project_id, settings.v2_options(), resolve, base)
        source = v2 if settings.api_version == "v2" else BothSources(v1, v2)
        v2_known = list(v2_statuses.documented())
        statuses = v2_known if settings.api_version == "v2" else statuses + v2_known
    poller = TargetPoller(
        target=settings.name,
        project_id=settings.project_id or "",
        source=source,
        store=store,
        interval_seconds=settings.poll_interval_seconds,
        timeout_seconds=settings.poll_timeout,
        requests=requests,
        incremental=IncrementalLister(v1) if settings.poll_mode == "incremental" else None,
        full_listing_every=settings.full_listing_every,
        statuses=statuses,
        api_version=settings.api_version,
    )
    return Target(poller, client, auth)


def build_registry(
    store: StateStore,
    shard: tuple[int, int] = (0, 1),
    web_config: Callable[[], ReloadStatus | None] = lambda: None,
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(lambda: store.current()[1], __version__, shard, web_config))
    return registry


def freeze_startup_objects() -> None:
    """Take what exists now (modules, classes, functions: ~50,000 objects that live as long as
    the process) out of the garbage collector's sight, so that the collections a poll's
    allocations trigger stop traversing them again and again (docs/performance.md: about 5-10%
    of a poll's CPU). The ``serve`` command calls it once, before any target exists, so that
    nothing that can later become garbage is frozen."""
    gc.collect()
    gc.freeze()


class Exporter:
    """The ``serve`` command: scheduler, pollers and HTTP server for one process lifetime.

    Every target is its own scheduler job with its own clients, so one target's outage,
    throttling or bad credentials never delays or blanks another. ``SIGHUP`` re-reads the
    config file: added targets start, removed ones stop, changed ones restart (with a new
    baseline), and untouched ones keep polling and keep their data.
    """

    def __init__(self, settings: Settings, *, niceness: int = 0) -> None:
        self.settings = settings
        self._niceness = niceness
        self._failed = False
        self.store = StateStore()
        self.web: LiveWebConfig | None = None
        if settings.web_config_file is not None:
            try:
                self.web = LiveWebConfig(settings.web_config_file)
            except WebConfigError as error:  # changed since the settings were checked
                raise ConfigError(f"MODELARTS_EXPORTER_WEB_CONFIG_FILE: {error}") from None
        web_status = self.web.status if self.web is not None else lambda: None
        self.registry = build_registry(
            self.store, (settings.shard, settings.total_shards), web_status
        )
        self.app = ExporterApp(
            self.store,
            self.registry,
            ready_intervals=settings.ready_intervals,
            version=__version__,
            web_config=web_status,
        )
        self._initial = resolve(settings)
        self._targets: dict[str, tuple[TargetSettings, Target]] = {}
        self._in_flight: dict[str, asyncio.Task[Any]] = {}
        self._stopping = asyncio.Event()
        self._scheduler = AsyncIOScheduler()
        self._reloading: asyncio.Task[None] | None = None

    @property
    def target_names(self) -> list[str]:
        return sorted(self._targets)

    async def _poll(self, poller: TargetPoller) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight[poller.target] = task
        try:
            await poller.poll()
        except asyncio.CancelledError:
            # Only stopping (or removing the target) cancels a poll; the scheduler would log
            # this as a job failure.
            log.info("poll cancelled target=%s", poller.target)
        finally:
            self._in_flight.pop(poller.target, None)

    def _add(self, settings: TargetSettings) -> None:
        target = build_target(settings, self.store)
        self._targets[settings.name] = (settings, target)
        self._scheduler.add_job(
            self._poll,
            "interval",
            args=[target.poller],
            seconds=target.poller.interval_seconds,
            next_run_time=datetime.now().astimezone(),
            id=settings.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

    async def _remove(self, name: str) -> None:
        _, target = self._targets.pop(name)
        self._scheduler.remove_job(name)
        task = self._in_flight.get(name)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await target.aclose()
        self.store.remove(name)

    async def reload(self) -> None:
        """Apply the config file as it is now; a broken file changes nothing."""
        try:
            wanted = {target.name: target for target in resolve(self.settings)}
        except ConfigError as error:
            log.error(
                "reload failed, keeping the current targets: %s", str(error).replace("\n", "; ")
            )
            return
        current = {name: settings for name, (settings, _) in self._targets.items()}
        gone = [name for name in current if name not in wanted]
        changed = [name for name in current if name in wanted and wanted[name] != current[name]]
        added = [name for name in wanted if name not in current]
        for name in (*gone, *changed):
            await self._remove(name)
        for name in (*changed, *added):
            self._add(wanted[name])
        log.info(
            "reloaded added=%d removed=%d changed=%d unchanged=%d",
            len(added),
            len(gone),
            len(changed),
            len(current) - len(gone) - len(changed),
        )

    def _request_reload(self) -> None:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.ensure_future(self.reload())

    def stop(self) -> None:
        self._stopping.set()

    def _serving_exited(self, serving: ServingProcess) -> None:
        # Once is enough: a closed pipe stays readable, and the loop would call this on and on.
        asyncio.get_running_loop().remove_reader(serving.sentinel)
        if self._stopping.is_set():
            return
        code = serving.exitcode()
        if code == -signal.SIGTERM:  # e.g. systemd stopping every process of the unit
            log.info("the HTTP server process was sent SIGTERM: stopping")
        else:
            log.error("the HTTP server process exited unexpectedly (exit code %s): stopping", code)
            self._failed = True
        self.stop()

    async def run(self) -> int:
        """Serve until :meth:`stop`; the exit status: 0, or 1 when the HTTP server process died.

        The server process is forked first, while this process has no other thread."""
        host, port = self.settings.listen
        if self.web is None:
            server = HttpServer(self.app, host, port)
        else:
            tls = self.web.tls if self.web.config.tls is not None else None
            server = HttpServer(protect(self.app, self.web.guard), host, port, tls=tls)
        serving = ServingProcess(server, self.store, niceness=self._niceness)
        serving.start()
        loop = asyncio.get_running_loop()
        loop.add_reader(serving.sentinel, self._serving_exited, serving)
        try:
            await self._poll_until_stopped(host, serving.port)
        finally:
            loop.remove_reader(serving.sentinel)
            serving.stop()
        return 1 if self._failed else 0

    async def _poll_until_stopped(self, host: str, port: int) -> None:
        for settings in self._initial:
            self._add(settings)
        log.info(
            "serving address=%s:%d version=%s targets=%d shard=%d/%d %s",
            host,
            port,
            __version__,
            len(self._targets),
            self.settings.shard,
            self.settings.total_shards,
            (self.web.config if self.web is not None else WebConfig()).describe(),
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self._request_reload)
        self._scheduler.start()
        try:
            await self._stopping.wait()
        finally:
            log.info("stopping")
            self._scheduler.shutdown(wait=False)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            for task in list(self._in_flight.values()):
                task.cancel()
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
            for _, target in self._targets.values():
                await target.aclose()
