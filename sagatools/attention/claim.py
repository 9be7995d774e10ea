"""Who acts on a saga next: one item of the saga log table per saga, taken by a conditional write.

Of two operators' calls at once (resolve, resolve --roll-back, close), exactly one takes the claim and acts;
the other's write is refused by DynamoDB and it reads who took it. A Step Functions execution name alone is
not enough: moto (the embedded stack and the local cloud) checks it and starts under it without a lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from saga.keys import ID_FIELD, SagaKeyed
from saga.saga_log import utc_now

if TYPE_CHECKING:
    from botocore.client import BaseClient

# Neither LOG# nor ATTENTION#: the saga log's readers pass it by, and without an `attention` attribute the
# attention index never lists it.
CLAIM_KEY = "CLAIM#resolution"


class Claim(SagaKeyed):
    """The last call that acted on the saga: a resolution (its execution's name) or a close by hand (None)."""

    execution: str | None
    version: int
    at: str


class Claims:
    def __init__(self, table: str, dynamodb: BaseClient) -> None:
        self.table = table
        self._client = dynamodb

    def read(self, saga_id: str) -> Claim | None:
        found = self._client.get_item(
            TableName=self.table, Key={ID_FIELD: {"S": saga_id}, "sk": {"S": CLAIM_KEY}}, ConsistentRead=True
        ).get("Item")
        if found is None:
            return None
        return Claim(
            saga_id=saga_id,
            execution=found["execution"]["S"] if "execution" in found else None,
            version=int(found["version"]["N"]),
            at=found["at"]["S"],
        )

    def take(self, saga_id: str, seen: Claim | None, execution: str | None) -> bool:
        """Claim the saga for `execution` (None: a close by hand), if nobody has since `seen` was read."""
        version = seen.version + 1 if seen is not None else 1
        item = {
            ID_FIELD: {"S": saga_id},
            "sk": {"S": CLAIM_KEY},
            "version": {"N": str(version)},
            "at": {"S": utc_now()},
        }
        if execution is not None:
            item["execution"] = {"S": execution}
        condition: dict[str, object] = (
            {"ConditionExpression": "attribute_not_exists(sk)"}
            if seen is None
            else {
                "ConditionExpression": "version = :seen",
                "ExpressionAttributeValues": {":seen": {"N": str(seen.version)}},
            }
        )
        try:
            self._client.put_item(TableName=self.table, Item=item, **condition)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True
