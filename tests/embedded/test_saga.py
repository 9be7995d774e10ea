"""The whole saga through the real ASL and the real handlers on the embedded stack."""

from __future__ import annotations

import random

import pytest

from saga.catalogue import COMPENSATIONS, REQUESTS, STEPS, compensation_of, simulated_provider
from saga.definition import SAGA
from saga.keys import ID_FIELD
from saga.saga_log import ATTENTION_INDEX
from sagatools.results import Outcome, SagaResult
from tests.helpers import (
    LAST,
    RESOURCES,
    assert_providers_agree,
    book_step,
    cancel_step,
    is_compensation,
    resource_of,
    rollback_states,
    saga_request,
    success_states,
)

BOOK_ORDER = RESOURCES  # in booking order


def compensations(report: SagaResult) -> list[str]:
    """The compensations that completed, in saga-log order."""
    return [entry.step for entry in report.saga_log if is_compensation(entry.step) and entry.event == "END"]


def expected_compensations(failed_at: str) -> list[str]:
    """The failed step and every step before it, in reverse order."""
    return [cancel_step(r) for r in reversed(BOOK_ORDER[: BOOK_ORDER.index(failed_at) + 1])]


def assert_consistent(report: SagaResult) -> None:
    """All CONFIRMED, or none CONFIRMED but those whose cancel is flagged stuck; every START has its end; every
    provider's ledger agrees with the records."""
    stuck = {resource_of(record.step) for record in report.needs_attention}
    confirmed = {resource for resource, status in report.records.items() if status == "CONFIRMED"}
    if report.outcome is Outcome.COMMITTED:
        assert confirmed == set(BOOK_ORDER), report.records
    else:
        assert confirmed <= stuck, (report.records, stuck)
    starts = [(e.step, e.attempt) for e in report.saga_log if e.event == "START"]
    ends = [(e.step, e.attempt) for e in report.saga_log if e.event != "START"]
    assert sorted(starts) == sorted(ends)
    assert len(set(starts)) == len(starts), "an attempt was logged twice"
    assert_providers_agree(report)


def test_success_commits_every_step_in_one_state_per_step_and_the_done_state(run_saga):
    # Given a valid request with no faults / When its saga runs
    report = run_saga(saga_request("t-ok"))
    # Then every resource is booked, in order, in n + 1 states: each request and the done state
    assert (report.status, report.outcome) == ("SUCCEEDED", Outcome.COMMITTED)
    assert report.records == dict.fromkeys(RESOURCES, "CONFIRMED")
    assert report.states == success_states()
    assert report.transitions == len(RESOURCES) + 1
    assert [e.step for e in report.saga_log if e.event == "END"] == [book_step(r) for r in RESOURCES]
    # and booked at each provider too, by the step's key
    assert report.providers == {r: "CONFIRMED" if simulated_provider(r) else None for r in RESOURCES}
    assert_providers_agree(report)


@pytest.mark.parametrize("resource", RESOURCES)
def test_refusal_rolls_back_in_reverse_order(resource, run_saga):
    # Given a provider that refuses the booking / When the saga runs
    report = run_saga(saga_request(f"t-refuse-{resource}", simulate={book_step(resource): "fail"}))
    # Then it rolls back: the failed step and every earlier one cancelled, in reverse order
    assert (report.status, report.outcome, report.error) == ("FAILED", Outcome.ROLLED_BACK, "SagaRolledBack")
    assert compensations(report) == expected_compensations(resource)
    assert report.records[resource] == "CANCELLED"  # a tombstone: the refused booking was never written
    assert_consistent(report)


def test_refusal_at_the_last_step_takes_two_states_per_step_and_rolled_back(run_saga):
    # 2n + 1 for n steps: each request, each compensation, RolledBack; no state more
    report = run_saga(saga_request("t-seven", simulate={book_step(LAST): "fail"}))
    assert report.states == rollback_states(LAST)
    assert report.transitions == 2 * len(RESOURCES) + 1 == report.billed_transitions


def test_billed_transitions_count_every_retry_as_aws_bills_it(run_saga):
    # Given a compensation stuck behind a refusal at the last step (2n + 2 states for n steps: the
    # rollback's 2n + 1 and its Flag state; billed, those plus the stuck compensation's retries)
    stuck_step = COMPENSATIONS[min(1, len(COMPENSATIONS) - 1)]
    stuck = run_saga(saga_request("t-billed", simulate={book_step(LAST): "fail", stuck_step.name: "fail"}))
    retries = stuck_step.retry.max_attempts
    assert (stuck.transitions, stuck.billed_transitions) == (2 * len(RESOURCES) + 2, 2 * len(RESOURCES) + 2 + retries)
    # and a success is billed exactly its states
    assert run_saga(saga_request("t-billed-ok")).billed_transitions == len(RESOURCES) + 1


@pytest.mark.parametrize("resource", RESOURCES)
def test_crash_after_write_rolls_back_the_written_booking(resource, run_saga):
    # Given a step that commits its booking and dies before answering / When the saga runs
    report = run_saga(saga_request(f"t-crash-{resource}", simulate={book_step(resource): "crash_after_write"}))
    # Then the booking it wrote is found and cancelled like the others
    assert report.outcome is Outcome.ROLLED_BACK
    booked = [e for e in report.saga_log if e.step == book_step(resource) and e.event == "END"]
    assert len(booked) == 1, "the crashed step committed its booking and was not retried"
    assert report.records[resource] == "CANCELLED"
    assert compensations(report) == expected_compensations(resource)
    assert_consistent(report)


@pytest.mark.parametrize("resource", RESOURCES)
def test_a_late_booking_never_outlives_its_compensation(resource, run_saga):
    # Given a provider that takes the request but books it only after its compensation reached it / When the saga runs
    report = run_saga(saga_request(f"t-late-{resource}", simulate={book_step(resource): "late"}))
    # Then the saga never heard its answer: it rolls back, by the states of a refusal there
    assert report.outcome is Outcome.ROLLED_BACK
    assert report.states == rollback_states(resource)
    assert compensations(report) == expected_compensations(resource)
    # and nothing is left booked, at the provider or in the records
    provider = simulated_provider(resource)
    assert (report.records[resource], report.providers[resource]) == ("CANCELLED", "CANCELLED" if provider else None)
    # A provider that cannot cancel a key it has not booked answered the first cancel "unknown key", and its
    # booking landed: the compensation's retry cancelled it (one billed transition more); the others refused it.
    retried = provider is not None and not provider.cancels_unknown_keys
    attempts = [e.attempt for e in report.saga_log if e.step == cancel_step(resource) and e.event == "START"]
    assert attempts == ([1, 2] if retried else [1])
    assert report.billed_transitions == report.transitions + retried
    assert_consistent(report)


@pytest.mark.parametrize("resource", RESOURCES)
def test_transient_booking_error_recovers_forward(resource, run_saga):
    # Given a provider that fails twice, then works / When the saga runs
    report = run_saga(saga_request(f"t-blip-{resource}", simulate={book_step(resource): "transient:2"}))
    # Then the step is retried forward and the saga commits
    assert report.outcome is Outcome.COMMITTED
    attempts = [e.attempt for e in report.saga_log if e.step == book_step(resource) and e.event == "START"]
    assert attempts == [1, 2, 3]
    assert report.transitions == len(RESOURCES) + 1


def test_retry_waits_follow_the_asl_backoff_without_sleeping(stack, run_saga):
    first = REQUESTS[0]
    report = run_saga(saga_request("t-waits", simulate={first.name: "transient:2"}))
    assert report.outcome is Outcome.COMMITTED
    waits = stack.retry_clock.requested_waits
    # IntervalSeconds, BackoffRate, FULL jitter (1 s, 2, by default): each wait is at most 1 s, then 2 s.
    assert first.retry.jitter
    assert len(waits) == 2
    assert 0 <= waits[0] <= first.retry.delay(0)
    assert 0 <= waits[1] <= first.retry.delay(1)


@pytest.mark.parametrize("resource", RESOURCES)
def test_transient_compensation_is_retried(resource, run_saga):
    # Given a rollback whose compensation fails five times / When the saga runs
    report = run_saga(
        saga_request(f"t-cblip-{resource}", simulate={book_step(LAST): "fail", cancel_step(resource): "transient:5"})
    )
    # Then the compensation is retried until it succeeds, and the rollback is clean
    assert report.outcome is Outcome.ROLLED_BACK
    attempts = [e.attempt for e in report.saga_log if e.step == cancel_step(resource) and e.event == "START"]
    assert attempts == list(range(1, compensation_of(resource).retry.attempts + 1))
    assert compensations(report) == expected_compensations(LAST)
    assert_consistent(report)


@pytest.mark.parametrize("resource", RESOURCES)
def test_stuck_compensation_needs_attention_and_the_others_still_run(resource, run_saga, reader):
    # Given a rollback whose compensation never succeeds / When the saga runs
    report = run_saga(
        saga_request(f"t-stuck-{resource}", simulate={book_step(LAST): "fail", cancel_step(resource): "fail"})
    )
    # Then the saga is flagged for an operator, and the other compensations still run
    assert (report.status, report.outcome, report.error) == ("FAILED", Outcome.NEEDS_ATTENTION, "SagaNeedsAttention")
    assert [record.step for record in report.needs_attention] == [cancel_step(resource)]
    # every other compensation ran, still in reverse order
    assert compensations(report) == [s for s in expected_compensations(LAST) if s != cancel_step(resource)]
    stuck_attempts = [e for e in report.saga_log if e.step == cancel_step(resource) and e.event == "FAILED"]
    assert len(stuck_attempts) == compensation_of(resource).retry.attempts  # the first attempt and every retry
    others = [r for r in RESOURCES if r != resource]
    assert all(report.records[r] == "CANCELLED" for r in others)
    assert_providers_agree(report)


def test_operator_finds_sagas_needing_attention_by_query(stack, run_sagas):
    # Given one stuck saga (its first compensation never succeeds) and one clean rollback
    stuck = cancel_step(RESOURCES[0])
    run_sagas(
        saga_request("t-attn-1", simulate={book_step(LAST): "fail", stuck: "fail"}),
        saga_request("t-fine", simulate={book_step(LAST): "fail"}),
    )
    # When the operator queries the attention index / Then only the stuck saga is listed
    found = stack.dynamodb.query(
        TableName=stack.settings.saga_log_table,
        IndexName=ATTENTION_INDEX,
        KeyConditionExpression="attention = :open",
        ExpressionAttributeValues={":open": {"S": "OPEN"}},
    )["Items"]
    assert [(item[ID_FIELD]["S"], item["step"]["S"]) for item in found] == [("t-attn-1", stuck)]


def test_invalid_request_fails_fast_without_compensation(stack, reader):
    # The runner refuses invalid requests before starting; a direct StartExecution must be refused too.
    request = saga_request("t-bad")
    field = next(iter(request[LAST]))  # a field the last step's model requires, left out
    del request[LAST][field]
    import json

    from sagatools.executions import execution_history
    from sagatools.results import states_entered

    arn = stack.stepfunctions.start_execution(
        stateMachineArn=stack.state_machine_arn, name="t-bad", input=json.dumps(request)
    )["executionArn"]
    while (description := stack.stepfunctions.describe_execution(executionArn=arn))["status"] == "RUNNING":
        pass
    assert (description["status"], description["error"]) == ("FAILED", SAGA.errors.invalid_request)
    assert f"{LAST}.{field}" in description["cause"]
    # the first step validates the whole request: refused there, before any step acted
    assert states_entered(execution_history(stack.stepfunctions, arn)) == [REQUESTS[0].state, "RequestRefused"]
    assert reader.log("t-bad") == []


def test_same_saga_started_twice_books_once(run_sagas):
    first, second = run_sagas(saga_request("t-dup"), saga_request("t-dup"))
    assert first.execution_arn == second.execution_arn
    assert second.reused_execution
    assert [e.event for e in first.saga_log if e.step == REQUESTS[0].name] == ["START", "END"]


def test_same_saga_started_again_after_it_finished_reports_the_first(run_sagas):
    # Given a saga that ran / When the same request is run again
    (first,) = run_sagas(saga_request("t-again"))
    (again,) = run_sagas(saga_request("t-again"))
    # Then the first saga is reported, not a second one
    assert again.execution_arn == first.execution_arn
    assert again.reused_execution
    assert again.outcome is Outcome.COMMITTED
    assert again.saga_log == first.saga_log


def test_same_saga_id_with_another_request_is_a_conflict_not_a_reuse(run_sagas):
    # Given a saga that ran / When another request under the same id is started
    (first,) = run_sagas(saga_request("t-other"))
    (other,) = run_sagas(saga_request("t-other", simulate={book_step(LAST): "fail"}))
    # Then it is reported a conflict, not started, as Step Functions refuses a second input under one name
    assert (other.outcome, other.status, other.error) == (Outcome.CONFLICT, "NOT_STARTED", "ExecutionAlreadyExists")
    assert "t-other already names an execution of a different request" in (other.cause or "")
    assert not other.reused_execution
    assert other.records == {}
    assert first.outcome is Outcome.COMMITTED


def test_thirty_mixed_sagas_concurrently_all_consistent(run_sagas):
    rng = random.Random(20261126)
    modes = {
        "book": ["fail", "crash_after_write", "late", "transient:1", "transient:3"],
        "cancel": ["transient:1", "transient:5", "fail"],
    }
    requests = []
    for n in range(32):
        simulate = {}
        for step in STEPS:
            if rng.random() < 0.2:
                simulate[step.name] = rng.choice(modes["cancel" if step.is_compensation else "book"])
        requests.append(saga_request(f"t-mix-{n:02d}", simulate=simulate))
    reports = run_sagas(*requests)
    assert len(reports) == 32
    for report in reports:
        assert report.outcome is not None, report.saga_id
        assert_consistent(report)
        if report.outcome is Outcome.COMMITTED:
            assert set(report.records.values()) == {"CONFIRMED"}
        if report.outcome is Outcome.NEEDS_ATTENTION:
            assert report.needs_attention
