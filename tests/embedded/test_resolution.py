"""The resolution of a stuck saga on the embedded stack: every stuck compensation x resolution succeeds / stays stuck.

The resolution is the stage's second state machine (statemachine/resolve-stuck.asl.json), started as
attention.sh starts it; the state machine itself closes or keeps the attention records.
"""

from __future__ import annotations

import json
import time

import pytest

from saga.catalogue import BOOKINGS, COMPENSATIONS, RETRIABLES, by_name, compensation_of
from saga.models import BookingStatus
from saga.saga_log import AttentionKind, AttentionState, LogEvent
from sagatools.asl import RESOLVE_ASL_PATH, RESOLVE_MACHINE, load_definition
from sagatools.executions import ExecutionWatcher
from sagatools.results import Outcome, build_report, resolution_outcome_of
from sagatools.view.graph import Shown, state_views
from sagatools.view.html_page import page_html
from tests.helpers import LAST, RESOURCES, book_step, cancel_step, trip_request

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
    description = watcher.wait({arn: request["trip_id"]}, time.monotonic() + 120)[arn]
    events = watcher.history(arn)
    return build_report(name, request["trip_id"], description, events, reader, False, resolution_outcome_of), events


@pytest.mark.parametrize("resource", STUCK)
@pytest.mark.parametrize("provider_back", [True, False], ids=["resolves", "still-stuck"])
def test_a_stuck_compensation_is_resolved_or_stays_open(resource, provider_back, stack, run_saga, reader):
    # Given a saga whose cancel_<resource> stayed stuck
    faults = {book_step(LAST): "fail", cancel_step(resource): "fail"}
    request = trip_request(f"t-res-{resource}-{provider_back}", simulate=faults)
    saga = run_saga(request)
    assert saga.outcome is Outcome.NEEDS_ATTENTION
    # When it is resolved, without the fault (the provider is back) or with it
    resolution_request = {k: v for k, v in request.items() if k != "simulate"} if provider_back else request
    result = resolve(stack, reader, resolution_request, f"{request['trip_id']}-resolve-1")
    (record,) = result.needs_attention
    step = cancel_step(resource)
    resolution_id = result.execution_arn
    if provider_back:
        # Then every booking is cancelled and the record is closed, not deleted, by that execution
        assert result.outcome is Outcome.RESOLVED
        assert set(result.bookings.values()) == {BookingStatus.CANCELLED}
        assert (record.step, record.attention, record.resolved_by) == (step, AttentionState.RESOLVED, resolution_id)
        ends = [e for e in result.saga_log if e.step == step and e.event is LogEvent.END]
        assert [e.execution_id for e in ends] == [resolution_id]
    else:
        # Then the record stays open with the resolution's error and attempts, the booking still not cancelled
        assert result.outcome is Outcome.NEEDS_ATTENTION
        assert (record.attention, record.error, record.attempts) == (
            AttentionState.OPEN,
            "CancellationFailed",
            by_name(step).retry.attempts,
        )
        assert record.execution_id == resolution_id
        assert result.bookings[resource] is not BookingStatus.CANCELLED
    # and the saga log holds both attempts at the compensation, the saga's first
    starts = [e.execution_id for e in result.saga_log if e.step == step and e.event is LogEvent.START]
    assert starts[0] == saga.execution_arn
    assert starts[-1] == resolution_id


def test_a_resolution_of_a_trip_with_nothing_open_changes_no_record(stack, run_saga, reader):
    request = trip_request("t-res-clean", simulate={book_step(LAST): "fail"})
    assert run_saga(request).outcome is Outcome.ROLLED_BACK
    result = resolve(stack, reader, {k: v for k, v in request.items() if k != "simulate"}, "t-res-clean-resolve-1")
    assert result.outcome is Outcome.RESOLVED
    assert result.needs_attention == []  # no record was opened by closing nothing


def test_the_normal_saga_path_is_unchanged_by_the_resolution_machine(run_saga):
    assert run_saga(trip_request("t-res-normal")).transitions == len(RESOURCES) + 1


def _unfinished_forward(run_saga, trip_id: str) -> dict:
    """A forward saga whose step past the pivot every provider refused: NEEDS_ATTENTION, nothing undone."""
    step = RETRIABLES[-1]
    request = trip_request(trip_id, simulate={step.name: "fail"}, recovery={"mode": "forward"})
    saga = run_saga(request)
    assert saga.outcome is Outcome.NEEDS_ATTENTION
    (record,) = saga.needs_attention
    assert (record.step, record.kind, record.error) == (
        step.name,
        AttentionKind.UNFINISHED_FORWARD,
        "AlternativesExhausted",
    )
    assert [saga.bookings[s.resource] for s in BOOKINGS if not s.is_retriable] == [BookingStatus.CONFIRMED] * (
        len(BOOKINGS) - len(RETRIABLES)
    )
    assert saga.bookings[step.resource] is None
    return request


@pytest.mark.skipif(not RETRIABLES, reason="the saga has no pivot")
@pytest.mark.parametrize("provider_back", [True, False], ids=["finishes", "still-refused"])
def test_an_unfinished_forward_trip_is_finished_forward(provider_back, stack, run_saga, reader):
    request = _unfinished_forward(run_saga, f"t-res-fwd-{provider_back}")
    resolution_request = {k: v for k, v in request.items() if k != "simulate"} if provider_back else request
    result = resolve(stack, reader, resolution_request, f"{request['trip_id']}-resolve-1", "forward")
    (record,) = result.needs_attention
    if provider_back:
        assert result.outcome is Outcome.RESOLVED
        assert set(result.bookings.values()) == {BookingStatus.CONFIRMED}
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
        assert result.bookings[RETRIABLES[-1].resource] is None


@pytest.mark.skipif(not RETRIABLES, reason="the saga has no pivot")
def test_an_unfinished_forward_trip_is_rolled_back_when_asked(stack, run_saga, reader):
    request = _unfinished_forward(run_saga, "t-res-fwd-rollback")
    resolution_request = {k: v for k, v in request.items() if k != "simulate"}
    result = resolve(stack, reader, resolution_request, f"{request['trip_id']}-resolve-1", "backward")
    assert result.outcome is Outcome.RESOLVED
    assert set(result.bookings.values()) == {BookingStatus.CANCELLED}
    (record,) = result.needs_attention
    assert (record.attention, record.resolved_by) == (AttentionState.RESOLVED, result.execution_arn)
    cancels = [e.step for e in result.saga_log if e.event is LogEvent.END and e.step in {c.name for c in COMPENSATIONS}]
    assert cancels == [c.name for c in COMPENSATIONS]  # every compensation, in reverse order


@pytest.mark.parametrize("provider_back", [True, False], ids=["resolves", "still-stuck"])
def test_a_resolutions_page_says_what_the_resolution_did(provider_back, stack, run_saga, reader):
    # Given a trip whose cancel of the first resource stayed stuck, resolved with or without the fault
    resource = BOOKINGS[0].resource
    request = trip_request(f"t-page-{provider_back}", simulate={book_step(LAST): "fail", cancel_step(resource): "fail"})
    assert run_saga(request).outcome is Outcome.NEEDS_ATTENTION
    again = {k: v for k, v in request.items() if k != "simulate"} if provider_back else request
    result, events = resolve_with_history(stack, reader, again, f"{request['trip_id']}-resolve-1")
    # When its page is drawn
    definition = load_definition(RESOLVE_ASL_PATH)
    named = result.model_copy(update={"trip_id": f"{request['trip_id']}-resolve-1"})
    page = page_html(definition, events, named, "Resolution")
    assert f"<h1>Resolution {request['trip_id']}-resolve-1 " in page
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
