"""Forward recovery through the real ASL on one embedded stack: every fault at the steps past the pivot
(retried to success, taken by an alternative, exhausted by the deadline, exhausted by refusals) and every
fault at or before the pivot (which rolls back exactly as backward recovery does).

The invariant of every forward case: once the saga has passed the pivot, nothing CONFIRMED is cancelled.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from saga.catalogue import COMPENSATIONS, REQUESTS, RETRIABLES, simulated_provider
from saga.keys import ID_FIELD
from saga.models import parse_request
from saga.request_fields import MAX_ALTERNATIVES
from saga.saga_log import AttentionKind, LogEvent
from saga.spec import FORWARD_RETRY, step_key
from sagatools.emulation.embedded import EmbeddedStack
from sagatools.request_files import RequestFile
from sagatools.results import Outcome, SagaReader, SagaResult
from sagatools.runtest.runner import SagaRunner
from sagatools.view.recovery import forward_summary
from tests.helpers import assert_log_agrees_with_tables, assert_providers_agree, failing_dynamodb_calls, saga_request

# A pivot with a step past it (RETRIABLES is empty without a pivot): what every test but the schedule's needs.
needs_forward = pytest.mark.skipif(not RETRIABLES, reason="the app has no pivot with a step past it")

RETRIABLE = RETRIABLES[-1] if RETRIABLES else REQUESTS[-1]
POLICY = RETRIABLE.spec.forward_retry
ALTERNATIVES = [f"Other Provider {n}" for n in range(1, MAX_ALTERNATIVES + 1)]
COMPANY = saga_request()[RETRIABLE.resource].get(RETRIABLE.spec.alternatives_for or "", "")
AT_OR_BEFORE_PIVOT = [step for step in REQUESTS if not step.is_retriable]
CANCELS = {step.name for step in COMPENSATIONS}


@pytest.fixture(scope="module")
def runner() -> Iterator[SagaRunner]:
    with EmbeddedStack() as stack:
        yield SagaRunner(
            stack.stepfunctions, stack.state_machine_arn, SagaReader(stack.settings, stack.dynamodb), 0.005, 120
        )


def forward_request(saga_id: str, fault: str | None, deadline: int | None = None, alternatives: bool = True) -> dict:
    recovery = {"mode": "forward", **({"deadline_seconds": deadline} if deadline else {})}
    section = dict(saga_request()[RETRIABLE.resource])
    if alternatives and RETRIABLE.spec.alternatives_for:
        section["alternatives"] = ALTERNATIVES
    simulate = {RETRIABLE.name: fault} if fault else None
    return saga_request(saga_id, simulate=simulate, recovery=recovery, **{RETRIABLE.resource: section})


def run(runner: SagaRunner, request: dict) -> SagaResult:
    (report,) = runner.run([RequestFile(f"{request[ID_FIELD]}.json", parse_request(request))])
    assert_log_agrees_with_tables(report)
    return report


def assert_nothing_confirmed_was_undone(report: SagaResult) -> None:
    """Past the pivot in forward recovery, no compensation ran: what was booked stays booked."""
    assert report.recovery is not None
    assert report.recovery.pivot_passed
    assert not [entry for entry in report.saga_log if entry.step in CANCELS]
    for step in AT_OR_BEFORE_PIVOT:
        assert report.records[step.resource] == "CONFIRMED"


def assert_committed(report: SagaResult) -> None:
    assert report.outcome is Outcome.COMMITTED
    assert set(report.records.values()) == {"CONFIRMED"}
    assert report.needs_attention == []


def assert_unfinished(report: SagaResult, error: str) -> None:
    """NEEDS_ATTENTION: the bookings up to the pivot CONFIRMED, the step past it not, its record open."""
    assert report.outcome is Outcome.NEEDS_ATTENTION
    assert report.records[RETRIABLE.resource] is None
    (record,) = report.needs_attention
    assert (record.step, record.kind, record.error) == (RETRIABLE.name, AttentionKind.UNFINISHED_FORWARD, error)


def commits_within(failing: int, deadline: int) -> bool:
    """Whether `failing` failed attempts are retried before the deadline (the schedule's waits, no jitter)."""
    return POLICY.waited(failing) <= deadline


def test_the_schedule_is_what_the_readme_says():
    # 30 s, doubling, at most 15 min: the 8th retry would start at 3630 s, past the default hour.
    assert [FORWARD_RETRY.delay(retry) for retry in range(7)] == [30, 60, 120, 240, 480, 900, 900]
    assert FORWARD_RETRY.waited(7) <= 3600 < FORWARD_RETRY.waited(8)


@needs_forward
@pytest.mark.parametrize(
    ("failing", "deadline"), [(1, None), (7, None), (8, None), (20, None), (20, 86400), (2, 60), (1, 60)]
)
def test_a_passing_fault_past_the_pivot_is_retried_until_it_succeeds_or_the_deadline(runner, failing, deadline):
    report = run(runner, forward_request(f"f-transient{failing}-{deadline}", f"transient:{failing}", deadline))
    assert_nothing_confirmed_was_undone(report)
    if commits_within(failing, deadline or 3600):
        assert_committed(report)
        assert report.recovery.forward_retries == failing
        assert report.billed_transitions == len(REQUESTS) + 1 + failing
        assert report.recovery.forward_waited_seconds == POLICY.waited(failing)
    else:
        assert_unfinished(report, "ForwardDeadlinePassed")
        assert report.recovery.providers_refused == {key: [] for key in report.recovery.providers_tried}
        assert report.recovery.forward_waited_seconds <= (deadline or 3600)


@needs_forward
def test_a_lost_response_past_the_pivot_is_retried_and_commits_billed_one_retry_more(runner):
    report = run(runner, forward_request("f-crash", "crash_after_write"))
    assert_nothing_confirmed_was_undone(report)
    assert_committed(report)
    assert report.billed_transitions <= len(REQUESTS) + 2  # a success's states and its retry
    ends = report.log_of(RETRIABLE.name, LogEvent.END)
    assert [entry.detail for entry in ends] == [None, f"already {RETRIABLE.verbs.requested}"]


@needs_forward
@pytest.mark.skipif(RETRIABLE.spec.alternatives_for is None, reason="the app has no step with alternatives")
@pytest.mark.parametrize("refusing", range(1, MAX_ALTERNATIVES + 1))
def test_a_refusal_past_the_pivot_is_taken_by_the_next_alternative(runner, refusing):
    report = run(runner, forward_request(f"f-refuse{refusing}", f"fail:{refusing}"))
    assert_nothing_confirmed_was_undone(report)
    assert_committed(report)
    providers = [COMPANY, *ALTERNATIVES]
    assert report.recovery.providers_tried == {RETRIABLE.resource: providers[: refusing + 1]}
    assert report.recovery.done_with == {RETRIABLE.resource: providers[refusing]}
    assert report.recovery.providers_refused == {RETRIABLE.resource: providers[:refusing]}
    # and the summary line (the terminal's and the page's) says who took it and who refused
    line = forward_summary(report)
    assert f"{RETRIABLE.resource} by {providers[refusing]}; refused: {', '.join(providers[:refusing])}" in line
    assert report.billed_transitions <= len(REQUESTS) + 2
    # and the provider that took it holds it under a key of its own: the step's key with that provider's name
    ledger = simulated_provider(RETRIABLE.resource)
    if ledger is not None:
        keys = [step_key(report.saga_id, RETRIABLE.resource, provider) for provider in providers]
        assert len(set(keys)) == len(providers)
        assert [ledger.state(key) for key in keys[: refusing + 1]] == [None] * refusing + ["CONFIRMED"]
        assert_providers_agree(report)


@needs_forward
@pytest.mark.parametrize("fault", ["fail", f"fail:{MAX_ALTERNATIVES + 1}"])
def test_when_every_provider_refuses_the_saga_needs_attention_and_keeps_its_bookings(runner, fault):
    if fault != "fail" and RETRIABLE.spec.alternatives_for is None:
        pytest.skip("fail:K is for a step with alternatives")
    report = run(runner, forward_request(f"f-all-refuse-{fault.replace(':', '')}", fault))
    assert_nothing_confirmed_was_undone(report)
    assert_unfinished(report, "AlternativesExhausted")
    if RETRIABLE.spec.alternatives_for is None:  # one provider, none named: no list of providers to report
        assert RETRIABLE.resource not in report.recovery.providers_tried
        return
    assert report.recovery.providers_tried[RETRIABLE.resource] == [COMPANY, *ALTERNATIVES]
    assert report.recovery.providers_refused[RETRIABLE.resource] == [COMPANY, *ALTERNATIVES]


@needs_forward
def test_without_alternatives_a_refusal_past_the_pivot_needs_attention(runner):
    report = run(runner, forward_request("f-refuse-alone", "fail", alternatives=False))
    assert_nothing_confirmed_was_undone(report)
    assert_unfinished(report, "AlternativesExhausted")


@needs_forward
def test_a_late_answer_past_the_pivot_is_retried_with_the_same_key_and_commits(runner):
    # Given a provider past the pivot that takes the request and answers late (the saga hears nothing)
    report = run(runner, forward_request("f-late", "late"))
    # Then the retry asks again with the same key: the provider books it then, once, and the saga commits
    assert_nothing_confirmed_was_undone(report)
    assert_committed(report)
    assert report.recovery.forward_retries == 1
    assert report.billed_transitions == len(REQUESTS) + 2
    assert_providers_agree(report)


@needs_forward
@pytest.mark.parametrize("step", [step.name for step in AT_OR_BEFORE_PIVOT])
@pytest.mark.parametrize("fault", ["fail", "crash_after_write", "late", "transient:1", "transient:5"])
def test_a_fault_at_or_before_the_pivot_rolls_back_exactly_as_backward_recovery(runner, step, fault):
    forward = forward_request(f"f-{step}-{fault.replace(':', '')}", None)
    forward["simulate"] = {step: fault}
    backward = {k: v for k, v in forward.items() if k != "recovery"}
    backward[ID_FIELD] = f"b-{step}-{fault.replace(':', '')}"
    ahead, behind = run(runner, forward), run(runner, backward)
    assert (ahead.outcome, ahead.records, ahead.providers, ahead.states, ahead.billed_transitions) == (
        behind.outcome,
        behind.records,
        behind.providers,
        behind.states,
        behind.billed_transitions,
    )
    steps = [(entry.step, entry.event) for entry in ahead.saga_log if entry.event is not LogEvent.PIVOT]
    assert steps == [(entry.step, entry.event) for entry in behind.saga_log]
    # a saga that rolled back never passed its pivot: no PIVOT entry, whatever the fault
    if ahead.outcome is not Outcome.COMMITTED:
        assert not [entry for entry in ahead.saga_log if entry.event is LogEvent.PIVOT]
        assert not ahead.recovery.pivot_passed


@needs_forward
def test_in_backward_recovery_alternatives_are_accepted_and_not_used(runner):
    request = forward_request("b-alternatives", "fail:1" if RETRIABLE.spec.alternatives_for else "fail")
    del request["recovery"]
    report = run(runner, request)
    assert report.outcome is Outcome.ROLLED_BACK
    assert set(report.records.values()) == {"CANCELLED"}  # the refused one too: its cancel left a tombstone
    assert not [entry for entry in report.saga_log if entry.event is LogEvent.PIVOT]
    assert report.recovery is not None
    assert report.recovery.mode == "backward"


FAILING_WRITES = RETRIABLE.spec.request_retry.attempts + 1
# Every DynamoDB write a retriable step makes, as (operation, fault it needs to be reached, texts that pick
# it out of the handlers' requests). Each fails more often than the request retry policy's attempts, as
# DynamoDB's throttling can once botocore's own retries give up.
RETRIABLE_WRITES = {
    "start": ("PutItem", None, ('"START"',)),
    "booking": ("TransactWriteItems", None, ()),
    "failed": ("PutItem", f"transient:{FAILING_WRITES}", ('"FAILED"',)),
    "already-done-end": ("PutItem", "crash_after_write", ("already ",)),
}


@needs_forward
@pytest.mark.parametrize("code", ["ThrottlingException", "ValidationException"])
@pytest.mark.parametrize("write", list(RETRIABLE_WRITES))
def test_a_failing_write_past_the_pivot_is_retried_forward_never_compensated(runner, write, code):
    # Given a forward saga whose step past the pivot cannot make one of its writes, again and again
    operation, fault, texts = RETRIABLE_WRITES[write]
    saga_id = f"f-write-{write}-{code[:10]}".lower()
    with failing_dynamodb_calls(operation, FAILING_WRITES, code, saga_id, RETRIABLE.name, *texts) as answered:
        # When the saga runs
        report = run(runner, forward_request(saga_id, fault))
    # Then the write was retried forward until it went through: the pivot stays booked, nothing compensated
    assert answered == [code] * FAILING_WRITES
    assert_nothing_confirmed_was_undone(report)
    assert_committed(report)
    assert report.recovery.forward_retries >= FAILING_WRITES
