"""One pool poll of one target: read, derive, publish; the one place pool errors are handled.

It runs as its own scheduler job, on its own interval, with its own deadline and its own HTTP
clients, so that it never delays or fails the target's job poll. A poll publishes a new pool
snapshot when the pool list could be read (the pools whose every card source failed then have
no card series, and ``pool_up`` is 0); otherwise it keeps the last one with ``pool_up`` 0. A
source that fails is counted under its endpoint and reason and logged when it starts failing,
not at every poll. A 403 on the pool list turns pool polling off for the target with one
warning: the credentials lack ``modelarts:pool:list``, which polling again will not grant.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from types import MappingProxyType

import anyio

from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.expose.metrics import POLL_DURATION_BUCKETS
from modelarts_exporter.listing.pools import PoolLister
from modelarts_exporter.logs import scrub
from modelarts_exporter.snapshot.aggregate import HistogramBuilder
from modelarts_exporter.snapshot.labelcap import DEFAULT_CAP
from modelarts_exporter.snapshot.pool_state import Endpoint, PoolState
from modelarts_exporter.snapshot.pools import build
from modelarts_exporter.snapshot.store import StateStore

log = logging.getLogger(__name__)


class PoolPoller:
    def __init__(
        self,
        *,
        target: str,
        lister: PoolLister,
        store: StateStore,
        interval_seconds: float,
        timeout_seconds: float,
        max_label_values: int = DEFAULT_CAP,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.target = target
        self.interval_seconds = interval_seconds
        self._lister = lister
        self._store = store
        self._timeout = timeout_seconds
        self._cap = max_label_values
        self._clock = clock
        self._errors: Counter[tuple[Endpoint, Reason]] = Counter()
        self._durations = HistogramBuilder(POLL_DURATION_BUCKETS)
        self._failing: set[str] = set()
        """Endpoints whose failure has been logged and that have not worked since."""
        self._state = PoolState()
        store.publish_pools(target, self._state)

    @property
    def state(self) -> PoolState:
        return self._state

    @property
    def enabled(self) -> bool:
        return self._state.enabled

    async def poll(self) -> bool:
        """Run one pool poll and publish its outcome; ``True`` when every pool was read."""
        if not self._state.enabled:
            return False
        started = time.monotonic()
        try:
            with anyio.fail_after(self._timeout):  # anyio: see cloud/client.py
                reading = await self._lister.read()
        except TimeoutError:
            stage: Endpoint = self._stage()
            late = PollError(
                Reason.TIMEOUT,
                f"pool poll did not finish within its {self._timeout:g} s deadline "
                f"(reading {stage})",
            )
            return self._failed(stage, late, started)
        except PollError as error:
            if error.status == 403:
                return self._disable(error, started)
            return self._failed("pools", error, started)
        self._note("pools", None)
        failed = {endpoint for endpoint, _ in reading.failures}
        for endpoint, failure in reading.failures:
            self._errors[(self._endpoint(endpoint), failure.reason)] += 1
        for endpoint in ("nodes", "runtime", "flavors"):
            errors = [e for name, e in reading.failures if name == endpoint]
            self._note(endpoint, errors[0] if errors else None, len(errors))
        snapshot = build(reading, self._cap)
        now = self._clock()
        self._publish(
            replace(
                self._state,
                up=snapshot.complete,
                last_success=now if snapshot.complete else self._state.last_success,
                last_error=None if snapshot.complete else self._incomplete(failed),
                snapshot=snapshot,
            ),
            started,
        )
        return snapshot.complete

    def _stage(self) -> Endpoint:
        return self._endpoint(self._lister.stage)

    @staticmethod
    def _endpoint(name: str) -> Endpoint:
        for endpoint in ("pools", "nodes", "runtime", "flavors"):
            if name == endpoint:
                return endpoint
        return "pools"

    @staticmethod
    def _incomplete(failed: set[str]) -> str:
        return f"some pools have no card numbers: {', '.join(sorted(failed))} failed"

    def _note(self, endpoint: str, error: PollError | None, n: int = 1) -> None:
        """Log an endpoint that starts failing (once, with how many pools it failed for) and
        one that works again."""
        if error is None:
            if endpoint in self._failing:
                self._failing.discard(endpoint)
                log.info("pool endpoint works again target=%s endpoint=%s", self.target, endpoint)
            return
        if endpoint not in self._failing:
            self._failing.add(endpoint)
            log.warning(
                "pool endpoint failed, falling back target=%s endpoint=%s reason=%s times=%d "
                "error=%s",
                self.target,
                endpoint,
                error.reason.value,
                n,
                scrub(str(error.args[0])),
            )

    def _failed(self, endpoint: Endpoint, error: PollError, started: float) -> bool:
        self._errors[(endpoint, error.reason)] += 1
        message = scrub(str(error.args[0]))
        log.warning(
            "pool poll failed target=%s endpoint=%s reason=%s error=%s",
            self.target,
            endpoint,
            error.reason.value,
            message,
        )
        self._publish(replace(self._state, up=False, last_error=message), started)
        return False

    def _disable(self, error: PollError, started: float) -> bool:
        self._errors[("pools", error.reason)] += 1
        message = scrub(str(error.args[0]))
        log.warning(
            "pool polling turned off target=%s: the pool API refused the credentials (%s); "
            "they need modelarts:pool:list and modelarts:pool:get. Job polling goes on; "
            "reload or restart after granting them, or set POOLS=false",
            self.target,
            message,
        )
        self._publish(
            replace(self._state, enabled=False, up=False, last_error=message, snapshot=None),
            started,
        )
        return False

    def _publish(self, state: PoolState, started: float) -> None:
        self._durations.observe(time.monotonic() - started)
        self._state = replace(
            state,
            poll_duration=self._durations.freeze(),
            errors=MappingProxyType(dict(self._errors)),
        )
        self._store.publish_pools(self.target, self._state)
