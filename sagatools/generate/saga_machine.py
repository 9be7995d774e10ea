"""The saga's state machine, as ASL, from the saga's definition: each request in order; on a failure,
the compensations from that step back; past a pivot in forward recovery, the steps left finished.
The output is plain ASL (statemachine/<saga>.asl.json) that the embedded stack, the local cloud and
AWS read alike; only the `${…}` placeholders are filled at deploy time.
"""

from __future__ import annotations

from typing import Any

from saga.catalogue import COMPENSATIONS, REQUESTS, RETRIABLES, Step
from saga.coordination import BACKWARD_FAILURES, FORWARD_GIVE_UP, ROLLED_BACK_CAUSE, STUCK_CAUSE, UNFINISHED_CAUSE
from saga.definition import SAGA
from saga.keys import ID_FIELD
from saga.saga_log import AttentionKind
from sagatools.asl import NEEDS_ATTENTION_ERROR, ROLLED_BACK_ERROR
from sagatools.generate.asl_parts import (
    GENERATED,
    RECORD_RETRY,
    lambda_task,
    saga_log_task,
)


def _listing(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _resources() -> str:
    return _listing([step.resource.replace("_", " ") for step in REQUESTS])


def _what_it_does() -> str:
    """What the saga does, in its own verbs ('book a, b and c; on failure, cancel in reverse order'), each step's
    own verb where they differ."""
    requests, compensations = {step.verb for step in REQUESTS}, {step.verb for step in COMPENSATIONS}
    if len(requests) == 1:
        forward = f"{requests.pop()} {_resources()}"
    else:
        forward = _listing([f"{step.verb} {step.resource.replace('_', ' ')}" for step in REQUESTS])
    backward = compensations.pop() if len(compensations) == 1 else "undo each"
    return f"{forward}; on failure, {backward} in reverse order"


# True when the request asked for forward recovery (no `recovery`: backward, the default).
FORWARD_CHOSEN: dict[str, Any] = {
    "And": [
        {"Variable": "$$.Execution.Input.recovery.mode", "IsPresent": True},
        {"Variable": "$$.Execution.Input.recovery.mode", "StringEquals": "forward"},
    ]
}


def _attention_item(step: Step, kind: AttentionKind, failure: str) -> dict[str, Any]:
    """The attention record a saga opens for `step`, from the failure at `failure` (a JSONPath)."""
    return {
        ID_FIELD: {"S.$": f"$$.Execution.Input.{ID_FIELD}"},
        "sk": {"S": step.attention_key},
        "step": {"S": step.name},
        "attention": {"S": "OPEN"},
        "kind": {"S": kind.value},
        "at": {"S.$": "$$.State.EnteredTime"},
        "error": {"S.$": f"{failure}.Error"},
        "cause": {"S.$": f"States.JsonToString({failure})"},
        "execution_id": {"S.$": "$$.Execution.Id"},
    }


def _next_compensation(compensation: Step, after_stuck: bool) -> str:
    """The state that runs after `compensation` succeeds, on the clean or the stuck path."""
    index = COMPENSATIONS.index(compensation)
    if index + 1 == len(COMPENSATIONS):
        return "NeedsAttention" if after_stuck else "RolledBack"
    following = COMPENSATIONS[index + 1]
    assert following.after_stuck_state is not None
    return following.after_stuck_state if after_stuck else following.state


def saga_machine() -> dict[str, Any]:
    """The saga: each request in order; on a failure, the compensations from that step back."""
    states: dict[str, Any] = {}
    total = len(REQUESTS)
    for index, step in enumerate(REQUESTS):
        rollback = COMPENSATIONS[-1 - index].state
        catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": step.failed_state or rollback}]
        if step.unfinished_state:
            catch[:0] = [
                # Raised only in forward recovery: the saga keeps what it did, an operator finishes it.
                {"ErrorEquals": FORWARD_GIVE_UP, "ResultPath": "$.failure", "Next": step.unfinished_state},
                # Raised only in backward recovery: roll back, by the same path as before the pivot.
                {"ErrorEquals": BACKWARD_FAILURES, "ResultPath": "$.failure", "Next": rollback},
            ]
        if index == 0:
            # Only the first step can refuse the request itself: nothing is written yet.
            catch.insert(
                0, {"ErrorEquals": [SAGA.errors.invalid_request], "ResultPath": "$.failure", "Next": "RequestRefused"}
            )
        task = lambda_task(
            step,
            f"Request {index + 1} of {total}. On any failure, compensate this step too: its outcome is unknown.",
            "$$.Execution.Input",
            f"$.results.{step.name}",
            catch,
        )
        task["Next"] = REQUESTS[index + 1].state if index + 1 < total else SAGA.done_state
        states[step.state] = task
        if step.failed_state and step.unfinished_state:
            states[step.failed_state] = {
                "Type": "Choice",
                "Comment": f"Past the pivot: in forward recovery the {SAGA.noun} keeps its {SAGA.records}"
                " and an operator finishes it; in backward recovery it rolls back.",
                "Choices": [{**FORWARD_CHOSEN, "Next": step.unfinished_state}],
                "Default": rollback,
            }
            states[step.unfinished_state] = saga_log_task(
                "Record durably what is left to do forward (the saga log table's attention index), then stop.",
                "putItem",
                {"Item": _attention_item(step, AttentionKind.UNFINISHED_FORWARD, "$.failure")},
                RECORD_RETRY,
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.flag_failure"},
                "Unfinished",
            )
    states[SAGA.done_state] = {
        "Type": "Succeed",
        "Comment": f"All {_count(total)} {SAGA.records} confirmed: the saga committed.",
    }
    for compensation in COMPENSATIONS:
        states[compensation.state] = _compensation_task(
            compensation,
            f"Compensation: retried with backoff; if it stays stuck, flag the {SAGA.noun} and go on with the rest.",
            after_stuck=False,
        )
    for compensation in COMPENSATIONS:
        if compensation.after_stuck_state:
            states[compensation.after_stuck_state] = _compensation_task(
                compensation,
                "The same compensation, on the path where an earlier one is stuck (so the saga ends in"
                " NeedsAttention).",
                after_stuck=True,
            )
    for compensation in COMPENSATIONS:
        assert compensation.stuck_state is not None
        following = _next_compensation(compensation, after_stuck=True)
        states[compensation.stuck_state] = saga_log_task(
            f"Record durably that the {SAGA.noun} needs an operator (the saga log table's attention index),"
            " then go on.",
            "putItem",
            {"Item": _attention_item(compensation, AttentionKind.STUCK_COMPENSATION, "$.stuck")},
            RECORD_RETRY,
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.flag_failure"},
            following,
        )
    states["RolledBack"] = {
        "Type": "Fail",
        "Error": ROLLED_BACK_ERROR,
        "Comment": "Backward recovery finished: every compensation succeeded, nothing is left confirmed.",
        "CausePath": f"States.Format('{ROLLED_BACK_CAUSE}', $.failure.Error)",
    }
    states["NeedsAttention"] = {
        "Type": "Fail",
        "Error": NEEDS_ATTENTION_ERROR,
        "Comment": f"A compensation stayed stuck after its retries; the {SAGA.noun} is flagged for an operator.",
        "Cause": STUCK_CAUSE,
    }
    if RETRIABLES:
        states["Unfinished"] = {
            "Type": "Fail",
            "Error": NEEDS_ATTENTION_ERROR,
            "Comment": "Forward recovery: past the pivot a step could not be finished (refused everywhere, or out of"
            f" time); nothing was undone, and the {SAGA.noun} is flagged for an operator to finish or roll back.",
            "CausePath": f"States.Format('{UNFINISHED_CAUSE}', $.failure.Error)",
        }
    states["RequestRefused"] = {
        "Type": "Fail",
        "Error": SAGA.errors.invalid_request,
        "Comment": "The request broke the request model; nothing was written, so nothing is compensated.",
        "CausePath": "$.failure.Cause",
    }
    return {
        "Comment": f"{SAGA.noun.capitalize()} {SAGA.name.replace('-', ' ')}: {_what_it_does()}. {GENERATED}.",
        "StartAt": REQUESTS[0].state,
        "States": states,
    }


def _compensation_task(compensation: Step, comment: str, after_stuck: bool) -> dict[str, Any]:
    assert compensation.stuck_state is not None
    task = lambda_task(
        compensation,
        comment,
        "$$.Execution.Input",
        f"$.results.{compensation.name}",
        [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.stuck", "Next": compensation.stuck_state}],
    )
    task["Next"] = _next_compensation(compensation, after_stuck)
    return task


def _count(number: int) -> str:
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    return words[number] if number < len(words) else str(number)
