"""The state machine drawn as the Step Functions console draws it, in inline SVG: the chain of requests, its
compensations beside it row by row, each state coloured by what happened to it in one execution."""

from __future__ import annotations

import html
import itertools
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from saga.catalogue import COMPENSATIONS, REQUESTS, RETRIABLES, Step
from sagatools.asl import successors
from sagatools.history import StateRun, StateStatus, as_planned, normalise, state_runs


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


def state_views(definition: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, StateView]:
    runs: dict[str, list[StateRun]] = {}
    for run in as_planned(state_runs(normalise(events)), definition):
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
    """(column, row) per state: the chain of requests, its compensations beside it row by row, the rest after.

    The chain of requests is followed from StartAt through Next; each state's row is the row of the request
    it runs (a compensation beside its request); terminal states sit below (Succeed) or above (Fail) their lane.
    """
    states = definition["States"]
    chain, name = [], definition["StartAt"]
    while name in states and states[name]["Type"] == "Task" and name not in chain:
        chain.append(name)
        name = states[name].get("Next", "")
    row_of_resource = {step.resource: index + 1 for index, step in enumerate(REQUESTS)}
    positions: dict[str, tuple[int, int]] = {state: (0, index + 1) for index, state in enumerate(chain)}
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
