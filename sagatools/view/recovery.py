"""What recovery did, in words: the same sentences in the terminal summary and on the HTML page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from saga.catalogue import request_of
from saga.saga_log import AttentionKind, AttentionRecord
from sagatools.terminal_text import shown

if TYPE_CHECKING:
    from sagatools.results import SagaResult


def attention_line(record: AttentionRecord) -> str:
    """What is left to do, in words: a stuck compensation, or a step past the pivot not finished."""
    if record.kind is AttentionKind.UNFINISHED_FORWARD:
        return f"{record.step} left to do, forward ({shown(str(record.error))})"
    return f"{record.step} stayed stuck ({shown(str(record.error))})"


def forward_summary(report: SagaResult) -> str | None:
    """One line on what forward recovery did (None in backward recovery)."""
    recovery = report.recovery
    if recovery is None or recovery.mode != "forward":
        return None
    parts = [f"forward, deadline {recovery.deadline_seconds} s after the pivot"]
    parts.append("pivot passed" if recovery.pivot_passed else "pivot not reached: backward, as before it")
    if recovery.forward_retries:
        retries = recovery.forward_retries
        parts.append(
            f"{retries} forward {'retry' if retries == 1 else 'retries'}"
            f" ({recovery.forward_waited_seconds:.0f} s waited on the saga's clock)"
        )
    for resource in recovery.providers_tried:
        booked = recovery.done_with.get(resource)
        refused = [shown(provider) for provider in recovery.providers_refused.get(resource, [])]
        took = f"{resource} by {shown(booked)}" if booked else f"{resource} not {request_of(resource).verbs.requested}"
        parts.append(f"{took}{'; refused: ' + ', '.join(refused) if refused else ''}")
    return "; ".join(parts)
