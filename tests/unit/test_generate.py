"""./build.sh generate: what it writes passes the project's lint for any saga, and --check catches every file
that no longer follows from the definition."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from saga.catalogue import Action, Step
from saga.definition import SAGA
from saga.request_fields import IsoDate, Strict, Text
from saga.spec import SagaSpec, StepSpec
from sagatools.asl import SAGA_MACHINE
from sagatools.generate.handlers import handler_module
from sagatools.working_tree import copy_working_tree
from tests.helpers import APP_DIR, ROOT

RUFF = ROOT / ".venv" / "bin" / "ruff"
PYPROJECT = ROOT / "pyproject.toml"
# Resource names a definition may use: short, long enough that the old handler's docstring overflowed
# (16 characters), long (40), with digits, one longer than a line (no wrapping can shorten its name), and
# those at the edge of the line where ruff format splits the handler's call.
RESOURCES = {
    "short": "tax",
    "16-characters": "travel_insurance",
    "40-characters": "express_delivery_with_signature_required",
    "digits": "room2_upgrade_v3",
    "longer-than-a-line": "x" * 130,
    # `handler = step_handler("book_…")` one character short of the line, and exactly the line.
    "call-one-short": "a" * 86 + "_b",
    "call-exactly-a-line": "a" * 86 + "_bc",
}


class Section(Strict):
    """Any step's section: what it is and when."""

    name: Text
    on: IsoDate


def saga_of(*resources: str) -> SagaSpec:
    return SagaSpec(name="any-saga", steps=tuple(StepSpec(r, Section) for r in resources))


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


OLD_ASL = f"statemachine/{SAGA_MACHINE.asl_path.name}"
NEW_NAME = f"{SAGA.name}-renamed"
NEW_ASL = f"statemachine/{NEW_NAME}.asl.json"
# ASL files someone wrote by hand beside the generated ones: never the generator's to delete.
HAND_WRITTEN = {
    "statemachine/hand-written.asl.json": json.dumps(
        {"Comment": "Written by hand.", "StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}, indent=2
    ),
    "statemachine/draft.asl.json": '{"Comment": "half written',
}


@pytest.fixture
def renamed(tmp_path: Path) -> Path:
    """A copy of the project whose saga is renamed in its definition, with hand-written ASL files beside the
    generated ones."""
    project = copy_working_tree(tmp_path / "project")
    definition = project / APP_DIR.relative_to(ROOT) / "definition.py"
    text = definition.read_text(encoding="utf-8")
    assert f'name="{SAGA.name}"' in text
    definition.write_text(text.replace(f'name="{SAGA.name}"', f'name="{NEW_NAME}"'), encoding="utf-8")
    for name, content in HAND_WRITTEN.items():
        (project / name).write_text(content, encoding="utf-8")
    return project


def generate(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    # The copy's own code: `-m` puts the working directory first on the path.
    command = [sys.executable, "-m", "sagatools.generate", *arguments]
    return subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=120)


def named(check: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The files generate --check names, and what it says of each."""
    lines = [line.removeprefix("generate --check: ") for line in check.stderr.splitlines()]
    return {line.split()[0]: line.partition(" ")[2] for line in lines if not line.startswith("run ./build.sh")}


def test_check_names_a_renamed_sagas_old_state_machine_and_writes_nothing(renamed):
    # Given a project whose saga was renamed, its old state machine's ASL still in statemachine/
    # When generate --check runs
    check = generate(renamed, "--check")
    # Then it fails naming the old ASL as no machine of the definition (and the new one as missing), not the
    # hand-written files, and writes nothing
    assert check.returncode == 1, check.stdout + check.stderr
    machines = {name: said for name, said in named(check).items() if name.startswith("statemachine/")}
    assert machines == {
        OLD_ASL: "is not a state machine of saga/definition.py",
        NEW_ASL: "differs from saga/definition.py",
    }
    assert (renamed / OLD_ASL).is_file()
    assert not (renamed / NEW_ASL).exists()


def test_generate_deletes_a_renamed_sagas_old_state_machine_and_keeps_hand_written_asl(renamed):
    # Given a project whose saga was renamed, with hand-written ASL files beside the generated ones
    # When generate runs
    generated = generate(renamed)
    # Then the old machine's ASL is gone, the new one written, the hand-written files are as they were,
    # and --check agrees with what is left
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert f"deleted {OLD_ASL} (no longer a state machine)" in generated.stdout.splitlines()
    assert not (renamed / OLD_ASL).exists()
    assert (renamed / NEW_ASL).is_file()
    assert {name: (renamed / name).read_text(encoding="utf-8") for name in HAND_WRITTEN} == HAND_WRITTEN
    check = generate(renamed, "--check")
    assert check.returncode == 0, check.stdout + check.stderr
