"""The resolution's state machine, as ASL (statemachine/resolve-stuck.asl.json), from the saga's
definition: a stuck saga's compensations again, in reverse order, or (forward recovery) its steps past
the pivot again, and then each attention record closed or kept open with the new error."""

from __future__ import annotations

from typing import Any

from saga.catalogue import COMPENSATIONS, RETRIABLES, Step
from saga.coordination import (
    RESOLVED_STATE,
    STILL_NEEDS_ATTENTION_STATE,
    STILL_STUCK_CAUSE,
    STILL_UNFINISHED_CAUSE,
    STILL_UNFINISHED_STATE,
)
from saga.definition import SAGA
from saga.keys import ID_FIELD
from saga.saga_log import (
    ATTENTION_NAMES,
    CLOSE_ATTENTION_CONDITION,
    CLOSE_ATTENTION_UPDATE,
    AttentionKind,
    keep_attention_update,
)
from sagatools.asl import NEEDS_ATTENTION_ERROR
from sagatools.generate.asl_parts import (
    DYNAMODB_PASSING_FAULTS,
    GENERATED,
    RECORD_RETRY,
    lambda_task,
    saga_log_task,
    then,
)


def resolve_stuck() -> dict[str, Any]:
    """The resolution: every compensation again, in reverse order, then each attention record closed
    (all succeeded) or kept open with the new error (some stayed stuck)."""
    states: dict[str, Any] = {}
    # The records closed once the saga is done, either way: the compensations' (after a roll-back) and,
    # last, those of the steps past the pivot (a roll-back, or finishing forward, settles them).
    recorded = [*COMPENSATIONS, *RETRIABLES]
    closes = [_close_state(step) for step in recorded]
    checks = [_check_state(c) for c in COMPENSATIONS]
    if RETRIABLES:
        states["ChooseDirection"] = {
            "Type": "Choice",
            "Comment": f"Finish the {SAGA.noun} forward (its steps past the pivot), when asked;"
            " otherwise roll it back.",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.direction", "IsPresent": True},
                        {"Variable": "$.direction", "StringEquals": "forward"},
                    ],
                    "Next": RETRIABLES[0].state,
                }
            ],
            "Default": COMPENSATIONS[0].state,
        }
        _finish_forward(states, closes[len(COMPENSATIONS)])
    for index, compensation in enumerate(COMPENSATIONS):
        following = then([c.state for c in COMPENSATIONS], index, "AnyStillStuck")
        task = lambda_task(
            compensation,
            f"{compensation.verb.capitalize()} the {compensation.resource.replace('_', ' ')} again (idempotent,"
            " commutative): retried as in the saga; if it stays stuck, note it and go on.",
            "$$.Execution.Input.request",
            f"$.results.{compensation.name}",
            [{"ErrorEquals": ["States.ALL"], "ResultPath": f"$.stuck.{compensation.name}", "Next": following}],
        )
        task["Next"] = following
        states[compensation.state] = task
    states["AnyStillStuck"] = {
        "Type": "Choice",
        "Comment": f"Every compensation succeeded: close the {SAGA.noun}'s records."
        " Otherwise keep them open with the new error.",
        "Choices": [
            {
                "Or": [{"Variable": f"$.stuck.{c.name}", "IsPresent": True} for c in COMPENSATIONS],
                "Next": checks[0],
            }
        ],
        "Default": closes[0],
    }
    for index, step in enumerate(recorded):
        states[closes[index]] = _close_record(step, then(closes, index, RESOLVED_STATE))
    for index, compensation in enumerate(COMPENSATIONS):
        following = then(checks, index, STILL_NEEDS_ATTENTION_STATE)
        states[checks[index]] = {
            "Type": "Choice",
            "Comment": f"Did the {_noun(compensation)} stay stuck in this resolution?",
            "Choices": [
                {"Variable": f"$.stuck.{compensation.name}", "IsPresent": True, "Next": _keep_state(compensation)}
            ],
            "Default": following,
        }
        states[_keep_state(compensation)] = _keep_record(
            compensation,
            AttentionKind.STUCK_COMPENSATION,
            f"Keep (or open) the {_noun(compensation)}'s attention record: the new error, the attempts added, this"
            " execution.",
            following,
            # Every attempt of this resolution's run of the compensation failed.
            attempts=compensation.retry.attempts,
        )
    states[RESOLVED_STATE] = {
        "Type": "Succeed",
        "Comment": f"Every compensation succeeded: the {SAGA.noun} is fully {SAGA.verbs.compensated} and its records"
        " are closed.",
    }
    states[STILL_NEEDS_ATTENTION_STATE] = {
        "Type": "Fail",
        "Error": NEEDS_ATTENTION_ERROR,
        "Comment": "A compensation is still stuck; its record stays open for the next resolution.",
        "Cause": STILL_STUCK_CAUSE,
    }
    return {
        "Comment": "Resolve a saga that needs attention: run its compensations again, in reverse order, then close"
        f" or keep its attention records. {GENERATED}.",
        "StartAt": "ChooseDirection" if RETRIABLES else COMPENSATIONS[0].state,
        "States": states,
    }


def _record_key(compensation: Step) -> dict[str, Any]:
    return {
        ID_FIELD: {"S.$": f"$$.Execution.Input.request.{ID_FIELD}"},
        "sk": {"S": compensation.attention_key},
    }


def _close_record(step: Step, following: str) -> dict[str, Any]:
    what = _noun(step) if step.is_compensation else f"unfinished {step.name}"
    return saga_log_task(
        f"Close the {what}'s attention record, if it is open: RESOLVED, when, by this execution (kept, not deleted).",
        "updateItem",
        {
            "Key": _record_key(step),
            "UpdateExpression": CLOSE_ATTENTION_UPDATE,
            "ConditionExpression": CLOSE_ATTENTION_CONDITION,
            "ExpressionAttributeValues": {
                ":resolved": {"S": "RESOLVED"},
                ":open": {"S": "OPEN"},
                ":now": {"S.$": "$$.State.EnteredTime"},
                ":execution": {"S.$": "$$.Execution.Id"},
            },
        },
        {**RECORD_RETRY, "ErrorEquals": DYNAMODB_PASSING_FAULTS},
        # Not open (never flagged, or already closed): nothing to close.
        {"ErrorEquals": ["DynamoDB.ConditionalCheckFailedException"], "ResultPath": None},
        following,
    )


def _finish_forward(states: dict[str, Any], first_close: str) -> None:
    """The resolution's forward path: each step past the pivot again, in order (idempotent: a booked one
    answers with its record), then their records closed; if one fails, its record stays open."""
    for index, step in enumerate(RETRIABLES):
        keep = step.keep_state
        assert keep is not None
        task = lambda_task(
            step,
            f"Finish the {SAGA.noun} forward: {step.name} again, retried as in the saga's forward recovery"
            " (a new deadline from here); if it still cannot be done, keep its record open.",
            "$$.Execution.Input.request",
            f"$.results.{step.name}",
            [{"ErrorEquals": ["States.ALL"], "ResultPath": f"$.stuck.{step.name}", "Next": keep}],
        )
        task["Next"] = then([s.state for s in RETRIABLES], index, first_close)
        states[step.state] = task
        states[keep] = _keep_record(
            step,
            AttentionKind.UNFINISHED_FORWARD,
            f"Keep (or open) the unfinished {step.name}'s attention record: the new error, this execution.",
            STILL_UNFINISHED_STATE,
        )
    states[STILL_UNFINISHED_STATE] = {
        "Type": "Fail",
        "Error": NEEDS_ATTENTION_ERROR,
        "Comment": "A step past the pivot still cannot be done; its record stays open for the next resolution.",
        "Cause": STILL_UNFINISHED_CAUSE,
    }


def _keep_record(
    step: Step, kind: AttentionKind, comment: str, following: str, attempts: int | None = None
) -> dict[str, Any]:
    """A resolution's update that keeps (or opens) `step`'s attention record with the error it met at
    `$.stuck.<step>`, and adds `attempts` to the record's count when given."""
    values: dict[str, Any] = {
        ":open": {"S": "OPEN"},
        ":step": {"S": step.name},
        ":kind": {"S": kind.value},
        ":now": {"S.$": "$$.State.EnteredTime"},
        ":error": {"S.$": f"$.stuck.{step.name}.Error"},
        ":cause": {"S.$": f"States.JsonToString($.stuck.{step.name})"},
        ":execution": {"S.$": "$$.Execution.Id"},
    }
    if attempts is not None:
        values |= {":none": {"N": "0"}, ":attempts": {"N": str(attempts)}}
    return saga_log_task(
        comment,
        "updateItem",
        {
            "Key": _record_key(step),
            "UpdateExpression": keep_attention_update(attempts is not None),
            "ExpressionAttributeNames": ATTENTION_NAMES,
            "ExpressionAttributeValues": values,
        },
        RECORD_RETRY,
        {"ErrorEquals": ["States.ALL"], "ResultPath": None},
        following,
    )


def _noun(compensation: Step) -> str:
    return f"{compensation.resource.replace('_', ' ')} {compensation.verbs.compensation_noun}"


def _close_state(step: Step) -> str:
    assert step.close_state is not None
    return step.close_state


def _check_state(compensation: Step) -> str:
    return f"Check{compensation.names.title}StillStuck"


def _keep_state(compensation: Step) -> str:
    assert compensation.keep_state is not None
    return compensation.keep_state
