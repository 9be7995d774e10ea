"""What recovery did, in words: the same sentences in the terminal summary and on the HTML page (and where the
providers' ledgers disagree with the saga's records)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from saga.catalogue import by_name, request_of
from saga.keys import RECORDS_KEY
from saga.saga_log import AttentionKind, AttentionRecord, AttentionState
from sagatools.terminal_text import shown

if TYPE_CHECKING:
    from sagatools.results import SagaResult


def attention_line(record: AttentionRecord) -> str:
    """What is left to do, in words: a stuck compensation, or a step past the pivot not finished."""
    if record.kind is AttentionKind.UNFINISHED_FORWARD:
        return f"{record.step} left to do, forward ({shown(str(record.error))})"
    return f"{record.step} stayed stuck ({shown(str(record.error))})"


def disagreement_line(report: SagaResult) -> str | None:
    """Where a provider's ledger and the saga's records disagree (booked at one and not the other), in words; None
    where they agree."""
    disagreeing = report.provider_disagreements()
    if not disagreeing:
        return None
    named = {
        found.resource
        for record in report.needs_attention
        if record.attention is AttentionState.OPEN and (found := by_name(record.step)) is not None
    }
    parts = []
    for resource in disagreeing:
        at_provider, in_records = report.providers.get(resource), report.records.get(resource)
        parts.append(
            f"{resource} {at_provider.value if at_provider else 'none'} at its provider,"
            f" {in_records.value if in_records else 'none'} in {RECORDS_KEY}"
            + (" (an open attention record names it)" if resource in named else "")
        )
    return "; ".join(parts)


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
