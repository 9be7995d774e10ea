"""The contract between the handlers and the state machine.

The Lambda runtime reports an unhandled exception's class name as `errorType`, and Step Functions
uses that as the error name: in the execution history, and in the ASL's `ErrorEquals` where a step's
Retry or Catch treats an error by name (the others reach a Catch through `States.ALL`).
tests/unit/test_asl.py fails if the ASL names an error that is not a class here (or in saga/named_errors.py).

Four of them an app may call in its own words (saga.spec.ErrorNames): saga/named_errors.py makes the classes
the steps raise for those. This module imports nothing of the app, so the app's own step code may raise
these (`StepRefused`, `TransientProviderError`): the step turns them into the app's names.
"""


class SagaError(Exception):
    """Base of the errors a step raises on purpose."""


class InvalidRequest(SagaError):
    """The request broke a rule of the request model; the saga fails fast, nothing is compensated."""


class StepRefused(SagaError):
    """The provider said no; nothing was done."""


class AlreadyCompensated(SagaError):
    """A compensation arrived first and left a tombstone, so this late request must not come to life."""


class TransientProviderError(SagaError):
    """A passing fault (throttling, a blip); the state machine retries the step."""


class CrashAfterWrite(SagaError):
    """The record was committed but the step died before answering (the lost response)."""


class CompensationFailed(SagaError):
    """A compensation did not complete; retried, then recorded as needing attention."""


class DataAccessError(SagaError):
    """DynamoDB refused or failed a call in a way the step cannot handle itself."""


class TransientDataAccessError(DataAccessError):
    """DynamoDB throttled the call or it met a conflicting transaction: a passing fault, retried by the
    state machine like TransientProviderError (a record must never roll back for it)."""


class ForwardRetryableError(SagaError):
    """Past the pivot, in forward recovery: a passing fault or a lost response. The state machine retries
    it slowly (saga.spec.FORWARD_RETRY) while the step finds the deadline ahead."""


class ForwardDeadlinePassed(SagaError):
    """Past the pivot, in forward recovery: the next attempt would start after the deadline. The saga
    keeps what it did and needs an operator to finish it (or to roll it back)."""


class AlternativesExhausted(SagaError):
    """Past the pivot, in forward recovery: the provider and every alternative refused."""


class ProviderKeyCancelled(SagaError):
    """A provider refused a step's key because it cancelled that key already (saga/providers.py): the step raises
    the app's AlreadyCompensated instead, so a late request does not come back to life."""


class ProviderKeyUnknown(SagaError):
    """A provider that cannot cancel a key it has not booked was asked to, while a booking for it may still be on its
    way (saga/providers.py): the compensation raises the app's CompensationFailed instead and is retried, so the
    engine finds out rather than assumes."""


class SagaRolledBack(Exception):
    """How a saga ends when every compensation it ran succeeded: the state machine's RolledBack state fails
    with this name, the durable function raises it."""


class SagaNeedsAttention(Exception):
    """How a saga ends when an operator must act (a compensation stayed stuck, or past the pivot a step could
    not be finished): its attention record says what."""
