"""Folding a history into state runs: a failure the definition steps over on purpose is drawn as a success."""

from __future__ import annotations

from datetime import UTC, datetime

from saga.catalogue import COMPENSATIONS
from saga.definition import SAGA
from sagatools.asl import RESOLVE_ASL_PATH, load_definition
from sagatools.history import StateRun, StateStatus, as_planned

RESOLUTION = load_definition(RESOLVE_ASL_PATH)
CLOSE = f"Close{COMPENSATIONS[0].names.title}Record"
CANCEL = COMPENSATIONS[0].state


def caught(name: str, error: str) -> StateRun:
    return StateRun(name, "Task", StateStatus.CAUGHT, datetime.now(UTC), attempts=1, error=error)


def test_nothing_to_close_is_the_success_the_resolution_plans_for():
    (run,) = as_planned([caught(CLOSE, "DynamoDB.ConditionalCheckFailedException")], RESOLUTION)
    assert (run.status, run.error) == (StateStatus.SUCCEEDED, None)


def test_a_failure_caught_by_states_all_or_unnamed_stays_caught():
    runs = [caught(CANCEL, SAGA.errors.compensation_failed), caught(CLOSE, "DynamoDB.InternalServerError")]
    assert [run.status for run in as_planned(runs, RESOLUTION)] == [StateStatus.CAUGHT, StateStatus.CAUGHT]
