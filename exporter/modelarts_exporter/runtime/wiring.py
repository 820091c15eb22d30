"""Wiring: a target's settings in, its poller (HTTP clients, auth, API source) out; the
registry the collector is served from; and the web configuration, loaded once.

Shared by ``serve`` (:mod:`.service`) and ``once``: both build targets the same way.
"""

from __future__ import annotations

import logging
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import CollectorRegistry

from modelarts_exporter import __version__, logs
from modelarts_exporter.cloud import v2_statuses
from modelarts_exporter.cloud.auth import AkSkAuth, IamPasswordAuth, StaticTokenAuth
from modelarts_exporter.cloud.client import ApiClient, RetryPolicy
from modelarts_exporter.cloud.statuses import KNOWN
from modelarts_exporter.config.errors import ConfigError
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.target import TargetOptions, TargetSettings
from modelarts_exporter.expose.collector import StateCollector
from modelarts_exporter.listing.both import BothSources
from modelarts_exporter.listing.incremental import IncrementalLister
from modelarts_exporter.listing.pools import PoolLister
from modelarts_exporter.listing.source import JobSource, PagedSource
from modelarts_exporter.listing.v1 import V1Source
from modelarts_exporter.listing.v2 import V2Source
from modelarts_exporter.runtime.poller import TargetPoller
from modelarts_exporter.runtime.pool_poller import PoolPoller
from modelarts_exporter.snapshot.store import ReloadStatus, StateStore

if TYPE_CHECKING:  # imported where used: ``once`` reads no web config (bcrypt and TLS code)
    from modelarts_exporter.http.reload import LiveWebConfig

log = logging.getLogger(__name__)
USER_AGENT = f"modelarts-exporter/{__version__}"


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
    """One TLS context for all of a target's clients: loading the CA bundle is slow (tens of
    milliseconds), and every client would load it again."""
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
    pools: PoolPoller | None = None
    """The pool poller (``POOLS``), with HTTP clients of its own (:attr:`pool_client`)."""
    pool_client: ApiClient | None = None

    async def aclose(self) -> None:
        await self.client.aclose()
        if self.pool_client is not None:
            await self.pool_client.aclose()
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
    for warning in settings.warnings():
        log.warning("%s target=%s", warning, settings.name)
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
    paged: PagedSource = v1
    statuses = list(KNOWN.values())
    if settings.api_version != "v1":
        # Settings refuse incremental polling with both, so a lister meets one source.
        base = len(v1.workspaces) if settings.api_version == "both" else 0
        v2 = V2Source(client, settings.project_id, settings.v2_options(), resolve, base)
        source = BothSources(v1, v2)
        if settings.api_version == "v2":
            source = paged = v2
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
        incremental=IncrementalLister(paged) if settings.poll_mode == "incremental" else None,
        full_listing_every=settings.full_listing_every,
        statuses=statuses,
        api_version=settings.api_version,
        max_label_values=settings.max_label_values,
        max_users=settings.max_users if settings.user_metrics else None,
    )
    target = Target(poller, client, auth)
    if settings.pools:
        _add_pools(target, settings, store, options, requests, resolve, transport)
    return target


POOL_CONNECTIONS = 2


def _add_pools(
    target: Target,
    settings: TargetSettings,
    store: StateStore,
    options: dict[str, Any],
    requests: Counter[str],
    resolve: Callable[[], Awaitable[str]] | None,
    transport: httpx.AsyncBaseTransport | None,
) -> None:
    """The pool poller, on clients of its own: a slow pool API never takes a connection the
    job poll is waiting for. Its requests count in the target's API request counter."""
    assert settings.modelarts_url is not None
    one_connection = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    http = [
        httpx.AsyncClient(
            base_url=settings.modelarts_url,
            auth=target.auth,
            limits=one_connection,
            transport=transport,
            **options,
        )
        for _ in range(POOL_CONNECTIONS)
    ]
    target.pool_client = ApiClient(
        http,
        retry=RetryPolicy(max_retries=settings.max_retries),
        request_deadline=settings.request_timeout_seconds * 3,
        max_response_bytes=settings.max_response_bytes,
        on_response=lambda code: requests.update((code,)),
    )
    lister = PoolLister(
        target.pool_client,
        settings.project_id,
        resolve_project=resolve,
        flavor_cache_seconds=settings.flavor_cache_seconds,
    )
    target.pools = PoolPoller(
        target=settings.name,
        lister=lister,
        store=store,
        interval_seconds=settings.pool_interval,
        timeout_seconds=settings.pool_timeout,
        max_label_values=settings.max_label_values,
    )


def build_registry(
    store: StateStore,
    shard: tuple[int, int] = (0, 1),
    web_config: Callable[[], ReloadStatus | None] = lambda: None,
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(lambda: store.current()[1], __version__, shard, web_config))
    return registry


def open_web_config(settings: Settings) -> LiveWebConfig | None:
    """The web configuration file, read and checked (once: ``serve`` keeps what this returns,
    ``check-config`` only checks); :class:`ConfigError` names the setting and the problem."""
    if settings.web_config_file is None:
        return None
    from modelarts_exporter.http.reload import LiveWebConfig  # noqa: PLC0415
    from modelarts_exporter.http.webconfig import WebConfigError  # noqa: PLC0415

    try:
        return LiveWebConfig(settings.web_config_file)
    except WebConfigError as error:
        raise ConfigError(f"MODELARTS_EXPORTER_WEB_CONFIG_FILE: {error}") from None
