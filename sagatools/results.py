"""What one saga did, read back from Step Functions and DynamoDB: the runner's result.

The same code reads an embedded execution and a deployed one; only the clients differ.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, field_serializer, model_validator

from saga.catalogue import REQUESTS, RESOURCES, RETRIABLES, simulated_provider
from saga.definition import SAGA
from saga.keys import ID_FIELD, InAppWords, SagaKeyed
from saga.models import RecordStatus, Recovery
from saga.named_errors import Refused
from saga.providers import ledger_states
from saga.records import RecordTable, StepRecord, get_records
from saga.saga_log import AttentionRecord, LogEntry, LogEvent, SagaLog
from sagatools.asl import ROLLED_BACK_ERROR
from sagatools.history import state_runs

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from saga.settings import Settings


class Outcome(StrEnum):
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"
    RESOLVED = "RESOLVED"  # a resolution of a stuck saga ended with every compensation done
    # Not started: when the run came to start it, the saga id already named an execution of another request
    # (another process started it after the run's up-front check). Nothing of this request was done.
    CONFLICT = "CONFLICT"


class RecoveryReport(InAppWords):
    """How the saga recovered: its mode and, in forward recovery, what it did past the pivot."""

    mode: str  # backward or forward, as the request chose
    deadline_seconds: int | None = None  # forward: how long after the pivot it kept trying
    pivot_passed: bool = False  # forward: the PIVOT entry is in the saga log
    forward_retries: int = 0  # retries of the steps past the pivot
    forward_waited_seconds: float = 0  # what those retries waited on the saga's own clock (as on AWS)
    providers_tried: dict[str, list[str]] = Field(default_factory=dict)  # resource -> the providers asked, in order
    providers_refused: dict[str, list[str]] = Field(default_factory=dict)  # resource -> those of them that refused
    # resource -> the provider that holds the confirmed record (in `--json`: booked_with, in the saga's verb)
    done_with: dict[str, str] = Field(default_factory=dict)


class SagaResult(SagaKeyed):
    """What one saga did; its JSON dump is the `--json` contract of runtest.sh, one per request file."""

    file: str
    execution_arn: str
    status: str
    outcome: Outcome | None
    error: str | None
    cause: str | None
    records: dict[str, RecordStatus | None]  # resource -> status, in step order
    # resource -> the reservation its provider's own ledger holds for this saga's key, in step order
    providers: dict[str, RecordStatus | None] = Field(default_factory=dict)
    saga_log: list[LogEntry]
    needs_attention: list[AttentionRecord]
    states: list[str]
    transitions: int  # states entered
    billed_transitions: int = 0  # what Standard workflows bill: states entered plus every retry of a task
    # --coordinator durable: the durable operations AWS would meter (absent from the state machine's results)
    durable_operations: int | None = Field(default=None, exclude_if=lambda count: count is None)
    duration_ms: int | None
    reused_execution: bool = False
    recovery: RecoveryReport | None = None

    # In the JSON, log entries and attention records leave out the saga id (it is the result's own);
    # reading a dump back puts it in again.
    @model_validator(mode="before")
    @classmethod
    def _id_into_entries(cls, data: Any) -> Any:
        if not isinstance(data, dict) or ID_FIELD not in data:
            return data
        with_id = dict(data)
        for key in ("saga_log", "needs_attention"):
            if isinstance(data.get(key), list):
                with_id[key] = [
                    {ID_FIELD: data[ID_FIELD], **item} if isinstance(item, dict) else item for item in data[key]
                ]
        return with_id

    @field_serializer("saga_log")
    def _log_without_id(self, entries: list[LogEntry]) -> list[dict[str, Any]]:
        return [entry.model_dump(mode="json", exclude_none=True, exclude={"saga_id"}) for entry in entries]

    @field_serializer("needs_attention")
    def _attention_without_id(self, records: list[AttentionRecord]) -> list[dict[str, Any]]:
        return [record.model_dump(mode="json", exclude={"saga_id"}) for record in records]

    def provider_disagreements(self) -> list[str]:
        """The resources booked at one of the saga's records and its provider's ledger and not at the other, in
        step order (of the steps whose work calls a simulated provider: saga/providers.py)."""
        return [
            resource
            for resource, status in self.records.items()
            if resource in self.providers
            and simulated_provider(resource) is not None
            and (status is RecordStatus.CONFIRMED) != (self.providers[resource] is RecordStatus.CONFIRMED)
        ]

    def log_of(self, step: str, event: LogEvent | None = None) -> list[LogEntry]:
        """The saga log entries of one step (and one event), in write order."""
        return [entry for entry in self.saga_log if entry.step == step and (event is None or entry.event is event)]


def outcome_of(status: str, error: str | None) -> Outcome | None:
    """COMMITTED on success, ROLLED_BACK on the clean-rollback Fail state; any other end needs an operator."""
    if status == "RUNNING":
        return None
    if status == "SUCCEEDED":
        return Outcome.COMMITTED
    if status == "FAILED" and error == ROLLED_BACK_ERROR:
        return Outcome.ROLLED_BACK
    return Outcome.NEEDS_ATTENTION


def resolution_outcome_of(status: str, error: str | None) -> Outcome | None:
    """A resolution: RESOLVED when it succeeded; any other end leaves the saga needing attention."""
    if status == "RUNNING":
        return None
    return Outcome.RESOLVED if status == "SUCCEEDED" else Outcome.NEEDS_ATTENTION


def states_entered(events: list[dict[str, Any]]) -> list[str]:
    return [event["stateEnteredEventDetails"]["name"] for event in events if event["type"].endswith("StateEntered")]


def billed_transitions(events: list[dict[str, Any]]) -> int:
    """State transitions as AWS bills them: one per state entered, and one more per retry of a task."""
    runs = state_runs(events)
    return len(runs) + sum(run.retries for run in runs)


class SagaReader:
    """Reads a saga's records, its saga log and its providers' ledgers from the stage's tables."""

    def __init__(self, settings: Settings, dynamodb: BaseClient) -> None:
        self.dynamodb = dynamodb
        self.saga_log = SagaLog(settings.saga_log_table, dynamodb)
        self.repositories = [
            RecordTable(resource, settings.records_table(resource), self.saga_log, dynamodb) for resource in RESOURCES
        ]
        self.provider_tables = {resource: settings.provider_table(resource) for resource in RESOURCES}

    def records(self, saga_id: str) -> dict[str, RecordStatus | None]:
        return statuses(self.record_items(saga_id))

    def record_items(self, saga_id: str) -> dict[str, StepRecord | None]:
        return get_records(self.dynamodb, self.repositories, saga_id)

    def log(self, saga_id: str) -> list[LogEntry]:
        return self.saga_log.entries(saga_id)

    def providers(self, saga_id: str, log: list[LogEntry]) -> dict[str, RecordStatus | None]:
        """Each step's reservation for the saga at its provider (its own ledger, by the step's key), in step order:
        at any provider the step asked (its START entries in the saga `log` name each one)."""
        states = ledger_states(self.dynamodb, self.provider_tables, saga_id, providers_asked(log))
        return {resource: RecordStatus(state) if state else None for resource, state in states.items()}


def providers_asked(log: list[LogEntry]) -> dict[str, list[str | None]]:
    """Each request's providers, in the order its START entries in the saga `log` name them (None for a step that
    names no provider)."""
    starts = [entry for entry in log if entry.event is LogEvent.START]
    return {
        step.resource: list(dict.fromkeys(entry.provider for entry in starts if entry.step == step.name))
        for step in REQUESTS
    }


def statuses(records: dict[str, StepRecord | None]) -> dict[str, RecordStatus | None]:
    return {resource: record.status if record else None for resource, record in records.items()}


def recovery_report(
    execution_input: str | None, log: list[LogEntry], records: dict[str, StepRecord | None]
) -> RecoveryReport | None:
    """What the request chose and, past the pivot, what forward recovery did (None for a saga without a pivot)."""
    if SAGA.pivot is None:
        return None
    try:
        document = json.loads(execution_input or "{}")
    except ValueError:
        document = {}
    request = document.get("request", document) if isinstance(document, dict) else {}  # a resolution wraps it
    try:
        recovery = Recovery.model_validate(request.get("recovery") or {})
    except (ValidationError, AttributeError):
        recovery = Recovery()
    mode = recovery.mode
    done_with = {
        resource: record.provider
        for resource, record in records.items()
        if record is not None and record.provider and record.status is RecordStatus.CONFIRMED
    }
    tried: dict[str, list[str]] = {}
    refused: dict[str, list[str]] = {}
    asked = providers_asked(log)
    for step in REQUESTS:
        names = [provider for provider in asked[step.resource] if provider]
        if len(names) > 1 or (names and step.spec.alternatives_for and mode == "forward"):
            tried[step.resource] = names
            refusals = [
                entry.provider
                for entry in log
                if entry.step == step.name
                and entry.event is LogEvent.FAILED
                and (entry.detail or "").startswith(f"{Refused.__name__}:")
            ]
            refused[step.resource] = list(dict.fromkeys(provider for provider in refusals if provider))
    if mode != "forward":
        return RecoveryReport(mode=mode, done_with=done_with)
    retriable = {step.name for step in RETRIABLES}
    attempts: dict[str, int] = {}
    for entry in log:
        if entry.step in retriable and entry.event is LogEvent.START:
            attempts[entry.step] = max(attempts.get(entry.step, 0), entry.attempt)
    return RecoveryReport(
        mode=mode,
        deadline_seconds=recovery.deadline_seconds,
        pivot_passed=any(entry.event is LogEvent.PIVOT for entry in log),
        forward_retries=sum(count - 1 for count in attempts.values()),
        forward_waited_seconds=sum(
            step.spec.forward_retry.waited(attempts.get(step.name, 1) - 1) for step in RETRIABLES
        ),
        providers_tried=tried,
        providers_refused=refused,
        done_with=done_with,
    )


def build_report(
    file: str,
    saga_id: str,
    description: dict[str, Any],
    events: list[dict[str, Any]],
    reader: SagaReader,
    reused: bool,
    outcome: Callable[[str, str | None], Outcome | None] = outcome_of,
) -> SagaResult:
    """What an execution of the saga (or, with `resolution_outcome_of`, a resolution) did."""
    log, attention = reader.saga_log.read(saga_id)
    records = reader.record_items(saga_id)
    status = description["status"]
    error = description.get("error")
    started, stopped = description.get("startDate"), description.get("stopDate")
    states = states_entered(events)
    return SagaResult(
        file=file,
        saga_id=saga_id,
        execution_arn=description["executionArn"],
        status=status,
        outcome=outcome(status, error),
        error=error,
        cause=description.get("cause"),
        records=statuses(records),
        providers=reader.providers(saga_id, log),
        saga_log=log,
        needs_attention=attention,
        states=states,
        transitions=len(states),
        billed_transitions=billed_transitions(events),
        duration_ms=_milliseconds(started, stopped),
        reused_execution=reused,
        recovery=recovery_report(description.get("input"), log, records),
    )


def _milliseconds(started: datetime | None, stopped: datetime | None) -> int | None:
    if started is None or stopped is None:
        return None
    return round((stopped - started).total_seconds() * 1000)
