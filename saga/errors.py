"""The contract between the handlers and the state machine.

The Lambda runtime reports an unhandled exception's class name as `errorType`, and Step Functions
uses that as the error name: in the execution history, and in the ASL's `ErrorEquals` where a step's
Retry or Catch treats an error by name (the others reach a Catch through `States.ALL`).
tests/unit/test_asl.py fails if the ASL names an error that is not a class here.
"""


class SagaError(Exception):
    """Base of the errors a step raises on purpose."""


class InvalidTripRequest(SagaError):
    """The request broke a rule of the request model; the saga fails fast, nothing is compensated."""


class BookingRefused(SagaError):
    """The provider said no; nothing was booked."""


class BookingAlreadyCancelled(SagaError):
    """A cancel arrived first and left a tombstone, so this late booking must not come to life."""


class TransientProviderError(SagaError):
    """A passing fault (throttling, a blip); the state machine retries the step."""


class CrashAfterWrite(SagaError):
    """The booking was committed but the step died before answering (the lost response)."""


class CancellationFailed(SagaError):
    """A compensation did not complete; retried, then recorded as needing attention."""


class DataAccessError(SagaError):
    """DynamoDB refused or failed a call in a way the step cannot handle itself."""


class TransientDataAccessError(DataAccessError):
    """DynamoDB throttled the call or it met a conflicting transaction: a passing fault, retried by the
    state machine like TransientProviderError (a booking must never roll back for it)."""


class ForwardRetryableError(SagaError):
    """Past the pivot, in forward recovery: a passing fault or a lost response. The state machine retries
    it slowly (saga.spec.FORWARD_RETRY) while the step finds the deadline ahead."""


class ForwardDeadlinePassed(SagaError):
    """Past the pivot, in forward recovery: the next attempt would start after the deadline. The trip
    keeps what it booked and needs an operator to finish it (or to roll it back)."""


class AlternativesExhausted(SagaError):
    """Past the pivot, in forward recovery: the provider and every alternative refused."""
