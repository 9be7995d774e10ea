"""Adding a step is the definition, the request model, the sample requests and ./build.sh generate.

In a copy of the tree, a step (insurance, after the last, with its own table) is added to the served app by
exactly those edits in its folder; then its sagas run on the embedded stack and its dev template is packaged.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from saga.catalogue import REQUESTS, RESOURCES, Action, ResourceNames, Step, compensation_of, pascal
from saga.definition import APP, SAGA
from saga.keys import ID_FIELD, RECORDS_KEY
from saga.spec import StepKind, StepSpec
from sagatools.asl import MACHINES, RESOLVE_MACHINE
from sagatools.working_tree import copy_working_tree
from tests.helpers import APP_DIR, LAST, ROOT

pytestmark = pytest.mark.slow  # a copy of the tree, three runtest.sh runs and an osls package

# The step added: insurance, after the last step (named otherwise if the tree already has one).
NEW = "insurance" if "insurance" not in RESOURCES else "extra_insurance"
NEW_TITLE = pascal(NEW)
REQUEST_MODEL = f"""

class {NEW_TITLE}Request(Strict):
    policy: Text
    cover_from: IsoDate
    cover_to: IsoDate
"""
INSURANCE = {"policy": "Travel Plus", "cover_from": "2026-12-01", "cover_to": "2026-12-04"}
AFTER = [*RESOURCES, NEW]  # the resources of the saga with the new step
# After the pivot a step is retriable (the definition refuses anything else there).
KIND = StepKind.RETRIABLE if SAGA.pivot is not None else StepKind.COMPENSATABLE
# The new step's request and compensation, named as the catalogue names every step (the saga's verbs).
NEW_SPEC = StepSpec(NEW, BaseModel, kind=KIND)
NEW_REQUEST = Step(NEW_SPEC, Action.REQUEST, len(AFTER))
NEW_COMPENSATION = Step(NEW_SPEC, Action.COMPENSATION, len(AFTER))
NEW_NAMES = ResourceNames(NEW)
# What a user writes by hand, all in the served app's folder: the definition, the request model, the sample
# request files (and the examples, where the app has them).
FOLDER = APP_DIR.relative_to(ROOT)
REQUEST_FILES = sorted(
    str(path.relative_to(ROOT)) for folder in ("samples", "examples") for path in (APP_DIR / folder).glob("*.json")
)
HAND_EDITED = (str(FOLDER / "definition.py"), str(FOLDER / "requests.py"), *REQUEST_FILES)


def add_insurance_step(project: Path) -> None:
    definition = project / FOLDER / "definition.py"
    text = definition.read_text()
    tree = ast.parse(text)
    # After the last element of SagaSpec(steps=(...)), however it is written (one line or several).
    (steps,) = [
        keyword.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "SagaSpec"
        for keyword in node.keywords
        if keyword.arg == "steps" and isinstance(keyword.value, ast.Tuple)
    ]
    last = steps.elts[-1]
    lines = text.splitlines(keepends=True)
    kind = ", kind=StepKind.RETRIABLE" if KIND is StepKind.RETRIABLE else ""
    assert last.end_lineno is not None
    assert last.end_col_offset is not None
    line = lines[last.end_lineno - 1]
    added = f', StepSpec("{NEW}", {NEW_TITLE}Request{kind})'
    lines[last.end_lineno - 1] = line[: last.end_col_offset] + added + line[last.end_col_offset :]
    # Its request model imported after the definition's last import.
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert imports[-1].end_lineno is not None
    lines.insert(imports[-1].end_lineno, f"from {APP}.requests import {NEW_TITLE}Request\n")
    definition.write_text("".join(lines))
    requests = project / FOLDER / "requests.py"
    requests.write_text(requests.read_text() + REQUEST_MODEL)
    for name in REQUEST_FILES:
        path = project / name
        path.write_text(json.dumps(with_insurance(json.loads(path.read_text())), indent=2) + "\n")


def with_insurance(request: dict[str, Any]) -> dict[str, Any]:
    """The request with the new step's section after the others (before `simulate`)."""
    simulate = request.pop("simulate", None)
    request[NEW] = INSURANCE
    if simulate is not None:
        request["simulate"] = simulate
    return request


def run(project: Path, *command: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(command, cwd=project, env=environment, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = copy_working_tree(tmp_path_factory.mktemp("make-it-yours") / "project")
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy", "--no-verify"]):
        subprocess.run(command, cwd=copy, check=True, capture_output=True, env={**os.environ, **GIT_AUTHOR})
    add_insurance_step(copy)
    generated = run(copy, "./build.sh", "generate")
    assert generated.returncode == 0, generated.stderr
    return copy


GIT_AUTHOR = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


SCENARIOS = {
    "t-added-ok": None,
    "t-added-refused": {NEW_REQUEST.name: "fail"},
    "t-added-stuck": {NEW_REQUEST.name: "fail", NEW_COMPENSATION.name: "fail"},
}


@pytest.fixture(scope="module")
def results(project: Path) -> dict[str, dict[str, Any]]:
    """The three sagas, run by one runtest.sh on one embedded stack, by saga id."""
    paths = []
    folder = project / ".runtest" / "requests"  # ignored by git, like every run's output
    folder.mkdir(parents=True, exist_ok=True)
    for saga_id, simulate in SCENARIOS.items():
        request = json.loads((project / FOLDER / "samples" / "success.json").read_text())
        request[ID_FIELD] = saga_id
        if simulate:
            request["simulate"] = simulate
        path = folder / f"{saga_id}.json"
        path.write_text(json.dumps(request))
        paths.append(str(path))
    done = run(project, "./runtest.sh", *paths, "--json")
    assert done.returncode in (0, 1), done.stderr
    return {result[ID_FIELD]: result for result in json.loads(done.stdout)}


def test_the_generated_files_agree_and_only_the_hand_edits_differ_from_what_is_generated(project):
    check = run(project, "./build.sh", "generate", "--check")
    assert check.returncode == 0, check.stderr
    changed = run(project, "git", "status", "--porcelain").stdout.split("\n")
    paths = {line[3:] for line in changed if line}
    generated = {
        *(str(machine.asl_path.relative_to(ROOT)) for machine in MACHINES),
        "serverless.steps.yml",
        "README.md",
        NEW_REQUEST.handler_file,
        NEW_COMPENSATION.handler_file,
    }
    assert paths == set(HAND_EDITED) | generated


def test_a_success_commits_every_step_the_added_one_too(results):
    result = results["t-added-ok"]
    assert result["outcome"] == "COMMITTED"
    assert result[RECORDS_KEY] == dict.fromkeys(AFTER, "CONFIRMED")
    assert result["states"] == [booking.state for booking in REQUESTS] + [NEW_REQUEST.state, SAGA.done_state]
    assert result["billed_transitions"] == len(AFTER) + 1  # n + 1 states with n steps


def test_a_refusal_at_the_added_step_rolls_back_every_step_in_reverse_order(results):
    result = results["t-added-refused"]
    assert result["outcome"] == "ROLLED_BACK"
    assert result[RECORDS_KEY] == dict.fromkeys(AFTER, "CANCELLED")
    compensations = [NEW_COMPENSATION.name, *(compensation_of(resource).name for resource in reversed(RESOURCES))]
    ends = [e["step"] for e in result["saga_log"] if e["event"] == "END" and e["step"] in compensations]
    assert ends == compensations
    assert result["billed_transitions"] == 2 * len(AFTER) + 1  # 2n + 1 with n steps


def test_a_stuck_compensation_of_the_added_step_is_flagged_and_the_others_cancelled(results):
    result = results["t-added-stuck"]
    assert result["outcome"] == "NEEDS_ATTENTION"
    assert [(r["step"], r["attention"]) for r in result["needs_attention"]] == [(NEW_COMPENSATION.name, "OPEN")]
    records = result[RECORDS_KEY]
    assert {k: v for k, v in records.items() if k != NEW} == dict.fromkeys(RESOURCES, "CANCELLED")
    assert records[NEW] != "CANCELLED"
    assert NEW_COMPENSATION.stuck_state in result["states"]
    assert result["states"][-1] == "NeedsAttention"


def test_the_packaged_dev_template_has_the_function_table_and_a_least_privilege_role(project):
    packaged = run(project, "./build.sh", "package", "dev")
    assert packaged.returncode == 0, packaged.stderr
    template = json.loads(
        (project / "build" / "package" / "dev" / "cloudformation-template-update-stack.json").read_text()
    )
    resources = template["Resources"]
    table = f"lambda-saga-pattern-dev-{NEW_NAMES.table_suffix}"
    ledger = f"lambda-saga-pattern-dev-{NEW_NAMES.provider_table_suffix}"
    assert resources[NEW_NAMES.table_resource]["Type"] == "AWS::DynamoDB::Table"
    assert resources[NEW_NAMES.table_resource]["Properties"]["TableName"] == table
    for function in (NEW_REQUEST.function_resource, NEW_COMPENSATION.function_resource):
        properties = resources[function]["Properties"]
        assert properties["Role"] == {"Fn::GetAtt": [NEW_NAMES.role_resource, "Arn"]}
        assert properties["Environment"]["Variables"][NEW_NAMES.table_variable] == table
        assert properties["Environment"]["Variables"][NEW_NAMES.provider_table_variable] == ledger
        assert ResourceNames(LAST).table_variable not in properties["Environment"]["Variables"]
    (policy,) = resources[NEW_NAMES.role_resource]["Properties"]["Policies"]
    tables = {
        statement["Resource"]["Fn::GetAtt"][0]
        for statement in policy["PolicyDocument"]["Statement"]
        if any(action.startswith("dynamodb:") for action in statement["Action"])
    }
    assert tables == {NEW_NAMES.table_resource, NEW_NAMES.provider_table_resource, "SagaLogTable"}
    invoke = next(
        statement
        for statement in resources["SagaStateMachineRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        if statement["Action"] == "lambda:InvokeFunction"
    )
    assert {"Fn::GetAtt": [NEW_REQUEST.function_resource, "Arn"]} in invoke["Resource"]
    outputs = {NEW_REQUEST.arn_output, NEW_NAMES.table_output, NEW_NAMES.provider_table_output}
    assert outputs <= template["Outputs"].keys()


def test_generate_check_names_every_generated_file_edited_by_hand(project):
    edited = [str(RESOLVE_MACHINE.asl_path.relative_to(ROOT)), NEW_COMPENSATION.handler_file, "serverless.steps.yml"]
    for name in edited:
        path = project / name
        path.write_text(path.read_text() + "\n")  # one more line: edited by hand
    stale = project / "functions" / f"{NEW_REQUEST.verb}_boat.py"  # a step the definition does not have
    stale.write_text((project / NEW_REQUEST.handler_file).read_text())
    check = run(project, "./build.sh", "generate", "--check")
    assert check.returncode == 1
    named = {
        line.split()[2]
        for line in check.stderr.splitlines()
        if line.startswith("generate --check: ") and "run ./build.sh" not in line
    }
    assert named == {*edited, str(stale.relative_to(project))}
    # and generating again puts them right (the stale handler is deleted)
    assert run(project, "./build.sh", "generate").returncode == 0
    assert not stale.exists()
    assert run(project, "./build.sh", "generate", "--check").returncode == 0
