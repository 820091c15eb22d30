"""The page an operator opens when an alert fires: a summary line, then per target (those down
first) is it polling, since when, what went wrong last, what the last good snapshot says, which
job has waited longest in each active phase (the stuck one, named), and how many cards each
resource pool has free.
Plain server-rendered HTML, no external assets, every value escaped (target names and error texts
come from config and the API). It reloads itself about once a poll interval, so a page left open
on a wall screen stays current; the "Refresh" link does it at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from modelarts_exporter.cloud.quantity import CARD_KINDS
from modelarts_exporter.cloud.statuses import ACTIVE_PHASES, Phase
from modelarts_exporter.snapshot.pool_state import Cards, PoolRecord, PoolState
from modelarts_exporter.snapshot.store import TargetState

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}.up{color:#176f2c;font-weight:bold}.down{color:#b00020;font-weight:bold}
code{background:#f6f6f6;padding:0 3px}
.summary{font-size:1.1em}
td.n{text-align:right}
"""
MIN_REFRESH_SECONDS = 5
MAX_REFRESH_SECONDS = 300
"""Bounds of the self-reload: no faster than a scrape could change it, no slower than 5 min."""


def _when(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return "never"
    moment = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{moment} ({max(0.0, now - timestamp):.0f} s ago)"


def _count(n: int, noun: str) -> str:
    """``1 GPU``, ``0 GPUs``, ``8 NPUs``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _age(seconds: float) -> str:
    """``42 s``, ``17 min``, ``3 h 05 min``, ``2 d 4 h``: an age read at a glance."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric: frozenset[int]) -> str:
    """A table of cells already escaped; the columns in ``numeric`` are right-aligned."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def _stuck_jobs(state: TargetState) -> str:
    """The oldest job of each active phase, as ``oldest_job_seconds`` names it."""
    snap = state.snapshot
    if snap is None or not snap.oldest_jobs:
        return ""
    rows = [
        (phase.value, _age(job.seconds), f"<code>{escape(job.job_id)}</code>", escape(job.job_name))
        for phase in ACTIVE_PHASES
        if (job := snap.oldest_jobs.get(phase)) is not None
    ]
    return "<h3>Oldest job per phase</h3>" + _table(
        ("Phase", "Waiting for", "Job id", "Job name"), rows, frozenset({1})
    )


def _cards(cards: Cards | None) -> str:
    """``6 / 16`` free of total, ``? / 16`` when the source does not tell what is free."""
    if cards is None:
        return "none"
    free = "?" if cards.free is None else f"{cards.free:g}"
    return f"{free} / {cards.capacity:g}"


def _pool_row(pool: PoolRecord) -> tuple[str, ...]:
    by_kind = {kind: (cards, source) for (kind, source), cards in pool.cards.items()}
    sources = sorted({source for _, source in by_kind.values()})
    phase = ", ".join(sorted(pool.phases))
    bad = sum(n for (_, node_state), n in pool.nodes.items() if node_state != "available")
    return (
        f"<code>{escape(pool.pool_id)}</code>",
        escape(pool.pool_name),
        escape(phase),
        *(_cards(by_kind[kind][0] if kind in by_kind else None) for kind in CARD_KINDS),
        str(bad),
        escape(", ".join(sources) or "none"),
    )


def _pools(pools: PoolState | None, now: float) -> str:
    """Free and total cards per pool, and how pool polling goes."""
    if pools is None:
        return ""
    if not pools.enabled:
        return "<h3>Resource pools</h3><p>Pool polling is off: the pool API answered 403.</p>"
    if pools.last_success is None and pools.last_error is None:
        return "<h3>Resource pools</h3><p>Pool polling has not finished a poll yet.</p>"
    status = '<span class="up">up</span>' if pools.up else '<span class="down">down</span>'
    line = f"<p>Pool polling {status}, last success {_when(pools.last_success, now)}"
    if pools.last_error is not None:
        line += f"; last error: {escape(pools.last_error)}"
    line += ".</p>"
    snap = pools.snapshot
    if snap is None or not snap.pools:
        return f"<h3>Resource pools</h3>{line}"
    head = (
        "Pool",
        "Name",
        "Phase",
        "GPUs free / total",
        "NPUs free / total",
        "Nodes not available",
        "Source",
    )
    rows = [_pool_row(pool) for pool in snap.pools]
    return f"<h3>Resource pools</h3>{line}" + _table(head, rows, frozenset({3, 4, 5}))


def _target_rows(state: TargetState, now: float) -> str:
    status = '<span class="up">up</span>' if state.up else '<span class="down">down</span>'
    snap = state.snapshot
    if snap is not None:
        phases = snap.phase_totals()
        by_phase = ", ".join(f"{phase.value} {phases[phase]}" for phase in Phase if phases[phase])
        running = snap.accelerators_in(Phase.RUNNING)
        pending = snap.accelerators_in(Phase.PENDING)
        accelerators = (
            f"running: {_count(running.gpus, 'GPU')}, {_count(running.npus, 'NPU')}; "
            f"pending: {_count(pending.gpus, 'GPU')}, {_count(pending.npus, 'NPU')}"
        )
        versions = f"{snap.version_count} ({by_phase or 'none'})"
    else:
        accelerators = versions = "no successful poll yet"
    duration = "n/a" if state.last_poll_seconds is None else f"{state.last_poll_seconds:.2f} s"
    error = "none"
    if state.last_error is not None and state.last_error_reason is not None:
        error = f"<code>{escape(state.last_error_reason.value)}</code> {escape(state.last_error)}"
    rows = [
        ("Status", status),
        ("Project", escape(state.project_id)),
        ("API", escape(state.api_version)),
        ("Last poll", f"{_when(state.last_poll_end, now)}, took {duration}"),
        ("Last success", _when(state.last_success, now)),
        ("Last error", error),
        ("Versions", escape(versions)),
        ("Accelerators", escape(accelerators)),
    ]
    cells = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    return (
        f'<h2 id="target-{escape(state.target)}">{escape(state.target)}</h2><table>{cells}</table>'
        f"{_stuck_jobs(state)}{_pools(state.pools, now)}"
    )


def _summary(states: Sequence[TargetState]) -> str:
    """``3 targets: 1 down (b), 2 up.`` — what the reader came for, before any detail."""
    if not states:
        return "No targets configured."
    down = [s.target for s in states if not s.up]
    line = f"{_count(len(states), 'target')}: "
    if down:
        names = ", ".join(down[:5]) + (f" and {len(down) - 5} more" if len(down) > 5 else "")
        line += f"{len(down)} down ({names}), "
    return escape(f"{line}{len(states) - len(down)} up.")


def refresh_seconds(states: Sequence[TargetState]) -> int:
    """How often the page reloads itself: the shortest poll interval, within the bounds."""
    shortest = min((s.interval_seconds for s in states), default=MAX_REFRESH_SECONDS)
    return int(min(MAX_REFRESH_SECONDS, max(MIN_REFRESH_SECONDS, shortest)))


def render_status_page(states: Sequence[TargetState], *, now: float, version: str) -> str:
    # Down first: the target an alert is about is the one the reader looks for.
    ordered = sorted(states, key=lambda s: (s.up, s.target))
    targets = "".join(_target_rows(s, now) for s in ordered)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="refresh" content="{refresh_seconds(states)}">'
        "<title>ModelArts exporter</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>ModelArts exporter <small>{escape(version)}</small></h1>"
        f'<p class="summary">{_summary(ordered)}</p>'
        '<p><a href="/">Refresh</a> · <a href="/metrics">Metrics</a> · '
        '<a href="/healthz">Health</a> · <a href="/readyz">Readiness</a></p>'
        f"{targets}"
        "</body></html>"
    )
