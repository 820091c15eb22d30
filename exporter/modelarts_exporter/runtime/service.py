"""The ``serve`` command's lifetime: scheduler, pollers and the HTTP server's process, and
taking it all down again on SIGTERM/SIGINT, cancelling polls in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from datetime import datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from modelarts_exporter import __version__
from modelarts_exporter.config.errors import ConfigError
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.target import TargetSettings
from modelarts_exporter.config.targets import empty_shard, every_target, of_shard
from modelarts_exporter.expose.processes import process_registry
from modelarts_exporter.http.app import WebApp
from modelarts_exporter.http.guard import protect
from modelarts_exporter.http.process import ServingProcess
from modelarts_exporter.http.server import HttpServer
from modelarts_exporter.http.webconfig import WebConfig
from modelarts_exporter.runtime.wiring import Target, build_registry, build_target, open_web_config
from modelarts_exporter.snapshot.store import StateStore

log = logging.getLogger(__name__)
POOL_JOB = "#pools"
"""Appended to a target's name for its pool poll's job (no target name holds a ``#``)."""

POLL_NICENESS = 10
"""Added to the polling process's priority by ``serve``, so that under CPU contention scrapes
(served by a process of their own) come first and polls, which nobody waits for, second."""


class Service:
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
        self.web = open_web_config(settings)
        web_status = self.web.status if self.web is not None else lambda: None
        self.registry = build_registry(
            self.store, (settings.shard, settings.total_shards), web_status
        )
        every = every_target(settings)
        self._initial = of_shard(every, settings)
        if not self._initial:
            log.warning("%s", empty_shard(settings, len(every)))
        # A sharded replica left with no target is idle, whether it started so or a reload made
        # it so: ready, so that a rollout does not wait for it for good.
        idle = None
        if settings.total_shards > 1 or not self._initial:
            idle = f"shard {settings.shard} of {settings.total_shards}"
        self.app = WebApp(
            self.store,
            self.registry,
            ready_intervals=settings.ready_intervals,
            version=__version__,
            web_config=web_status,
            live=process_registry(os.getpid()),  # this process polls; its child will serve
            idle_shard=idle,
        )
        self._targets: dict[str, tuple[TargetSettings, Target]] = {}
        self._in_flight: dict[str, asyncio.Task[Any]] = {}
        self._stopping = asyncio.Event()
        self._scheduler = AsyncIOScheduler()
        self._reloading: asyncio.Task[None] | None = None

    async def _poll(self, name: str, target: Target) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight[name] = task
        started = datetime.now().astimezone()
        try:
            await target.poller.poll()
        except asyncio.CancelledError:
            # Only stopping (or removing the target) cancels a poll; the scheduler would log
            # this as a job failure.
            log.info("poll cancelled target=%s", name)
            return
        finally:
            self._in_flight.pop(name, None)
        # Each poll books the next when it ends, rather than an interval trigger firing on its
        # own: a poll slower than its interval delays the next instead of skipping it with a
        # scheduler warning per missed run (the poller says it once, with the remedy).
        if self._targets.get(name, (None, None))[1] is target and not self._stopping.is_set():
            due = started + timedelta(seconds=target.poller.interval_seconds)
            self._schedule(name, target, max(due, datetime.now().astimezone()))

    def _schedule(self, name: str, target: Target, when: datetime) -> None:
        self._scheduler.add_job(
            self._poll,
            "date",
            args=[name, target],
            run_date=when,
            id=name,
            replace_existing=True,
            misfire_grace_time=None,
            # The poll that books the next one still counts as running until it has returned;
            # polls cannot overlap anyway, as only an ending poll books the next.
            max_instances=2,
        )

    def _add(self, settings: TargetSettings) -> None:
        target = build_target(settings, self.store)
        self._targets[settings.name] = (settings, target)
        self._schedule(settings.name, target, datetime.now().astimezone())
        if target.pools is not None:
            self._schedule_pools(settings.name, target, datetime.now().astimezone())

    # Resource pools: a job of their own per target, booked the way job polls are.
    async def _poll_pools(self, name: str, target: Target) -> None:
        assert target.pools is not None
        key = name + POOL_JOB
        task = asyncio.current_task()
        assert task is not None
        self._in_flight[key] = task
        started = datetime.now().astimezone()
        try:
            await target.pools.poll()
        except asyncio.CancelledError:
            log.info("pool poll cancelled target=%s", name)
            return
        finally:
            self._in_flight.pop(key, None)
        current = self._targets.get(name, (None, None))[1] is target
        if current and target.pools.enabled and not self._stopping.is_set():
            due = started + timedelta(seconds=target.pools.interval_seconds)
            self._schedule_pools(name, target, max(due, datetime.now().astimezone()))

    def _schedule_pools(self, name: str, target: Target, when: datetime) -> None:
        self._scheduler.add_job(
            self._poll_pools,
            "date",
            args=[name, target],
            run_date=when,
            id=name + POOL_JOB,
            replace_existing=True,
            misfire_grace_time=None,
            max_instances=2,
        )

    async def _remove(self, name: str) -> None:
        _, target = self._targets.pop(name)
        for job in (name, name + POOL_JOB):
            with contextlib.suppress(JobLookupError):  # not booked while its poll runs
                self._scheduler.remove_job(job)
        for key in (name, name + POOL_JOB):
            task = self._in_flight.get(key)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await target.aclose()
        self.store.remove(name)

    async def reload(self) -> None:
        """Apply the config file as it is now; a broken file changes nothing."""
        try:
            every = every_target(self.settings)
        except ConfigError as error:
            log.error(
                "reload failed, keeping the current targets: %s", str(error).replace("\n", "; ")
            )
            return
        wanted = {target.name: target for target in of_shard(every, self.settings)}
        if not wanted and self._targets:
            log.warning("%s", empty_shard(self.settings, len(every)))
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
