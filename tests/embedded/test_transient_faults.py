"""A passing DynamoDB fault is retried, never rolled back: each transient error, injected at the handlers'
client on the embedded stack, into a booking step's transaction and into the saga log's write.

botocore's own retries are off here (AWS_MAX_ATTEMPTS=1), so the error reaches the step the first time,
as it does on AWS once botocore has given up.
"""

from __future__ import annotations

import pytest
from botocore.awsrequest import AWSResponse

from saga.catalogue import COMPENSATIONS, REQUESTS
from saga.clients import dynamodb_client
from saga.saga_log import LogEvent
from sagatools.asl import MACHINES, load_definition
from sagatools.emulation.embedded import EmbeddedStack
from sagatools.results import Outcome
from tests.helpers import saga_request

TRANSIENT = [
    ("ProvisionedThroughputExceededException", None),
    ("ThrottlingException", None),
    ("RequestLimitExceeded", None),
    ("TransactionConflictException", None),
    ("InternalServerError", None),
    ("TransactionCanceledException", "TransactionConflict"),
    ("TransactionCanceledException", "ThrottlingError"),
]


@pytest.fixture
def stack(monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with EmbeddedStack() as embedded:
        yield embedded


def inject_once(operation: str, saga_id: str, code: str, reason: str | None, step: str | None = None) -> list[str]:
    """The next `operation` of the handlers' client for `saga_id` (and `step`) answers `code`, once."""
    injected: list[str] = []

    def answer(params, **_kwargs):
        body = params.get("body", b"")
        text = body.decode() if isinstance(body, bytes) else str(body)
        if injected or saga_id not in text or (step is not None and step not in text):
            return None
        injected.append(code)
        error = {"Code": code, "Message": f"injected {code}"}
        body = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}
        if reason is not None:
            body["CancellationReasons"] = [{"Code": reason}, {"Code": "None"}]
        return AWSResponse("https://dynamodb.local", 400, {}, None), body

    dynamodb_client().meta.events.register(f"before-call.dynamodb.{operation}", answer)
    return injected


@pytest.mark.parametrize(("code", "reason"), TRANSIENT, ids=[f"{c}-{r}" if r else c for c, r in TRANSIENT])
def test_a_transient_fault_in_a_booking_is_retried_to_a_commit(code, reason, stack, run_saga):
    # Given the first step's transaction (the first of the saga) meets a passing fault once
    saga_id = f"t-{code[:12]}-{reason or ''}".lower()
    injected = inject_once("TransactWriteItems", saga_id, code, reason)
    # When the saga runs
    result = run_saga(saga_request(saga_id))
    # Then the step is retried and the saga commits; the log shows the failed attempt and its retry
    assert injected == [code]
    assert result.outcome is Outcome.COMMITTED
    first = [(e.event, e.attempt) for e in result.saga_log if e.step == REQUESTS[0].name]
    assert first == [(LogEvent.START, 1), (LogEvent.FAILED, 1), (LogEvent.START, 2), (LogEvent.END, 2)]
    failed = next(e for e in result.saga_log if e.event is LogEvent.FAILED)
    assert failed.detail.startswith("TransientDataAccessError")


@pytest.mark.parametrize(("code", "reason"), TRANSIENT[:5], ids=[c for c, _ in TRANSIENT[:5]])
def test_a_transient_fault_in_a_saga_log_write_is_retried_to_a_commit(code, reason, stack, run_saga):
    # Given the START of the last step cannot be written once
    saga_id = f"t-log-{code[:12]}".lower()
    last = REQUESTS[-1].name
    injected = inject_once("PutItem", saga_id, code, reason, step=last)
    # When the saga runs / Then it commits: the step failed before it acted and was retried
    result = run_saga(saga_request(saga_id))
    assert injected == [code]
    assert result.outcome is Outcome.COMMITTED
    assert [(e.event, e.attempt) for e in result.saga_log if e.step == last] == [
        (LogEvent.START, 2),
        (LogEvent.END, 2),
    ]


def test_a_compensation_whose_write_conflicts_is_retried_not_flagged(stack, run_saga):
    # Given a rollback at the last step whose second compensation (the only one, for one step) meets a conflict once
    saga_id = "t-cancel-conflict"
    compensation = COMPENSATIONS[min(1, len(COMPENSATIONS) - 1)].name
    injected = inject_once("TransactWriteItems", saga_id, "TransactionConflictException", None, step=compensation)
    result = run_saga(saga_request(saga_id, simulate={REQUESTS[-1].name: "fail"}))
    assert injected == ["TransactionConflictException"]
    assert result.outcome is Outcome.ROLLED_BACK
    assert result.needs_attention == []


@pytest.mark.parametrize("machine", MACHINES, ids=[machine.suffix for machine in MACHINES])
def test_every_step_retries_lambda_timeouts_and_transient_data_errors(machine):
    states = load_definition(machine.asl_path)["States"]
    for step in REQUESTS + COMPENSATIONS:
        for state in step.states:
            if state in states:
                retried = {error for retrier in states[state]["Retry"] for error in retrier["ErrorEquals"]}
                needed = {"TransientDataAccessError", "Sandbox.Timedout", "Lambda.ClientExecutionTimeoutException"}
                assert needed <= retried, state
