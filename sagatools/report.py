"""What one saga did, read back from Step Functions and DynamoDB: the runner's result.

The same code reads an embedded execution and a deployed one; only the clients differ.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from saga.bookings import BookingRepository, get_bookings
from saga.models import Resource
from saga.saga_log import LogEntry, SagaLog

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from saga.settings import Settings

ROLLED_BACK_ERROR = "SagaRolledBack"  # the Error of the ASL's RolledBack Fail state


class Outcome(StrEnum):
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"


class SagaReport(BaseModel):
    """The `--json` contract of runtest.sh, one per request file."""

    model_config = ConfigDict(frozen=True)

    file: str
    trip_id: str
    execution_arn: str
    status: str
    outcome: Outcome | None
    error: str | None
    cause: str | None
    bookings: dict[str, str | None]
    saga_log: list[dict[str, Any]]
    needs_attention: list[dict[str, Any]]
    states: list[str]
    transitions: int
    duration_ms: int | None
    reused_execution: bool = False


def outcome_of(status: str, error: str | None) -> Outcome | None:
    """COMMITTED on success, ROLLED_BACK on the clean-rollback Fail state; any other end needs an operator."""
    if status == "RUNNING":
        return None
    if status == "SUCCEEDED":
        return Outcome.COMMITTED
    if status == "FAILED" and error == ROLLED_BACK_ERROR:
        return Outcome.ROLLED_BACK
    return Outcome.NEEDS_ATTENTION


def states_entered(events: list[dict[str, Any]]) -> list[str]:
    return [event["stateEnteredEventDetails"]["name"] for event in events if event["type"].endswith("StateEntered")]


def execution_history(stepfunctions: BaseClient, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    request: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = stepfunctions.get_execution_history(**request)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        request["nextToken"] = page["nextToken"]


class TripReader:
    """Reads a trip's bookings and saga log from the stage's tables."""

    def __init__(self, settings: Settings, dynamodb: BaseClient) -> None:
        self.dynamodb = dynamodb
        self.saga_log = SagaLog(settings.saga_log_table, dynamodb)
        self.repositories = [
            BookingRepository(resource, settings.bookings_table(resource), self.saga_log, dynamodb)
            for resource in Resource
        ]

    def bookings(self, trip_id: str) -> dict[str, str | None]:
        found = get_bookings(self.dynamodb, self.repositories, trip_id)
        return {resource.value: booking.status.value if booking else None for resource, booking in found.items()}

    def log(self, trip_id: str) -> list[LogEntry]:
        return self.saga_log.entries(trip_id)


def build_report(
    file: str,
    trip_id: str,
    description: dict[str, Any],
    events: list[dict[str, Any]],
    reader: TripReader,
    reused: bool,
) -> SagaReport:
    log, attention = reader.saga_log.read(trip_id)
    status = description["status"]
    error = description.get("error")
    started, stopped = description.get("startDate"), description.get("stopDate")
    states = states_entered(events)
    return SagaReport(
        file=file,
        trip_id=trip_id,
        execution_arn=description["executionArn"],
        status=status,
        outcome=outcome_of(status, error),
        error=error,
        cause=description.get("cause"),
        bookings=reader.bookings(trip_id),
        saga_log=[entry.model_dump(mode="json", exclude_none=True, exclude={"trip_id"}) for entry in log],
        needs_attention=[record.model_dump(mode="json", exclude={"trip_id"}) for record in attention],
        states=states,
        transitions=len(states),
        duration_ms=_milliseconds(started, stopped),
        reused_execution=reused,
    )


def _milliseconds(started: datetime | None, stopped: datetime | None) -> int | None:
    if started is None or stopped is None:
        return None
    return round((stopped - started).total_seconds() * 1000)
