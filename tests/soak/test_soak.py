"""Chaos soak: thousands of polls against an evolving tenant while the simulator throws every fault
it knows at random. After every healthy poll the snapshot is the ground truth; after every failed
one the last good snapshot is still served, ``up`` is 0 and the reason counted is one that a fault
of that poll explains. At the end nothing leaked: threads, file descriptors, memory.

``SOAK_POLLS=20000 make test`` (or ``pytest tests/soak``) runs the long variant.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anyio
import pytest

from modelarts_exporter.cloud.client import RetryPolicy
from modelarts_exporter.cloud.errors import Reason
from modelarts_exporter.listing.v1 import MAX_PASSES
from modelarts_exporter.simulator import ABSENT, FaultKind, FaultRule, SimulatorServer
from modelarts_exporter.snapshot.aggregate import Snapshot
from support.simulation import InProcessExporter, SimFactory
from support.truth import Truth, assert_matches_truth, assert_snapshot_matches_truth, truth

pytestmark = pytest.mark.anyio
MakeExporter = Callable[..., InProcessExporter]

SOAK_POLLS = int(os.environ.get("SOAK_POLLS", "2000"))
WARM_UP_POLLS = max(min(100, SOAK_POLLS // 2), SOAK_POLLS // 10)
"""Polls before the baseline of descriptors, threads and memory: long enough for the connection
pool and for the malloc arenas that the simulator's connection threads (in this process) touch."""
REQUEST_TIMEOUT = 0.5
"""Per-read time-out: small, so drips and hangs cost little, and still ~200x a normal answer. At
0.25 s a CI run once saw a healthy answer take longer (a machine shared with other jobs), and a
time-out where only resets had fired."""

# (rule, probability, what a failed poll may then report). ``probability`` is per request; the
# rules are tried in order and the first that fires wins, so the mix fires on ~13% of requests.
FAULT_MIX: list[tuple[FaultRule, frozenset[Reason]]] = [
    (FaultRule(FaultKind.THROTTLE, probability=0.012), frozenset({Reason.THROTTLED})),
    (FaultRule(FaultKind.THROTTLE_MODELARTS, probability=0.01), frozenset({Reason.THROTTLED})),
    (FaultRule(FaultKind.BUSY_500, probability=0.01), frozenset({Reason.THROTTLED})),
    (FaultRule(FaultKind.SERVER_ERROR, probability=0.01), frozenset({Reason.SERVER_ERROR})),
    (FaultRule(FaultKind.BAD_GATEWAY_HTML, probability=0.01), frozenset({Reason.SERVER_ERROR})),
    (FaultRule(FaultKind.MALFORMED_JSON, probability=0.006), frozenset({Reason.INVALID_RESPONSE})),
    (FaultRule(FaultKind.API_ERROR, probability=0.006), frozenset({Reason.API_ERROR})),
    *(
        (
            FaultRule(FaultKind.WRONG_SHAPE, probability=0.002, shape=shape),
            frozenset({Reason.INVALID_RESPONSE}),
        )
        for shape in (
            "versions_string",
            "missing_total_count",
            "top_level_array",
            "versions_not_objects",
        )
    ),
    (FaultRule(FaultKind.EMPTY_BODY, probability=0.006), frozenset({Reason.INVALID_RESPONSE})),
    (FaultRule(FaultKind.RESET, probability=0.012), frozenset({Reason.CONNECTION})),
    (FaultRule(FaultKind.TRUNCATED, probability=0.01), frozenset({Reason.CONNECTION})),
    (
        FaultRule(
            FaultKind.SLOW_DRIP,
            probability=0.0015,
            drip_seconds=2.0,
            drip_interval_seconds=2 * REQUEST_TIMEOUT,
        ),
        frozenset({Reason.TIMEOUT}),
    ),
    (
        FaultRule(FaultKind.HANG, probability=0.0015, hang_seconds=2 * REQUEST_TIMEOUT),
        frozenset({Reason.TIMEOUT}),
    ),
    # Not an error, unless the listing moves in every pass of a poll (then invalid_response).
    (FaultRule(FaultKind.SHIFT, probability=0.015, shift_count=1), frozenset()),
]
ALL_FAULT_REASONS = frozenset().union(*(reasons for _, reasons in FAULT_MIX))
REASONS_OF: dict[FaultKind, frozenset[Reason]] = {}
for _rule, _reasons in FAULT_MIX:
    REASONS_OF[_rule.kind] = REASONS_OF.get(_rule.kind, frozenset()) | _reasons


# --- what the process holds ------------------------------------------------------------------


def _unix_inodes() -> set[str]:
    lines = Path("/proc/self/net/unix").read_text().splitlines()[1:]
    return {line.split()[6] for line in lines}


def _tcp_ports() -> dict[str, tuple[int, int]]:
    """Inode to (local port, remote port) of every TCP socket in this network namespace."""
    ports: dict[str, tuple[int, int]] = {}
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
            ports[fields[9]] = (local, remote)
    return ports


def socket_inodes() -> set[str]:
    return {
        target[8:-1]
        for fd in Path("/proc/self/fd").iterdir()
        if (target := _readlink(fd)).startswith("socket:[")
    }


def _readlink(fd: Path) -> str:
    try:
        return str(fd.readlink())
    except FileNotFoundError:  # the descriptor iterdir itself used
        return ""


def exporter_fds(sim_port: int, older: set[str]) -> tuple[int, int, int, int]:
    """Descriptors open in this process that are not the simulator's: (files and pipes, unix
    sockets such as the event loop's self-pipe, the exporter's connections to the simulator,
    other TCP sockets). The simulator shares the process: sockets whose local port is its port
    are its own. A socket the simulator reset is gone from the TCP table until the pool closes
    it: one that is not in ``older`` (opened before the soak) counts as a connection."""
    ports, unix = _tcp_ports(), _unix_inodes()
    files = local = pooled = other = 0
    for fd in Path("/proc/self/fd").iterdir():
        target = _readlink(fd)
        inode = target[8:-1] if target.startswith("socket:[") else None
        if inode is None:
            files += bool(target)
        elif inode in unix:
            local += 1
        elif inode in ports:
            if ports[inode][1] == sim_port:
                pooled += 1
            elif ports[inode][0] != sim_port:
                other += 1
        elif inode in older:
            other += 1
        else:
            pooled += 1
    return files, local, pooled, other


async def settled() -> None:
    """Let the simulator finish what it still does with connections the exporter gave up on
    (hangs sleep, reset sockets are released), so that only the exporter's sockets are counted."""
    await anyio.sleep(4 * REQUEST_TIMEOUT)


def open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def exporter_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if not t.name.startswith("sim-"))


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


# --- the tenant between polls ----------------------------------------------------------------


def evolve(sim: SimulatorServer, rng: random.Random, records: list[dict[str, object]]) -> None:
    """Move the tenant on between two polls: time passes (versions start, finish, get created),
    and now and then a version is deleted, forced into a status, or added with odd fields."""
    tenant = sim.tenant
    tenant.advance(rng.uniform(0, 60))
    ids = [int(record["version_id"]) for record in records]  # type: ignore[call-overload]
    if len(ids) > 320 and rng.random() < 0.5:
        deleted = rng.choice(ids)
        tenant.delete_version(deleted)
        ids.remove(deleted)
    if rng.random() < 0.1:
        tenant.set_status(rng.choice(ids), rng.choice([7, 8, 9, 10, 11, 13, 42]))
    if rng.random() < 0.02:
        tenant.add_version(
            status=rng.choice([0, 8, 22, 99]),
            pool_id=rng.choice([None, "pool-odd"]),
            flavor_code=ABSENT,
            gpu_num=rng.choice([ABSENT, None, 0, 512]),
        )


@pytest.fixture
def quiet_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Only errors are recorded: keeping thousands of lines (a warning per failed poll, debug
    lines per request) would measure pytest's log capture instead of the exporter's memory."""
    for name in (None, "modelarts_exporter", "httpx", "httpcore"):
        caplog.set_level(logging.ERROR, logger=name)
    yield caplog


@pytest.fixture
async def unhandled(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[str]]:
    """Exceptions nobody handled: in a thread, or in a task or callback of the event loop."""
    seen: list[str] = []
    monkeypatch.setattr(
        threading, "excepthook", lambda args: seen.append(f"thread: {args.exc_value!r}")
    )
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: seen.append(f"loop: {context.get('message')}"))
    yield seen
    loop.set_exception_handler(previous)


@pytest.mark.timeout(600 + SOAK_POLLS // 2)  # ~40 ms a poll when quiet, 4x that on a busy machine
async def test_chaos_soak_keeps_truth_or_last_good_snapshot_and_leaks_nothing(
    simulator: SimFactory,
    exporter_for: MakeExporter,
    quiet_logs: pytest.LogCaptureFixture,
    unhandled: list[str],
) -> None:
    threads_at_start = exporter_threads()
    fds_at_start = open_fds()
    older = socket_inodes()

    sim = simulator(
        size=300,
        seed=23,
        tenant_options={"active_fraction": 0.2, "creation_rate_per_s": 0.01},
    )
    exporter = exporter_for(
        sim,
        page_size=50,  # 6-8 pages a poll
        max_concurrency=4,
        max_retries=1,
        request_timeout_seconds=REQUEST_TIMEOUT,
        poll_timeout_seconds=30,
    )
    # One quick retry, so that retried faults are part of the soak without waiting for backoff.
    exporter.target.client._retry = RetryPolicy(max_retries=1, base_delay=0.001, max_delay=0.01)
    for rule, _ in FAULT_MIX:
        sim.faults.add(rule)
    poller = exporter.target.poller
    rng = random.Random(5)

    last_good: Snapshot | None = None
    outcomes: Counter[str] = Counter()
    requests = fired_total = 0
    baseline: tuple[tuple[int, int, int, int], list[str], int] | None = None
    polling = 0.0
    started = time.monotonic()
    for number in range(1, SOAK_POLLS + 1):
        if number == WARM_UP_POLLS:
            await settled()
            baseline = (exporter_fds(sim.port, older), exporter_threads(), rss_bytes())
        if number % 250 == 125:  # the first page and its retry hang: now and then a sure time-out
            first_page = FaultRule(
                FaultKind.HANG,
                times=2,
                hang_seconds=2 * REQUEST_TIMEOUT,
                when=lambda request: not request.offset,
            )
            sim.faults.add(first_page)
        before = poller.state
        fired_before = sim.faults.fired
        poll_started = time.monotonic()
        ok = await exporter.poll()
        polling += time.monotonic() - poll_started
        fired = sim.faults.fired - fired_before
        state = poller.state
        records = sim.tenant.records_in("0")
        if ok:
            outcomes["healthy"] += 1
            expected: Truth = truth(records)
            assert state.up and state.snapshot is not None, number
            try:
                assert_snapshot_matches_truth(state.snapshot, expected)
            except AssertionError as mismatch:
                raise AssertionError(f"poll {number}, faults {dict(fired)}") from mismatch
            if number % 250 == 0:  # now and then through the collector and exposition too
                assert_matches_truth(exporter.samples(), expected)
            last_good = state.snapshot
        else:
            reason = state.last_error_reason
            assert reason is not None
            outcomes[reason.value] += 1
            allowed = frozenset().union(*(REASONS_OF[kind] for kind in fired))
            if fired[FaultKind.SHIFT] >= MAX_PASSES:  # the listing moved in every pass
                allowed |= {Reason.INVALID_RESPONSE}
            assert reason in allowed, (number, reason, state.last_error, dict(fired))
            assert not state.up
            assert state.snapshot is last_good, number  # the last good one, untouched
            assert state.errors[reason] == before.errors.get(reason, 0) + 1
            assert sum(state.errors.values()) == sum(before.errors.values()) + 1
        stats = sim.stats
        requests += stats.requests
        fired_total += sum(fired.values())
        sim.reset_stats()  # the simulator's own request log must not grow for the whole soak
        evolve(sim, rng, records)
    elapsed = time.monotonic() - started

    await settled()
    fds, threads, rss = exporter_fds(sim.port, older), exporter_threads(), rss_bytes()
    assert baseline is not None
    fds_before, threads_before, rss_before = baseline
    pool_size = 4
    report = (
        f"polls={SOAK_POLLS} seconds={elapsed:.1f} (polling {polling:.1f}) requests={requests} "
        f"faulted={fired_total} ({fired_total / requests:.1%}) outcomes={dict(outcomes)} "
        f"fds (files, unix sockets, connections to the API, other)={fds_before}->{fds} "
        f"threads={len(threads_before)}->{len(threads)} "
        f"rss={rss_before / 2**20:.1f}->{rss / 2**20:.1f} MiB "
        f"({(rss - rss_before) / rss_before:+.1%})"
    )
    print(report)
    assert fired_total / requests >= 0.10, report
    assert outcomes["healthy"] >= SOAK_POLLS // 2, report
    assert set(outcomes) == {"healthy"} | {r.value for r in ALL_FAULT_REASONS}, report
    assert not unhandled, unhandled
    assert not quiet_logs.records, [r.getMessage() for r in quiet_logs.records]
    # Files and local sockets: exactly as many; other sockets (of earlier tests): no more.
    # Connections to the API: never more than the pool holds (how many are open at one moment
    # depends on which faults closed which connection).
    assert fds[:2] == fds_before[:2] and fds[3] <= fds_before[3], report
    assert fds[2] <= pool_size and fds_before[2] <= pool_size, report
    assert threads == threads_before, report
    assert rss < 1.10 * rss_before, report

    # Closing the exporter's client and stopping the simulator returns to where the test began.
    await exporter.target.client.aclose()
    sim.stop()
    assert open_fds() == fds_at_start
    assert exporter_threads() == threads_at_start
