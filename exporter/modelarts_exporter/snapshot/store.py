"""What the exporter knows now: one immutable :class:`TargetState` per target, swapped whole.

The poller publishes a new state after every poll (successful or not); scrapes and the status page
read :meth:`StateStore.current` and never wait for a poll. ``generation`` changes with every
publish, so whoever renders from the states can cache by it. A watcher (the feed of the HTTP
server's process, :mod:`~modelarts_exporter.http.process`) hears of every change in the order made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from modelarts_exporter.cloud.errors import Reason
from modelarts_exporter.snapshot.aggregate import Histogram, Snapshot
from modelarts_exporter.snapshot.pool_state import PoolState


@dataclass(frozen=True, slots=True)
class ReloadStatus:
    """The web configuration's state, exported beside the targets' (the HTTP side reloads it)."""

    successful: bool
    """Whether the last attempt to read the configuration gave one in use now."""
    last_success: float
    """Unix time in seconds at which the configuration in use was read (start-up counts)."""


@dataclass(frozen=True, slots=True)
class TargetState:
    target: str
    """Stable id of the target (its name in a multi-target config, else the project id)."""
    project_id: str
    snapshot: Snapshot | None = None
    """The last good snapshot; kept when later polls fail."""
    up: bool = False
    last_success: float | None = None
    last_poll_end: float | None = None
    last_poll_seconds: float | None = None
    last_error: str | None = None
    """One-line cause of the last failure (cleared by a success)."""
    last_error_reason: Reason | None = None
    poll_duration: Histogram | None = None
    errors: Mapping[Reason, int] = field(default_factory=lambda: MappingProxyType({}))
    api_requests: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    interval_seconds: float = 60.0
    api_version: str = "v1"
    """Which ModelArts API the target is listed through: v1, v2 or both."""
    # Resource pools.
    pools: PoolState | None = None
    """The pool poller's state (``None``: pool polling is off or has not reported); the job
    poller's publishes keep it, :meth:`StateStore.publish_pools` replaces it."""


Watcher = Callable[[str, TargetState | None], None]
"""Told of each change: a target's new state, or ``None`` when it was removed."""


class StateStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: Mapping[str, TargetState] = MappingProxyType({})
        self._generation = 0
        self._watchers: tuple[Watcher, ...] = ()

    def watch(self, watcher: Watcher) -> None:
        """Call ``watcher`` after every later change, under the lock (so in the order of the
        changes): it must be quick and must not touch the store."""
        with self._lock:
            self._watchers = (*self._watchers, watcher)

    def publish(self, state: TargetState) -> None:
        with self._lock:
            states = dict(self._states)
            kept = states.get(state.target)
            if state.pools is None and kept is not None and kept.pools is not None:
                state = replace(state, pools=kept.pools)  # the pool poller's part stays
            states[state.target] = state
            self._states = MappingProxyType(states)
            self._generation += 1
            for watcher in self._watchers:
                watcher(state.target, state)

    def publish_pools(self, target: str, pools: PoolState) -> None:
        """Replace the pool part of ``target``'s state (ignored once the target is removed)."""
        with self._lock:
            current = self._states.get(target)
            if current is None:
                return
            states = dict(self._states)
            states[target] = replace(current, pools=pools)
            self._states = MappingProxyType(states)
            self._generation += 1
            for watcher in self._watchers:
                watcher(target, states[target])

    def remove(self, target: str) -> None:
        with self._lock:
            states = dict(self._states)
            if states.pop(target, None) is not None:
                self._states = MappingProxyType(states)
                self._generation += 1
                for watcher in self._watchers:
                    watcher(target, None)

    def current(self) -> tuple[int, tuple[TargetState, ...]]:
        """The generation and every target's state, read together."""
        with self._lock:
            return self._generation, tuple(self._states.values())
