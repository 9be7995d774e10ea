"""A durable execution's checkpoints told as the state machine's history: what runtest.sh's progress, summaries and
pages read (sagatools/history.py), the same for either coordinator.

The durable function names each operation after the ASL state it stands for (saga/durable.py), so each step's first
start is that state entered, each attempt a Lambda invocation, its end the state exited; the execution's end is
the Succeed or Fail state the state machine would have ended in. Operations that stand for no state (when a step
past the pivot was entered) are left out; the durable operations count them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from saga.catalogue import RETRIABLES
from saga.coordination import RESOLVED_STATE, STILL_NEEDS_ATTENTION_STATE, STILL_UNFINISHED_STATE
from saga.definition import SAGA
from sagatools.asl import ASL_PATH, NEEDS_ATTENTION_ERROR, RESOLVE_ASL_PATH, ROLLED_BACK_ERROR, load_definition

if TYPE_CHECKING:
    from datetime import datetime

    from aws_durable_execution_sdk_python_testing.model import Event

_UNFINISHED_FLAGS = {step.unfinished_state for step in RETRIABLES}
_UNFINISHED_KEEPS = {step.keep_state for step in RETRIABLES}  # a resolution's, finishing forward


def _short(error_type: str | None) -> str | None:
    """An error's name as Lambda reports it: its class's name, without the module."""
    return error_type.rpartition(".")[2] if error_type else None


def _end_state(error: str | None, last_state: str | None, resolution: bool) -> str | None:
    """The Fail state the state machine (or, for a resolution, the resolution machine) ends in with `error` (the last
    state it ran before it: `last_state`); None for an error no Fail state raises (the function itself failed: no
    state stands for that)."""
    if resolution:
        if error != NEEDS_ATTENTION_ERROR:
            return None
        return STILL_UNFINISHED_STATE if last_state in _UNFINISHED_KEEPS else STILL_NEEDS_ATTENTION_STATE
    if error == ROLLED_BACK_ERROR:
        return "RolledBack"
    if error == NEEDS_ATTENTION_ERROR:
        return "Unfinished" if last_state in _UNFINISHED_FLAGS else "NeedsAttention"
    return "RequestRefused" if error == SAGA.errors.invalid_request else None


class _History:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, at: datetime, details: dict[str, Any] | None = None, key: str = "") -> None:
        event: dict[str, Any] = {"id": len(self.events) + 1, "type": kind, "timestamp": at}
        if details is not None:
            event[key] = details
        self.events.append(event)


def durable_operations(events: list[Event]) -> int:
    """Durable operations as AWS meters them: the execution's start, and each step's attempts (each attempt is
    checkpointed once: succeeded, failed, or failed with a retry scheduled)."""
    return 1 + sum(1 for event in events if event.event_type in {"StepSucceeded", "StepFailed"})


def state_history(events: list[Event], resolution: bool = False) -> list[dict[str, Any]]:
    """The durable execution's history `events` as GetExecutionHistory would give a Step Functions execution: of the
    saga's state machine, or (`resolution`) of the resolution state machine."""
    states = load_definition(RESOLVE_ASL_PATH if resolution else ASL_PATH)["States"]
    done_state = RESOLVED_STATE if resolution else SAGA.done_state
    history = _History()
    entered: set[str] = set()
    last_state: str | None = None
    for event in events:
        kind, at, name = event.event_type, event.event_timestamp, event.name
        if kind == "ExecutionStarted":
            history.add("ExecutionStarted", at)
        elif kind.startswith("Step") and name in states:
            if kind == "StepStarted":
                if event.operation_id not in entered:
                    entered.add(event.operation_id or "")
                    history.add("TaskStateEntered", at, {"name": name}, "stateEnteredEventDetails")
                history.add("LambdaFunctionScheduled", at)
            elif kind == "StepSucceeded":
                history.add("LambdaFunctionSucceeded", at)
                history.add("TaskStateExited", at, {"name": name}, "stateExitedEventDetails")
            elif kind == "StepFailed" and event.step_failed_details is not None:
                failed = event.step_failed_details
                error = failed.error.payload if failed.error else None
                details = {"error": _short(error.type if error else None), "cause": error.message if error else None}
                history.add("LambdaFunctionFailed", at, details, "lambdaFunctionFailedEventDetails")
                retry = failed.retry_details
                if retry is None or not retry.next_attempt_delay_seconds:  # its last attempt: the step has failed
                    history.add("TaskStateExited", at, {"name": name}, "stateExitedEventDetails")
            last_state = name
        elif kind == "ExecutionSucceeded":
            history.add("SucceedStateEntered", at, {"name": done_state}, "stateEnteredEventDetails")
            history.add("ExecutionSucceeded", at)
        elif kind == "ExecutionFailed" and event.execution_failed_details is not None:
            failed_with = event.execution_failed_details.error
            error = failed_with.payload if failed_with else None
            details = {"error": _short(error.type if error else None), "cause": error.message if error else None}
            if (state := _end_state(details["error"], last_state, resolution)) is not None:
                history.add("FailStateEntered", at, {"name": state}, "stateEnteredEventDetails")
            history.add("ExecutionFailed", at, details, "executionFailedEventDetails")
    return history.events
