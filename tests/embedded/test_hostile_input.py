"""Malformed and oversized requests, generated: refused with a clear error, never a traceback or a write."""

from __future__ import annotations

import copy
import importlib
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saga.catalogue import REQUESTS, STEP_NAMES, STEPS
from saga.definition import SAGA
from saga.errors import InvalidRequest
from saga.models import RequestModel, parse_request
from sagatools.emulation.in_process_lambda import LocalLambdaContext
from sagatools.request_files import RequestFileError, load_request_file
from tests.helpers import saga_request

if TYPE_CHECKING:
    from saga.spec import StepSpec

# The sample with every optional part the app has too (forward recovery, alternatives), so each is mutated.
RECOVERY = {"recovery": {"mode": "forward", "deadline_seconds": 600}} if SAGA.pivot is not None else {}
BASE = saga_request("hostile", **RECOVERY)
WITH_ALTERNATIVES = [step for step in SAGA.steps if step.alternatives_for]
for step in WITH_ALTERNATIVES:
    BASE[step.resource]["alternatives"] = ["Other One", "Other Two"]


def _aliases(model: Any) -> dict[str, Any]:
    """A model's fields by the names a request writes them in."""
    return {field.alias or name: field for name, field in model.model_fields.items()}


# What a request may leave out: recovery and its fields, and every section field its model does not require.
OPTIONAL = {(section,) for section in RECOVERY} | {
    (section, name)
    for section, value in BASE.items()
    if isinstance(value, dict)
    for name, field in _aliases(_aliases(RequestModel)[section].annotation).items()
    if not field.is_required()
}
FIELDS = [(section, field) for section, value in BASE.items() if isinstance(value, dict) for field in value]
# Every name a request or one of its sections knows: an unknown key must be none of them.
KNOWN_KEYS = set(BASE) | {name for _, name in FIELDS}
SECTIONS = list(BASE)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
huge_text = st.sampled_from(["x", "é", "漢", "\U0001f600", "\x00"]).map(lambda ch: ch * 1_000_000)


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    request = copy.deepcopy(BASE)
    if len(path) == 1:
        del request[path[0]]
    else:
        del request[path[0]][path[1]]
    return request


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    request = copy.deepcopy(BASE)
    if len(path) == 1:
        request[path[0]] = value
    else:
        request[path[0]][path[1]] = value
    return request


def _at(path: tuple[str, ...]) -> Any:
    return BASE[path[0]] if len(path) == 1 else BASE[path[0]][path[1]]


def _wrong_for(path: tuple[str, ...], value: Any) -> bool:
    """Whether `value` cannot stand for the sample's value at `path` (strict models: no other type will do;
    a number where the sample has a number could be a valid one)."""
    sample = _at(path)
    return not isinstance(value, str) and (isinstance(sample, dict) or type(value) is not type(sample))


REQUIRED = [(s,) for s in SECTIONS if s != "simulate" and (s,) not in OPTIONAL] + [
    f for f in FIELDS if f not in OPTIONAL
]
bad_recovery = st.one_of(
    st.text(max_size=12).filter(lambda mode: mode not in ("backward", "forward")).map(lambda m: {"mode": m}),
    st.one_of(st.integers(max_value=59), st.integers(min_value=86401), st.floats(), st.text(), st.booleans()).map(
        lambda deadline: {"mode": "forward", "deadline_seconds": deadline}
    ),
)


def bad_alternatives(step: StepSpec) -> st.SearchStrategy[dict[str, Any]]:
    """Requests whose alternatives for `step` are more than 3, one twice, its own provider, blank or odd."""
    return st.one_of(
        st.lists(st.text(min_size=1, max_size=8), min_size=4, max_size=6, unique=True),
        st.just(["Other One", "Other One"]),
        st.just([BASE[step.resource][step.alternatives_for]]),
        st.lists(st.sampled_from(["", " ", "\x1b[2J", "a\nb"]), min_size=1, max_size=2),
    ).map(lambda alternatives: _with((step.resource, "alternatives"), alternatives))


# Requests that must always be refused.
invalid_requests = st.one_of(
    st.sampled_from(REQUIRED).map(_without),
    st.tuples(st.sampled_from(REQUIRED), huge_text).map(lambda pair: _with(pair[0], pair[1])),
    st.tuples(st.sampled_from(REQUIRED), json_values)
    .filter(lambda pair: _wrong_for(pair[0], pair[1]))
    .map(lambda pair: _with(pair[0], pair[1])),
    st.tuples(
        st.sampled_from([*SECTIONS, *(s for s, _ in FIELDS)]),
        st.text(min_size=1, max_size=10).filter(lambda k: k not in KNOWN_KEYS),
        json_values,
    ).map(lambda t: _with((t[0], t[1]) if isinstance(BASE.get(t[0]), dict) else (t[1],), t[2])),
    st.dictionaries(st.text(max_size=15), st.text(max_size=25), min_size=1, max_size=3)
    .filter(lambda d: any(k not in STEP_NAMES or v not in ("fail", "transient:1") for k, v in d.items()))
    .map(lambda simulate: _with(("simulate",), simulate)),
    json_values.filter(lambda v: not isinstance(v, dict)),
    *([bad_recovery.map(lambda recovery: _with(("recovery",), recovery))] if RECOVERY else []),
    *(bad_alternatives(step) for step in WITH_ALTERNATIVES),
)


def assert_clear(message: str) -> None:
    assert message.strip()
    assert "Traceback" not in message
    for line in message.splitlines():
        assert ": " in line, line  # every line names what it is about


@settings(max_examples=150, deadline=None)
@given(invalid_requests)
def test_model_refuses_every_malformed_request_naming_the_field(request):
    with pytest.raises(InvalidRequest) as refused:
        parse_request(request)
    assert_clear(str(refused.value))


@settings(max_examples=150, deadline=None)
@given(json_values | st.dictionaries(st.sampled_from(SECTIONS), json_values))
def test_anything_at_all_is_either_a_request_or_refused_cleanly(data):
    try:
        parse_request(data)
    except InvalidRequest as refused:
        assert_clear(str(refused))


@settings(max_examples=60, deadline=None)
@given(invalid_requests)
def test_cli_refuses_the_file_by_name(request):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "request.json"
        path.write_text(json.dumps(request), encoding="utf-8")
        with pytest.raises(RequestFileError) as refused:
            load_request_file(str(path))
    assert all(line.startswith(f"{path}: ") for line in str(refused.value).splitlines())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=invalid_requests, step=st.sampled_from([step.name for step in STEPS]))
def test_handlers_refuse_before_any_write(stack, request, step):
    handler = importlib.import_module(f"functions.{step}").handler
    context = LocalLambdaContext(step, f"arn:aws:lambda:us-east-1:123456789012:function:{step}", 256, 10)
    with pytest.raises(InvalidRequest):
        handler({"request": request, "retry_count": 0}, context)
    tables = [stack.settings.saga_log_table, *stack.settings.tables.values()]
    assert len(tables) == len(STEPS) // 2 + 1  # every table of the stage is looked at
    for table in tables:
        assert stack.dynamodb.scan(TableName=table, Select="COUNT")["Count"] == 0


def test_the_generated_requests_cover_every_section_and_field_of_the_model():
    # The sample request is where the cases come from: a section it lacks would go untested.
    assert set(SECTIONS) - {"simulate"} == set(_aliases(RequestModel)) - {"simulate"}
    for section in SECTIONS:
        model = _aliases(RequestModel)[section].annotation
        if isinstance(BASE[section], dict) and model is not None and hasattr(model, "model_fields"):
            assert set(BASE[section]) == set(_aliases(model)), section


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "text",
        3,
        {"request": BASE},
        {"request": BASE, "retry_count": -1},
        {"request": BASE, "retry_count": 0, "extra": 1},
    ],
)
def test_handlers_refuse_malformed_events(stack, event):
    first = REQUESTS[0]
    handler = importlib.import_module(first.module).handler
    with pytest.raises(InvalidRequest):
        handler(event, LocalLambdaContext(first.name, "arn:aws:lambda:us-east-1:1:function:f", 256, 10))
