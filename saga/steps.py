"""The steps of the saga: a request (book) and its compensation (cancel) for each resource.

Each step writes START to the saga log before acting and END or FAILED after; the END of a change
is committed with the change itself (see `BookingRepository`). Faults from the request's `simulate`
section are injected here, at the provider boundary, so everything around them runs for real.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from saga import catalogue
from saga.bookings import BookingRepository, BookingUnchanged
from saga.catalogue import Action
from saga.clients import dynamodb_client
from saga.errors import (
    BookingAlreadyCancelled,
    BookingRefused,
    CancellationFailed,
    CrashAfterWrite,
    InvalidTripRequest,
    SagaError,
    TransientDataAccessError,
    TransientProviderError,
)
from saga.models import BookingStatus, Fault, StepInvocation, StepResult
from saga.observability import logger, metrics
from saga.saga_log import LogEntry, LogEvent, SagaLog, utc_now
from saga.settings import Settings, get_settings

if TYPE_CHECKING:
    from saga.bookings import Booking


class _Step:
    """One invocation of one step: its request, its attempt, and where it writes."""

    def __init__(self, action: Action, resource: str, invocation: StepInvocation, settings: Settings) -> None:
        self.name = catalogue.step(action, resource).name
        self.resource = resource
        self.invocation = invocation
        self.trip_id = invocation.request.trip_id
        self.fault = self._fault(settings)
        client = dynamodb_client()
        self.saga_log = SagaLog(settings.saga_log_table, client)
        self.bookings = BookingRepository(resource, settings.bookings_table(resource), self.saga_log, client)

    def _fault(self, settings: Settings) -> Fault | None:
        request = self.invocation.request
        if request.simulate and not settings.fault_injection:
            raise InvalidTripRequest("simulate: fault injection is switched off on this stage")
        return request.fault_for(self.name)

    def entry(self, event: LogEvent, detail: str | None = None) -> LogEntry:
        return LogEntry(
            trip_id=self.trip_id,
            step=self.name,
            event=event,
            at=utc_now(),
            attempt=self.invocation.attempt,
            execution_id=self.invocation.execution_id,
            detail=detail,
        )

    def start(self) -> None:
        self.saga_log.append(self.entry(LogEvent.START))

    def fail(self, error: SagaError) -> SagaError:
        """Log FAILED for this attempt and hand back the error for the caller to raise."""
        self.saga_log.append(self.entry(LogEvent.FAILED, f"{type(error).__name__}: {error}"))
        metrics.add_metric(name="StepFailed", unit=MetricUnit.Count, value=1)
        logger.warning(
            "step failed", extra={"step": self.name, "attempt": self.invocation.attempt, "error": str(error)}
        )
        return error

    def injected_error(self, refusal: SagaError) -> SagaError | None:
        """The error the simulated provider answers with on this attempt, if any."""
        fault = self.fault
        if fault is None:
            return None
        if fault.mode == "fail":
            return refusal
        if fault.mode == "transient" and self.invocation.attempt <= fault.failing_attempts:
            return TransientProviderError(
                f"{self.name}: simulated transient fault, attempt {self.invocation.attempt}"
                f" of {fault.failing_attempts} failing"
            )
        return None

    def result(self, booking: Booking, already_done: bool) -> StepResult:
        return StepResult(
            trip_id=self.trip_id,
            step=self.name,
            resource=self.resource,
            status=booking.status,
            reference=booking.reference,
            attempt=self.invocation.attempt,
            already_done=already_done,
        )


def book(resource: str, invocation: StepInvocation) -> StepResult:
    """Book `resource` for the trip; a repeat returns the existing booking, a tombstone refuses it."""
    step = _Step(Action.REQUEST, resource, invocation, get_settings())
    step.start()
    if error := step.injected_error(BookingRefused(f"{resource} provider refused trip {step.trip_id}")):
        raise step.fail(error)
    try:
        booking = step.bookings.confirm(
            step.trip_id, invocation.request.details_for(resource), step.entry(LogEvent.END)
        )
    except TransientDataAccessError as error:
        raise step.fail(error) from None  # logged as this attempt's FAILED; the state machine retries
    except BookingUnchanged as changed:
        if changed.existing.status is BookingStatus.CANCELLED:
            raise step.fail(
                BookingAlreadyCancelled(f"{resource} of {step.trip_id} was cancelled before it was booked")
            ) from None
        step.saga_log.append(step.entry(LogEvent.END, "already booked"))
        metrics.add_metric(name="StepReplayed", unit=MetricUnit.Count, value=1)
        logger.info("booking already confirmed", extra={"step": step.name, "reference": changed.existing.reference})
        return step.result(changed.existing, already_done=True)
    metrics.add_metric(name="BookingConfirmed", unit=MetricUnit.Count, value=1)
    logger.info("booking confirmed", extra={"step": step.name, "reference": booking.reference})
    if step.fault is not None and step.fault.mode == "crash_after_write":
        raise CrashAfterWrite(f"{step.name}: simulated crash after the booking was committed")
    return step.result(booking, already_done=False)


def cancel(resource: str, invocation: StepInvocation) -> StepResult:
    """Cancel `resource` for the trip; always ends CANCELLED, even if the booking never arrived."""
    step = _Step(Action.COMPENSATION, resource, invocation, get_settings())
    step.start()
    if error := step.injected_error(CancellationFailed(f"{resource} provider did not cancel {step.trip_id}")):
        raise step.fail(error)
    try:
        booking = step.bookings.cancel(step.trip_id, step.entry(LogEvent.END))
    except TransientDataAccessError as error:
        raise step.fail(error) from None
    except BookingUnchanged as changed:
        step.saga_log.append(step.entry(LogEvent.END, "already cancelled"))
        metrics.add_metric(name="StepReplayed", unit=MetricUnit.Count, value=1)
        return step.result(changed.existing, already_done=True)
    metrics.add_metric(name="BookingCancelled", unit=MetricUnit.Count, value=1)
    logger.info("booking cancelled", extra={"step": step.name, "reference": booking.reference})
    return step.result(booking, already_done=False)


def run_step(step: catalogue.Step, invocation: StepInvocation) -> StepResult:
    """The step (book_x runs `book`, cancel_x runs `cancel`) on its resource."""
    return (cancel if step.is_compensation else book)(step.resource, invocation)
