"""Running sagas on one state machine: one execution per saga (named after its saga id), followed to
the end, and what each did read back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from saga.keys import ID_FIELD
from sagatools.cli import UsageError
from sagatools.deployed.stage import execution_arn
from sagatools.executions import ExecutionWatcher
from sagatools.results import Outcome, SagaReader, SagaResult, build_report
from sagatools.terminal_text import shown

if TYPE_CHECKING:
    from typing import Any

    from botocore.client import BaseClient

    from sagatools.request_files import RequestFile
    from sagatools.view.terminal import ProgressObserver

NOT_STARTED = "NOT_STARTED"  # the status of a saga whose execution was not started (--timeout, a conflict)
CONFLICT_ERROR = "ExecutionAlreadyExists"  # what StartExecution answers for a name another input holds


@dataclass
class _Conflict:
    """A saga whose id, when the run came to start it, named an execution of a different request."""

    saga: RequestFile
    execution_arn: str


@dataclass
class _Started:
    saga: RequestFile
    execution_arn: str
    reused: bool


class SagaRunner:
    """Starts one execution per saga, follows them to the end, reads the results."""

    def __init__(
        self,
        stepfunctions: BaseClient,
        state_machine_arn: str,
        reader: SagaReader,
        poll_seconds: float,
        timeout_seconds: float,
        observer: ProgressObserver | None = None,
        on_deadline: Callable[[], None] | None = None,
    ) -> None:
        self.stepfunctions = stepfunctions
        self.state_machine_arn = state_machine_arn
        self.reader = reader
        self.timeout_seconds = timeout_seconds
        self.watcher = ExecutionWatcher(stepfunctions, state_machine_arn, poll_seconds, observer, on_deadline)
        self.histories: dict[str, list[dict[str, Any]]] = {}  # by execution ARN, after run()
        # Saga ids whose execution existed before this run (running or ended), as refuse_conflicts found
        # them: StartExecution answers a running one's ARN as if it had just started it.
        self._existing: set[str] = set()

    def run(self, sagas: list[RequestFile]) -> list[SagaResult]:
        """Start, wait and read back; the run stops starting and waiting `timeout_seconds` after it began."""
        deadline = time.monotonic() + self.timeout_seconds
        started, conflicts, not_started = [], [], []
        for earlier, saga in self._with_earlier(sagas):
            if time.monotonic() > deadline:
                not_started.append(saga)
            elif isinstance(attempt := self._start(saga, earlier), _Conflict):
                conflicts.append(attempt)  # reported with the others, which start and run regardless
            else:
                started.append(attempt)
        saga_of = {item.execution_arn: item.saga.request.saga_id for item in started}
        descriptions = self.watcher.wait(saga_of, deadline)
        histories = {arn: self.watcher.history(arn) for arn in saga_of}
        self.histories.update(histories)
        results = {
            id(item.saga): build_report(
                item.saga.path,
                item.saga.request.saga_id,
                descriptions[item.execution_arn],
                histories[item.execution_arn],
                self.reader,
                item.reused,
            )
            for item in started
        }
        for saga in not_started:
            results[id(saga)] = self._not_started(saga)
        for conflict in conflicts:
            results[id(conflict.saga)] = self._not_started(
                conflict.saga, Outcome.CONFLICT, CONFLICT_ERROR, conflict_cause(conflict.saga, conflict.execution_arn)
            )
        return [results[id(saga)] for saga in sagas]

    def _not_started(
        self, saga: RequestFile, outcome: Outcome | None = None, error: str | None = None, cause: str | None = None
    ) -> SagaResult:
        """A saga the run did not start: by default one it had no time to start (UNFINISHED). Nothing is read
        from the tables: nothing of this request was done (under a conflict, what is there is the other's)."""
        arn = self._execution_arn(saga.request.saga_id)
        self.histories[arn] = []
        return unstarted_result(
            saga, arn, outcome, error, cause or f"not started: the --timeout of {self.timeout_seconds:g} s ended first"
        )

    @staticmethod
    def _with_earlier(sagas: list[RequestFile]) -> list[tuple[set[str], RequestFile]]:
        seen: set[str] = set()
        pairs = []
        for saga in sagas:
            pairs.append((set(seen), saga))
            seen.add(saga.request.saga_id)
        return pairs

    def _start(self, saga: RequestFile, earlier_saga_ids: set[str]) -> _Started | _Conflict:
        name = saga.request.saga_id
        try:
            arn = self.stepfunctions.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=saga.execution_input
            )["executionArn"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            # The saga exists already: report that one, never start a second. Under another request
            # it is someone else's (started since refuse_conflicts looked): this saga is a conflict.
            arn = self._execution_arn(name)
            if not self._same_request(saga, arn):
                return _Conflict(saga, arn)
            return _Started(saga, arn, reused=True)
        return _Started(saga, arn, reused=name in earlier_saga_ids or name in self._existing)

    def refuse_conflicts(self, sagas: list[RequestFile]) -> None:
        """UsageError naming every saga whose id already ran on this state machine with another request."""
        problems = []
        for saga in {saga.request.saga_id: saga for saga in sagas}.values():
            try:
                self.check_same_request(saga, self._execution_arn(saga.request.saga_id))
                self._existing.add(saga.request.saga_id)
            except UsageError as error:
                problems.append(str(error))
            except ClientError as error:
                if error.response["Error"]["Code"] != "ExecutionDoesNotExist":
                    raise
        if problems:
            raise UsageError("\n".join(problems))

    def check_same_request(self, saga: RequestFile, execution_arn: str) -> None:
        if not self._same_request(saga, execution_arn):
            raise UsageError(ran_with_another_request(saga, execution_arn))

    def _same_request(self, saga: RequestFile, execution_arn: str) -> bool:
        return same_request(saga, self.stepfunctions.describe_execution(executionArn=execution_arn))

    def _execution_arn(self, name: str) -> str:
        return execution_arn(self.state_machine_arn, name)


def same_request(saga: RequestFile, description: dict[str, Any]) -> bool:
    """Whether the execution DescribeExecution describes (`description`) ran this saga's request."""
    return bool(json.loads(description.get("input") or "null") == json.loads(saga.execution_input))


def ran_with_another_request(saga: RequestFile, execution_arn: str) -> str:
    """Why the saga is refused before anything starts: its id names an execution of another request on the stage."""
    return (
        f"{shown(saga.path)}: {ID_FIELD} {saga.request.saga_id} already ran on this stage with a different "
        f"request ({execution_arn}); give this request a new {ID_FIELD}"
    )


def conflict_cause(saga: RequestFile, execution_arn: str, where: str = "on this stage") -> str:
    """Why a saga was not started: when the run came to start it, its id named an execution of another request."""
    return (
        f"not started: {ID_FIELD} {saga.request.saga_id} already names an execution of a different request {where}"
        f" ({execution_arn}); give this request a new {ID_FIELD}"
    )


def unstarted_result(
    saga: RequestFile, execution_arn: str, outcome: Outcome | None, error: str | None, cause: str
) -> SagaResult:
    """A saga the run did not start (`cause` says why): nothing of it was done, so nothing is read from the tables."""
    return SagaResult(
        file=saga.path,
        saga_id=saga.request.saga_id,
        execution_arn=execution_arn,
        status=NOT_STARTED,
        outcome=outcome,
        error=error,
        cause=cause,
        records={},
        saga_log=[],
        needs_attention=[],
        states=[],
        transitions=0,
        duration_ms=None,
    )
