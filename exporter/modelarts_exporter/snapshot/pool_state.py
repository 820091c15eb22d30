"""What the exporter knows of a target's resource pools now: one immutable :class:`PoolState`.

The pool poller builds it (:mod:`.pools` derives the snapshot) and publishes it through the
store beside the target's job state; the collector reads it. Everything here is frozen and
picklable, so it travels to the HTTP server's process as the job state does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from modelarts_exporter.cloud.errors import Reason
from modelarts_exporter.cloud.quantity import CardKind
from modelarts_exporter.snapshot.aggregate import Histogram

Source = Literal["nodes", "runtime", "flavors"]
"""Where a pool's card numbers come from, in order of preference."""
Endpoint = Literal["pools", "nodes", "runtime", "flavors"]
ENDPOINTS: tuple[Endpoint, ...] = ("pools", "nodes", "runtime", "flavors")
CardKey = tuple[CardKind, Source]


@dataclass(frozen=True, slots=True)
class Cards:
    """Accelerator cards of one kind in one pool (or summed under ``_other``).

    ``allocated`` and ``free`` are ``None`` when the source does not tell (flavors), never 0;
    ``unavailable`` (cards on nodes not Available) only the node list tells."""

    capacity: float
    allocated: float | None = None
    free: float | None = None
    unavailable: float | None = None


@dataclass(frozen=True, slots=True)
class PoolRecord:
    """One pool as exported; ``pool_id`` is :data:`~.labelcap.OTHER` for the pools beyond the
    label cap, summed (their ``phases`` then count pools)."""

    pool_id: str
    pool_name: str
    pool_type: str
    workspace_id: str
    parent_pool_id: str
    phases: Mapping[str, int]
    nodes: Mapping[tuple[str, str], int]
    """Nodes by ``(node_flavor, state)``, state in lower case."""
    desired: Mapping[str, int]
    """Desired nodes by flavor (``spec.resources[].count``)."""
    cards: Mapping[CardKey, Cards]


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    pools: tuple[PoolRecord, ...]
    complete: bool
    """Whether every pool got its cards from some source (else some have none this poll)."""


@dataclass(frozen=True, slots=True)
class PoolState:
    """A target's pool polling: its last good snapshot and how polling goes."""

    enabled: bool = True
    """``False`` once the pool API answered 403: pool polling is off for the target."""
    up: bool = False
    last_success: float | None = None
    last_error: str | None = None
    snapshot: PoolSnapshot | None = None
    poll_duration: Histogram | None = None
    errors: Mapping[tuple[Endpoint, Reason], int] = field(
        default_factory=lambda: MappingProxyType({})
    )
