"""One self-contained HTML page per execution: the graph the Step Functions console draws, coloured by
what happened, beside the event history, the bookings and the saga log.

Reads only the ASL and `GetExecutionHistory` output (plus the runner's report of the tables), so the
same page comes out for an embedded and a deployed execution. No network: inline SVG and CSS.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saga.catalogue import BOOKINGS, COMPENSATIONS, RETRIABLES, Step
from sagatools.asl import successors
from sagatools.view.history import StateRun, StateStatus, state_runs
from sagatools.view.recovery import attention_line, forward_summary

if TYPE_CHECKING:
    from sagatools.results import SagaResult


class Shown(StrEnum):
    """How a state is drawn."""

    SUCCEEDED = "succeeded"
    RETRIED = "retried"  # succeeded after retries
    CAUGHT = "caught"  # failed, and a Catch moved on
    FAILED = "failed"  # a Fail state entered, or the execution ended in it
    RUNNING = "running"
    NOT_ENTERED = "not-entered"


COLOURS = {
    Shown.SUCCEEDED: ("#2e7d32", "#e8f5e9"),
    Shown.RETRIED: ("#ef6c00", "#fff3e0"),
    Shown.CAUGHT: ("#c62828", "#ffebee"),
    Shown.FAILED: ("#c62828", "#ffcdd2"),
    Shown.RUNNING: ("#1565c0", "#e3f2fd"),
    Shown.NOT_ENTERED: ("#9e9e9e", "#fafafa"),
}
BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 210, 64, 60, 36, 30


@dataclass(frozen=True)
class StateView:
    name: str
    state_type: str
    shown: Shown
    entered: int
    retries: int
    error: str | None


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def normalise(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History events with datetime timestamps (recorded histories carry ISO strings)."""
    return [{**event, "timestamp": _as_datetime(event["timestamp"])} for event in events]


def state_views(definition: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, StateView]:
    runs: dict[str, list[StateRun]] = {}
    for run in state_runs(normalise(events)):
        runs.setdefault(run.name, []).append(run)
    views = {}
    for name, state in definition["States"].items():
        entered = runs.get(name, [])
        if not entered:
            views[name] = StateView(name, state["Type"], Shown.NOT_ENTERED, 0, 0, None)
            continue
        last = entered[-1]
        retries = sum(run.retries for run in entered)
        if last.status is StateStatus.RUNNING:
            shown = Shown.RUNNING
        elif last.status is StateStatus.CAUGHT:
            shown = Shown.CAUGHT
        elif last.status is StateStatus.FAILED or state["Type"] == "Fail":
            shown = Shown.FAILED
        else:
            shown = Shown.RETRIED if retries else Shown.SUCCEEDED
        views[name] = StateView(name, state["Type"], shown, len(entered), retries, last.error)
    return views


def layout(definition: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(column, row) per state: the booking chain, its compensations beside it row by row, the rest after.

    The booking chain is followed from StartAt through Next; each state's row is the row of the booking
    it runs (a compensation beside its request); terminal states sit below (Succeed) or above (Fail) their lane.
    """
    states = definition["States"]
    chain, name = [], definition["StartAt"]
    while name in states and states[name]["Type"] == "Task" and name not in chain:
        chain.append(name)
        name = states[name].get("Next", "")
    row_of_resource = {step.resource: index + 1 for index, step in enumerate(BOOKINGS)}
    positions: dict[str, tuple[int, int]] = {booking: (0, index + 1) for index, booking in enumerate(chain)}
    lanes: dict[str, int] = {}
    for name in _breadth_first(definition):
        if name in positions:
            continue
        lane_and_step = _lane(name)
        if lane_and_step is not None:
            lane, step = lane_and_step
            if lane.startswith("forward"):
                # Forward recovery's way out sits under the chain, beside the success: clear of the compensations.
                column = 1 if lane == "forward-choice" else 2
                while (column, len(chain) + 1) in positions.values():
                    column += 2
                positions[name] = (column, len(chain) + 1)
                continue
            column = lanes.setdefault(lane, len(lanes) + 1)
            positions[name] = (column, row_of_resource[step.resource])
    for name, state in states.items():
        if name in positions:
            continue
        # a terminal: below the chain it ends, or above the lane that leads to it
        feeders = [other for other, s in states.items() if name in successors(s) and other in positions]
        if state["Type"] == "Succeed" or not feeders:
            column = positions[feeders[0]][0] if feeders else 0
            row = len(chain) + 1 if state["Type"] == "Succeed" else 0
        elif all(positions[feeder][1] == len(chain) + 1 for feeder in feeders):
            column, row = positions[feeders[0]][0], len(chain) + 2  # below the forward way out
        else:
            column = positions[feeders[0]][0]
            row = 0
        while (column, row) in positions.values():
            column += 1
        positions[name] = (column, row)
    return positions


def _lane(state: str) -> tuple[str, Step] | None:
    """Which lane of compensations a state belongs to (cancel, flag stuck, cancel after stuck), and its step."""
    for step in COMPENSATIONS:
        for lane, name in (("cancel", step.state), ("flag", step.stuck_state), ("after-stuck", step.after_stuck_state)):
            if state == name:
                return lane, step
    for step in RETRIABLES:  # forward recovery's way out, beside the step it leaves
        for lane, name in (("forward-choice", step.failed_state), ("forward-flag", step.unfinished_state)):
            if state == name:
                return lane, step
    return None


def _breadth_first(definition: dict[str, Any]) -> list[str]:
    """State names in the order a breadth-first walk from StartAt meets them, then any unreachable."""
    states, order, queue = definition["States"], [], [definition["StartAt"]]
    while queue:
        name = queue.pop(0)
        if name in order or name not in states:
            continue
        order.append(name)
        queue.extend(successors(states[name]))
    return order + [name for name in states if name not in order]


def _centre(position: tuple[int, int]) -> tuple[float, float]:
    column, row = position
    return MARGIN + column * (BOX_W + GAP_X) + BOX_W / 2, MARGIN + row * (BOX_H + GAP_Y) + BOX_H / 2


def _edge(start: tuple[float, float], end: tuple[float, float]) -> tuple[float, float, float, float]:
    """From the border of one box to the border of the other, along the line between their centres."""
    (x1, y1), (x2, y2) = start, end
    dx, dy = x2 - x1, y2 - y1

    def clip(scale_sign: float) -> tuple[float, float]:
        tx = (BOX_W / 2) / abs(dx) if dx else float("inf")
        ty = (BOX_H / 2) / abs(dy) if dy else float("inf")
        t = min(tx, ty)
        return t * dx * scale_sign, t * dy * scale_sign

    ox, oy = clip(1)
    return x1 + ox, y1 + oy, x2 - ox, y2 - oy


def graph_svg(definition: dict[str, Any], views: dict[str, StateView], path: list[str]) -> str:
    positions = layout(definition)
    columns = max(c for c, _ in positions.values()) + 1
    rows = max(r for _, r in positions.values()) + 1
    width, height = 2 * MARGIN + columns * BOX_W + (columns - 1) * GAP_X, 2 * MARGIN + rows * (BOX_H + GAP_Y)
    taken = set(itertools.pairwise(path))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="state machine graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" markerHeight="9" '
        'markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#90a4ae"/>'
        "</marker>"
        '<marker id="arrow-taken" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="12" markerHeight="12" '
        'markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#37474f"/>'
        "</marker></defs>",
    ]
    for name, state in definition["States"].items():
        catch_targets = {c["Next"] for c in state.get("Catch", [])}
        for target in dict.fromkeys(successors(state)):
            x1, y1, x2, y2 = _edge(_centre(positions[name]), _centre(positions[target]))
            was_taken = (name, target) in taken
            kind = "error" if target in catch_targets and target != state.get("Next") else "next"
            parts.append(
                f'<line class="edge {kind}{" taken" if was_taken else ""}" data-from="{name}" data-to="{target}" '
                f'x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                f'marker-end="url(#{"arrow-taken" if was_taken else "arrow"})"/>'
            )
    for name, view in views.items():
        column, row = positions[name]
        x, y = MARGIN + column * (BOX_W + GAP_X), MARGIN + row * (BOX_H + GAP_Y)
        stroke, fill = COLOURS[view.shown]
        label = {
            Shown.SUCCEEDED: "succeeded",
            Shown.RETRIED: f"retried x{view.retries}, succeeded",
            Shown.CAUGHT: f"caught after {view.retries} retries" if view.retries else "caught",
            Shown.FAILED: "failed",
            Shown.RUNNING: "running",
            Shown.NOT_ENTERED: "not entered",
        }[view.shown]
        error = view.error if view.shown in (Shown.CAUGHT, Shown.FAILED) else None
        radius = 26 if view.state_type in ("Succeed", "Fail") else 8
        parts.append(
            f'<g class="state {view.shown.value}" data-state="{html.escape(name)}" data-status="{view.shown.value}" '
            f'data-retries="{view.retries}"><title>{html.escape(name)}: {html.escape(label)}'
            f"{html.escape(' - ' + error) if error else ''}</title>"
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="{radius}" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{3 if view.shown is not Shown.NOT_ENTERED else 1.5}"/>'
            f'<text x="{x + BOX_W / 2}" y="{y + 20}" class="name">{html.escape(name)}</text>'
            f'<text x="{x + BOX_W / 2}" y="{y + 37}" class="status" fill="{stroke}">{html.escape(label)}</text>'
            + (
                f'<text x="{x + BOX_W / 2}" y="{y + 53}" class="status error" fill="{stroke}">'
                f"{html.escape(error[:32])}</text>"
                if error
                else ""
            )
            + "</g>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _event_rows(events: list[dict[str, Any]]) -> str:
    rows: list[str] = []
    state, previous = "", None
    for event in events:
        details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
        if event["type"].endswith("StateEntered"):
            state = details.get("name", "")
        took = f"{(event['timestamp'] - previous).total_seconds() * 1000:.0f} ms" if previous else ""
        previous = event["timestamp"]
        problem = " ".join(str(details[key]) for key in ("error", "cause") if details.get(key))
        css = ' class="problem"' if problem else ""
        rows.append(
            f"<tr{css}><td>{event['id']}</td><td>{html.escape(event['type'])}</td><td>{html.escape(state)}</td>"
            f"<td>{event['timestamp'].strftime('%H:%M:%S.%f')[:-3]}</td><td>{took}</td>"
            f'<td class="cause">{html.escape(problem[:400])}</td></tr>'
        )
    return "\n".join(rows)


STYLE = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#263238}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px}
.banner{display:inline-block;padding:4px 10px;border-radius:4px;font-weight:600;color:#fff}
.COMMITTED{background:#2e7d32}.ROLLED_BACK{background:#ef6c00}.NEEDS_ATTENTION{background:#c62828}
.UNFINISHED{background:#1565c0}
.graph text{font-size:13px;text-anchor:middle}.graph .name{font-weight:600;fill:#263238}
.graph .status{font-size:11px}
.edge{stroke:#b0bec5;stroke-width:1.5}.edge.error{stroke-dasharray:5 4}
.edge.taken{stroke:#37474f;stroke-width:3}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:12px;height:12px;border:2px solid;border-radius:3px;vertical-align:-2px;
margin-right:4px}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #cfd8dc;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#eceff1}tr.problem td{background:#fff5f5}td.cause{max-width:620px;
word-break:break-word}.meta td:first-child{font-weight:600}
"""


def page_html(definition: dict[str, Any], events: list[dict[str, Any]], report: SagaResult) -> str:
    events = normalise(events)
    views = state_views(definition, events)
    outcome = report.outcome.value if report.outcome else "UNFINISHED"
    legend = "".join(
        f'<span><i style="border-color:{stroke};background:{fill}"></i>{shown.value.replace("-", " ")}</span>'
        for shown, (stroke, fill) in COLOURS.items()
    )
    bookings = "".join(
        f"<tr><td>{resource}</td><td>{status.value if status else '-'}</td></tr>"
        for resource, status in report.bookings.items()
    )
    log_rows = "".join(
        f"<tr><td>{html.escape(e.at)}</td><td>{e.step}</td><td>{e.event}</td><td>{e.attempt}</td>"
        f"<td>{html.escape(e.provider or '')}</td><td>{html.escape(e.detail or '')}</td></tr>"
        for e in report.saga_log
    )
    attention = "".join(
        f"<p><b>Needs attention:</b> {html.escape(attention_line(r))}</p>" for r in report.needs_attention
    )
    forward = forward_summary(report)
    recovery = f"<tr><td>recovery</td><td>{html.escape(forward)}</td></tr>" if forward else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Saga {html.escape(report.trip_id)}: {outcome}</title>
<style>{STYLE}</style></head>
<body data-outcome="{outcome}" data-status="{report.status}">
<h1>Saga {html.escape(report.trip_id)} <span class="banner {outcome}">{outcome}</span></h1>
<table class="meta">
<tr><td>execution</td><td>{html.escape(report.execution_arn)}</td></tr>
<tr><td>status</td><td>{report.status}{" - " + html.escape(report.error) if report.error else ""}</td></tr>
<tr><td>cause</td><td>{html.escape(report.cause or "")}</td></tr>
<tr><td>path</td><td>{" &rarr; ".join(html.escape(s) for s in report.states)}</td></tr>
<tr><td>transitions</td><td>{report.transitions} states entered, {report.billed_transitions} billed</td></tr>
<tr><td>duration</td><td>{f"{report.duration_ms} ms" if report.duration_ms is not None else "still running"}</td></tr>
{recovery}
</table>
{attention}
<h2>State machine</h2>
<div class="legend">{legend}</div>
{graph_svg(definition, views, report.states)}
<h2>Bookings</h2>
<table><tr><th>resource</th><th>status</th></tr>{bookings}</table>
<h2>Saga log</h2>
<table><tr><th>at</th><th>step</th><th>event</th><th>attempt</th><th>provider</th><th>detail</th></tr>{log_rows}</table>
<h2>Event history</h2>
<table class="events"><tr><th>#</th><th>type</th><th>state</th><th>time</th><th>since previous</th>
<th>error / cause</th></tr>
{_event_rows(events)}
</table>
</body></html>
"""


def write_page(directory: Path, definition: dict[str, Any], events: list[dict[str, Any]], report: SagaResult) -> Path:
    """The page, written to a new file in `directory` and renamed into place: a link planted where the
    page goes is replaced, never followed."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{report.trip_id}.html"
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{report.trip_id}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as page:
            page.write(page_html(definition, events, report))
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def history_json(events: list[dict[str, Any]]) -> str:
    """A history as JSON (timestamps as ISO strings), the form the renderer's tests load back."""
    return json.dumps([{**e, "timestamp": _as_datetime(e["timestamp"]).isoformat()} for e in events], indent=1)
