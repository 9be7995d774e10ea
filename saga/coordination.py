"""What the saga's coordinator decides, the same way whichever coordinates it: the generated state machine
(sagatools/generate/saga_machine.py writes these into its ASL) or the durable function (saga/durable.py runs
them). Which retry rules a step's errors meet, where a failure past the pivot goes, and how a saga ends.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from saga.definition import SAGA
from saga.errors import (
    AlternativesExhausted,
    CrashAfterWrite,
    ForwardDeadlinePassed,
    ForwardRetryableError,
    TransientDataAccessError,
    TransientProviderError,
)
from saga.named_errors import LateAfterCompensation, Refused
from saga.spec import ErrorNames, RetryPolicy

if TYPE_CHECKING:
    from saga.catalogue import Step

# Past the pivot, what a step raises when forward recovery gives up, and what it raises only in backward
# recovery. Anything else (Lambda's own faults, a timeout) goes by the request's mode.
FORWARD_GIVE_UP = [error.__name__ for error in (AlternativesExhausted, ForwardDeadlinePassed, ForwardRetryableError)]
BACKWARD_FAILURES = [
    error.__name__
    for error in (
        Refused,
        CrashAfterWrite,
        TransientProviderError,
        TransientDataAccessError,
        LateAfterCompensation,
    )
]

# Writing an attention record (a plain DynamoDB put): retried on whatever fails. Closing one (a resolution's
# conditional update): retried only on the table's passing faults, as often.
ATTENTION_RECORD_RETRY = RetryPolicy(errors=("States.ALL",), max_attempts=5)
CLOSE_RECORD_RETRY = replace(ATTENTION_RECORD_RETRY, errors=(TransientDataAccessError.__name__,))

# A retry policy names errors by the engine's names (saga.spec.ErrorNames); the coordinators by the app's.
_APP_ERROR_NAMES = dict(zip(vars(ErrorNames()).values(), vars(SAGA.errors).values(), strict=True))

# How a saga that did not commit ends: the error its coordinator fails with, and the cause. A cause with {}
# names the failure that started it (the ASL fills it with States.Format).
ROLLED_BACK_CAUSE = f"A step failed ({{}}); every {SAGA.record} was {SAGA.verbs.compensated}."
STUCK_CAUSE = f"A compensation could not complete; the {SAGA.noun} is recorded as needing attention."
UNFINISHED_CAUSE = (
    f"Past the pivot a step could not be finished ({{}}); the {SAGA.noun} keeps its {SAGA.records} and needs an"
    " operator."
)


# The field of the log line the durable function writes when a saga ends needing an operator: the durable stage's
# attention alarm counts these lines, as the state machine's counts its executions that failed so.
SAGA_END_LOG_FIELD = "saga_end"

# A resolution's input (attention.sh starts one so; the resolution machine reads it as $.request and $.direction): the
# saga's request, which way to settle it, and a token of the caller that makes the input its own.
RESOLUTION_REQUEST = "request"
RESOLUTION_DIRECTION = "direction"
FORWARD = "forward"
BACKWARD = "backward"


def resolution_input(request: dict[str, Any], direction: str, requested_by: str) -> dict[str, Any]:
    return {RESOLUTION_REQUEST: request, RESOLUTION_DIRECTION: direction, "requested_by": requested_by}


# How a resolution ends: settled (the resolution machine's Succeed state), or not (its Fail state and the cause it
# gives: the attention records stay open for the next one).
RESOLVED_STATE = "Resolved"
STILL_NEEDS_ATTENTION_STATE = "StillNeedsAttention"
STILL_STUCK_CAUSE = "A compensation is still stuck after the resolution's retries; its attention record stays open."
# Finishing a saga forward, a step past the pivot that still cannot be done ends the resolution here.
STILL_UNFINISHED_STATE = "StillUnfinished"
STILL_UNFINISHED_CAUSE = (
    "A step past the pivot still cannot be finished after the resolution's retries; its attention record stays open."
)


def retried_errors(policy: RetryPolicy) -> list[str]:
    """The errors a retry policy retries, called as the app calls them."""
    return [_APP_ERROR_NAMES.get(name, name) for name in policy.errors]


def retry_policies(step: Step) -> tuple[RetryPolicy, ...]:
    """A step's retry rules, in the order they are tried: its own, then (a request past the pivot) forward
    recovery's slow one, which only ForwardRetryableError meets."""
    return (step.retry, step.spec.forward_retry) if step.is_retriable else (step.retry,)


def gives_up_forward(step: Step, error: str, forward: bool) -> bool:
    """A request past the pivot failed with `error`: True when the saga keeps what it did and an operator
    finishes it (forward recovery gave up), False when it rolls back."""
    if not step.is_retriable:
        return False
    if error in FORWARD_GIVE_UP:
        return True
    return error not in BACKWARD_FAILURES and forward
