"""What the operator reads of a stage: its two state machines, a trip's executions, bookings, saga log
and attention records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from saga.models import BookingStatus
from saga.saga_log import AttentionRecord, AttentionState, LogEntry
from sagatools.asl import RESOLVE_MACHINE
from sagatools.cli import report_dir
from sagatools.deployed.stage import Stage, StageError, execution_arn, settings_from_outputs, state_machine_arn
from sagatools.results import Outcome, TripReader, outcome_of, resolution_outcome_of
from sagatools.view.html_page import page_path

if TYPE_CHECKING:
    from botocore.client import BaseClient

NOTHING_OPEN = "NOTHING_OPEN"  # a trip that never needed attention


class UnknownTrip(Exception):
    """No saga ran under this trip id on the stage."""


class Execution(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    arn: str
    status: str
    outcome: Outcome | None = None  # the saga's (COMMITTED, ...) or a resolution's (RESOLVED, NEEDS_ATTENTION)
    started: str | None = None
    report: str | None = None


class TripView(BaseModel):
    """One trip as `show` and `resolve --json` give it."""

    trip_id: str
    outcome: str
    executions: list[Execution]
    attention: list[AttentionRecord]
    bookings: dict[str, BookingStatus | None]
    saga_log: list[LogEntry] = []


def open_records(records: list[AttentionRecord]) -> list[AttentionRecord]:
    return [record for record in records if record.attention is AttentionState.OPEN]


def resolution_name(trip_id: str, number: int) -> str:
    return f"{trip_id}-resolve-{number}"


@dataclass
class StageView:
    """What the operator reaches on a stage: its tables, its two state machines."""

    stage: Stage
    stepfunctions: BaseClient
    reader: TripReader
    saga_machine: str
    resolve_machine: str

    @classmethod
    def open(cls, stage: Stage) -> StageView:
        outputs = stage.outputs()
        if RESOLVE_MACHINE.name_output not in outputs:
            raise StageError(f"Stage {stage.name} has no resolution state machine: redeploy it with ./build.sh deploy.")
        return cls(
            stage=stage,
            stepfunctions=stage.client("stepfunctions"),
            reader=TripReader(settings_from_outputs(outputs), stage.client("dynamodb")),
            saga_machine=state_machine_arn(outputs, stage.region),
            resolve_machine=state_machine_arn(outputs, stage.region, RESOLVE_MACHINE),
        )

    def describe(self, machine_arn: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.stepfunctions.describe_execution(executionArn=execution_arn(machine_arn, name))
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return None
            raise
        return found

    def records(self, include_resolved: bool) -> list[AttentionRecord]:
        """Every trip's attention records (open ones, and closed ones too if asked), oldest first."""
        states = [AttentionState.OPEN] + ([AttentionState.RESOLVED] if include_resolved else [])
        found = [record for state in states for record in self.reader.saga_log.attention_records(state)]
        return sorted(found, key=lambda record: record.at)

    def executions(self, trip_id: str) -> list[Execution]:
        """The saga's execution, then every resolution of the trip, in order."""
        found = []
        saga = self.describe(self.saga_machine, trip_id)
        if saga is not None:
            found.append(_execution(trip_id, saga, outcome_of))
        number = 1
        while (resolution := self.describe(self.resolve_machine, resolution_name(trip_id, number))) is not None:
            found.append(_execution(resolution_name(trip_id, number), resolution, resolution_outcome_of))
            number += 1
        return found

    def trip(self, trip_id: str) -> TripView:
        executions = self.executions(trip_id)
        log, attention = self.reader.saga_log.read(trip_id)
        if not executions and not log and not attention:
            raise UnknownTrip(f"no saga ran under trip id {trip_id} on stage {self.stage.name}")
        return TripView(
            trip_id=trip_id,
            outcome=Outcome.NEEDS_ATTENTION.value
            if open_records(attention)
            else (Outcome.RESOLVED.value if attention else NOTHING_OPEN),
            executions=[_with_page(trip_id, execution) for execution in executions],
            attention=attention,
            bookings=self.reader.bookings(trip_id),
            saga_log=log,
        )


def _execution(
    name: str, description: dict[str, Any], outcome: Callable[[str, str | None], Outcome | None]
) -> Execution:
    started = description.get("startDate")
    return Execution(
        name=name,
        arn=description["executionArn"],
        status=description["status"],
        outcome=outcome(description["status"], description.get("error")),
        started=started.isoformat() if started is not None else None,
    )


def _with_page(trip_id: str, execution: Execution) -> Execution:
    # The saga's execution is named by the trip id; every other one of the trip is a resolution.
    page = page_path(report_dir(), execution.name, "Saga" if execution.name == trip_id else "Resolution")
    return execution.model_copy(update={"report": str(page)}) if page.exists() else execution
