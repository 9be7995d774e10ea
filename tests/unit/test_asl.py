"""The state machine definition, linted as a graph (moto accepts dangling Next and unreachable states)."""

from __future__ import annotations

import inspect
import re

import pytest

import saga.errors
import saga.named_errors
from saga.catalogue import COMPENSATIONS, REQUESTS, RETRIABLES, STEPS, compensation_of
from saga.definition import SAGA
from saga.errors import AlternativesExhausted, ForwardDeadlinePassed, ForwardRetryableError
from sagatools.asl import (
    ASL_PATH,
    MACHINES,
    RESOLVE_ASL_PATH,
    load_definition,
    placeholders,
    reachable_states,
    successors,
)

DEFINITION = load_definition()
STATES = DEFINITION["States"]
TASKS = {name: state for name, state in STATES.items() if state["Type"] == "Task"}
# By the class's own name (the app's, for the four it renames): the name Lambda reports as errorType.
ERROR_NAMES = {
    cls.__name__
    for module in (saga.errors, saga.named_errors)
    for _, cls in inspect.getmembers(module, inspect.isclass)
    if issubclass(cls, Exception)
}


MACHINE_DEFINITIONS = {machine.asl_path.name: load_definition(machine.asl_path) for machine in MACHINES}


@pytest.mark.parametrize("asl", sorted(MACHINE_DEFINITIONS))
def test_every_next_names_an_existing_state(asl):
    states = MACHINE_DEFINITIONS[asl]["States"]
    for name, state in states.items():
        for target in successors(state):
            assert target in states, f"{name} -> {target}"


@pytest.mark.parametrize("asl", sorted(MACHINE_DEFINITIONS))
def test_every_state_is_reachable(asl):
    assert reachable_states(MACHINE_DEFINITIONS[asl]) == set(MACHINE_DEFINITIONS[asl]["States"])


@pytest.mark.parametrize("asl", sorted(MACHINE_DEFINITIONS))
def test_every_task_of_every_machine_has_retry_catch_and_a_timeout(asl):
    for name, state in MACHINE_DEFINITIONS[asl]["States"].items():
        if state["Type"] == "Task":
            assert state["Retry"], name
            assert state["Catch"], name
            assert state["TimeoutSeconds"] >= 30, name


def _rolling_back(states: dict, name: str) -> str:
    """Past a Choice on the recovery mode or the resolution's direction: where backward recovery goes."""
    return states[name]["Default"] if states[name]["Type"] == "Choice" else name


def test_the_resolution_runs_the_compensations_in_reverse_booking_order_with_the_sagas_retries():
    resolution = MACHINE_DEFINITIONS[RESOLVE_ASL_PATH.name]["States"]
    order, name = [], _rolling_back(resolution, MACHINE_DEFINITIONS[RESOLVE_ASL_PATH.name]["StartAt"])
    while resolution[name]["Type"] == "Task":
        order.append(name)
        name = resolution[name]["Next"]
    assert order == [step.state for step in COMPENSATIONS]
    for step in COMPENSATIONS:
        assert resolution[step.state]["Resource"] == f"${{{step.arn_output}}}"
        assert resolution[step.state]["Retry"] == STATES[step.state]["Retry"]


@pytest.mark.skipif(not RETRIABLES, reason="the app has no step past a pivot")
def test_the_resolution_finishes_forward_when_asked_with_the_sagas_forward_retries():
    definition = MACHINE_DEFINITIONS[RESOLVE_ASL_PATH.name]
    resolution = definition["States"]
    choice = resolution[definition["StartAt"]]
    assert choice["Type"] == "Choice"
    (forward,) = choice["Choices"]
    order, name = [], forward["Next"]
    while resolution[name]["Type"] == "Task" and not name.startswith("Close"):
        order.append(name)
        name = resolution[name]["Next"]
    assert order == [step.state for step in RETRIABLES]
    for step in RETRIABLES:
        assert resolution[step.state]["Retry"] == STATES[step.state]["Retry"]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_has_retry_catch_and_a_timeout_above_the_function_timeout(name):
    task = TASKS[name]
    assert task["Retry"]
    assert task["Catch"]
    assert task["TimeoutSeconds"] >= 30 > 10  # serverless.yml gives the functions 10 s
    for retrier in task["Retry"]:
        assert {"BackoffRate", "MaxDelaySeconds", "IntervalSeconds"} <= retrier.keys()
        # Forward recovery's retries keep their exact schedule: the step counts its deadline on it.
        forward = retrier["ErrorEquals"] == [ForwardRetryableError.__name__]
        assert retrier["JitterStrategy"] == ("NONE" if forward else "FULL")


@pytest.mark.parametrize("name", [step.state for step in REQUESTS])
def test_booking_steps_retry_transient_errors_at_least_twice_and_never_retry_refusals(name):
    retriers = TASKS[name]["Retry"]
    transient = [r for r in retriers if "TransientProviderError" in r["ErrorEquals"]]
    assert transient
    assert transient[0]["MaxAttempts"] >= 2
    retried = {error for r in retriers for error in r["ErrorEquals"]}
    assert not retried & {SAGA.errors.refused, "CrashAfterWrite", SAGA.errors.already_compensated, "States.ALL"}


@pytest.mark.parametrize("name", [state for step in COMPENSATIONS for state in step.states])
def test_compensations_are_retried_at_least_five_times(name):
    retriers = TASKS[name]["Retry"]
    stuck = [r for r in retriers if SAGA.errors.compensation_failed in r["ErrorEquals"]]
    assert stuck
    assert stuck[0]["MaxAttempts"] >= 5


def test_compensation_chain_is_the_reverse_of_the_booking_chain():
    bookings, state = [], DEFINITION["StartAt"]
    while STATES[state]["Type"] == "Task":
        bookings.append(state)
        state = STATES[state]["Next"]
    compensations, state = [], _rolling_back(STATES, STATES[bookings[-1]]["Catch"][-1]["Next"])
    while STATES[state]["Type"] == "Task":
        compensations.append(state)
        state = STATES[state]["Next"]
    assert bookings == [step.state for step in REQUESTS]
    assert compensations == [compensation_of(step.resource).state for step in reversed(REQUESTS)]
    # a failure at step k enters the chain at its own compensation, unless forward recovery gave up
    forward_gives_up = {AlternativesExhausted.__name__, ForwardDeadlinePassed.__name__, ForwardRetryableError.__name__}
    for booking in REQUESTS:
        for catch in STATES[booking.state]["Catch"]:
            if set(catch["ErrorEquals"]) == forward_gives_up:
                assert booking.is_retriable
                assert catch["Next"] == booking.unfinished_state
            elif catch["ErrorEquals"] != [SAGA.errors.invalid_request]:
                assert _rolling_back(STATES, catch["Next"]) == compensation_of(booking.resource).state


@pytest.mark.skipif(not RETRIABLES, reason="the app has no step past a pivot")
def test_past_the_pivot_a_failure_the_step_did_not_name_meets_the_recovery_mode():
    for step in RETRIABLES:
        choice = STATES[STATES[step.state]["Catch"][-1]["Next"]]
        assert STATES[step.state]["Catch"][-1]["ErrorEquals"] == ["States.ALL"]
        assert choice["Type"] == "Choice"
        (forward,) = choice["Choices"]
        assert forward["Next"] == step.unfinished_state
        assert STATES[step.unfinished_state]["Next"] == "Unfinished"


def test_error_names_in_the_asl_are_python_errors_or_aws_names():
    used = {
        error
        for state in STATES.values()
        for rule in state.get("Retry", []) + state.get("Catch", [])
        for error in rule["ErrorEquals"]
    }
    aws = ("States.", "Lambda.", "Sandbox.", "DynamoDB.", "Runtime.")
    ours = {error for error in used if not error.startswith(aws)}
    assert ours <= ERROR_NAMES, ours - ERROR_NAMES


def test_invalid_request_fails_fast_to_its_own_fail_state():
    catch = TASKS[DEFINITION["StartAt"]]["Catch"][0]
    assert catch["ErrorEquals"] == [SAGA.errors.invalid_request]
    assert STATES[catch["Next"]]["Type"] == "Fail"


def test_fail_states_name_their_cause():
    for name, state in STATES.items():
        if state["Type"] == "Fail":
            assert state.get("Error"), name
            assert state.get("Cause") or state.get("CausePath"), name


def test_function_arns_are_placeholders_never_account_ids():
    text = ASL_PATH.read_text()
    assert "arn:aws:lambda" not in text
    assert not re.search(r"\b\d{12}\b", text), "an account id in the ASL"
    assert {step.arn_output for step in STEPS} <= placeholders(text)


@pytest.mark.parametrize("asl", sorted(MACHINE_DEFINITIONS))
def test_every_step_retries_an_attempt_whose_environment_died(asl):
    # Runtime.ExitError: the process died under the attempt; every step is idempotent, so retry it.
    for name, state in MACHINE_DEFINITIONS[asl]["States"].items():
        if state["Type"] == "Task" and state["Resource"].startswith("${"):
            assert any("Runtime.ExitError" in rule["ErrorEquals"] for rule in state["Retry"]), name
