"""The saga log (transaction log): START before every request and compensation, END or FAILED after.

Items live in the saga log table under the saga id, sorted by a key that begins with the time of
writing, so a Query returns them in the order they were written. The END of a record change is not
written here on its own: `RecordTable` puts it in the same transaction as the change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from saga.attributes import from_attributes, to_attributes
from saga.catalogue import ATTENTION_PREFIX
from saga.dynamodb_errors import data_access_error
from saga.keys import ID_FIELD, SagaKeyed

if TYPE_CHECKING:
    from botocore.client import BaseClient

LOG_PREFIX = "LOG#"
# The saga log table's index keyed by an attention record's state: OPEN lists the sagas to act on
# (serverless.yml declares it under this name).
ATTENTION_INDEX = "attention-index"


class LogEvent(StrEnum):
    START = "START"
    END = "END"
    FAILED = "FAILED"
    # Forward recovery: the pivot succeeded (written with its END): from here the saga is finished, not undone.
    PIVOT = "PIVOT"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LogEntry(SagaKeyed):
    step: str
    event: LogEvent
    at: str
    attempt: int
    execution_id: str | None = None
    detail: str | None = None
    provider: str | None = None  # for a step with alternatives: the provider this entry is about

    @property
    def sort_key(self) -> str:
        # START sorts before the END/FAILED of the same attempt, and PIVOT after its END, even if they
        # carry the same microsecond.
        order = {LogEvent.START: 0, LogEvent.PIVOT: 2}.get(self.event, 1)
        return f"{LOG_PREFIX}{self.at}#{order}#{self.step}#{self.attempt}"


class AttentionState(StrEnum):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"


class AttentionKind(StrEnum):
    """What is left to do for a saga that needs attention."""

    STUCK_COMPENSATION = "STUCK_COMPENSATION"  # a compensation stayed stuck: resolve runs them again
    UNFINISHED_FORWARD = "UNFINISHED_FORWARD"  # past the pivot, a step is not done: resolve finishes it


# How a resolution updates an attention record: the resolution state machine's Close and Keep states
# (sagatools/generate/resolution_machine.py) and the durable function's resolution (SagaLog) write the same.
CLOSE_ATTENTION_UPDATE = "SET attention = :resolved, resolved_at = :now, resolved_by = :execution"
CLOSE_ATTENTION_CONDITION = "attention = :open"
ATTENTION_NAMES = {"#at": "at", "#error": "error"}


def keep_attention_update(counts_attempts: bool) -> str:
    """Open (or keep open) the record with the error met again and the execution that met it, when it was first opened
    kept; with `counts_attempts`, :attempts added to its count."""
    counted = ", attempts = if_not_exists(attempts, :none) + :attempts" if counts_attempts else ""
    return (
        "SET attention = :open, step = :step, kind = :kind, #at = if_not_exists(#at, :now), #error = :error,"
        f" cause = :cause, execution_id = :execution{counted} REMOVE resolved_at, resolved_by"
    )


class AttentionRecord(SagaKeyed):
    """Written by the state machines themselves: opened when a compensation stays stuck (the saga's
    ASL), kept open or closed by a resolution (statemachine/resolve-stuck.asl.json). Never deleted."""

    step: str
    at: str  # when it was opened
    attention: AttentionState = AttentionState.OPEN  # the attention-index's key: OPEN lists the sagas to act on
    kind: AttentionKind = AttentionKind.STUCK_COMPENSATION  # records written before kinds existed were all stuck
    error: str | None = None
    cause: str | None = None
    execution_id: str | None = None  # the execution that last found it stuck
    attempts: int | None = None  # attempts by resolutions so far (the saga's own are in the saga log)
    resolved_at: str | None = None
    resolved_by: str | None = None


class SagaLog:
    def __init__(self, table: str, client: BaseClient) -> None:
        self.table = table
        self._client = client

    def put_request(self, entry: LogEntry) -> dict[str, Any]:
        """The Put of one entry, for a transaction; the condition keeps an entry from being overwritten."""
        item = {ID_FIELD: entry.saga_id, "sk": entry.sort_key, **entry.model_dump(exclude={"saga_id"})}
        return {
            "TableName": self.table,
            "Item": to_attributes(item),
            "ConditionExpression": "attribute_not_exists(sk)",
        }

    def append(self, entry: LogEntry) -> None:
        try:
            self._client.put_item(**self.put_request(entry))
        except ClientError as error:
            raise data_access_error(f"writing {entry.step} {entry.event.value} to {self.table}", error) from error

    def open_attention(self, record: AttentionRecord) -> None:
        """Write an attention record as the state machine's Flag states do (a put: it replaces an earlier one of the
        same step). The durable coordinator writes its own this way; the table's errors are left to the caller."""
        item = {"sk": f"{ATTENTION_PREFIX}{record.step}", **record.model_dump(mode="json", exclude={"saga_id"})}
        self._client.put_item(TableName=self.table, Item=to_attributes({ID_FIELD: record.saga_id, **item}))

    def close_attention(self, record: AttentionRecord, at: str, resolved_by: str) -> bool:
        """Close an open attention record (by an operator, or by the durable function's resolution); False if it was
        not open. The table's own errors are left to the caller, which explains them."""
        try:
            self._client.update_item(
                TableName=self.table,
                Key=self._attention_key(record.saga_id, record.step),
                UpdateExpression=CLOSE_ATTENTION_UPDATE,
                ConditionExpression=CLOSE_ATTENTION_CONDITION,
                ExpressionAttributeValues={
                    ":resolved": {"S": AttentionState.RESOLVED.value},
                    ":open": {"S": AttentionState.OPEN.value},
                    ":now": {"S": at},
                    ":execution": {"S": resolved_by},  # the resolution, or the operator who closed it by hand
                },
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def keep_attention(self, record: AttentionRecord, attempts: int | None = None) -> None:
        """Keep (or open) a step's attention record as a resolution found it: open, with the error it met again and
        the execution that met it, `attempts` added to its count when given; when it was first opened is kept. As
        the resolution state machine's Keep states write it (sagatools/generate/resolution_machine.py)."""
        values: dict[str, Any] = {
            ":open": AttentionState.OPEN.value,
            ":step": record.step,
            ":kind": record.kind.value,
            ":now": record.at,
            ":error": record.error,
            ":cause": record.cause,
            ":execution": record.execution_id,
        }
        if attempts is not None:
            values |= {":none": 0, ":attempts": attempts}
        self._client.update_item(
            TableName=self.table,
            Key=self._attention_key(record.saga_id, record.step),
            UpdateExpression=keep_attention_update(attempts is not None),
            ExpressionAttributeNames=ATTENTION_NAMES,
            ExpressionAttributeValues=to_attributes(values),
        )

    @staticmethod
    def _attention_key(saga_id: str, step: str) -> dict[str, Any]:
        return {ID_FIELD: {"S": saga_id}, "sk": {"S": f"{ATTENTION_PREFIX}{step}"}}

    def entries(self, saga_id: str) -> list[LogEntry]:
        return self.read(saga_id)[0]

    def attention_records(self, state: AttentionState) -> list[AttentionRecord]:
        """Every saga's attention records in this state, from the attention index (never a table scan)."""
        pages = self._client.get_paginator("query").paginate(
            TableName=self.table,
            IndexName=ATTENTION_INDEX,
            KeyConditionExpression="attention = :state",
            ExpressionAttributeValues={":state": {"S": state.value}},
        )
        return [AttentionRecord.model_validate(from_attributes(item)) for page in pages for item in page["Items"]]

    def read(self, saga_id: str) -> tuple[list[LogEntry], list[AttentionRecord]]:
        """The saga's log entries in write order, and its attention records, in one Query."""
        items = self._query(saga_id)
        entries = [LogEntry.model_validate(item) for item in items if item["sk"].startswith(LOG_PREFIX)]
        attention = [AttentionRecord.model_validate(item) for item in items if item["sk"].startswith(ATTENTION_PREFIX)]
        return entries, attention

    def _query(self, saga_id: str) -> list[dict[str, Any]]:
        pages = self._client.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="#id = :id",
            ExpressionAttributeNames={"#id": ID_FIELD},
            ExpressionAttributeValues={":id": {"S": saga_id}},
            ConsistentRead=True,
        )
        try:
            return [from_attributes(item) for page in pages for item in page["Items"]]
        except ClientError as error:
            raise data_access_error(f"reading the saga log of {saga_id}", error) from error
