"""Adding a step is the definition, the request model, the sample requests and ./build.sh generate.

In a copy of the tree, a fourth step (insurance, after the car, with its own table) is added by
exactly those edits; then its sagas run on the embedded stack and its dev template is packaged.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from saga.catalogue import RESOURCES, pascal
from saga.definition import SAGA
from sagatools.asl import MACHINES, RESOLVE_MACHINE
from sagatools.working_tree import copy_working_tree
from tests.helpers import ROOT

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
# What a user writes by hand: the definition, the request model, the sample request files.
HAND_EDITED = ("trip/definition.py", "trip/requests.py", "test-booking-success.json", "test-booking-fail.json")


def add_insurance_step(project: Path) -> None:
    definition = project / "trip" / "definition.py"
    lines = definition.read_text().splitlines(keepends=True)
    last_step = max(n for n, line in enumerate(lines) if line.startswith("        StepSpec("))
    # After the pivot a step is retriable (the definition refuses anything else there).
    kind = ", kind=StepKind.RETRIABLE" if SAGA.pivot is not None else ""
    lines.insert(last_step + 1, f'        StepSpec("{NEW}", {NEW_TITLE}Request{kind}),\n')
    first_import = next(n for n, line in enumerate(lines) if line.startswith("from trip.requests import"))
    lines.insert(first_import, f"from trip.requests import {NEW_TITLE}Request\n")
    definition.write_text("".join(lines))
    requests = project / "trip" / "requests.py"
    requests.write_text(requests.read_text() + REQUEST_MODEL)
    for sample in [project / "test-booking-success.json", project / "test-booking-fail.json"]:
        sample.write_text(json.dumps(with_insurance(json.loads(sample.read_text())), indent=2) + "\n")
    for example in sorted((project / "examples").glob("*.json")):
        example.write_text(json.dumps(with_insurance(json.loads(example.read_text())), indent=2) + "\n")


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
    "t-four-ok": None,
    "t-four-refused": {f"book_{NEW}": "fail"},
    "t-four-stuck": {f"book_{NEW}": "fail", f"cancel_{NEW}": "fail"},
}


@pytest.fixture(scope="module")
def results(project: Path) -> dict[str, dict[str, Any]]:
    """The three sagas, run by one runtest.sh on one embedded stack, by trip id."""
    paths = []
    folder = project / ".runtest" / "requests"  # ignored by git, like every run's output
    folder.mkdir(parents=True, exist_ok=True)
    for saga_id, simulate in SCENARIOS.items():
        request = json.loads((project / "test-booking-success.json").read_text())
        request["saga_id"] = saga_id
        if simulate:
            request["simulate"] = simulate
        path = folder / f"{saga_id}.json"
        path.write_text(json.dumps(request))
        paths.append(str(path))
    done = run(project, "./runtest.sh", *paths, "--json")
    assert done.returncode in (0, 1), done.stderr
    return {result["saga_id"]: result for result in json.loads(done.stdout)}


def test_the_generated_files_agree_and_only_the_hand_edits_differ_from_what_is_generated(project):
    check = run(project, "./build.sh", "generate", "--check")
    assert check.returncode == 0, check.stderr
    changed = run(project, "git", "status", "--porcelain").stdout.split("\n")
    paths = {line[3:] for line in changed if line}
    generated = {
        *(str(machine.asl_path.relative_to(ROOT)) for machine in MACHINES),
        "serverless.steps.yml",
        "README.md",
        f"functions/book_{NEW}.py",
        f"functions/cancel_{NEW}.py",
    }
    examples = {f"examples/{path.name}" for path in (project / "examples").glob("*.json")}
    assert paths == set(HAND_EDITED) | generated | examples
    stat = run(project, "git", "diff", "--shortstat", "--", *HAND_EDITED, *sorted(examples)).stdout
    # The README's figure for the change is this measurement: "(N lines in M files, the sample files included".
    files = int(re.search(r"(\d+) files? changed", stat).group(1))  # type: ignore[union-attr]
    lines = sum(int(n) for n in re.findall(r"(\d+) (?:insertion|deletion)", stat))
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert re.findall(r"\((\d+) lines in (\d+) files, the sample files included", readme) == [(str(lines), str(files))]


def test_a_success_commits_four_bookings(results):
    result = results["t-four-ok"]
    assert result["outcome"] == "COMMITTED"
    assert result["bookings"] == dict.fromkeys(AFTER, "CONFIRMED")
    assert result["states"] == [f"Book{pascal(resource)}" for resource in AFTER] + ["Booked"]
    assert result["billed_transitions"] == len(AFTER) + 1  # 5 with the trip's three steps and insurance


def test_a_refusal_at_insurance_rolls_back_all_four_in_reverse_order(results):
    result = results["t-four-refused"]
    assert result["outcome"] == "ROLLED_BACK"
    assert result["bookings"] == dict.fromkeys(AFTER, "CANCELLED")
    ends = [e["step"] for e in result["saga_log"] if e["event"] == "END" and e["step"].startswith("cancel_")]
    assert ends == [f"cancel_{resource}" for resource in reversed(AFTER)]
    assert result["billed_transitions"] == 2 * len(AFTER) + 1  # 9


def test_a_stuck_insurance_compensation_is_flagged_and_the_other_three_cancelled(results):
    result = results["t-four-stuck"]
    assert result["outcome"] == "NEEDS_ATTENTION"
    assert [(r["step"], r["attention"]) for r in result["needs_attention"]] == [(f"cancel_{NEW}", "OPEN")]
    assert {k: v for k, v in result["bookings"].items() if k != NEW} == dict.fromkeys(RESOURCES, "CANCELLED")
    assert result["bookings"][NEW] != "CANCELLED"
    assert f"Flag{NEW_TITLE}CancellationStuck" in result["states"]
    assert result["states"][-1] == "NeedsAttention"


def test_the_packaged_dev_template_has_the_function_table_and_a_least_privilege_role(project):
    packaged = run(project, "./build.sh", "package", "dev")
    assert packaged.returncode == 0, packaged.stderr
    template = json.loads(
        (project / "build" / "package" / "dev" / "cloudformation-template-update-stack.json").read_text()
    )
    resources = template["Resources"]
    table = f"lambda-saga-pattern-dev-{NEW.replace('_', '-')}-bookings"
    assert resources[f"{NEW_TITLE}BookingsTable"]["Type"] == "AWS::DynamoDB::Table"
    assert resources[f"{NEW_TITLE}BookingsTable"]["Properties"]["TableName"] == table
    for function in (f"Book{NEW_TITLE}LambdaFunction", f"Cancel{NEW_TITLE}LambdaFunction"):
        properties = resources[function]["Properties"]
        assert properties["Role"] == {"Fn::GetAtt": [f"{NEW_TITLE}StepsRole", "Arn"]}
        assert properties["Environment"]["Variables"][f"{NEW.upper()}_TABLE"] == table
        assert "CAR_TABLE" not in properties["Environment"]["Variables"]
    (policy,) = resources[f"{NEW_TITLE}StepsRole"]["Properties"]["Policies"]
    tables = {
        statement["Resource"]["Fn::GetAtt"][0]
        for statement in policy["PolicyDocument"]["Statement"]
        if any(action.startswith("dynamodb:") for action in statement["Action"])
    }
    assert tables == {f"{NEW_TITLE}BookingsTable", "SagaLogTable"}
    invoke = next(
        statement
        for statement in resources["SagaStateMachineRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        if statement["Action"] == "lambda:InvokeFunction"
    )
    assert {"Fn::GetAtt": [f"Book{NEW_TITLE}LambdaFunction", "Arn"]} in invoke["Resource"]
    assert {f"Book{NEW_TITLE}FunctionArn", f"{NEW_TITLE}TableName"} <= template["Outputs"].keys()


def test_generate_check_names_every_generated_file_edited_by_hand(project):
    edited = [str(RESOLVE_MACHINE.asl_path.relative_to(ROOT)), f"functions/cancel_{NEW}.py", "serverless.steps.yml"]
    for name in edited:
        path = project / name
        path.write_text(path.read_text() + "\n")  # one more line: edited by hand
    stale = project / "functions" / "book_boat.py"
    stale.write_text((project / "functions" / f"book_{NEW}.py").read_text())
    check = run(project, "./build.sh", "generate", "--check")
    assert check.returncode == 1
    named = {
        line.split()[2]
        for line in check.stderr.splitlines()
        if line.startswith("generate --check: ") and "run ./build.sh" not in line
    }
    assert named == {*edited, "functions/book_boat.py"}
    # and generating again puts them right (the stale handler is deleted)
    assert run(project, "./build.sh", "generate").returncode == 0
    assert not stale.exists()
    assert run(project, "./build.sh", "generate", "--check").returncode == 0
