"""A simulated provider outside the saga: what a step's action and compensation call, by the step's key.

A real step calls a system the saga does not own (a reservation system, a payment provider, a shipping company):
it cannot join the saga's DynamoDB transaction, it loses answers, it answers late. `SimulatedProvider` stands in
for one, in the code an app replaces with its real client. It keeps its own ledger of reservations (one DynamoDB
table per step, <service>-<stage>-<resource>-provider) and knows a reservation only by the step's idempotency key
(`StepCall.key`, `<saga id>/<resource>`, or `<saga id>/<resource>/<provider>` for a step that names its provider,
so that an alternative provider has a key of its own: the same on every retry, on a resolution and on a rerun),
never by a reference the saga may never have received. The saga's own record of the step stays in the saga's tables.

- `book(call, reference)`: one reservation per key. A repeat answers with the same reservation's reference; a key
  it has cancelled is refused from now on (ProviderKeyCancelled, which the step turns into the app's
  AlreadyCompensated), so a late request does not come back to life.
- `cancel(call)`: by key. A confirmed reservation is cancelled; a key it has not booked is left CANCELLED, a
  tombstone that refuses the key from now on. A provider made with `cancels_unknown_keys=False` keeps no
  tombstones: a cancel that reaches it while a booking for the key is still pending is answered
  ProviderKeyUnknown (the step turns it into the app's CompensationFailed, and the compensation is retried), and
  the booking lands after it, for the retry to cancel; a key it never received is nothing to cancel.
- `simulate` "late" on the call (the fault injected into the step): the provider takes the request but books it
  only after the compensation for its key reached it (the saga never hears its answer).

Every rule is a DynamoDB condition on the key's item, never a read followed by a write.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from saga.attributes import from_attributes
from saga.clients import dynamodb_client
from saga.errors import ProviderKeyCancelled, ProviderKeyUnknown
from saga.spec import StepCall, step_key

if TYPE_CHECKING:
    from botocore.client import BaseClient

# The ledger's key attribute: the step's idempotency key.
LEDGER_KEY = "key"
CONFIRMED = "CONFIRMED"
CANCELLED = "CANCELLED"
# The `simulate` mode a simulated provider acts on (StepCall.simulate): the others are the engine's own.
LATE = "late"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _ConditionFailed(Exception):
    """The write's condition did not hold; `item` is the key's item as it is (None if there is none)."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__()
        self.item = item


class SimulatedProvider:
    """A simulated external provider of one step (its resource), with a ledger of its own, reached by key."""

    def __init__(self, resource: str, *, name: str | None = None, cancels_unknown_keys: bool = True) -> None:
        self.resource = resource
        self.name = name or resource  # what its ledger calls it, when the call names no provider
        # False: it cannot cancel a key it has not booked (see the module's docstring).
        self.cancels_unknown_keys = cancels_unknown_keys

    @property
    def table(self) -> str:
        # Imported here: an app's modules import this one while the definition (which the settings read) loads.
        from saga.settings import get_settings

        return get_settings().provider_table(self.resource)

    def book(self, call: StepCall, reference: str) -> str:
        """Reserve under the call's key; the reference of the key's reservation (a repeat's is the first's)."""
        self._check(call)
        if call.simulate == LATE and self._take_late(call, reference):
            return reference  # taken, not booked: it books once the compensation for the key reached it
        booked = (
            "SET #status = :confirmed, #reference = if_not_exists(#reference, :reference),"
            " provider = if_not_exists(provider, :provider), booked_at = :now REMOVE pending"
        )
        values = {
            ":confirmed": CONFIRMED,
            ":reference": reference,
            ":provider": call.provider or self.name,
            ":now": _now(),
        }
        try:
            item = self._update(call.key, booked, "attribute_not_exists(#status)", values)
        except _ConditionFailed as failed:
            item = failed.item or {}
            if item.get("status") != CONFIRMED:
                raise ProviderKeyCancelled(f"{self.name} refuses {call.key}: it cancelled that key already") from None
        return str(item["reference"])

    def cancel(self, call: StepCall) -> None:
        """Cancel the key's reservation: done when the provider has a final answer for the key."""
        self._check(call)
        cancelled = "SET #status = :cancelled, cancelled_at = :now REMOVE pending"
        values = {":cancelled": CANCELLED, ":confirmed": CONFIRMED, ":now": _now()}
        if self.cancels_unknown_keys:
            # Booked, pending or never seen: CANCELLED now (a tombstone where nothing was booked), so a booking
            # still pending, or any later request with the key, is refused.
            with contextlib.suppress(_ConditionFailed):  # cancelled already
                self._update(call.key, cancelled, "attribute_not_exists(#status) OR #status = :confirmed", values)
            return
        try:
            self._update(call.key, cancelled, "#status = :confirmed", values)
            return
        except _ConditionFailed as failed:
            item = failed.item
        if item is None or item.get("status") == CANCELLED:
            return  # cancelled already, or never received: nothing is booked and nothing will be
        # Its booking is still pending: the cancel is answered "unknown key", and the booking lands after it.
        self._land(call.key)
        raise ProviderKeyUnknown(f"{self.name} cannot cancel {call.key}: it has not booked it (yet)")

    def state(self, key: str) -> str | None:
        """The key's reservation as the provider has it: CONFIRMED, CANCELLED, or None (none, or pending)."""
        item = self._get(key)
        status = item.get("status") if item else None
        return str(status) if status else None

    def _check(self, call: StepCall) -> None:
        if call.resource != self.resource:
            raise ValueError(f"the provider of {self.resource} was called for {call.resource}")

    def _take_late(self, call: StepCall, reference: str) -> bool:
        """The request is taken, to be booked later; False when the key is known already (then it books now)."""
        item = {
            LEDGER_KEY: {"S": call.key},
            "pending": {"BOOL": True},
            "reference": {"S": reference},
            "provider": {"S": call.provider or self.name},
            "requested_at": {"S": _now()},
        }
        try:
            self._client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(#key)",
                ExpressionAttributeNames={"#key": LEDGER_KEY},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise self._data_access_error(call.key, error) from error
        return True

    def _land(self, key: str) -> None:
        """The booking pending for `key` lands (unless something else decided the key meanwhile)."""
        landed = "SET #status = :confirmed, booked_at = :now REMOVE pending"
        values = {":confirmed": CONFIRMED, ":now": _now()}
        with contextlib.suppress(_ConditionFailed):
            self._update(key, landed, "attribute_exists(pending) AND attribute_not_exists(#status)", values)

    @property
    def _client(self) -> BaseClient:
        return dynamodb_client()

    def _update(self, key: str, update: str, condition: str, values: dict[str, str]) -> dict[str, Any]:
        """The key's item after `update`, made only if `condition` holds (else _ConditionFailed with the item)."""
        try:
            reply = self._client.update_item(
                TableName=self.table,
                Key={LEDGER_KEY: {"S": key}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={
                    name: attribute
                    for name, attribute in {"#status": "status", "#reference": "reference"}.items()
                    if name in update or name in condition
                },
                ExpressionAttributeValues={
                    name: {"S": value} for name, value in values.items() if name in update or name in condition
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise self._data_access_error(key, error) from error
            old = error.response.get("Item")
            raise _ConditionFailed(from_attributes(old) if old else self._get(key)) from None
        return from_attributes(reply.get("Attributes") or {})

    def _get(self, key: str) -> dict[str, Any] | None:
        try:
            reply = self._client.get_item(TableName=self.table, Key={LEDGER_KEY: {"S": key}}, ConsistentRead=True)
        except ClientError as error:
            raise self._data_access_error(key, error) from error
        item = reply.get("Item")
        return from_attributes(item) if item else None

    def _data_access_error(self, key: str, error: ClientError) -> Exception:
        from saga.dynamodb_errors import data_access_error

        return data_access_error(f"{self.name}'s ledger, {key}", error)


def ledger_states(
    client: BaseClient, tables: dict[str, str], saga_id: str, asked: Mapping[str, Sequence[str | None]]
) -> dict[str, str | None]:
    """Each resource's reservation for the saga, as its provider's ledger (`tables`: resource -> table) has it, in
    one BatchGetItem (strongly consistent): CONFIRMED at any provider asked, else CANCELLED at any, else None.

    `asked`: for each resource, the providers its step asked (None for a step that names none); a resource not in it
    (or asked none) is read under the step's own key."""
    pending: dict[str, Any] = {}
    for resource, table in tables.items():
        keys = dict.fromkeys(step_key(saga_id, resource, provider) for provider in asked.get(resource) or [None])
        pending[table] = {"Keys": [{LEDGER_KEY: {"S": key}} for key in keys], "ConsistentRead": True}
    by_table = {table: resource for resource, table in tables.items()}
    seen: dict[str, set[str]] = {resource: set() for resource in tables}
    try:
        while pending:
            reply = client.batch_get_item(RequestItems=pending)
            for table, items in reply["Responses"].items():
                seen[by_table[table]].update(item["status"]["S"] for item in items if "status" in item)
            pending = reply.get("UnprocessedKeys") or {}
    except ClientError as error:
        from saga.dynamodb_errors import data_access_error

        raise data_access_error(f"reading the providers' ledgers for {saga_id}", error) from error
    return {
        resource: CONFIRMED if CONFIRMED in states else CANCELLED if CANCELLED in states else None
        for resource, states in seen.items()
    }
