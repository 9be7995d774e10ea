"""The saga as one Lambda durable function, generic from the definition: the second coordinator.

It does what the generated state machine does (sagatools/generate/saga_machine.py), in the same order and by the
same rules (saga/coordination.py): each request in order; on a failure, the compensations from that step back, each
retried and, if it stays stuck, flagged for an operator while the rest go on; past a pivot in forward recovery, the
steps left finished or flagged as unfinished. Every step is a `context.step` (checkpointed; replayed, not run again,
when the function resumes) that runs one attempt through the same step runtime as the state machine's Lambdas
(saga/lambda_handler.py `run_step_event`): the saga log, the records, the tombstones, the idempotency keys, the
providers and the fault injection are the ones both share. Each step is retried as the ASL retries it: the SDK
suspends the function for the wait, so a retry schedule costs no compute.

Each durable operation is named after the ASL state it stands for (BookX, CancelXAfterStuck, FlagXUndoingStuck), so
its checkpoints read like the state machine's history. The saga ends as the state machine's Fail states do: it
raises SagaRolledBack, SagaNeedsAttention or the app's invalid-request error, with the same cause.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.exceptions import StepError, StepInterruptedError
from botocore.exceptions import ClientError

from saga.catalogue import COMPENSATIONS, REQUESTS, RETRIABLES, Step
from saga.clients import dynamodb_client
from saga.coordination import (
    FORWARD,
    RESOLUTION_DIRECTION,
    RESOLUTION_REQUEST,
    RESOLVED_STATE,
    ROLLED_BACK_CAUSE,
    SAGA_END_LOG_FIELD,
    STILL_STUCK_CAUSE,
    STILL_UNFINISHED_CAUSE,
    STUCK_CAUSE,
    UNFINISHED_CAUSE,
    gives_up_forward,
    retry_policies,
)
from saga.definition import SAGA
from saga.durable_retries import INTERRUPTED, close_retry, record_retry, retry_strategy, step_config
from saga.dynamodb_errors import data_access_error
from saga.errors import SagaNeedsAttention, SagaRolledBack
from saga.keys import ID_FIELD
from saga.lambda_handler import run_step_event
from saga.models import parse_request
from saga.named_errors import RequestInvalid
from saga.observability import logger, metrics
from saga.saga_log import AttentionKind, AttentionRecord, SagaLog, utc_now
from saga.settings import get_settings

if TYPE_CHECKING:
    from aws_durable_execution_sdk_python.types import StepContext


@dataclass(frozen=True)
class Failure:
    """A step that failed after its retries: the error's name (as Lambda reports a handler's: its class's name) and
    its message, as the state machine's `$.failure` holds them."""

    error: str
    message: str

    @classmethod
    def of(cls, failed: StepError) -> Failure:
        name = failed.error_type.rpartition(".")[2]
        # An attempt its invocation ended under, retried to the end: the state machine's Lambda timeout.
        return cls(INTERRUPTED if name == StepInterruptedError.__name__ else name, failed.message or "")

    @property
    def cause(self) -> str:
        """The failure as the state machine's Flag states store it: `$.failure`, its Cause the handler's error."""
        handler_error = {"errorType": self.error, "errorMessage": self.message, "stackTrace": []}
        compact = (",", ":")  # as States.JsonToString writes it
        return json.dumps({"Error": self.error, "Cause": json.dumps(handler_error)}, separators=compact)


class DurableSaga:
    """One execution of the saga: the request it was started with, and the durable context that checkpoints it."""

    def __init__(self, event: dict[str, Any], context: DurableContext) -> None:
        self.event = event
        self.context = context
        self.request = parse_request(event)  # the app's invalid-request error, as the first step would raise it
        self.execution_id = context.execution_context.durable_execution_arn
        self.forward = self.request.recovery_mode.forward

    def run(self) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for index, step in enumerate(REQUESTS):
            try:
                results[step.name] = self._attempts(step, step.state, self._entered(step))
            except StepError as failed:
                failure = Failure.of(failed)
                if index == 0 and failure.error == SAGA.errors.invalid_request:
                    raise RequestInvalid(failure.message) from None
                if gives_up_forward(step, failure.error, self.forward):
                    assert step.unfinished_state is not None
                    self._flag(step, step.unfinished_state, AttentionKind.UNFINISHED_FORWARD, failure)
                    raise SagaNeedsAttention(UNFINISHED_CAUSE.format(failure.error)) from None
                self._roll_back(COMPENSATIONS[len(COMPENSATIONS) - 1 - index :], failure)
        return {"state": SAGA.done_state, "results": results}

    def _roll_back(self, compensations: tuple[Step, ...], failure: Failure) -> None:
        """The compensations from the failed step back; one that stays stuck is flagged and the rest go on."""
        stuck = False
        for compensation in compensations:
            state = compensation.after_stuck_state if stuck and compensation.after_stuck_state else compensation.state
            try:
                self._attempts(compensation, state)
            except StepError as failed:
                assert compensation.stuck_state is not None
                self._flag(compensation, compensation.stuck_state, AttentionKind.STUCK_COMPENSATION, Failure.of(failed))
                stuck = True
        if stuck:
            raise SagaNeedsAttention(STUCK_CAUSE)
        raise SagaRolledBack(ROLLED_BACK_CAUSE.format(failure.error))

    def _entered(self, step: Step) -> str | None:
        """When a request past the pivot was first tried, in forward recovery (the ASL's $$.State.EnteredTime): its
        deadline counts from there. Checkpointed, so every retry and replay reads the same time."""
        if not (step.is_retriable and self.forward):
            return None
        entered: str = self.context.step(lambda _: utc_now(), name=f"{step.state}Entered")
        return entered

    def _attempts(self, step: Step, state: str, entered_at: str | None = None) -> dict[str, Any]:
        """The step, attempted and retried as the ASL's Task `state` would: its result, or StepError."""

        def attempt(step_context: StepContext) -> dict[str, Any]:
            event: dict[str, Any] = {
                "request": self.event,
                "retry_count": step_context.attempt - 1,
                "execution_id": self.execution_id,
            }
            if entered_at is not None:
                event["entered_at"] = entered_at
            return run_step_event(step, event)

        result: dict[str, Any] = self.context.step(
            attempt, name=state, config=step_config(retry_strategy(retry_policies(step)))
        )
        return result

    def _flag(self, step: Step, state: str, kind: AttentionKind, failure: Failure) -> None:
        """Record durably that the saga needs an operator (its attention record), then go on whether or not the
        write succeeded, as the state machine's Flag states do."""
        saga_id = self.request.saga_id

        def write(_: StepContext) -> None:
            record = AttentionRecord(
                saga_id=saga_id,
                step=step.name,
                at=utc_now(),
                kind=kind,
                error=failure.error,
                cause=failure.cause,
                execution_id=self.execution_id,
            )
            SagaLog(get_settings().saga_log_table, dynamodb_client()).open_attention(record)

        # As the Flag state's Catch: the saga goes on to its end whether or not the record was written, and that end
        # says it needs attention.
        with contextlib.suppress(StepError):
            self.context.step(write, name=state, config=step_config(record_retry))


class DurableResolution(DurableSaga):
    """An operator's resolution of a saga that needs attention (attention.sh resolve): what the resolution state
    machine does (sagatools/generate/resolution_machine.py), by the same rules, its operations named after its
    states. Started with the saga's request and a direction: backward, every compensation again in reverse order
    (each idempotent and commutative), then every attention record closed, or those still stuck kept open with the
    new error; forward, the steps past the pivot again in order (a new deadline from here), then their records
    closed, or the one that still cannot be done kept open."""

    def __init__(self, event: dict[str, Any], context: DurableContext) -> None:
        super().__init__(event[RESOLUTION_REQUEST], context)
        self.direction = event.get(RESOLUTION_DIRECTION)

    def run(self) -> dict[str, Any]:
        if self.direction == FORWARD and RETRIABLES:
            return self._finish_forward()
        stuck: dict[Step, Failure] = {}
        for compensation in COMPENSATIONS:
            try:
                self._attempts(compensation, compensation.state)
            except StepError as failed:
                stuck[compensation] = Failure.of(failed)
        if stuck:
            for compensation, failure in stuck.items():
                # Every attempt of this resolution's run of the compensation failed: they are counted on the record.
                self._keep(compensation, AttentionKind.STUCK_COMPENSATION, failure, compensation.retry.attempts)
            raise SagaNeedsAttention(STILL_STUCK_CAUSE)
        self._close((*COMPENSATIONS, *RETRIABLES))
        return {"state": RESOLVED_STATE}

    def _finish_forward(self) -> dict[str, Any]:
        for step in RETRIABLES:
            try:
                self._attempts(step, step.state, self._entered(step))
            except StepError as failed:
                self._keep(step, AttentionKind.UNFINISHED_FORWARD, Failure.of(failed))
                raise SagaNeedsAttention(STILL_UNFINISHED_CAUSE) from None
        self._close(RETRIABLES)
        return {"state": RESOLVED_STATE}

    def _keep(self, step: Step, kind: AttentionKind, failure: Failure, attempts: int | None = None) -> None:
        """Keep (or open) the step's attention record with the error met again, as the Keep states do: the
        resolution goes on to its end whether or not the write succeeded."""
        assert step.keep_state is not None
        saga_id, execution_id = self.request.saga_id, self.execution_id

        def write(_: StepContext) -> None:
            record = AttentionRecord(
                saga_id=saga_id,
                step=step.name,
                at=utc_now(),  # taken as the write is made, as the Keep state's $$.State.EnteredTime
                kind=kind,
                error=failure.error,
                cause=failure.cause,
                execution_id=execution_id,
            )
            SagaLog(get_settings().saga_log_table, dynamodb_client()).keep_attention(record, attempts)

        with contextlib.suppress(StepError):
            self.context.step(write, name=step.keep_state, config=step_config(record_retry))

    def _close(self, steps: tuple[Step, ...]) -> None:
        """Close each step's attention record that is open, as the Close states do: one not open is left alone, a
        passing fault of the table is retried, and any other failure ends the resolution (its records stay open,
        and the saga still needs attention)."""
        saga_id, execution_id = self.request.saga_id, self.execution_id
        for step in steps:
            assert step.close_state is not None

            def write(_: StepContext, step: Step = step) -> None:
                record = AttentionRecord(saga_id=saga_id, step=step.name, at=utc_now())
                try:
                    SagaLog(get_settings().saga_log_table, dynamodb_client()).close_attention(
                        record, record.at, execution_id
                    )
                except ClientError as error:
                    raise data_access_error(f"closing the attention record of {step.name}", error) from error

            self.context.step(write, name=step.close_state, config=step_config(close_retry))


def saga(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """The saga's run: its request in, its records' results out, or the saga's end raised. Started with a request
    and a direction instead (attention.sh resolve), the saga's resolution."""
    if RESOLUTION_REQUEST in event:
        return DurableResolution(event, context).run()
    try:
        return DurableSaga(event, context).run()
    except SagaNeedsAttention as ended:
        # Reached once, by the invocation the execution ends in (the earlier ones suspended before the end).
        ending = {SAGA_END_LOG_FIELD: type(ended).__name__, ID_FIELD: event.get(ID_FIELD), "cause": str(ended)}
        logger.warning("saga needs attention", extra=ending)
        raise


# The durable function's handler: every invocation (the first, and each resumption after a wait) replays the saga
# from its checkpoints and runs on from there; the steps' metrics are published at its end, as each step handler's.
handler = metrics.log_metrics(durable_execution(saga))
