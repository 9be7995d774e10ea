"""The records of one resource of the saga (one table per resource), one item per saga.

Every invariant is a DynamoDB condition, never a read followed by a write:
- book puts the record only if no item exists for the saga (a CONFIRMED one makes the book a
  no-op, a CANCELLED tombstone refuses it);
- cancel sets CANCELLED whether or not the record exists, leaving a tombstone when it does not.
Each change is committed in one transaction with the saga log entry that records it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from saga.attributes import from_attributes, to_attributes
from saga.dynamodb_errors import data_access_error
from saga.errors import DataAccessError
from saga.keys import ID_FIELD, UNDONE_AT, SagaKeyed
from saga.models import RecordStatus

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from saga.saga_log import LogEntry, SagaLog


class StepRecord(SagaKeyed):
    resource: str
    status: RecordStatus
    reference: str
    # When the request was done and when it was undone, written as `<the saga's verb, done>_at` (booked_at,
    # cancelled_at); done_at is absent on a tombstone (undone before it was ever done).
    done_at: str | None = None
    undone_at: str | None = None
    details: dict[str, Any] | None = None
    provider: str | None = None  # for a step with alternatives: the provider that took the record


class RecordUnchanged(Exception):
    """The change was not made, because its condition did not hold: `existing` is the record as it is."""

    def __init__(self, existing: StepRecord) -> None:
        super().__init__(existing.status)
        self.existing = existing


def record_reference(resource: str, saga_id: str) -> str:
    # Deterministic, so a retried or replayed step names the same record.
    return f"{resource.upper()}-{saga_id}"


class RecordTable:
    def __init__(self, resource: str, table: str, saga_log: SagaLog, client: BaseClient) -> None:
        self.resource = resource
        self.table = table
        self._saga_log = saga_log
        self._client = client

    def confirm(
        self,
        saga_id: str,
        details: dict[str, Any],
        end: LogEntry,
        provider: str | None = None,
        also_log: tuple[LogEntry, ...] = (),
        reference: str | None = None,
    ) -> StepRecord:
        """Create the CONFIRMED record and log `end` (and `also_log`), atomically; RecordUnchanged if an
        item exists."""
        record = StepRecord(
            saga_id=saga_id,
            resource=self.resource,
            status=RecordStatus.CONFIRMED,
            reference=reference or record_reference(self.resource, saga_id),
            done_at=end.at,
            details=details,
            provider=provider,
        )
        change = {
            "Put": {
                "TableName": self.table,
                "Item": to_attributes(record.model_dump(mode="json")),
                # By name: the app's id field may be one of DynamoDB's reserved words (number, key, name).
                "ConditionExpression": "attribute_not_exists(#id)",
                "ExpressionAttributeNames": {"#id": ID_FIELD},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        self._commit(saga_id, change, end, also_log)
        return record

    def cancel(self, saga_id: str, end: LogEntry) -> StepRecord:
        """Mark the record CANCELLED (a tombstone if there was none) and log `end`, atomically.

        RecordUnchanged if it was already cancelled, in which case nothing is written.
        """
        change = {
            "Update": {
                "TableName": self.table,
                "Key": {ID_FIELD: {"S": saga_id}},
                "UpdateExpression": (
                    "SET #status = :cancelled, #undone_at = :at,"
                    " #resource = if_not_exists(#resource, :resource),"
                    " #reference = if_not_exists(#reference, :reference)"
                ),
                "ConditionExpression": "attribute_not_exists(#status) OR #status <> :cancelled",
                "ExpressionAttributeNames": {
                    "#status": "status",
                    "#undone_at": UNDONE_AT,
                    "#resource": "resource",
                    "#reference": "reference",
                },
                "ExpressionAttributeValues": {
                    ":cancelled": {"S": RecordStatus.CANCELLED.value},
                    ":at": {"S": end.at},
                    ":resource": {"S": self.resource},
                    ":reference": {"S": record_reference(self.resource, saga_id)},
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        self._commit(saga_id, change, end)
        return StepRecord(
            saga_id=saga_id,
            resource=self.resource,
            status=RecordStatus.CANCELLED,
            reference=record_reference(self.resource, saga_id),
            undone_at=end.at,
        )

    def get(self, saga_id: str) -> StepRecord | None:
        try:
            reply = self._client.get_item(TableName=self.table, Key={ID_FIELD: {"S": saga_id}}, ConsistentRead=True)
        except ClientError as error:
            raise data_access_error(f"reading {self.table}", error) from error
        item = reply.get("Item")
        return StepRecord.model_validate(from_attributes(item)) if item else None

    def _commit(self, saga_id: str, change: dict[str, Any], end: LogEntry, also_log: tuple[LogEntry, ...] = ()) -> None:
        logged = [{"Put": self._saga_log.put_request(entry)} for entry in (end, *also_log)]
        try:
            self._client.transact_write_items(TransactItems=[change, *logged])
        except ClientError as error:
            reasons = error.response.get("CancellationReasons") or []
            first = reasons[0] if reasons else {}
            if first.get("Code") == "ConditionalCheckFailed":
                existing = from_attributes(first["Item"]) if first.get("Item") else self._existing(saga_id)
                raise RecordUnchanged(StepRecord.model_validate(existing)) from None
            raise data_access_error(f"writing {self.table} and {self._saga_log.table}", error) from error

    def _existing(self, saga_id: str) -> dict[str, Any]:
        record = self.get(saga_id)
        if record is None:
            raise DataAccessError(f"{self.resource} record of {saga_id} failed its condition but is absent")
        return record.model_dump()


def get_records(client: BaseClient, repositories: list[RecordTable], saga_id: str) -> dict[str, StepRecord | None]:
    """A saga's record in each repository's table, in one BatchGetItem (strongly consistent)."""
    tables = {repository.table: repository.resource for repository in repositories}
    key = {"Keys": [{ID_FIELD: {"S": saga_id}}], "ConsistentRead": True}
    pending: dict[str, Any] = dict.fromkeys(tables, key)
    found: dict[str, StepRecord | None] = dict.fromkeys(tables.values())
    try:
        while pending:
            reply = client.batch_get_item(RequestItems=pending)
            for table, items in reply["Responses"].items():
                for item in items:
                    found[tables[table]] = StepRecord.model_validate(from_attributes(item))
            pending = reply.get("UnprocessedKeys") or {}
    except ClientError as error:
        raise data_access_error(f"reading records of {saga_id}", error) from error
    return found
