"""One poll of one target: list, aggregate, publish — the one place poll errors are handled.

With an :class:`~.incremental.IncrementalLister`, polls between full listings
(one every ``full_listing_every``) read only what can have changed, falling back to a full
listing whenever the incremental one cannot vouch for its result.

A poll either completes and swaps in a new snapshot, or fails and republishes the last good
snapshot with ``up`` 0, the error counted under its reason and logged once. The ledger only ever
sees complete listings. A poll is bounded by a deadline, so a stuck API shows up as ``timeout``;
that deadline is not the interval: a poll slower than its interval is let finish (the service
starts the next one right after it) and said so once, with the remedy.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from types import MappingProxyType

import anyio

from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.cloud.statuses import Status
from modelarts_exporter.expose.metrics import POLL_DURATION_BUCKETS
from modelarts_exporter.listing.incremental import IncrementalLister
from modelarts_exporter.listing.inventory import Listed, Observations
from modelarts_exporter.listing.source import JobSource, ListingKind
from modelarts_exporter.logs import scrub
from modelarts_exporter.snapshot.aggregate import HistogramBuilder, Ledger
from modelarts_exporter.snapshot.labelcap import DEFAULT_CAP
from modelarts_exporter.snapshot.store import StateStore, TargetState

log = logging.getLogger(__name__)


class TargetPoller:
    def __init__(
        self,
        *,
        target: str,
        project_id: str,
        source: JobSource,
        store: StateStore,
        interval_seconds: float,
        timeout_seconds: float,
        requests: Counter[str] | None = None,
        incremental: IncrementalLister | None = None,
        full_listing_every: int = 1,
        clock: Callable[[], float] = time.time,
        statuses: Iterable[Status] | None = None,
        api_version: str = "v1",
        max_label_values: int = DEFAULT_CAP,
        max_users: int | None = None,
    ) -> None:
        """``statuses``: exported even when no version has them (default: v1's);
        ``max_users``: per-user numbers, capped to that many users (``None``: none)."""
        self.target = target
        self.interval_seconds = interval_seconds
        self._project_id = project_id
        self._source = source
        self._store = store
        self._timeout = timeout_seconds
        self._clock = clock
        self._ledger = Ledger(statuses, max_label_values, max_users)
        self._incremental = incremental
        self._full_every = full_listing_every
        self._since_full = 0
        """Successful incremental polls since the last full listing."""
        self._errors: Counter[Reason] = Counter()
        self._requests: Counter[str] = Counter() if requests is None else requests
        """API responses by code, counted by the client as they arrive."""
        self._durations = HistogramBuilder(POLL_DURATION_BUCKETS)
        self._unrecognized: set[int] = set()
        self._overrunning = False
        """Whether the last poll took longer than the interval (warned once, until one fits)."""
        self._state = TargetState(
            target=target,
            project_id=project_id,
            interval_seconds=interval_seconds,
            api_version=api_version,
        )
        store.publish(self._state)

    @property
    def state(self) -> TargetState:
        return self._state

    async def poll(self) -> bool:
        """Run one poll and publish its outcome; ``True`` when it succeeded."""
        started = time.monotonic()
        try:
            with anyio.fail_after(self._timeout):  # anyio: see client.py
                (listed, found), kind = await self._list()
        except TimeoutError:
            error = PollError(
                Reason.TIMEOUT, f"poll did not finish within its {self._timeout:g} s deadline"
            )
            return self._failed(error, started)
        except PollError as error:
            return self._failed(error, started)
        now = self._clock()
        snapshot = self._ledger.commit(listed, found, now, kind)
        self._since_full = 0 if kind == "full" else self._since_full + 1
        self._note_unrecognized(snapshot.unrecognized_codes)
        elapsed = self._record_duration(started)
        log.debug(
            "poll succeeded target=%s versions=%d seconds=%.3f",
            self.target,
            snapshot.version_count,
            elapsed,
        )
        self._publish(
            replace(
                self._state,
                project_id=self._source.project_id or self._state.project_id,
                snapshot=snapshot,
                up=True,
                last_success=now,
                last_poll_end=now,
                last_poll_seconds=elapsed,
                last_error=None,
                last_error_reason=None,
            )
        )
        return True

    async def _list(self) -> tuple[tuple[Listed, Observations], ListingKind]:
        """The new listing and its kind: incremental when due and possible, else full."""
        listed = self._ledger.listed
        if (
            self._incremental is not None
            and listed is not None
            and self._since_full + 1 < self._full_every
            and self._incremental.possible
        ):
            result = await self._incremental.poll(listed)
            if result is not None:
                return result, "incremental"
        builder = self._ledger.builder()
        await self._source.list_versions(builder)
        return builder.result(), "full"

    def _failed(self, error: PollError, started: float) -> bool:
        elapsed = self._record_duration(started)
        self._errors[error.reason] += 1
        # The cause can quote the API (an error message echoing a token): masked here, once, for
        # the log line and for everyone who shows last_error (status page, ``once``).
        message = scrub(str(error.args[0]))
        log.warning(
            "poll failed target=%s reason=%s seconds=%.3f error=%s",
            self.target,
            error.reason.value,
            elapsed,
            message,
        )
        self._publish(
            replace(
                self._state,
                up=False,
                last_poll_end=self._clock(),
                last_poll_seconds=elapsed,
                last_error=message,
                last_error_reason=error.reason,
            )
        )
        return False

    def _record_duration(self, started: float) -> float:
        elapsed = time.monotonic() - started
        self._durations.observe(elapsed)
        self._note_overrun(elapsed)
        return elapsed

    def _note_overrun(self, elapsed: float) -> None:
        overran = elapsed > self.interval_seconds
        if overran and not self._overrunning:
            log.warning(
                "poll took %.1f s, longer than its %g s interval target=%s: polls now run back "
                "to back; a longer POLL_INTERVAL_SECONDS, or a bigger PAGE_SIZE or "
                "MAX_CONCURRENCY for a big project, makes them fit again",
                elapsed,
                self.interval_seconds,
                self.target,
            )
        elif self._overrunning and not overran:
            log.info("polls fit their interval again target=%s", self.target)
        self._overrunning = overran

    def _note_unrecognized(self, codes: frozenset[int]) -> None:
        new = codes - self._unrecognized
        if new:
            self._unrecognized |= new
            log.warning(
                "unrecognized status codes target=%s codes=%s (exported as status=code_<n>)",
                self.target,
                ",".join(str(code) for code in sorted(new)),
            )

    def _publish(self, state: TargetState) -> None:
        self._state = replace(
            state,
            poll_duration=self._durations.freeze(),
            errors=MappingProxyType(dict(self._errors)),
            api_requests=MappingProxyType(dict(self._requests)),
        )
        self._store.publish(self._state)
