"""What attention.sh prints for a person: the list of records, one saga, a cause made short."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, TextIO

from saga.catalogue import STEPS
from saga.keys import ID_FIELD, NOUN, RECORDS_KEY
from saga.saga_log import AttentionKind, AttentionRecord, AttentionState
from sagatools.terminal_text import shown

if TYPE_CHECKING:
    from sagatools.attention.stage_view import SagaView

# Step names in one column: as wide as the saga's longest (at least 14, as book_x / cancel_x need).
STEP_WIDTH = max(14, *(len(step.name) for step in STEPS))


def short_cause(cause: str | None) -> str:
    """The handler's own message inside a Step Functions cause (JSON within JSON), else the cause as it is."""
    if not cause:
        return ""
    try:
        outer = json.loads(cause)
        inner = json.loads(outer.get("Cause", "{}")) if isinstance(outer, dict) else {}
        message = inner.get("errorMessage") if isinstance(inner, dict) else None
    except (ValueError, TypeError):
        message = None
    return shown(message or cause)[:160]


def print_list(records: list[AttentionRecord], include_resolved: bool, out: TextIO) -> None:
    if not records:
        print(f"No {NOUN} needs attention." if not include_resolved else "No attention records.", file=out)
        return
    for record in records:
        state = "" if record.attention is AttentionState.OPEN else f"  RESOLVED {record.resolved_at}"
        attempts = f", {record.attempts} more attempts by resolutions" if record.attempts else ""
        print(
            f"{shown(record.saga_id):<24} {shown(record.step):<{STEP_WIDTH}} since {shown(record.at)}"
            f"  {shown(str(record.error))}{attempts}{state}",
            file=out,
        )
        print(f"{'':<24} kind: {record.kind.value} ({_what_to_do(record)})", file=out)
        if record.cause:
            print(f"{'':<24} cause: {short_cause(record.cause)}", file=out)
        if record.execution_id:
            print(f"{'':<24} raised by {record.execution_id}", file=out)


def _what_to_do(record: AttentionRecord) -> str:
    if record.kind is AttentionKind.UNFINISHED_FORWARD:
        return f"{record.step} is left to do: resolve finishes the {NOUN} forward, resolve --roll-back undoes it"
    return f"{record.step} is stuck: resolve runs the compensations again"


def print_saga(view: SagaView, out: TextIO) -> None:
    print(f"{shown(view.saga_id)}: {view.outcome}", file=out)
    records = ", ".join(f"{resource} {status.value if status else '-'}" for resource, status in view.records.items())
    print(f"  {RECORDS_KEY:<{max(12, len(RECORDS_KEY) + 1)}}{records}", file=out)
    for record in view.attention:
        closed = f" by {record.resolved_by} at {record.resolved_at}" if record.resolved_by else ""
        what = "left to do, forward" if record.kind is AttentionKind.UNFINISHED_FORWARD else "stuck"
        print(
            f"  attention   {record.step}: {record.attention.value}{closed} ({what}; error {shown(str(record.error))})",
            file=out,
        )
    if view.attention and not any(execution.name == view.saga_id for execution in view.executions):
        print(
            f"  note        no saga ran under this {ID_FIELD}, so resolve has no request to run: close its records with"
            f" ./attention.sh close {shown(view.saga_id)} --reason TEXT",
            file=out,
        )
    for execution in view.executions:
        page = f", report {execution.report}" if execution.report else ""
        outcome = execution.outcome.value if execution.outcome else "UNFINISHED"
        print(f"  execution   {execution.name}: {outcome} ({execution.status}){page}", file=out)
    for entry in view.saga_log:
        detail = f" ({shown(entry.detail)})" if entry.detail else ""
        print(
            f"  log         {entry.at}  {entry.step:<{STEP_WIDTH}} {entry.event.value:<7}"
            f" attempt {entry.attempt}{detail}",
            file=out,
        )
