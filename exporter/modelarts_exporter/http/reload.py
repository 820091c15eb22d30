"""The web configuration as it is now: certificates renewed by cert-manager and users changed by
an operator are picked up without a restart, as exporter-toolkit does.

Every new connection (for its TLS context) and every request (for its password check) asks
:class:`LiveWebConfig`; at most once per interval, that looks at the configuration file and the
files it names (modification time, size, inode: a file replaced by a rename or a Kubernetes
Secret's symlink swap changes inode) and, when one of them changed, reads the whole set again.

A new configuration that cannot be used — not YAML, a missing key, a key that does not match
its certificate, a hash that is not bcrypt — never takes the server down nor opens it up: the
last good configuration stays in use, one warning names the cause (once per cause, not per
request), and :class:`ReloadStatus` (exported as metrics) says so until a good one arrives. So
does a configuration that would switch between HTTP and HTTPS: the listening socket keeps the
mode it started with, and Prometheus' scheme would have to change with it anyway.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from modelarts_exporter.http.guard import Guard
from modelarts_exporter.http.webconfig import WebConfig, WebConfigError, load
from modelarts_exporter.snapshot.store import ReloadStatus

log = logging.getLogger(__name__)

RELOAD_INTERVAL_SECONDS = 1.0
"""How often, at most, the files are looked at: a few ``stat`` calls per second, under load."""

_Signature = tuple[int, int, int] | None
"""(mtime_ns, size, inode) of a file; ``None`` when it cannot be read."""


def _signature(path: Path) -> _Signature:
    try:
        stat = path.stat()  # follows symlinks: a Secret's files are links into a swapped dir
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class LiveWebConfig:
    """The web configuration in ``path``, read again when it or a file it names changes;
    thread-safe. Reading at construction raises :class:`WebConfigError`, as start-up should."""

    def __init__(
        self,
        path: Path,
        *,
        interval: float = RELOAD_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self._interval = interval
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        config = load(path)
        self._signatures = self._sign({}, config.files)
        self._guard = Guard.of(config)
        self._status = ReloadStatus(True, wall())
        self._checked = clock()
        self._failure: str | None = None
        """The cause last warned about, so that a file that stays broken is warned about once."""

    def guard(self) -> Guard:
        """For a request: the configuration and password check to apply."""
        self._refresh()
        return self._guard

    def tls(self) -> ssl.SSLContext:
        """For a new connection: its TLS context. Only for a server started with TLS (the mode
        never changes while serving)."""
        self._refresh()
        context = self._guard.config.tls
        assert context is not None, "asked for TLS by a server started without it"
        return context

    def status(self) -> ReloadStatus:
        return self._status

    @property
    def config(self) -> WebConfig:
        """The configuration in use (not looking at the files)."""
        return self._guard.config

    def _refresh(self) -> None:
        if self._clock() - self._checked < self._interval:
            return
        # One thread looks; the others go on with the configuration in use rather than wait.
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._clock() - self._checked >= self._interval:
                self._check()
                self._checked = self._clock()
        finally:
            self._lock.release()

    def _check(self) -> None:
        # Signatures are taken before reading, so that a file changing while it is read is
        # seen as changed at the next look, not lost.
        before = self._sign({}, self._signatures)
        # While the files are broken, every look reads them again: a file the broken
        # configuration names (a key copied in after the file naming it) has no signature yet,
        # and files put back exactly as they were must end the failure too.
        if before == self._signatures and self._failure is None:
            return
        try:
            config = load(self._path)
            self._check_mode(config)
        except WebConfigError as error:
            self._status = ReloadStatus(False, self._status.last_success)
            if str(error) != self._failure:
                self._failure = str(error)
                log.warning("web config reload failed, keeping the last good one: %s", error)
            return
        self._signatures = self._sign(before, config.files)
        self._guard = Guard.of(config, self._guard)
        self._status = ReloadStatus(True, self._wall())
        self._failure = None
        log.info("web config reloaded %s", config.describe())

    def _check_mode(self, config: WebConfig) -> None:
        serving_tls = self._guard.config.tls is not None
        if (config.tls is not None) != serving_tls:
            now, then = ("HTTPS", "HTTP") if serving_tls else ("HTTP", "HTTPS")
            raise WebConfigError(
                f"{self._path}: switching from {now} to {then} needs a restart of the exporter"
            )

    @staticmethod
    def _sign(known: Mapping[Path, _Signature], paths: Iterable[Path]) -> dict[Path, _Signature]:
        return {path: known[path] if path in known else _signature(path) for path in paths}
