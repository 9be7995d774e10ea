"""./build.sh generate: what it writes passes the project's lint for any saga."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from saga.catalogue import Action, Step
from saga.requests import CarRequest, FlightRequest, HotelRequest
from saga.spec import SagaSpec, StepSpec
from sagatools.generate.handlers import handler_module
from tests.helpers import ROOT

RUFF = ROOT / ".venv" / "bin" / "ruff"
PYPROJECT = ROOT / "pyproject.toml"
# Resource names a definition may use: short, long enough that the old handler's docstring overflowed
# (16 characters), long (40), with digits, one longer than a line (no wrapping can shorten its name), and
# those at the edge of the line where ruff format splits the handler's call.
RESOURCES = {
    "short": "car",
    "16-characters": "travel_insurance",
    "40-characters": "airport_lounge_access_with_priority_pass",
    "digits": "room2_upgrade_v3",
    "longer-than-a-line": "x" * 130,
    # `handler = step_handler("book_…")` one character short of the line, and exactly the line.
    "call-one-short": "a" * 86 + "_b",
    "call-exactly-a-line": "a" * 86 + "_bc",
}


def saga_of(*resources: str) -> SagaSpec:
    models = [HotelRequest, FlightRequest, CarRequest]
    return SagaSpec(name="any-saga", steps=tuple(StepSpec(r, models[n % 3]) for n, r in enumerate(resources)))


def steps_of(saga: SagaSpec) -> list[Step]:
    """The requests and compensations of a saga other than the definition's, as saga/catalogue.py names them."""
    return [Step(spec, action, n) for n, spec in enumerate(saga.steps, start=1) for action in Action]


def ruff(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RUFF), *arguments, "--config", str(PYPROJECT)], capture_output=True, text=True)


@pytest.mark.parametrize("resource", RESOURCES.values(), ids=RESOURCES.keys())
def test_a_generated_handler_module_passes_lint_and_format_for_any_resource_name(resource, tmp_path):
    # Given a saga whose step is named `resource`, and the handler modules of its request and compensation
    modules = {step.handler_file: handler_module(step) for step in steps_of(saga_of(resource))}
    for name, text in modules.items():
        (tmp_path / Path(name).name).write_text(text, encoding="utf-8")
    # When ruff checks them and ruff format looks at them, with the project's own settings
    checked = ruff("check", "--no-cache", str(tmp_path))
    formatted = ruff("format", "--no-cache", "--check", "--diff", str(tmp_path))
    # Then neither finds anything to say: ./build.sh test stays green whatever the step is called
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
