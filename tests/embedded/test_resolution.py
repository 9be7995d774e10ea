"""The resolution of a stuck saga on the embedded stack: every stuck compensation x resolution succeeds / stays stuck.

The resolution is the stage's second state machine (statemachine/resolve-stuck.asl.json), started as
attention.sh starts it; the state machine itself closes or keeps the attention records.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from saga.catalogue import COMPENSATIONS, REQUESTS, RETRIABLES, by_name, compensation_of, simulated_provider
from saga.definition import SAGA
from saga.keys import ID_FIELD
from saga.models import RecordStatus
from saga.saga_log import AttentionKind, AttentionState, LogEvent
from saga.spec import step_key
from sagatools.asl import RESOLVE_ASL_PATH, RESOLVE_MACHINE, load_definition
from sagatools.attention import cli as attention
from sagatools.executions import ExecutionWatcher
from sagatools.exit_codes import EXIT_OK, EXIT_REFUSED
from sagatools.results import Outcome, build_report, resolution_outcome_of
from sagatools.view.graph import Shown, state_views
from sagatools.view.html_page import page_html
from sagatools.view.terminal import summary
from tests.helpers import (
    LAST,
    RESOURCES,
    assert_providers_agree,
    book_step,
    cancel_step,
    embedded_stage_view,
    failing_dynamodb_calls,
    saga_request,
)

STUCK = [step.resource for step in COMPENSATIONS]


def resolve(stack, reader, request: dict, name: str, direction: str | None = None):
    """Start a resolution as attention.sh does and wait for it; its result."""
    return resolve_with_history(stack, reader, request, name, direction)[0]


def resolve_with_history(stack, reader, request: dict, name: str, direction: str | None = None):
    """Start a resolution as attention.sh does and wait for it; its result and its history."""
    document = {"request": request, "requested_by": "test", **({"direction": direction} if direction else {})}
    arn = stack.stepfunctions.start_execution(
        stateMachineArn=stack.resolution_state_machine_arn, name=name, input=json.dumps(document)
    )["executionArn"]
    watcher = ExecutionWatcher(stack.stepfunctions, stack.resolution_state_machine_arn, 0.005)
    description = watcher.wait({arn: request[ID_FIELD]}, time.monotonic() + 120)[arn]
    events = watcher.history(arn)
    return build_report(name, request[ID_FIELD], description, events, reader, False, resolution_outcome_of), events


@pytest.mark.parametrize("resource", STUCK)
@pytest.mark.parametrize("provider_back", [True, False], ids=["resolves", "still-stuck"])
def test_a_stuck_compensation_is_resolved_or_stays_open(resource, provider_back, stack, run_saga, reader):
    # Given a saga whose cancel_<resource> stayed stuck
    faults = {book_step(LAST): "fail", cancel_step(resource): "fail"}
    request = saga_request(f"t-res-{resource}-{provider_back}", simulate=faults)
    saga = run_saga(request)
    assert saga.outcome is Outcome.NEEDS_ATTENTION
    # When it is resolved, without the fault (the provider is back) or with it
    resolution_request = {k: v for k, v in request.items() if k != "simulate"} if provider_back else request
    result = resolve(stack, reader, resolution_request, f"{request[ID_FIELD]}-resolve-1")
    (record,) = result.needs_attention
    step = cancel_step(resource)
    resolution_id = result.execution_arn
    if provider_back:
        # Then every booking is cancelled and the record is closed, not deleted, by that execution
        assert result.outcome is Outcome.RESOLVED
        assert set(result.records.values()) == {RecordStatus.CANCELLED}
        assert (record.step, record.attention, record.resolved_by) == (step, AttentionState.RESOLVED, resolution_id)
        ends = [e for e in result.saga_log if e.step == step and e.event is LogEvent.END]
        assert [e.execution_id for e in ends] == [resolution_id]
    else:
        # Then the record stays open with the resolution's error and attempts, the booking still not cancelled
        assert result.outcome is Outcome.NEEDS_ATTENTION
        assert (record.attention, record.error, record.attempts) == (
            AttentionState.OPEN,
            SAGA.errors.compensation_failed,
            by_name(step).retry.attempts,
        )
        assert record.execution_id == resolution_id
        assert result.records[resource] is not RecordStatus.CANCELLED
    # and every provider's ledger agrees with the bookings, but where the open record names the step
    assert_providers_agree(saga)
    assert_providers_agree(result)
    # and the saga log holds both attempts at the compensation, the saga's first
    starts = [e.execution_id for e in result.saga_log if e.step == step and e.event is LogEvent.START]
    assert starts[0] == saga.execution_arn
    assert starts[-1] == resolution_id


# A step whose provider cannot cancel a key it has not booked (none: the test is skipped).
UNKNOWN_KEYS = next(
    (r for r in RESOURCES if (p := simulated_provider(r)) is not None and not p.cancels_unknown_keys), None
)


@pytest.mark.skipif(UNKNOWN_KEYS is None, reason="no provider of the app keeps no tombstones")
def test_a_late_booking_its_stuck_compensation_left_at_the_provider_is_named_then_resolved(stack, run_saga, reader):
    # Given a late booking at a provider that cannot cancel a key it has not booked, and a compensation that reaches
    # it only on its last attempt: "unknown key", then the booking lands, and no attempt is left to cancel it
    assert UNKNOWN_KEYS is not None
    attempts = compensation_of(UNKNOWN_KEYS).retry.attempts
    faults = {book_step(UNKNOWN_KEYS): "late", cancel_step(UNKNOWN_KEYS): f"transient:{attempts - 1}"}
    request = saga_request("t-res-late", simulate=faults)
    saga = run_saga(request)
    # Then the saga needs attention, and the reservation left at the provider is the disagreement its record names
    assert saga.outcome is Outcome.NEEDS_ATTENTION
    assert (saga.providers[UNKNOWN_KEYS], saga.records[UNKNOWN_KEYS]) == (RecordStatus.CONFIRMED, None)
    assert saga.provider_disagreements() == [UNKNOWN_KEYS]
    assert_providers_agree(saga)
    assert "DISAGREEMENT" in summary(saga)
    # When it is resolved (the provider is back) / Then it is cancelled by key, and the ledger agrees again
    result = resolve(stack, reader, {k: v for k, v in request.items() if k != "simulate"}, "t-res-late-resolve-1")
    assert result.outcome is Outcome.RESOLVED
    assert (result.providers[UNKNOWN_KEYS], result.records[UNKNOWN_KEYS]) == (RecordStatus.CANCELLED,) * 2
    assert result.provider_disagreements() == []
    assert_providers_agree(result)


def test_a_resolution_of_a_saga_with_nothing_open_changes_no_record(stack, run_saga, reader):
    request = saga_request("t-res-clean", simulate={book_step(LAST): "fail"})
    assert run_saga(request).outcome is Outcome.ROLLED_BACK
    result = resolve(stack, reader, {k: v for k, v in request.items() if k != "simulate"}, "t-res-clean-resolve-1")
    assert result.outcome is Outcome.RESOLVED
    assert result.needs_attention == []  # no record was opened by closing nothing


def test_the_normal_saga_path_is_unchanged_by_the_resolution_machine(run_saga):
    assert run_saga(saga_request("t-res-normal")).transitions == len(RESOURCES) + 1


def _unfinished_forward(run_saga, saga_id: str) -> dict:
    """A forward saga whose step past the pivot every provider refused: NEEDS_ATTENTION, nothing undone."""
    step = RETRIABLES[-1]
    request = saga_request(saga_id, simulate={step.name: "fail"}, recovery={"mode": "forward"})
    saga = run_saga(request)
    assert saga.outcome is Outcome.NEEDS_ATTENTION
    (record,) = saga.needs_attention
    assert (record.step, record.kind, record.error) == (
        step.name,
        AttentionKind.UNFINISHED_FORWARD,
        "AlternativesExhausted",
    )
    assert [saga.records[s.resource] for s in REQUESTS if not s.is_retriable] == [RecordStatus.CONFIRMED] * (
        len(REQUESTS) - len(RETRIABLES)
    )
    assert saga.records[step.resource] is None
    return request


@pytest.mark.skipif(not RETRIABLES, reason="the app has no pivot with a step past it")
@pytest.mark.parametrize("provider_back", [True, False], ids=["finishes", "still-refused"])
def test_an_unfinished_forward_saga_is_finished_forward(provider_back, stack, run_saga, reader):
    request = _unfinished_forward(run_saga, f"t-res-fwd-{provider_back}")
    resolution_request = {k: v for k, v in request.items() if k != "simulate"} if provider_back else request
    result = resolve(stack, reader, resolution_request, f"{request[ID_FIELD]}-resolve-1", "forward")
    (record,) = result.needs_attention
    if provider_back:
        assert result.outcome is Outcome.RESOLVED
        assert set(result.records.values()) == {RecordStatus.CONFIRMED}
        assert (record.attention, record.resolved_by) == (AttentionState.RESOLVED, result.execution_arn)
        assert not [e for e in result.saga_log if e.step in {c.name for c in COMPENSATIONS}]  # nothing undone
    else:
        assert result.outcome is Outcome.NEEDS_ATTENTION
        assert (record.attention, record.kind, record.error) == (
            AttentionState.OPEN,
            AttentionKind.UNFINISHED_FORWARD,
            "AlternativesExhausted",
        )
        assert record.execution_id == result.execution_arn
        assert result.records[RETRIABLES[-1].resource] is None
    assert_providers_agree(result)


@pytest.mark.skipif(not RETRIABLES, reason="the app has no pivot with a step past it")
def test_an_unfinished_forward_saga_is_rolled_back_when_asked(stack, run_saga, reader):
    request = _unfinished_forward(run_saga, "t-res-fwd-rollback")
    resolution_request = {k: v for k, v in request.items() if k != "simulate"}
    result = resolve(stack, reader, resolution_request, f"{request[ID_FIELD]}-resolve-1", "backward")
    assert result.outcome is Outcome.RESOLVED
    assert set(result.records.values()) == {RecordStatus.CANCELLED}
    (record,) = result.needs_attention
    assert (record.attention, record.resolved_by) == (AttentionState.RESOLVED, result.execution_arn)
    cancels = [e.step for e in result.saga_log if e.event is LogEvent.END and e.step in {c.name for c in COMPENSATIONS}]
    assert cancels == [c.name for c in COMPENSATIONS]  # every compensation, in reverse order
    assert_providers_agree(result)


ALTERNATIVE_STEP = next((step for step in RETRIABLES if step.spec.alternatives_for), None)


@pytest.mark.skipif(ALTERNATIVE_STEP is None, reason="the app has no step with alternatives past its pivot")
def test_a_reservation_left_at_an_alternative_is_cancelled_by_its_own_key_when_rolled_back(stack, run_saga, reader):
    # Given a forward saga whose own provider refused past the pivot, and whose first alternative took the request
    # under a key of its own, but whose record of it could never be written before the deadline
    assert ALTERNATIVE_STEP is not None
    step, resource = ALTERNATIVE_STEP.name, ALTERNATIVE_STEP.resource
    section = dict(saga_request()[resource])
    own, alternative = section[ALTERNATIVE_STEP.spec.alternatives_for or ""], "Another Provider"
    section["alternatives"] = [alternative]
    request = saga_request(
        "t-res-alt",
        simulate={step: "fail:1"},
        recovery={"mode": "forward", "deadline_seconds": 60},
        **{resource: section},
    )
    with failing_dynamodb_calls("TransactWriteItems", 10, "ValidationException", request[ID_FIELD], step) as answered:
        saga = run_saga(request)
    assert answered  # the record's write failed on every attempt up to the deadline
    assert saga.outcome is Outcome.NEEDS_ATTENTION
    ledger = simulated_provider(resource)
    assert ledger is not None
    states = {name: ledger.state(step_key(request[ID_FIELD], resource, name)) for name in (own, alternative)}
    assert states == {own: None, alternative: "CONFIRMED"}  # the alternative's own key, not the step's
    assert saga.provider_disagreements() == [resource]
    assert_providers_agree(saga)  # named by the open attention record
    # When the operator rolls it back
    result = resolve(
        stack, reader, {k: v for k, v in request.items() if k != "simulate"}, "t-res-alt-resolve-1", "backward"
    )
    # Then the compensation reached the alternative by its key: nothing is left booked anywhere
    assert result.outcome is Outcome.RESOLVED
    assert ledger.state(step_key(request[ID_FIELD], resource, alternative)) == "CANCELLED"
    assert result.providers[resource] is RecordStatus.CANCELLED
    assert result.provider_disagreements() == []
    assert_providers_agree(result)


@pytest.mark.parametrize("provider_back", [True, False], ids=["resolves", "still-stuck"])
def test_a_resolutions_page_says_what_the_resolution_did(provider_back, stack, run_saga, reader):
    # Given a saga whose compensation of the first resource stayed stuck, resolved with or without the fault
    resource = REQUESTS[0].resource
    request = saga_request(f"t-page-{provider_back}", simulate={book_step(LAST): "fail", cancel_step(resource): "fail"})
    assert run_saga(request).outcome is Outcome.NEEDS_ATTENTION
    again = {k: v for k, v in request.items() if k != "simulate"} if provider_back else request
    result, events = resolve_with_history(stack, reader, again, f"{request[ID_FIELD]}-resolve-1")
    # When its page is drawn
    definition = load_definition(RESOLVE_ASL_PATH)
    named = result.model_copy(update={"saga_id": f"{request[ID_FIELD]}-resolve-1"})
    page = page_html(definition, events, named, "Resolution")
    assert f"<h1>Resolution {request[ID_FIELD]}-resolve-1 " in page
    views = state_views(definition, events)
    drawn = {name: view.shown for name, view in views.items() if view.shown is not Shown.NOT_ENTERED}
    if provider_back:
        # Then the banner says RESOLVED, the closed record is shown closed, and no state that ran as planned
        # (a record with nothing to close included) is drawn as a failure
        assert 'class="banner RESOLVED"' in page
        assert "Needs attention:" not in page
        assert "<b>Resolved:</b>" in page
        assert set(drawn.values()) <= {Shown.SUCCEEDED, Shown.RETRIED}, drawn
    else:
        # Then the banner and the record say it still needs attention, and the stuck compensation is caught
        assert 'class="banner NEEDS_ATTENTION"' in page
        assert "Needs attention:" in page
        assert drawn[compensation_of(resource).state] is Shown.CAUGHT


def test_the_resolution_machine_is_made_when_first_asked_for_and_once():
    from sagatools.emulation.embedded import EmbeddedStack

    with EmbeddedStack() as fresh:

        def machines() -> list[str]:
            return sorted(m["name"] for m in fresh.stepfunctions.list_state_machines()["stateMachines"])

        assert machines() == [fresh.state_machine_name]
        first = fresh.resolution_state_machine_arn
        assert fresh.resolution_state_machine_arn == first
        assert len(machines()) == 2
        described = fresh.stepfunctions.describe_state_machine(stateMachineArn=first)
        assert json.loads(described["definition"]) == json.loads(fresh.definition_of(RESOLVE_MACHINE))
    assert fresh.resolution_state_machine_arn == ""  # after the stack: nothing made, nothing left


# The operator never races the saga: attention.sh itself, on the embedded stack (reached as a stage is).


def attention_sh(stack, report, *argv: str) -> tuple[int, str, str]:
    """./attention.sh ARGV --stage local, with the embedded stack as the stage: exit code, stdout, stderr."""
    view = embedded_stage_view(stack)
    reporting = ["--report", str(report)] if argv[0] == "resolve" else []
    out, err = io.StringIO(), io.StringIO()
    code = attention.main([*argv, *reporting, "--stage", "local"], out, err, open_view=lambda _stage: view)
    return code, out.getvalue(), err.getvalue()


@contextmanager
def held_handler_write(*texts: str) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The handlers' first DynamoDB PutItem whose request holds every one of `texts` waits (up to 20 s) until
    released: its execution stays RUNNING meanwhile. Yields (reached, release); released on leaving."""
    from saga.clients import dynamodb_client

    reached, release = threading.Event(), threading.Event()

    def hold(params: dict[str, Any], **_kwargs: Any) -> None:
        body = params.get("body", b"")
        text = body.decode() if isinstance(body, bytes) else str(body)
        if not reached.is_set() and all(wanted in text for wanted in texts):
            reached.set()
            release.wait(timeout=20)

    events = dynamodb_client().meta.events
    events.register("before-call.dynamodb.PutItem", hold)
    try:
        yield reached, release
    finally:
        release.set()
        events.unregister("before-call.dynamodb.PutItem", hold)


def ended(stack, arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (description := stack.stepfunctions.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, arn
        time.sleep(0.01)
    return description


def one_sentence(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("attention: ") and "Traceback" not in err


@pytest.mark.skipif(len(COMPENSATIONS) < 2, reason="the app has one step: no compensation runs after a stuck one")
def test_resolve_and_close_refuse_while_the_saga_or_a_resolution_still_runs(stack, reader, tmp_path):
    # Given a saga that flagged a stuck compensation and still runs the next one (held there)
    stuck, next_one = COMPENSATIONS[-2], COMPENSATIONS[-1]
    saga_id = "t-busy"
    request = saga_request(saga_id, simulate={book_step(LAST): "fail", stuck.name: "fail"})
    with held_handler_write(saga_id, next_one.name, "START") as (reached, release):
        saga = stack.stepfunctions.start_execution(
            stateMachineArn=stack.state_machine_arn, name=saga_id, input=json.dumps(request)
        )["executionArn"]
        assert reached.wait(timeout=30)
        assert stack.stepfunctions.describe_execution(executionArn=saga)["status"] == "RUNNING"
        (record,) = reader.saga_log.read(saga_id)[1]
        assert (record.step, record.attention) == (stuck.name, AttentionState.OPEN)
        # When the operator resolves it (either way) or closes it meanwhile
        answers = {
            " ".join(argv): attention_sh(stack, tmp_path, *argv)
            for argv in (["resolve", saga_id], ["resolve", saga_id, "--roll-back"], ["close", saga_id, "--reason", "x"])
        }
        release.set()
        assert ended(stack, saga)["status"] == "FAILED"
    # Then each is refused in one sentence that says the saga still runs, and nothing was started or closed
    for command, (code, out, err) in answers.items():
        assert (code, out) == (EXIT_REFUSED, ""), (command, err)
        assert one_sentence(err), (command, err)
        assert "saga is still running" in err, (command, err)
    assert [
        e["name"]
        for e in stack.stepfunctions.list_executions(stateMachineArn=stack.resolution_state_machine_arn)["executions"]
    ] == []
    (record,) = reader.saga_log.read(saga_id)[1]
    assert (record.attention, record.resolved_by) == (AttentionState.OPEN, None)

    # Given the saga has ended and a resolution of it runs (held at its first compensation)
    first = f"{saga_id}-resolve-1"
    with held_handler_write(first, COMPENSATIONS[0].name, "START") as (reached, release):
        resolving: list[tuple[int, str, str]] = []
        call = threading.Thread(target=lambda: resolving.append(attention_sh(stack, tmp_path, "resolve", saga_id)))
        call.start()
        assert reached.wait(timeout=30)
        # When the operator closes the saga's records meanwhile
        closing = attention_sh(stack, tmp_path, "close", saga_id, "--reason", "x")
        release.set()
        call.join(timeout=60)
    # Then the close is refused in one sentence naming the resolution, and the resolution resolves the saga
    code, out, err = closing
    assert (code, out) == (EXIT_REFUSED, ""), err
    assert one_sentence(err), err
    assert f"resolution {first} is still running" in err, err
    ((code, out, err),) = resolving
    assert code == EXIT_OK, err
    (record,) = reader.saga_log.read(saga_id)[1]
    assert record.attention is AttentionState.RESOLVED
    assert str(record.resolved_by).endswith(f":{first}")


@contextmanager
def first_writes_at_once(stack, calls: int) -> Iterator[None]:
    """Each of `calls` threads' first DynamoDB write through the stack's client (attention.sh's, not the
    handlers') waits for the others': they have all read the saga, and none has acted yet."""
    barrier, seen = threading.Barrier(calls, timeout=20), set()

    def together(**_kwargs: Any) -> None:
        if threading.get_ident() not in seen:
            seen.add(threading.get_ident())
            barrier.wait()

    events = stack.dynamodb.meta.events
    for operation in ("PutItem", "UpdateItem"):
        events.register(f"before-call.dynamodb.{operation}", together)
    try:
        yield
    finally:
        for operation in ("PutItem", "UpdateItem"):
            events.unregister(f"before-call.dynamodb.{operation}", together)


DONE = {"forward": "finished forward", "backward": "rolled back"}


@pytest.mark.skipif(not RETRIABLES, reason="the app has no pivot with a step past it")
def test_of_two_resolutions_at_once_the_other_way_one_runs_and_the_other_says_what_it_did(
    stack, run_saga, reader, tmp_path
):
    # Given a saga left unfinished past its pivot
    saga_id = _unfinished_forward(run_saga, "t-race")[ID_FIELD]
    # When one operator finishes it forward and another rolls it back, at once
    asked = {"forward": ["resolve", saga_id, "--json"], "backward": ["resolve", saga_id, "--roll-back", "--json"]}
    answers: dict[str, tuple[int, str, str]] = {}
    with first_writes_at_once(stack, len(asked)):
        calls = [
            threading.Thread(
                target=lambda d=direction, a=argv: answers.__setitem__(d, attention_sh(stack, tmp_path, *a))
            )
            for direction, argv in asked.items()
        ]
        for call in calls:
            call.start()
        for call in calls:
            call.join(timeout=120)
    # Then exactly one resolution ran, and the saga went its way
    executions = stack.stepfunctions.list_executions(stateMachineArn=stack.resolution_state_machine_arn)["executions"]
    assert [e["name"] for e in executions] == [f"{saga_id}-resolve-1"]
    (ran,) = executions
    document = json.loads(stack.stepfunctions.describe_execution(executionArn=ran["executionArn"])["input"])
    winner = document["direction"]
    (loser,) = set(asked) - {winner}
    booked = {"forward": RecordStatus.CONFIRMED, "backward": RecordStatus.CANCELLED}
    assert set(reader.records(saga_id).values()) == {booked[winner]}
    # and its caller is told RESOLVED, exit 0
    code, out, err = answers[winner]
    assert (code, json.loads(out)["outcome"]) == (EXIT_OK, "RESOLVED"), err
    # while the other is told, with a refusal's exit code, that the saga went the other way, by which execution
    code, out, err = answers[loser]
    assert code == EXIT_REFUSED, err
    said = f"{saga_id} was {DONE[winner]} by another call's resolution {ran['name']}, not {DONE[loser]}"
    assert said in err, err
