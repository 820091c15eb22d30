"""Wiring: settings in, a running exporter out.

Builds, for each target, the HTTP client (auth, TLS, proxies from the environment), the API source
and the poller; schedules polls with APScheduler; serves HTTP; and takes it all down again on
SIGTERM/SIGINT, cancelling polls in flight.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from modelarts_exporter import __version__, logs
from modelarts_exporter.auth import AkSkAuth, StaticTokenAuth
from modelarts_exporter.client import ApiClient, RetryPolicy
from modelarts_exporter.collector import StateCollector
from modelarts_exporter.poller import TargetPoller
from modelarts_exporter.server import ExporterApp, HttpServer
from modelarts_exporter.settings import ConfigError, Settings, TargetOptions, TargetSettings
from modelarts_exporter.state import StateStore
from modelarts_exporter.v1 import V1Source
from modelarts_exporter.webconfig import WebConfig, WebConfigError, protect
from modelarts_exporter.webconfig import load as load_web_config

log = logging.getLogger(__name__)
USER_AGENT = f"modelarts-exporter/{__version__}"


def _auth(settings: TargetOptions) -> httpx.Auth | None:
    if settings.auth_token is not None:
        return StaticTokenAuth(settings.auth_token)
    if settings.access_key and settings.secret_key is not None:
        return AkSkAuth(settings.access_key, settings.secret_key, settings.security_token)
    return None


def _verify(settings: TargetOptions) -> ssl.SSLContext | bool:
    if not settings.verify_tls:
        log.warning("TLS verification is off: the API's identity is not checked")
        return False
    if settings.ca_bundle is not None:
        return ssl.create_default_context(cafile=str(settings.ca_bundle))
    return True


def _secret_values(settings: TargetOptions) -> list[str]:
    values = (getattr(settings, name) for name in type(settings).model_fields)
    return [value.get_secret_value() for value in values if isinstance(value, SecretStr)]


@dataclass
class Target:
    poller: TargetPoller
    client: ApiClient


def build_target(
    settings: TargetSettings,
    store: StateStore,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Target:
    settings.require_target()
    assert settings.endpoint is not None and settings.project_id is not None
    # Whatever path a target comes from (flags, a config file, a test), its secrets are masked
    # in every log line and error text from the start.
    logs.redact(*_secret_values(settings))
    if _auth(settings) is None:
        log.warning("no credentials configured: requests are sent unauthenticated")
    http = httpx.AsyncClient(
        base_url=settings.endpoint,
        auth=_auth(settings),
        verify=_verify(settings),
        timeout=httpx.Timeout(settings.request_timeout_seconds),
        limits=httpx.Limits(
            max_connections=settings.max_concurrency,
            max_keepalive_connections=settings.max_concurrency,
        ),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        transport=transport,
        trust_env=True,
    )
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
    source = V1Source(client, settings.project_id, settings.listing_options())
    poller = TargetPoller(
        target=settings.name,
        project_id=settings.project_id,
        source=source,
        store=store,
        interval_seconds=settings.poll_interval_seconds,
        timeout_seconds=settings.poll_timeout,
        requests=requests,
    )
    return Target(poller, client)


def build_registry(store: StateStore) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(lambda: store.current()[1], __version__))
    return registry


class Exporter:
    """The ``serve`` command: scheduler, pollers and HTTP server for one process lifetime."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = StateStore()
        self.registry = build_registry(self.store)
        self.app = ExporterApp(
            self.store,
            self.registry,
            ready_intervals=settings.ready_intervals,
            version=__version__,
        )
        self.web = WebConfig()
        if settings.web_config_file is not None:
            try:
                self.web = load_web_config(settings.web_config_file)
            except WebConfigError as error:  # changed since the settings were checked
                raise ConfigError(f"MODELARTS_EXPORTER_WEB_CONFIG_FILE: {error}") from None
        self._targets = [build_target(target, self.store) for target in settings.targets()]
        self._in_flight: set[asyncio.Task[bool]] = set()
        self._stopping = asyncio.Event()

    async def _poll(self, poller: TargetPoller) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            await poller.poll()
        except asyncio.CancelledError:
            # Only stop() cancels polls; the scheduler would log this as a job failure.
            log.info("poll cancelled by shutdown target=%s", poller.target)
        finally:
            self._in_flight.discard(task)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        host, port = self.settings.listen
        server = HttpServer(protect(self.app, self.web), host, port, tls=self.web.tls)
        server.start()
        log.info(
            "serving address=%s:%d version=%s targets=%d %s",
            host,
            server.port,
            __version__,
            len(self._targets),
            self.web.describe(),
        )
        scheduler = AsyncIOScheduler()
        for target in self._targets:
            scheduler.add_job(
                self._poll,
                "interval",
                args=[target.poller],
                seconds=target.poller.interval_seconds,
                next_run_time=datetime.now().astimezone(),
                id=target.poller.target,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        scheduler.start()
        try:
            await self._stopping.wait()
        finally:
            log.info("stopping")
            scheduler.shutdown(wait=False)
            for task in list(self._in_flight):
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)
            for target in self._targets:
                await target.client.aclose()
            server.stop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
