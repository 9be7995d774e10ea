"""Following executions to their end: the one polling loop of runtest.sh (the sagas, by a state machine or the
durable function) and attention.sh (the resolutions).

The embedded stack and a deployed stage are followed alike; only the client and the poll interval differ.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from sagatools.durable_history import state_history
from sagatools.history import as_planned, state_runs

if TYPE_CHECKING:
    from aws_durable_execution_sdk_python_testing.model import Event
    from botocore.client import BaseClient

    from sagatools.view.terminal import ProgressObserver

# Up to this many running executions, their states are shown as they complete; beyond it, when each ends.
LIVE_PROGRESS_LIMIT = 8


def execution_history(stepfunctions: BaseClient, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of an execution, oldest first."""
    pages = stepfunctions.get_paginator("get_execution_history").paginate(
        executionArn=execution_arn, PaginationConfig={"PageSize": 1000}
    )
    return [event for page in pages for event in page["events"]]


class Watcher(ABC):
    """Polls executions until each has ended or a deadline passes, telling an observer what they did; keeps the
    history of each it saw end, so it is read once. What an execution is (a state machine's, a durable function's)
    is the subclass's: how one is described, its history read and the running ones listed."""

    def __init__(
        self,
        poll_seconds: float,
        observer: ProgressObserver | None = None,
        on_deadline: Callable[[], None] | None = None,
        definition: dict[str, Any] | None = None,
    ) -> None:
        self.poll_seconds = poll_seconds
        self.observer = observer
        self.on_deadline = on_deadline  # the embedded stack freezes its executions: reading back goes fast
        self.definition = definition  # given, the progress shows a failure it steps over on purpose as a success
        self._final_history: dict[str, list[dict[str, Any]]] = {}

    @abstractmethod
    def describe(self, arn: str) -> dict[str, Any]:
        """The execution as DescribeExecution describes it (status RUNNING until it ends)."""

    @abstractmethod
    def events(self, arn: str) -> list[dict[str, Any]]:
        """The execution's history as GetExecutionHistory gives it, oldest first."""

    @abstractmethod
    def running(self) -> set[str]:
        """The ARNs of the executions still running, in one call (a hint: only `describe` says one ended)."""

    def history(self, arn: str) -> list[dict[str, Any]]:
        """The execution's events: those read when it was seen to end (final), else read now."""
        return self._final_history.pop(arn, None) or self.events(arn)

    def wait(self, name_of: dict[str, str], deadline: float) -> dict[str, dict[str, Any]]:
        """DescribeExecution of each execution (by ARN; `name_of` says what the observer calls it), once it
        ended or, for those still running at the deadline, as they stand then."""
        if self.observer is not None:
            self.observer.started(list(dict.fromkeys(name_of.values())))
        descriptions: dict[str, dict[str, Any]] = {}
        pending = set(name_of)
        while pending:
            # Few executions: describe each (and show its progress). Many: one list says which to describe.
            live = len(pending) <= LIVE_PROGRESS_LIMIT
            running = set() if live else self.running()
            for arn in sorted(pending):
                if arn in running:
                    continue
                if time.monotonic() > deadline:
                    break
                # ListExecutions is eventually consistent on AWS: only DescribeExecution says it ended.
                description = self.describe(arn)
                ended = description["status"] != "RUNNING"
                if self.observer is not None and (live or ended):
                    events = self.events(arn)
                    if ended:
                        self._final_history[arn] = events
                    runs = state_runs(events)
                    self.observer.progress(
                        name_of[arn], as_planned(runs, self.definition) if self.definition else runs, ended
                    )
                if ended:
                    descriptions[arn] = description
                    pending.discard(arn)
            if pending and time.monotonic() > deadline:
                if self.on_deadline is not None:
                    self.on_deadline()
                # What the unfinished ones are doing now: one DescribeExecution each, then the results.
                for arn in pending:
                    descriptions[arn] = self.describe(arn)
                break
            if pending:
                # More executions polled a round means more work a round: wait longer, but not much.
                pause = min(self.poll_seconds * len(pending), max(self.poll_seconds, 0.25))
                time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
        return descriptions


class ExecutionWatcher(Watcher):
    """The executions of one state machine."""

    def __init__(
        self,
        stepfunctions: BaseClient,
        state_machine_arn: str,
        poll_seconds: float,
        observer: ProgressObserver | None = None,
        on_deadline: Callable[[], None] | None = None,
        definition: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(poll_seconds, observer, on_deadline, definition)
        self.stepfunctions = stepfunctions
        self.state_machine_arn = state_machine_arn

    def describe(self, arn: str) -> dict[str, Any]:
        description: dict[str, Any] = self.stepfunctions.describe_execution(executionArn=arn)
        return description

    def events(self, arn: str) -> list[dict[str, Any]]:
        return execution_history(self.stepfunctions, arn)

    def running(self) -> set[str]:
        pages = self.stepfunctions.get_paginator("list_executions").paginate(
            stateMachineArn=self.state_machine_arn, statusFilter="RUNNING", PaginationConfig={"PageSize": 1000}
        )
        return {execution["executionArn"] for page in pages for execution in page["executions"]}


class DurableExecutionsOfAFunction(Protocol):
    """A durable function's executions (sagatools/deployed/durable_executions.py on a stage; the embedded stack's
    DurableStack), each described as DescribeExecution describes a state machine's execution."""

    def start(self, name: str, payload: dict[str, Any]) -> str: ...

    def describe(self, name: str) -> dict[str, Any] | None: ...

    def describe_execution(self, execution_arn: str) -> dict[str, Any]: ...

    def history(self, execution_arn: str) -> list[Event]: ...

    def running(self) -> set[str]: ...


class DurableWatcher(Watcher):
    """The durable executions of one function (the sagas, or with `resolution` their resolutions), followed as a state
    machine's are; keeps each one's events as read last, to count its durable operations."""

    def __init__(
        self,
        executions: DurableExecutionsOfAFunction,
        poll_seconds: float,
        observer: ProgressObserver | None,
        definition: dict[str, Any] | None = None,
        resolution: bool = False,
    ) -> None:
        super().__init__(poll_seconds, observer, definition=definition)
        self.executions = executions
        self.resolution = resolution
        self.checkpoints: dict[str, list[Event]] = {}  # by execution ARN: its events, as `events` read them last

    def describe(self, arn: str) -> dict[str, Any]:
        return self.executions.describe_execution(arn)

    def events(self, arn: str) -> list[dict[str, Any]]:
        self.checkpoints[arn] = self.executions.history(arn)
        return state_history(self.checkpoints[arn], self.resolution)

    def running(self) -> set[str]:
        return self.executions.running()
