"""saga/catalogue.py names every step of saga/definition.py; the ASL, the template and the handlers agree."""

from __future__ import annotations

import importlib
import typing

import pytest
import yaml

from saga.catalogue import COMPENSATIONS, REQUESTS, RESOURCES, STEPS, by_state
from saga.definition import SAGA
from saga.keys import ID_FIELD
from saga.models import RequestModel
from sagatools.asl import load_definition
from sagatools.serverless_config import STEPS_YML, load_service_config

STATES = load_definition()["States"]
CONFIG = load_service_config("dev")


@pytest.mark.parametrize("step", STEPS, ids=[step.name for step in STEPS])
def test_every_state_of_a_step_invokes_its_function_output(step):
    for state in step.states:
        assert STATES[state]["Type"] == "Task"
        assert STATES[state]["Resource"] == f"${{{step.arn_output}}}"
        assert STATES[state]["ResultPath"] == f"$.results.{step.name}"


def test_no_other_task_invokes_a_function():
    invoking = {name for name, state in STATES.items() if str(state.get("Resource", "")).endswith("FunctionArn}")}
    assert invoking == {state for step in STEPS for state in step.states}
    assert all(by_state(name) is not None for name in invoking)


@pytest.mark.parametrize("step", COMPENSATIONS, ids=[step.name for step in COMPENSATIONS])
def test_a_stuck_compensation_is_flagged_under_its_attention_key(step):
    assert step.attention_key == f"ATTENTION#{step.name}"
    flag = STATES[step.stuck_state]
    assert flag["Resource"] == "arn:aws:states:::dynamodb:putItem"
    assert flag["Parameters"]["Item"]["sk"] == {"S": step.attention_key}
    assert flag["Parameters"]["Item"]["step"] == {"S": step.name}
    for state in step.states:
        assert STATES[state]["Catch"][-1]["Next"] == step.stuck_state


def test_serverless_yml_declares_exactly_the_catalogue_functions_and_handlers():
    assert {key: spec.handler for key, spec in CONFIG.functions.items()} == {s.function: s.handler for s in STEPS}
    assert sorted(spec.step.name for spec in CONFIG.functions.values()) == sorted(step.name for step in STEPS)


def test_the_template_outputs_each_function_arn_under_the_catalogue_name():
    outputs = yaml.safe_load(STEPS_YML.read_text())["resources"]["Outputs"]
    for step in STEPS:
        assert outputs[step.arn_output] == {"Value": {"Fn::GetAtt": [step.function_resource, "Arn"]}}, step.name


@pytest.mark.parametrize("step", STEPS, ids=[step.name for step in STEPS])
def test_every_handler_imports_and_is_callable(step, stack):
    # Imported inside the stack, as Lambda would: Powertools reads its settings from the environment at import.
    module, _, attribute = step.handler.rpartition(".")
    assert callable(getattr(importlib.import_module(module.replace("/", ".")), attribute))


def test_the_request_accepts_faults_for_exactly_the_catalogue_steps():
    simulate = RequestModel.model_fields["simulate"].annotation
    step_name = typing.get_args(typing.get_args(simulate)[0])[0]
    assert set(typing.get_args(step_name)) == {step.name for step in STEPS}
    assert REQUESTS + COMPENSATIONS == STEPS


def test_the_request_has_a_required_section_per_step_in_order():
    fields = list(RequestModel.model_fields)
    recovery = ["recovery"] if SAGA.pivot is not None else []
    assert fields == ["saga_id", *SAGA.sections, *RESOURCES, *recovery, "simulate"]
    assert RequestModel.model_fields["saga_id"].alias == ID_FIELD  # written as the app's id field
    assert all(RequestModel.model_fields[resource].is_required() for resource in RESOURCES)


def test_every_step_has_two_steps_and_the_compensations_run_in_reverse():
    assert [step.resource for step in REQUESTS] == list(RESOURCES)
    assert [step.resource for step in COMPENSATIONS] == list(reversed(RESOURCES))
    assert len(STEPS) == 2 * len(SAGA.steps)
    # Only the compensation that runs first has no second state: nothing can be stuck before it.
    assert [step.after_stuck_state is None for step in COMPENSATIONS] == [True] + [False] * (len(RESOURCES) - 1)
