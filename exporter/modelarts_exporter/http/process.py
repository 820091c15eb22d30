"""The HTTP server in a process of its own, fed every state the pollers publish.

Why a process: a poll is CPU-bound Python (parsing, validating and aggregating up to millions of
versions). Sharing one interpreter lock with it, a server answers at the pace of the lock's
hand-offs: scrape latency during a poll was many times the idle latency (docs/performance.md).
In a process of its own the server has its own lock and the kernel schedules it, and the poll
process lowers its priority, so a scrape never waits for a poll, not even for its CPU.

How: the exporter builds its server (the listening socket bound, so an address in use still
fails at start-up), its store, registry and app, then forks before any thread or poll exists.
The child serves from its copy of the store; the parent polls and feeds the child each change
of its store over a pipe: a sender thread sends the latest state of every target changed since
its last send, so a slow child never holds up a poll and never gets a backlog. The child exits
when the pipe closes (the parent stopped, or died); the parent stops, with an error, when the
child dies.
"""

from __future__ import annotations

import copyreg
import io
import logging
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import MappingProxyType
from typing import Any, Protocol

from modelarts_exporter.snapshot.store import StateStore, TargetState

log = logging.getLogger(__name__)

STOP_SECONDS = 5.0
"""How long the child has to finish its answers in flight and exit before it is killed."""
Changes = dict[str, TargetState | None]


class BoundServer(Protocol):
    """What is served: bound at construction, serving from :meth:`start`."""

    @property
    def port(self) -> int: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


def _mapping_proxy(items: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(items)


def _reduce_mapping_proxy(proxy: MappingProxyType[Any, Any]) -> tuple[Any, ...]:
    return _mapping_proxy, (dict(proxy),)


def dumps(changes: Changes) -> bytes:
    """States as bytes; pickle, because both ends are this program (the child only ever reads
    what its own parent wrote), and the states' read-only mappings need one extra rule."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table, MappingProxyType: _reduce_mapping_proxy}
    pickler.dump(changes)
    return buffer.getvalue()


def loads(data: bytes) -> Changes:
    changes: Changes = pickle.loads(data)  # noqa: S301 - written by our own parent, see dumps
    return changes


def apply(store: StateStore, changes: Changes) -> None:
    for target, state in changes.items():
        if state is None:
            store.remove(target)
        else:
            store.publish(state)


class _Feed:
    """The parent's end: remembers the latest change of each target until the sender thread
    has sent it (a later change of a target replaces one not yet sent)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._pending: Changes = {}
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._send, name="state-feed", daemon=True)
        self._thread.start()

    def offer(self, target: str, state: TargetState | None) -> None:
        with self._changed:
            self._pending[target] = state
            self._changed.notify()

    def _send(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._closed:
                    self._changed.wait()
                if self._closed:
                    return
                changes, self._pending = self._pending, {}
            try:
                self._connection.send_bytes(dumps(changes))
            except OSError:
                return  # the child is gone; the exporter hears of it from its sentinel

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join(timeout=STOP_SECONDS)
        self._connection.close()


class ServingProcess:
    """Serves ``server`` from a forked child that mirrors ``store``.

    Construct and :meth:`start` it before any other thread exists (a fork copies only the
    forking thread: a lock another thread held would stay locked in the child). ``niceness`` is
    added to the parent's priority after the fork, so that its polls yield the CPU to scrapes.
    ``on_exit`` runs in the child after it stopped serving (benchmarks read counters there).
    """

    def __init__(
        self,
        server: BoundServer,
        store: StateStore,
        *,
        niceness: int = 0,
        on_exit: Callable[[], None] = lambda: None,
    ) -> None:
        self._server = server
        self.port = server.port
        """The port listened on (read now: after the fork, this process closes its socket)."""
        self._store = store
        self._niceness = niceness
        self._on_exit = on_exit
        self._process: multiprocessing.process.BaseProcess | None = None
        self._feed: _Feed | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def sentinel(self) -> int:
        """Ready to read once the child has exited (for the event loop to watch)."""
        assert self._process is not None
        return self._process.sentinel

    def exitcode(self) -> int | None:
        """The child's exit code, once the sentinel said it ended (the pipe behind the sentinel
        closes a moment before the child can be reaped, so this waits for that moment)."""
        if self._process is None:
            return None
        self._process.join(timeout=STOP_SECONDS)
        return self._process.exitcode

    def start(self) -> None:
        context = multiprocessing.get_context("fork")
        reading, writing = context.Pipe(duplex=False)  # the child's end, this process's end
        self._process = context.Process(
            target=self._child, args=(reading, writing), name="http-server", daemon=True
        )
        self._process.start()
        reading.close()
        self._server.close()  # the child listens; a second copy here would only keep it open
        if self._niceness:
            os.nice(self._niceness)
        self._feed = _Feed(writing)
        self._store.watch(self._feed.offer)

    def _child(self, incoming: Connection, outgoing: Connection) -> None:
        # Ctrl-C reaches the whole process group: only the parent acts on it (and on SIGHUP),
        # then closes the pipe. SIGTERM keeps its default, so that the child can still be
        # stopped on its own (a parent that crashed terminates it from atexit).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        outgoing.close()  # else the pipe would never close when the parent dies
        self._server.start()
        try:
            while True:
                try:
                    changes = loads(incoming.recv_bytes())
                except (EOFError, OSError):
                    break
                apply(self._store, changes)
        finally:
            self._server.stop()
            self._on_exit()

    def stop(self) -> None:
        """Close the pipe, so the child stops serving and exits; kill it if it does not."""
        if self._feed is not None:
            self._feed.close()
        if self._process is None:
            return
        self._process.join(timeout=STOP_SECONDS)
        if self._process.exitcode is None:
            log.warning("the HTTP server process did not stop in time: killing it")
            self._process.kill()
            self._process.join()
