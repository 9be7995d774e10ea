"""A step's own work is the app's code (StepSpec.work: an action and a compensation): the engine calls it with the same
call on every retry, stores the reference the action returns, and runs the compensation on a rollback."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from saga import catalogue
from saga.catalogue import REQUESTS
from saga.keys import ID_FIELD
from saga.spec import StepWork
from sagatools.results import Outcome
from tests.helpers import saga_request

if TYPE_CHECKING:
    from saga.spec import StepCall


def test_a_steps_action_names_its_booking_and_its_compensation_undoes_it(monkeypatch, stack, run_saga):
    # Given the first step's work is code of its own that notes every call
    first = REQUESTS[0]
    calls: list[tuple[str, StepCall]] = []

    def action(call: StepCall) -> str:
        calls.append(("action", call))
        return f"OWN-{call.key}"

    def compensation(call: StepCall) -> None:
        calls.append(("compensation", call))

    spec = dataclasses.replace(first.spec, work=StepWork(action, compensation))
    real_step = catalogue.step

    def step(action_kind: catalogue.Action, resource: str) -> catalogue.Step:
        found = real_step(action_kind, resource)
        return dataclasses.replace(found, spec=spec) if resource == first.resource else found

    monkeypatch.setattr(catalogue, "step", step)
    # When a saga whose last request is refused runs
    saga_id = "t-own-work"
    request = saga_request(saga_id, simulate={REQUESTS[-1].name: "fail"})
    result = run_saga(request)
    # Then the action was called once, with the step's key and its section, and the compensation after it
    assert result.outcome is Outcome.ROLLED_BACK
    assert [kind for kind, _ in calls] == ["action", "compensation"]
    for _, call in calls:
        assert (call.saga_id, call.resource, call.key) == (saga_id, first.resource, f"{saga_id}/{first.resource}")
        assert call.section == request[first.resource]
    # and the booking was stored under the reference the action returned
    item = stack.dynamodb.get_item(
        TableName=stack.settings.records_table(first.resource), Key={ID_FIELD: {"S": saga_id}}
    )["Item"]
    assert item["reference"]["S"] == f"OWN-{saga_id}/{first.resource}"
    assert item["status"]["S"] == "CANCELLED"
