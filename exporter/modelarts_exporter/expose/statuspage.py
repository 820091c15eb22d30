"""The page an operator opens when an alert fires: per target, is it polling, since when, what
went wrong last, and what the last good snapshot says. Plain server-rendered HTML, no external
assets, every value escaped (target names and error texts come from config and the API)."""

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
"""


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


def render_status_page(states: Sequence[TargetState], *, now: float, version: str) -> str:
    targets = "".join(_target_rows(s, now) for s in sorted(states, key=lambda s: s.target))
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>ModelArts exporter</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>ModelArts exporter <small>{escape(version)}</small></h1>"
        '<p><a href="/metrics">Metrics</a> · <a href="/healthz">Health</a> · '
        '<a href="/readyz">Readiness</a></p>'
        f"{targets or '<p>No targets configured.</p>'}"
        "</body></html>"
    )
