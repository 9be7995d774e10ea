"""Where a stage's sagas and their resolutions run, as attention.sh reaches them: the stage's two state machines, or
its durable function (saga/durable.py coordinates the sagas and, started with a request and a direction, resolves
them). Either way a saga's execution is named by its saga id and each resolution by resolution_name(), and each is
described as DescribeExecution describes a state machine's execution, so the resolver reads both alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from botocore.exceptions import ClientError

from sagatools.asl import RESOLVE_ASL_PATH, load_definition
from sagatools.deployed.durable_executions import ExecutionAlreadyExists
from sagatools.deployed.stage import execution_arn
from sagatools.executions import DurableExecutionsOfAFunction, DurableWatcher, ExecutionWatcher

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from sagatools.view.terminal import ProgressObserver


class ResolutionExists(Exception):
    """A resolution of that name was started already (by another call, or by hand)."""


class Coordinator(Protocol):
    """A stage's sagas and resolutions: described, started, followed to their end and told as a state machine's
    history (what the pages and the progress lines read)."""

    poll_seconds: float
    name_limit: ClassVar[int]  # the longest name an execution may have

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
    name_limit: ClassVar[int] = 80  # Step Functions' execution names
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


@dataclass
class DurableFunction:
    """A stage coordinated by the durable function: its sagas, and its resolutions (executions of the same function,
    started with a request and a direction)."""

    executions: DurableExecutionsOfAFunction
    poll_seconds: float
    name_limit: ClassVar[int] = 64  # Lambda's durable execution names (DurableExecutionName)
    _watcher: DurableWatcher | None = field(default=None, init=False)

    def saga(self, saga_id: str) -> dict[str, Any] | None:
        return self.executions.describe(saga_id)

    def resolution(self, name: str) -> dict[str, Any] | None:
        return self.executions.describe(name)

    def start_resolution(self, name: str, document: dict[str, Any]) -> str:
        # Lambda returns the execution a name already holds when the payload is the same: a resolution's payload
        # carries its caller's token, so an existing one is another call's.
        if self.resolution(name) is not None:
            raise ResolutionExists(name)
        try:
            return self.executions.start(name, document)
        except ExecutionAlreadyExists:
            raise ResolutionExists(name) from None

    def resolution_definition(self) -> dict[str, Any]:
        # The function resolves by the same definition the resolution machine is generated from.
        return load_definition(RESOLVE_ASL_PATH)

    def follow(
        self, started: dict[str, str], deadline: float, observer: ProgressObserver | None
    ) -> dict[str, dict[str, Any]]:
        definition = self.resolution_definition()
        self._watcher = DurableWatcher(self.executions, self.poll_seconds, observer, definition, resolution=True)
        return self._watcher.wait(started, deadline)

    def history(self, arn: str) -> list[dict[str, Any]]:
        assert self._watcher is not None, "follow() first"
        return self._watcher.history(arn)
