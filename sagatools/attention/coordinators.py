"""Where a stage's sagas and their resolutions run, as attention.sh reaches them: the stage's two state machines, or
its durable function (saga/durable.py coordinates the sagas and, started with a request and a direction, resolves
them). Either way a saga's execution is named by its saga id and each resolution by resolution_name(), and each is
described as DescribeExecution describes a state machine's execution, so the resolver reads both alike.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from sagatools.asl import RESOLVE_ASL_PATH, load_definition
from sagatools.deployed.stage import execution_arn
from sagatools.durable_history import state_history
from sagatools.executions import ExecutionWatcher
from sagatools.history import as_planned, state_runs

if TYPE_CHECKING:
    from aws_durable_execution_sdk_python_testing.model import Event
    from botocore.client import BaseClient

    from sagatools.view.terminal import ProgressObserver


class ResolutionExists(Exception):
    """A resolution of that name was started already (by another call, or by hand)."""


class Coordinator(Protocol):
    """A stage's sagas and resolutions: described, started, followed to their end and told as a state machine's
    history (what the pages and the progress lines read)."""

    poll_seconds: float

    def saga(self, saga_id: str) -> dict[str, Any] | None:
        """The saga's own execution, or None if none ran under its id."""

    def resolution(self, name: str) -> dict[str, Any] | None:
        """The resolution of that name, or None if none was started."""

    def start_resolution(self, name: str, document: dict[str, Any]) -> str:
        """Start a resolution (its input: the saga's request and a direction); its ARN. ResolutionExists if one of
        that name was started already."""

    def follow(
        self, started: dict[str, str], deadline: float, observer: ProgressObserver | None
    ) -> dict[str, dict[str, Any]]:
        """Each resolution (by ARN; `started` says which saga it resolves) described once it has ended, or as it
        stands at the deadline."""

    def history(self, arn: str) -> list[dict[str, Any]]:
        """The resolution's events, as GetExecutionHistory gives a state machine's."""

    def resolution_definition(self) -> dict[str, Any]:
        """The resolution's ASL: what its page is drawn against."""


@dataclass
class StateMachines:
    """A Step Functions stage: the saga's state machine and the resolution state machine."""

    stepfunctions: BaseClient
    saga_machine: str
    resolve_machine: str
    poll_seconds: float
    _watcher: ExecutionWatcher | None = field(default=None, init=False)

    def _describe(self, machine_arn: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.stepfunctions.describe_execution(executionArn=execution_arn(machine_arn, name))
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return None
            raise
        return found

    def saga(self, saga_id: str) -> dict[str, Any] | None:
        return self._describe(self.saga_machine, saga_id)

    def resolution(self, name: str) -> dict[str, Any] | None:
        return self._describe(self.resolve_machine, name)

    def start_resolution(self, name: str, document: dict[str, Any]) -> str:
        try:
            self.stepfunctions.start_execution(
                stateMachineArn=self.resolve_machine, name=name, input=json.dumps(document)
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
                raise ResolutionExists(name) from None
            raise
        return execution_arn(self.resolve_machine, name)

    def resolution_definition(self) -> dict[str, Any]:
        # The deployed machine's own definition: the page draws what ran.
        description = self.stepfunctions.describe_state_machine(stateMachineArn=self.resolve_machine)
        definition: dict[str, Any] = json.loads(description["definition"])
        return definition

    def follow(
        self, started: dict[str, str], deadline: float, observer: ProgressObserver | None
    ) -> dict[str, dict[str, Any]]:
        self._watcher = ExecutionWatcher(
            self.stepfunctions,
            self.resolve_machine,
            poll_seconds=self.poll_seconds,
            observer=observer,
            definition=self.resolution_definition(),
        )
        return self._watcher.wait(started, deadline)

    def history(self, arn: str) -> list[dict[str, Any]]:
        assert self._watcher is not None, "follow() first"
        return self._watcher.history(arn)


class DurableExecutionsOfAFunction(Protocol):
    """A durable function's executions by name (sagatools/deployed/durable_executions.py on a stage; the embedded
    stack's DurableStack in the tests): each described as DescribeExecution describes a state machine's."""

    def start(self, name: str, payload: dict[str, Any]) -> str: ...

    def describe(self, name: str) -> dict[str, Any] | None: ...

    def history(self, execution_arn: str) -> list[Event]: ...


@dataclass
class DurableFunction:
    """A stage coordinated by the durable function: its sagas, and its resolutions (executions of the same function,
    started with a request and a direction)."""

    executions: DurableExecutionsOfAFunction
    poll_seconds: float
    _names: dict[str, str] = field(default_factory=dict, init=False)  # each resolution seen, by its ARN

    def saga(self, saga_id: str) -> dict[str, Any] | None:
        return self.executions.describe(saga_id)

    def resolution(self, name: str) -> dict[str, Any] | None:
        found = self.executions.describe(name)
        if found is not None:
            self._names[found["executionArn"]] = name
        return found

    def start_resolution(self, name: str, document: dict[str, Any]) -> str:
        if self.resolution(name) is not None:
            raise ResolutionExists(name)
        arn = self.executions.start(name, document)
        self._names[arn] = name
        return arn

    def resolution_definition(self) -> dict[str, Any]:
        # The function resolves by the same definition the resolution machine is generated from.
        return load_definition(RESOLVE_ASL_PATH)

    def history(self, arn: str) -> list[dict[str, Any]]:
        return state_history(self.executions.history(arn), resolution=True)

    def follow(
        self, started: dict[str, str], deadline: float, observer: ProgressObserver | None
    ) -> dict[str, dict[str, Any]]:
        if observer is not None:
            observer.started(list(dict.fromkeys(started.values())))
        definition = self.resolution_definition()
        descriptions: dict[str, dict[str, Any]] = {}
        while True:
            for arn in [arn for arn in started if arn not in descriptions]:
                description = self.executions.describe(self._names[arn])
                assert description is not None, f"{self._names[arn]} was started"
                ended = description["status"] != "RUNNING"
                if observer is not None:
                    observer.progress(started[arn], as_planned(state_runs(self.history(arn)), definition), ended)
                if ended or time.monotonic() > deadline:
                    descriptions[arn] = description
            if len(descriptions) == len(started):
                return descriptions
            time.sleep(max(0.0, min(self.poll_seconds, deadline - time.monotonic())))
