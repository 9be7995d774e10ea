"""The steps of the saga: a request (book) and its compensation (cancel) for each resource.

Each step writes START to the saga log before acting and END or FAILED after; the END of a change
is committed with the change itself (see `RecordTable`). Faults from the request's `simulate`
section are injected here, at the provider boundary, so everything around them runs for real.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError

from saga import catalogue
from saga.catalogue import Action
from saga.clients import dynamodb_client
from saga.errors import (
    AlternativesExhausted,
    CompensationFailed,
    CrashAfterWrite,
    DataAccessError,
    ForwardDeadlinePassed,
    ForwardRetryableError,
    ProviderKeyCancelled,
    ProviderKeyUnknown,
    SagaError,
    StepRefused,
    TransientDataAccessError,
    TransientProviderError,
)
from saga.keys import NOUN
from saga.models import Fault, RecordStatus, StepInvocation, StepResult
from saga.named_errors import CompensationNotDone, LateAfterCompensation, Refused, RequestInvalid
from saga.observability import logger, metrics
from saga.providers import LATE
from saga.records import RecordTable, RecordUnchanged
from saga.saga_log import LogEntry, LogEvent, SagaLog, utc_now
from saga.settings import Settings, get_settings
from saga.spec import StepCall, StepKind

if TYPE_CHECKING:
    from saga.records import StepRecord
    from saga.spec import StepCompensation


class _Attempt:
    """One attempt at one step (a Lambda invocation): its request, its retry count, and where it writes.
    (saga/spec.py's StepSpec defines a step; saga/catalogue.py's Step names it; this runs it once.)"""

    def __init__(self, action: Action, resource: str, invocation: StepInvocation, settings: Settings) -> None:
        self.step = catalogue.step(action, resource)
        self.name = self.step.name
        self.verbs = self.step.verbs  # the step's own words, for what it logs and raises
        self.resource = resource
        self.invocation = invocation
        self.saga_id = invocation.request.saga_id
        self.recovery = invocation.request.recovery_mode
        self.fault = self._fault(settings)
        client = dynamodb_client()
        self.saga_log = SagaLog(settings.saga_log_table, client)
        self.records = RecordTable(resource, settings.records_table(resource), self.saga_log, client)

    @property
    def past_pivot(self) -> bool:
        """In forward recovery, this step runs after the pivot succeeded: it must finish, not fail the saga."""
        return self.recovery.forward and self.step.spec.kind is StepKind.RETRIABLE

    @property
    def is_forward_pivot(self) -> bool:
        return self.recovery.forward and self.step.spec.kind is StepKind.PIVOT

    def providers(self) -> list[str | None]:
        """The providers to ask, in order: the request's own, then (past the pivot) its alternatives.
        [None] for a step without alternatives."""
        field = self.step.spec.alternatives_for
        if field is None:
            return [None]
        section = self.invocation.request.details_for(self.resource)
        alternatives = (section.get("alternatives") or []) if self.past_pivot else []
        return [str(section[field]), *alternatives]

    def forward_retry(self, error: SagaError, committed: bool = False) -> SagaError:
        """Past the pivot, a passing fault: retried on the forward schedule, unless the next attempt would
        start after the deadline (on the saga's own clock: the schedule's waits, or the time since the
        step was entered if that is longer, as on AWS). A `committed` record whose answer was lost is
        always retried: the retry only reads it back, and the saga must not be flagged with it done."""
        policy = self.step.spec.forward_retry
        retries = self.invocation.retry_count
        elapsed = policy.waited(retries)
        if self.invocation.entered_at:
            entered = datetime.fromisoformat(self.invocation.entered_at)
            elapsed = max(elapsed, (datetime.now(UTC) - entered).total_seconds())
        wait, deadline = policy.delay(retries), self.recovery.deadline_seconds
        if committed or elapsed + wait <= deadline:
            return ForwardRetryableError(f"{error}; retried in {wait:.0f} s (forward recovery)")
        return ForwardDeadlinePassed(
            f"{error}; the next attempt would start {elapsed + wait:.0f} s past the pivot, after the {deadline} s"
            " deadline"
        )

    def _fault(self, settings: Settings) -> Fault | None:
        request = self.invocation.request
        if request.simulate and not settings.fault_injection:
            raise RequestInvalid("simulate: fault injection is switched off on this stage")
        return request.fault_for(self.name)

    def entry(self, event: LogEvent, detail: str | None = None, provider: str | None = None) -> LogEntry:
        return LogEntry(
            saga_id=self.saga_id,
            step=self.name,
            event=event,
            at=utc_now(),
            attempt=self.invocation.attempt,
            execution_id=self.invocation.execution_id,
            detail=detail,
            provider=provider,
        )

    def start(self, provider: str | None = None) -> None:
        self.saga_log.append(self.entry(LogEvent.START, provider=provider))

    def fail(self, error: SagaError, provider: str | None = None) -> SagaError:
        """Log FAILED for this attempt and hand back the error for the caller to raise."""
        self.saga_log.append(self.entry(LogEvent.FAILED, f"{type(error).__name__}: {error}", provider))
        metrics.add_metric(name="StepFailed", unit=MetricUnit.Count, value=1)
        logger.warning(
            "step failed", extra={"step": self.name, "attempt": self.invocation.attempt, "error": str(error)}
        )
        return error

    def injected_error(self, refusal: SagaError, provider_index: int = 0) -> SagaError | None:
        """The error the simulated provider (the `provider_index`th asked) answers with on this attempt, if any."""
        fault = self.fault
        if fault is None:
            return None
        if fault.mode == "fail":
            refusing = fault.refusing_providers
            return refusal if refusing is None or provider_index < refusing else None
        if fault.mode == "transient" and self.invocation.attempt <= fault.failing_attempts:
            return TransientProviderError(
                f"{self.name}: simulated transient fault, attempt {self.invocation.attempt}"
                f" of {fault.failing_attempts} failing"
            )
        return None

    def result(self, record: StepRecord, already_done: bool) -> StepResult:
        return StepResult(
            saga_id=self.saga_id,
            step=self.name,
            resource=self.resource,
            status=record.status,
            reference=record.reference,
            attempt=self.invocation.attempt,
            already_done=already_done,
        )


class _CommittedWriteError(DataAccessError):
    """A log write failed after the record itself was committed: a retry only reads the record back."""


def book(resource: str, invocation: StepInvocation) -> StepResult:
    """Book `resource` for the saga; a repeat returns the existing record, a tombstone refuses it.

    Past the pivot in forward recovery, a refusal asks the next alternative provider, and a passing
    fault or a lost response is retried slowly until the deadline (see `_Attempt.forward_retry`), and so
    is a fault in any of the step's own writes: past the pivot nothing may route the saga to a compensation."""
    attempt = _Attempt(Action.REQUEST, resource, invocation, get_settings())
    if not attempt.past_pivot:
        return _book(attempt)
    try:
        return _book(attempt)
    except (DataAccessError, BotoCoreError) as error:
        raise _forward_write_failure(attempt, error) from None


def _forward_write_failure(attempt: _Attempt, error: Exception) -> SagaError:
    """Past the pivot, a DynamoDB fault in one of the step's writes (its START, its FAILED, its record, its
    "already done" END), transient or not: retried forward to the deadline like a passing provider fault.
    The FAILED entry is logged if the table takes it; the retry is what matters."""
    committed = isinstance(error, _CommittedWriteError)
    forward = attempt.forward_retry(SagaError(f"{type(error).__name__}: {error}"), committed=committed)
    try:
        attempt.fail(forward)
    except (DataAccessError, BotoCoreError):
        logger.warning("step failure not logged", extra={"step": attempt.name, "attempt": attempt.invocation.attempt})
    return forward


def _book(attempt: _Attempt) -> StepResult:
    resource = attempt.resource
    providers = attempt.providers()
    for index, provider in enumerate(providers):
        attempt.start(provider)
        who = provider or f"the {resource} provider"
        refusal: SagaError = Refused(f"{who} refused the {resource} of {NOUN} {attempt.saga_id}")
        error = attempt.injected_error(refusal, index)
        if error is None:
            try:
                return _confirm(attempt, provider)
            except StepRefused as said_no:  # the app's own work: its provider said no
                error = refusal = said_no if isinstance(said_no, Refused) else Refused(str(said_no))
        if error is refusal and attempt.past_pivot and index + 1 < len(providers):
            attempt.fail(error, provider)
            continue  # forward recovery: ask the next alternative
        if error is refusal and attempt.past_pivot:
            attempt.fail(error, provider)
            tried = ", ".join(str(p) for p in providers)
            raise attempt.fail(
                AlternativesExhausted(f"every provider refused the {resource} of {NOUN} {attempt.saga_id} ({tried})")
            )
        raise attempt.fail(attempt.forward_retry(error) if attempt.past_pivot else error, provider)
    raise AssertionError("unreachable: the last provider either books or raises")  # pragma: no cover


def _loses_its_response(attempt: _Attempt) -> bool:
    return attempt.fault is not None and attempt.fault.mode == "crash_after_write"


def _answers_late(attempt: _Attempt) -> bool:
    """`late`: the first attempt's request reaches the provider, which books it only after the compensation for
    its key reached it; the step never hears its answer. (A retry, past the pivot, finds it and books it.)"""
    return attempt.fault is not None and attempt.fault.mode == LATE and attempt.invocation.attempt == 1


def _act(attempt: _Attempt, call: StepCall, provider: str | None) -> str | None:
    """The step's own work (the app's code): the reference its provider gives, or None for a step without work."""
    work = attempt.step.spec.work
    if work is None:
        return None
    try:
        return work.action(call)
    except ProviderKeyCancelled as error:
        # The provider cancelled the key already (the compensation reached it first): refused, for good.
        raise attempt.fail(LateAfterCompensation(str(error)), provider) from None
    except StepRefused:
        raise  # a refusal: the caller asks the next provider, or fails the step
    except SagaError as error:  # a passing fault of the provider (TransientProviderError), a table's: retried
        raise attempt.fail(attempt.forward_retry(error) if attempt.past_pivot else error, provider) from None


def _confirm(attempt: _Attempt, provider: str | None) -> StepResult:
    saga_id, resource = attempt.saga_id, attempt.resource
    end = attempt.entry(LogEvent.END, provider=provider)
    # The pivot's END and the PIVOT entry commit together: the point of no return is never half-written.
    pivot = (attempt.entry(LogEvent.PIVOT, f"forward recovery from here: the {NOUN} is finished, not undone"),)
    details = attempt.invocation.request.details_for(resource)
    late = _answers_late(attempt)
    call = StepCall(saga_id, resource, details, provider, simulate=LATE if late else None)
    # The step's own work (the app's code), then its record and END in one transaction.
    reference = _act(attempt, call, provider)
    if late:
        lost = CrashAfterWrite(
            f"{attempt.name}: simulated late answer: the provider took the request and books it only after its"
            " compensation reached it"
        )
        # Past the pivot the retry asks again, with the same key: the provider books it then, and answers.
        raise attempt.fail(attempt.forward_retry(lost, committed=True) if attempt.past_pivot else lost, provider)
    try:
        record = attempt.records.confirm(
            saga_id,
            details,
            end,
            provider,
            # A lost response at the pivot is a failure before it (the saga rolls back, as backward): such
            # a pivot never counted as passed, so it is not logged as one.
            also_log=pivot if attempt.is_forward_pivot and not _loses_its_response(attempt) else (),
            reference=reference,
        )
    except TransientDataAccessError as error:
        # Logged as this attempt's FAILED; the state machine retries.
        raise attempt.fail(attempt.forward_retry(error) if attempt.past_pivot else error, provider) from None
    except RecordUnchanged as changed:
        if changed.existing.status is RecordStatus.CANCELLED:
            late_request = LateAfterCompensation(
                f"the {resource} of {NOUN} {saga_id} was {attempt.verbs.compensated} before it was"
                f" {attempt.verbs.requested}"
            )
            if work := attempt.step.spec.work:
                # Its action reached the provider after the compensation did (a provider that keeps no tombstone
                # took it): undone again, by key, so nothing is left booked there.
                _undo(attempt, work.compensation, replace(call, simulate=None))
            raise attempt.fail(late_request) from None
        try:
            done = f"already {attempt.verbs.requested}"
            attempt.saga_log.append(attempt.entry(LogEvent.END, done, changed.existing.provider))
        except DataAccessError as error:
            if not attempt.past_pivot:
                raise
            raise _CommittedWriteError(str(error)) from None
        metrics.add_metric(name="StepReplayed", unit=MetricUnit.Count, value=1)
        logger.info("request already confirmed", extra={"step": attempt.name, "reference": changed.existing.reference})
        return attempt.result(changed.existing, already_done=True)
    metrics.add_metric(name="StepConfirmed", unit=MetricUnit.Count, value=1)
    logger.info("request confirmed", extra={"step": attempt.name, "reference": record.reference, "provider": provider})
    if _loses_its_response(attempt):
        crash = CrashAfterWrite(f"{attempt.name}: simulated crash after the record was committed")
        # Past the pivot the lost response is retried: the retry finds the record and answers with it.
        raise attempt.forward_retry(crash, committed=True) if attempt.past_pivot else crash
    return attempt.result(record, already_done=False)


def cancel(resource: str, invocation: StepInvocation) -> StepResult:
    """Cancel `resource` for the saga; always ends CANCELLED, even if the record never arrived."""
    attempt = _Attempt(Action.COMPENSATION, resource, invocation, get_settings())
    attempt.start()
    undone = CompensationNotDone(
        f"the {resource} provider did not {attempt.verbs.compensation} the {resource} of {NOUN} {attempt.saga_id}"
    )
    if error := attempt.injected_error(undone):
        raise attempt.fail(error)
    if work := attempt.step.spec.work:
        # The step's own undoing (the app's code), before its record is cancelled (or left as a tombstone): at
        # every provider the request may have been asked of (past the pivot, its alternatives too), each by its key.
        details = attempt.invocation.request.details_for(resource)
        for provider in attempt.providers():
            _undo(attempt, work.compensation, StepCall(attempt.saga_id, resource, details, provider))
    try:
        record = attempt.records.cancel(attempt.saga_id, attempt.entry(LogEvent.END))
    except TransientDataAccessError as error:
        raise attempt.fail(error) from None
    except RecordUnchanged as changed:
        attempt.saga_log.append(attempt.entry(LogEvent.END, f"already {attempt.verbs.compensated}"))
        metrics.add_metric(name="StepReplayed", unit=MetricUnit.Count, value=1)
        return attempt.result(changed.existing, already_done=True)
    metrics.add_metric(name="StepCompensated", unit=MetricUnit.Count, value=1)
    logger.info("request compensated", extra={"step": attempt.name, "reference": record.reference})
    return attempt.result(record, already_done=False)


def _undo(attempt: _Attempt, compensation: StepCompensation, call: StepCall) -> None:
    """The app's compensation, by the step's key. A provider without a final answer for the key yet (it cannot cancel
    a key it has not booked) makes it the app's CompensationFailed: retried, never assumed done."""
    try:
        compensation(call)
    except ProviderKeyUnknown as error:
        raise attempt.fail(CompensationNotDone(str(error))) from None
    except CompensationFailed as error:  # under the app's name: the state machine retries it, then flags it
        undone = error if isinstance(error, CompensationNotDone) else CompensationNotDone(str(error))
        raise attempt.fail(undone) from None
    except SagaError as error:
        raise attempt.fail(error) from None


def run_step(step: catalogue.Step, invocation: StepInvocation) -> StepResult:
    """The step (book_x runs `book`, cancel_x runs `cancel`) on its resource."""
    return (cancel if step.is_compensation else book)(step.resource, invocation)
