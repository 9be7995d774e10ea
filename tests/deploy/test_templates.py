"""What would be deployed, checked offline on the templates the pinned Serverless CLI packages.

`./build.sh test` packages every stage into build/package/<stage>/ (no AWS credentials) and runs
cfn-lint, asl-validator and statelint before these tests; if the package is missing, it is built here.
"""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from functools import cache
from typing import Any

import pytest

from saga.catalogue import COMPENSATIONS, RESOURCES, RETRIABLES, STEPS, ResourceNames
from saga.definition import APP
from tests.helpers import ROOT

pytestmark = pytest.mark.slow  # packages the templates with osls when build/package is missing

STAGES = ["dev", "prod"]
FUNCTIONS = [step.function_resource for step in STEPS]
TABLES = [
    *(ResourceNames(resource).table_resource for resource in RESOURCES),
    *(ResourceNames(resource).provider_table_resource for resource in RESOURCES),
    "SagaLogTable",
]
# Each resource's role, and its own tables: its records and its provider's ledger.
TABLES_OF_ROLE = {
    names.role_resource: {names.table_resource, names.provider_table_resource}
    for names in map(ResourceNames, RESOURCES)
}
# Actions AWS offers no resource-level permission for: the only ones allowed on Resource "*".
WILDCARD_RESOURCE_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
# Lambda names its log streams itself: a function may write to any stream of its own log group.


def own_log_streams(role: str) -> re.Pattern[str]:
    """The log streams of the functions that run with `role`, and nothing else."""
    functions = "|".join(step.function for step in STEPS if step.names.role_resource == role)
    return re.compile(rf":log-group:/aws/lambda/lambda-saga-pattern-\w+-({functions}):\*$")


@cache
def package_dir(stage: str):
    directory = ROOT / "build" / "package" / stage
    if not (directory / "cloudformation-template-update-stack.json").exists():
        subprocess.run(["./build.sh", "package"], cwd=ROOT, check=True, capture_output=True, timeout=600)
    return directory


@cache
def template(stage: str) -> dict[str, Any]:
    return json.loads((package_dir(stage) / "cloudformation-template-update-stack.json").read_text())


def resources(stage: str, kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template(stage)["Resources"].items() if r["Type"] == kind}


def allow_statements(stage: str):
    for name, role in resources(stage, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if statement["Effect"] == "Allow":
                    yield name, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def flatten(value: Any) -> str:
    """A Resource as text (Fn::Sub / Fn::Join / Fn::GetAtt shown as written)."""
    return json.dumps(value)


@pytest.mark.parametrize("stage", STAGES)
def test_no_wildcard_action_anywhere(stage):
    for role, statement in allow_statements(stage):
        for action in as_list(statement["Action"]):
            assert action != "*", role
            assert not action.endswith(":*"), (role, action)


@pytest.mark.parametrize("stage", STAGES)
def test_wildcard_resources_only_where_aws_has_no_resource_level_permissions(stage):
    for role, statement in allow_statements(stage):
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                assert set(as_list(statement["Action"])) <= WILDCARD_RESOURCE_ACTIONS, (role, statement["Sid"])
            elif "*" in flatten(resource):
                assert own_log_streams(role).search(resource["Fn::Sub"]), (role, resource)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize(
    ("role", "functions"),
    [
        ("SagaStateMachineRole", FUNCTIONS),
        # every compensation, and the steps past the pivot that a resolution finishes forward
        ("ResolveStateMachineRole", [s.function_resource for s in (*COMPENSATIONS, *RETRIABLES)]),
    ],
)
def test_each_state_machine_role_may_invoke_exactly_its_functions(stage, role, functions):
    statements = [s for name, s in allow_statements(stage) if name == role]
    invoke = [s for s in statements if "lambda:InvokeFunction" in as_list(s["Action"])]
    targets = [r["Fn::GetAtt"][0] for s in invoke for r in as_list(s["Resource"])]
    assert sorted(targets) == sorted(functions)
    assert all(as_list(s["Action"]) == ["lambda:InvokeFunction"] for s in invoke)


@pytest.mark.parametrize("stage", STAGES)
def test_each_function_has_its_resource_role_and_only_its_own_tables_in_its_environment(stage):
    functions = resources(stage, "AWS::Lambda::Function")
    for step in STEPS:
        properties = functions[step.function_resource]["Properties"]
        assert properties["Role"] == {"Fn::GetAtt": [step.names.role_resource, "Arn"]}, step.name
        tables = {key for key in properties["Environment"]["Variables"] if key.endswith("_TABLE")}
        assert tables == {step.names.table_variable, step.names.provider_table_variable, "SAGA_LOG_TABLE"}, step.name


@pytest.mark.parametrize("stage", STAGES)
def test_each_function_touches_only_its_own_tables_and_the_saga_log(stage):
    for role, statement in allow_statements(stage):
        actions = as_list(statement["Action"])
        if not any(a.startswith("dynamodb:") for a in actions):
            continue
        tables = {r["Fn::GetAtt"][0] for r in as_list(statement["Resource"])}
        if role == "SagaStateMachineRole":
            assert (tables, actions) == ({"SagaLogTable"}, ["dynamodb:PutItem"])
        else:
            # a step's role: its own tables (its records, its provider's ledger); the resolution's: the saga log only
            assert tables <= {*TABLES_OF_ROLE.get(role, set()), "SagaLogTable"}, role
            assert set(actions) <= {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"}, role


@pytest.mark.parametrize("stage", STAGES)
def test_every_table_is_on_demand_with_point_in_time_recovery_and_encryption(stage):
    tables = resources(stage, "AWS::DynamoDB::Table")
    assert sorted(tables) == sorted(TABLES)
    for name, table in tables.items():
        properties = table["Properties"]
        assert properties["BillingMode"] == "PAY_PER_REQUEST", name
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
        assert properties["SSESpecification"] == {"SSEEnabled": True}, name
        assert f"-{stage}-" in properties["TableName"], name


@pytest.mark.parametrize("stage", STAGES)
def test_functions_run_python312_traced_on_the_powertools_layer(stage):
    functions = resources(stage, "AWS::Lambda::Function")
    assert sorted(functions) == sorted(FUNCTIONS)
    for name, function in functions.items():
        properties = function["Properties"]
        assert properties["Runtime"] == "python3.12"
        assert properties["Architectures"] == ["arm64"], name  # Graviton, with the arm64 layer below
        assert properties["TracingConfig"] == {"Mode": "Active"}
        assert properties["Timeout"] < 30, "the ASL's TimeoutSeconds must exceed the function timeout"
        (layer,) = properties["Layers"]
        assert re.fullmatch(
            r"arn:aws:lambda:us-west-2:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:\d+", layer
        )
        assert f"-{stage}-" in properties["FunctionName"], name


def test_fault_injection_is_on_in_dev_and_off_in_prod():
    for stage, expected in (("dev", "true"), ("prod", "false")):
        for function in resources(stage, "AWS::Lambda::Function").values():
            assert function["Properties"]["Environment"]["Variables"]["FAULT_INJECTION"] == expected, stage
        assert template(stage)["Outputs"]["FaultInjection"]["Value"] == expected


def test_stages_share_no_names():
    def names(stage: str) -> set[str]:
        found = set()
        for resource in template(stage)["Resources"].values():
            for key in ("TableName", "FunctionName", "RoleName", "LogGroupName", "AlarmName"):
                if isinstance(resource["Properties"].get(key), str):
                    found.add(resource["Properties"][key])
        return found

    assert names("dev")
    assert not names("dev") & names("prod")


@pytest.mark.parametrize("stage", STAGES)
def test_outputs_name_every_placeholder_of_the_asl(stage):
    from sagatools.asl import ASL_PATH, placeholders

    outputs = template(stage)["Outputs"]
    assert placeholders(ASL_PATH.read_text()) <= outputs.keys()
    assert {"StateMachineRoleArn", "StateMachineLogGroupArn", "StateMachineName"} <= outputs.keys()
    assert {ResourceNames(resource).table_output for resource in RESOURCES} <= outputs.keys()
    assert {ResourceNames(resource).provider_table_output for resource in RESOURCES} <= outputs.keys()


@pytest.mark.parametrize("stage", STAGES)
def test_package_holds_only_the_handlers_and_the_app_package(stage):
    with zipfile.ZipFile(package_dir(stage) / "lambda-saga-pattern.zip") as archive:
        names = archive.namelist()
    # the engine, the handlers, the app's package and, for an app in a subpackage, its parents' __init__.py
    app = APP.replace(".", "/")
    parents = {f"{app.rsplit('/', depth)[0]}/__init__.py" for depth in range(1, app.count("/") + 1)}
    assert {name for name in names if not name.startswith(("functions/", "saga/", f"{app}/"))} == parents
    assert f"{app}/definition.py" in names
    assert {step.handler_file for step in STEPS} <= set(names)
    assert "saga/steps.py" in names


def test_deployed_code_imports_no_tooling():
    for path in [*ROOT.glob("functions/*.py"), *ROOT.glob("saga/*.py")]:
        source = path.read_text()
        for forbidden in ("sagatools", "moto", "rich", "pytest"):
            assert not re.search(rf"^\s*(from|import) {forbidden}\b", source, re.MULTILINE), (path, forbidden)


def test_needs_attention_alarm_counts_the_state_machine_failures():
    alarm = next(iter(resources("dev", "AWS::CloudWatch::Alarm").values()))["Properties"]
    metric_filter = next(iter(resources("dev", "AWS::Logs::MetricFilter").values()))["Properties"]
    transformation = metric_filter["MetricTransformations"][0]
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        transformation["MetricNamespace"],
        transformation["MetricName"],
    )
    assert "SagaNeedsAttention" in metric_filter["FilterPattern"]


def test_prod_tables_are_protected_from_deletion_and_dev_tables_are_not():
    for stage, expected in (("dev", False), ("prod", True)):
        tables = resources(stage, "AWS::DynamoDB::Table")
        assert sorted(tables) == sorted(TABLES)
        assert {name: t["Properties"]["DeletionProtectionEnabled"] for name, t in tables.items()} == dict.fromkeys(
            tables, expected
        ), stage


@pytest.mark.parametrize(
    ("role", "machine"), [("SagaStateMachineRole", "SAGA"), ("ResolveStateMachineRole", "RESOLVE")]
)
def test_each_state_machine_role_may_invoke_every_function_its_asl_names(role, machine):
    from sagatools import asl

    spec = getattr(asl, f"{machine}_MACHINE")
    named = {
        state["Resource"][2:-1]
        for state in asl.load_definition(spec.asl_path)["States"].values()
        if state["Type"] == "Task" and state["Resource"].startswith("${")
    }
    invoked = {
        r["Fn::GetAtt"][0]
        for name, statement in allow_statements(STAGES[0])
        if name == role and "lambda:InvokeFunction" in as_list(statement["Action"])
        for r in as_list(statement["Resource"])
    }
    by_output = {step.arn_output: step.function_resource for step in STEPS}
    assert {by_output[output] for output in named} == invoked
