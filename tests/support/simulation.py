"""The simulator and the exporter in this process: what conftest.py's ``simulator`` and
``exporter_for`` fixtures hand out, and reading what the exporter exposes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import TypeAdapter

from modelarts_exporter.cloud.models import Version
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.targets import resolve
from modelarts_exporter.runtime.service import Target, build_registry, build_target
from modelarts_exporter.simulator import SimulatorServer
from modelarts_exporter.snapshot.store import StateStore
from support.secrets import TOKEN

SimFactory = Callable[..., SimulatorServer]
"""The ``simulator`` fixture: starts a simulator (``size``, ``seed``, ``tenant_options``, and
the server's own options)."""
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
"""An exposition's samples by (name, labels)."""

_VERSION = TypeAdapter(Version)


def make_version(version_id: int, status: int, **fields: object) -> Version:
    """A version as parsing would give it: validated, the fields not given ``None``."""
    return _VERSION.validate_python({"version_id": version_id, "status": status, **fields})


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
