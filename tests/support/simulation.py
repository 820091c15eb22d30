"""The simulator and the exporter in this process: what conftest.py's ``simulator`` and
``exporter_for`` fixtures hand out, and reading what the exporter exposes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from wsgiref.types import WSGIApplication

import msgspec
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelarts_exporter.cloud.models import Version
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.targets import resolve
from modelarts_exporter.runtime.wiring import Target, build_registry, build_target
from modelarts_exporter.simulator import SimulatorServer, Tenant
from modelarts_exporter.snapshot.store import StateStore
from support.secrets import TOKEN

SimFactory = Callable[..., SimulatorServer]
"""The ``simulator`` fixture: starts a simulator (``size``, ``seed``, ``tenant_options``, and
the server's own options)."""
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
ServeWsgi = Callable[[WSGIApplication], int]
"""The ``serve_wsgi`` fixture: serves a WSGI application on 127.0.0.1, gives its port."""
"""An exposition's samples by (name, labels)."""


def make_version(version_id: int, status: int, **fields: object) -> Version:
    """A version as parsing would give it: validated, the fields not given ``None``."""
    return msgspec.convert({"version_id": version_id, "status": status, **fields}, Version)


class Clock:
    """A settable wall clock for polls and readiness."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class InProcessExporter:
    """The exporter's pieces wired to a simulator, polled by hand for deterministic tests."""

    settings: Settings
    store: StateStore = field(default_factory=StateStore)
    target: Target = field(init=False)

    def __post_init__(self) -> None:
        (target,) = resolve(self.settings, environ={})
        self.target = build_target(target, self.store)

    async def poll(self) -> bool:
        return await self.target.poller.poll()

    def exposition(self) -> str:
        return generate_latest(build_registry(self.store)).decode()

    def samples(self) -> Samples:
        return parse_samples(self.exposition())


def exporter_settings(sim: SimulatorServer, **overrides: Any) -> Settings:
    """Settings of one target polling ``sim`` with the test token; ``overrides`` win."""
    values: dict[str, Any] = {
        "endpoint": sim.url,
        "project_id": sim.project_id,
        "auth_token": TOKEN,
        "poll_interval_seconds": 60,
        "request_timeout_seconds": 2,
        "max_retries": 0,
        "page_size": 50,
    }
    values.update(overrides)
    return Settings(**values)


def parse_samples(text: str) -> Samples:
    """Every sample of an exposition by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def select(
    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(value for (n, ls), value in samples.items() if n == name and wanted <= ls)


# --- the simulator's own tests ---------------------------------------------------------------

NOW_MS = 1_700_000_000_000
"""The tenant clock of :func:`make_tenant` when it is made."""
Record = dict[str, Any]
"""A version record as the simulator serves it."""


def make_tenant(size: int = 400, *, seed: int = 7, unknown_status_fraction: float = 0.02) -> Tenant:
    """A tenant with two workspaces, unknown status codes and sparse fields, at :data:`NOW_MS`."""
    return Tenant(
        size=size,
        seed=seed,
        now_ms=NOW_MS,
        workspaces=("0", "ws-b"),
        unknown_status_fraction=unknown_status_fraction,
        sparse_fraction=0.1,
    )


def all_records(tenant: Tenant, workspace: str | None = None) -> list[Record]:
    """The tenant's own view, typed loosely like parsed JSON."""
    return tenant.records() if workspace is None else tenant.records_in(workspace)
