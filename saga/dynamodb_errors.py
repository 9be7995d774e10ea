"""Which DynamoDB failures pass (retry the step) and which do not (DataAccessError), from a ClientError.

Transient: throttling (ProvisionedThroughputExceededException, ThrottlingException, RequestLimitExceeded),
conflicts (TransactionConflictException, a transaction cancelled for TransactionConflict), a throttled
transaction item (ThrottlingError), and DynamoDB's own InternalServerError. botocore retries some of
these itself first; what still reaches us is retried by the state machine's Retry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from saga.errors import DataAccessError, TransientDataAccessError

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "InternalServerError",
    }
)
TRANSIENT_CANCELLATION_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


def is_transient(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    if code in TRANSIENT_CODES:
        return True
    if code == "TransactionCanceledException":
        reasons = {reason.get("Code") for reason in error.response.get("CancellationReasons") or []}
        return bool(reasons & TRANSIENT_CANCELLATION_REASONS)
    return False


def data_access_error(doing: str, error: ClientError) -> DataAccessError:
    """The error to raise for `error` met while `doing` something: transient or not."""
    kind = TransientDataAccessError if is_transient(error) else DataAccessError
    return kind(f"{doing}: {error}")
