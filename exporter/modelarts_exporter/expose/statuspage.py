"""The page an operator opens when an alert fires: a summary line, then per target (those down
first) is it polling, since when, what went wrong last, and what the last good snapshot says.
Plain server-rendered HTML, no external assets, every value escaped (target names and error texts
come from config and the API). It reloads itself about once a poll interval, so a page left open
on a wall screen stays current; the "Refresh" link does it at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from modelarts_exporter.cloud.statuses import Phase
from modelarts_exporter.snapshot.store import TargetState

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}.up{color:#176f2c;font-weight:bold}.down{color:#b00020;font-weight:bold}
code{background:#f6f6f6;padding:0 3px}
.summary{font-size:1.1em}
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
