"""Running trips' sagas on one state machine: one execution per trip (named after its trip id), followed to
the end, and what each did read back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from sagatools.cli import UsageError
from sagatools.deployed.stage import execution_arn
from sagatools.executions import ExecutionWatcher
from sagatools.results import Outcome, SagaResult, TripReader, build_report
from sagatools.terminal_text import shown

if TYPE_CHECKING:
    from typing import Any

    from botocore.client import BaseClient

    from sagatools.trip_files import TripFile
    from sagatools.view.terminal import ProgressObserver

NOT_STARTED = "NOT_STARTED"  # the status of a trip whose execution was not started (--timeout, a conflict)
CONFLICT_ERROR = "ExecutionAlreadyExists"  # what StartExecution answers for a name another input holds


@dataclass
class _Conflict:
    """A trip whose id, when the run came to start it, named an execution of a different request."""

    trip: TripFile
    execution_arn: str


@dataclass
class _Started:
    trip: TripFile
    execution_arn: str
    reused: bool


class SagaRunner:
    """Starts one execution per trip, follows them to the end, reads the results."""

    def __init__(
        self,
        stepfunctions: BaseClient,
        state_machine_arn: str,
        reader: TripReader,
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
        # Trip ids whose execution existed before this run (running or ended), as refuse_conflicts found
        # them: StartExecution answers a running one's ARN as if it had just started it.
        self._existing: set[str] = set()

    def run(self, trips: list[TripFile]) -> list[SagaResult]:
        """Start, wait and read back; the run stops starting and waiting `timeout_seconds` after it began."""
        deadline = time.monotonic() + self.timeout_seconds
        started, conflicts, not_started = [], [], []
        for earlier, trip in self._with_earlier(trips):
            if time.monotonic() > deadline:
                not_started.append(trip)
            elif isinstance(attempt := self._start(trip, earlier), _Conflict):
                conflicts.append(attempt)  # reported with the others, which start and run regardless
            else:
                started.append(attempt)
        trip_of = {item.execution_arn: item.trip.request.trip_id for item in started}
        descriptions = self.watcher.wait(trip_of, deadline)
        histories = {arn: self.watcher.history(arn) for arn in trip_of}
        self.histories.update(histories)
        results = {
            id(item.trip): build_report(
                item.trip.path,
                item.trip.request.trip_id,
                descriptions[item.execution_arn],
                histories[item.execution_arn],
                self.reader,
                item.reused,
            )
            for item in started
        }
        for trip in not_started:
            results[id(trip)] = self._not_started(trip)
        for conflict in conflicts:
            results[id(conflict.trip)] = self._not_started(
                conflict.trip,
                Outcome.CONFLICT,
                CONFLICT_ERROR,
                f"not started: trip_id {conflict.trip.request.trip_id} already names an execution of a different"
                f" request on this stage ({conflict.execution_arn}); give this request a new trip_id",
            )
        return [results[id(trip)] for trip in trips]

    def _not_started(
        self, trip: TripFile, outcome: Outcome | None = None, error: str | None = None, cause: str | None = None
    ) -> SagaResult:
        """A trip the run did not start: by default one it had no time to start (UNFINISHED). Nothing is read
        from the tables: nothing of this request was done (under a conflict, what is there is the other's)."""
        arn = self._execution_arn(trip.request.trip_id)
        self.histories[arn] = []
        return SagaResult(
            file=trip.path,
            trip_id=trip.request.trip_id,
            execution_arn=arn,
            status=NOT_STARTED,
            outcome=outcome,
            error=error,
            cause=cause or f"not started: the --timeout of {self.timeout_seconds:g} s ended first",
            bookings={},
            saga_log=[],
            needs_attention=[],
            states=[],
            transitions=0,
            duration_ms=None,
        )

    @staticmethod
    def _with_earlier(trips: list[TripFile]) -> list[tuple[set[str], TripFile]]:
        seen: set[str] = set()
        pairs = []
        for trip in trips:
            pairs.append((set(seen), trip))
            seen.add(trip.request.trip_id)
        return pairs

    def _start(self, trip: TripFile, earlier_trip_ids: set[str]) -> _Started | _Conflict:
        name = trip.request.trip_id
        try:
            arn = self.stepfunctions.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=trip.execution_input
            )["executionArn"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            # The trip's saga exists already: report that one, never start a second. Under another request
            # it is someone else's (started since refuse_conflicts looked): this trip is a conflict.
            arn = self._execution_arn(name)
            if not self._same_request(trip, arn):
                return _Conflict(trip, arn)
            return _Started(trip, arn, reused=True)
        return _Started(trip, arn, reused=name in earlier_trip_ids or name in self._existing)

    def refuse_conflicts(self, trips: list[TripFile]) -> None:
        """UsageError naming every trip whose id already ran on this state machine with another request."""
        problems = []
        for trip in {trip.request.trip_id: trip for trip in trips}.values():
            try:
                self.check_same_request(trip, self._execution_arn(trip.request.trip_id))
                self._existing.add(trip.request.trip_id)
            except UsageError as error:
                problems.append(str(error))
            except ClientError as error:
                if error.response["Error"]["Code"] != "ExecutionDoesNotExist":
                    raise
        if problems:
            raise UsageError("\n".join(problems))

    def check_same_request(self, trip: TripFile, execution_arn: str) -> None:
        if not self._same_request(trip, execution_arn):
            raise UsageError(
                f"{shown(trip.path)}: trip_id {trip.request.trip_id} already ran on this stage with a different "
                f"request ({execution_arn}); give this request a new trip_id"
            )

    def _same_request(self, trip: TripFile, execution_arn: str) -> bool:
        existing = self.stepfunctions.describe_execution(executionArn=execution_arn)
        return bool(json.loads(existing.get("input") or "null") == json.loads(trip.execution_input))

    def _execution_arn(self, name: str) -> str:
        return execution_arn(self.state_machine_arn, name)
