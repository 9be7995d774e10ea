"""A step's own work is the app's code (StepSpec.work: an action and a compensation): the engine calls it with the same
call on every retry, stores the reference the action returns, and runs the compensation on a rollback."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from saga import catalogue
from saga.catalogue import COMPENSATIONS, REQUESTS
from saga.definition import SAGA
from saga.errors import CompensationFailed, StepRefused, TransientProviderError
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


def _with_work(monkeypatch, resource: str, work: StepWork) -> None:
    """The step of `resource` does `work` (the app's code), for this test."""
    real_step = catalogue.step

    def step(action_kind: catalogue.Action, name: str) -> catalogue.Step:
        found = real_step(action_kind, name)
        return (
            dataclasses.replace(found, spec=dataclasses.replace(found.spec, work=work)) if name == resource else found
        )

    monkeypatch.setattr(catalogue, "step", step)


def test_a_refusal_or_a_passing_fault_the_apps_work_raises_is_the_engines_under_the_apps_names(monkeypatch, run_saga):
    # Given the last step's provider, in the app's own code, fails once with a passing fault, then refuses
    last = REQUESTS[-1]
    answers = iter([TransientProviderError("the provider is busy"), StepRefused("no room left")])

    def action(call: StepCall) -> str:
        raise next(answers)

    def compensation(call: StepCall) -> None:
        raise CompensationFailed("the provider did not answer")

    _with_work(monkeypatch, last.resource, StepWork(action, compensation))
    result = run_saga(saga_request("t-own-refusal"))
    # Then the passing fault was retried and the refusal rolled the saga back, by the app's error name; the
    # compensation that failed was retried as the app's compensation failure and the saga flagged
    failed = [entry.detail or "" for entry in result.log_of(last.name) if entry.event.value == "FAILED"]
    assert failed[0].startswith("TransientProviderError: the provider is busy")
    assert failed[1].startswith(f"{SAGA.errors.refused}: no room left")
    undone = [entry.detail or "" for entry in result.log_of(COMPENSATIONS[0].name) if entry.event.value == "FAILED"]
    assert undone
    assert all(detail.startswith(f"{SAGA.errors.compensation_failed}: ") for detail in undone)
    assert result.outcome is Outcome.NEEDS_ATTENTION
    assert [record.step for record in result.needs_attention] == [COMPENSATIONS[0].name]
