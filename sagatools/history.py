"""An execution's event history folded into one record per state entered, in order.

Reads `GetExecutionHistory` events only, so it serves embedded and deployed executions alike.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

_FAILURE_EVENTS = {
    "LambdaFunctionFailed": "lambdaFunctionFailedEventDetails",
    "LambdaFunctionTimedOut": "lambdaFunctionTimedOutEventDetails",
    "LambdaFunctionStartFailed": "lambdaFunctionStartFailedEventDetails",
    "LambdaFunctionScheduleFailed": "lambdaFunctionScheduleFailedEventDetails",
    "TaskFailed": "taskFailedEventDetails",
    "TaskTimedOut": "taskTimedOutEventDetails",
    "TaskStartFailed": "taskStartFailedEventDetails",
    "TaskSubmitFailed": "taskSubmitFailedEventDetails",
}
_ATTEMPT_EVENTS = {"LambdaFunctionScheduled", "TaskScheduled"}


def as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def normalise(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History events with datetime timestamps (recorded histories carry ISO strings)."""
    return [{**event, "timestamp": as_datetime(event["timestamp"])} for event in events]


class StateStatus(StrEnum):
    SUCCEEDED = "succeeded"  # left normally (possibly after retries)
    CAUGHT = "caught"  # its last attempt failed and a Catch moved on
    FAILED = "failed"  # a Fail state, or the execution ended inside it
    RUNNING = "running"


@dataclass
class StateRun:
    name: str
    state_type: str  # Task, Fail, Succeed, ...
    status: StateStatus
    entered_at: datetime
    exited_at: datetime | None = None
    attempts: int = 0
    error: str | None = None
    cause: str | None = None

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)

    @property
    def duration_ms(self) -> int | None:
        if self.exited_at is None:
            return None
        return round((self.exited_at - self.entered_at).total_seconds() * 1000)


def state_runs(events: list[dict[str, Any]]) -> list[StateRun]:
    runs: list[StateRun] = []
    current: StateRun | None = None
    last_failed = False
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            state_type = kind.removesuffix("StateEntered")
            current = StateRun(
                name=event["stateEnteredEventDetails"]["name"],
                state_type=state_type,
                status=StateStatus.RUNNING,
                entered_at=event["timestamp"],
            )
            if state_type == "Succeed":
                current.status, current.exited_at = StateStatus.SUCCEEDED, event["timestamp"]
            runs.append(current)
            last_failed = False
        elif current is None:
            continue
        elif kind in _ATTEMPT_EVENTS:
            current.attempts += 1
            last_failed = False
        elif kind in _FAILURE_EVENTS:
            details = event.get(_FAILURE_EVENTS[kind], {})
            current.error, current.cause = details.get("error"), details.get("cause")
            last_failed = True
        elif kind.endswith("StateExited"):
            current.exited_at = event["timestamp"]
            current.status = StateStatus.CAUGHT if last_failed else StateStatus.SUCCEEDED
        elif kind.startswith("Execution") and kind != "ExecutionStarted" and current.status is StateStatus.RUNNING:
            # The execution ended inside this state (a Fail state, a timeout, an abort).
            current.status = StateStatus.FAILED if kind != "ExecutionSucceeded" else StateStatus.SUCCEEDED
            current.exited_at = event["timestamp"]
            if current.state_type == "Fail" and current.error is None:
                details = event.get("executionFailedEventDetails", {})
                current.error, current.cause = details.get("error"), details.get("cause")
    return runs


def passed_over(state: dict[str, Any], error: str | None) -> bool:
    """A failure the state machine expects and steps over: the first catcher of `state` that takes `error`
    names it (not States.ALL), drops it (ResultPath null) and goes where the state goes anyway, as a
    resolution's "close the record, if it is open" does when there is nothing to close."""
    for catcher in state.get("Catch", []):
        names = catcher["ErrorEquals"]
        if error in names or "States.ALL" in names:
            dropped = "ResultPath" in catcher and catcher["ResultPath"] is None
            return "States.ALL" not in names and dropped and catcher["Next"] == state.get("Next")
    return False


def as_planned(runs: list[StateRun], definition: dict[str, Any]) -> list[StateRun]:
    """The runs, with each failure the definition steps over on purpose shown as the success it is."""
    states = definition["States"]
    return [
        replace(run, status=StateStatus.SUCCEEDED, error=None)
        if run.status is StateStatus.CAUGHT and run.name in states and passed_over(states[run.name], run.error)
        else run
        for run in runs
    ]
