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
from saga.coordination import SAGA_END_LOG_FIELD
from saga.definition import APP
from saga.spec import FORWARD_DEADLINE_SECONDS
from sagatools.asl import NEEDS_ATTENTION_ERROR
from sagatools.generate.template import (
    DURABLE_FUNCTION_OUTPUT,
    DURABLE_HANDLER,
    DURABLE_PACKAGE,
    DURABLE_ROLE,
    durable_alias_resource,
    durable_function,
    durable_log_group_resource,
)
from tests.helpers import ROOT

# Reads the templates ./build.sh test packages before the tests (osls packages them here when build/package is
# missing: about 10 s).

STAGES = ["dev", "prod"]
# The stages whose coordinator is the state machines (the default), and the one packaged with the durable function
# (serverless.yml params: coordinator).
STEP_FUNCTIONS_STAGES = ["dev", "prod", "local"]
DURABLE_STAGE = "durable"
DURABLE_FUNCTION = f"{durable_function()[0].upper()}{durable_function()[1:]}LambdaFunction"
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
    if role == DURABLE_ROLE:
        functions = durable_function()
    return re.compile(rf":log-group:/aws/lambda/lambda-saga-pattern-\w+-({functions}):\*$")


# The durable function's own executions, of any of its versions, and nothing else: Lambda authorises its
# checkpoints on <function ARN>:<version>/durable-execution/<name>/<id>.
OWN_DURABLE_EXECUTIONS = re.compile(
    rf"^arn:\$\{{AWS::Partition}}:lambda:\$\{{AWS::Region}}:\$\{{AWS::AccountId}}:function:"
    rf"lambda-saga-pattern-{DURABLE_STAGE}-{durable_function()}:\*/durable-execution/\*/\*$"
)
CHECKPOINT_ACTIONS = {"lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"}


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


@pytest.mark.parametrize("stage", [*STAGES, DURABLE_STAGE])
def test_no_wildcard_action_anywhere(stage):
    for role, statement in allow_statements(stage):
        for action in as_list(statement["Action"]):
            assert action != "*", role
            assert not action.endswith(":*"), (role, action)


@pytest.mark.parametrize("stage", [*STAGES, DURABLE_STAGE])
def test_wildcard_resources_only_where_aws_has_no_resource_level_permissions(stage):
    for role, statement in allow_statements(stage):
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                assert set(as_list(statement["Action"])) <= WILDCARD_RESOURCE_ACTIONS, (role, statement["Sid"])
            elif set(as_list(statement["Action"])) == CHECKPOINT_ACTIONS:
                assert role == DURABLE_ROLE
                assert OWN_DURABLE_EXECUTIONS.match(resource["Fn::Sub"]), resource
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


@pytest.mark.parametrize("stage", [*STAGES, DURABLE_STAGE])
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
    assert not names(DURABLE_STAGE) & (names("dev") | names("prod"))


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


# The attention alarm: one metric and one alarm on every stage, counted from the log of the stage's coordinator.
ATTENTION_FILTER = "SagasNeedingAttentionMetricFilter"
ATTENTION_ALARM = "SagasNeedingAttentionAlarm"


def attention(stage: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stage's attention metric filter and alarm (their properties): the only ones it has."""
    (metric_filter,) = resources(stage, "AWS::Logs::MetricFilter").items()
    (alarm,) = resources(stage, "AWS::CloudWatch::Alarm").items()
    assert (metric_filter[0], alarm[0]) == (ATTENTION_FILTER, ATTENTION_ALARM)
    return metric_filter[1]["Properties"], alarm[1]["Properties"]


@pytest.mark.parametrize("stage", [*STEP_FUNCTIONS_STAGES, DURABLE_STAGE])
def test_the_attention_alarm_counts_what_the_filter_counts_and_is_the_same_on_every_stage(stage):
    metric_filter, alarm = attention(stage)
    (transformation,) = metric_filter["MetricTransformations"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        transformation["MetricNamespace"],
        transformation["MetricName"],
    )
    assert (transformation["MetricValue"], transformation["DefaultValue"]) == ("1", 0)
    assert alarm["AlarmName"] == f"lambda-saga-pattern-{stage}-sagas-needing-attention"
    # One declaration for both coordinators: the stage's name apart, the durable stage's alarm is dev's.
    dev_filter, dev_alarm = attention("dev")
    assert {**alarm, "AlarmName": None} == {**dev_alarm, "AlarmName": None}
    assert metric_filter["MetricTransformations"] == dev_filter["MetricTransformations"]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")


@pytest.mark.parametrize("stage", STEP_FUNCTIONS_STAGES)
def test_a_step_functions_stage_counts_its_state_machine_failures_needing_attention(stage):
    metric_filter, _ = attention(stage)
    assert metric_filter["LogGroupName"] == {"Ref": "SagaStateMachineLogGroup"}
    assert metric_filter["FilterPattern"] == (
        f'{{ ($.type = "ExecutionFailed") && ($.details.error = "{NEEDS_ATTENTION_ERROR}") }}'
    )


def test_the_durable_stage_counts_the_durable_functions_lines_of_sagas_needing_attention():
    metric_filter, _ = attention(DURABLE_STAGE)
    stack = template(DURABLE_STAGE)
    # The log group osls makes for the function (and makes it wait for), under the function's own name.
    log_group = durable_log_group_resource()
    assert metric_filter["LogGroupName"] == {"Ref": log_group}
    function = stack["Resources"][DURABLE_FUNCTION]
    assert stack["Resources"][log_group]["Type"] == "AWS::Logs::LogGroup"
    assert log_group in function["DependsOn"]
    name = function["Properties"]["FunctionName"]
    assert stack["Resources"][log_group]["Properties"]["LogGroupName"] == f"/aws/lambda/{name}"
    # The field and value saga/durable.py logs when a saga ends needing attention.
    assert metric_filter["FilterPattern"] == f'{{ $.{SAGA_END_LOG_FIELD} = "{NEEDS_ATTENTION_ERROR}" }}'


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


# The coordinator each stage chose (serverless.yml params: coordinator).


@pytest.mark.parametrize("stage", STEP_FUNCTIONS_STAGES)
def test_a_stage_on_the_default_coordinator_has_no_durable_function(stage):
    functions = resources(stage, "AWS::Lambda::Function")
    assert sorted(functions) == sorted(FUNCTIONS)
    assert not any("DurableConfig" in function["Properties"] for function in functions.values())
    assert {function["Properties"]["Runtime"] for function in functions.values()} == {"python3.12"}
    assert not resources(stage, "AWS::Lambda::Alias")
    assert DURABLE_ROLE not in template(stage)["Resources"]
    assert DURABLE_FUNCTION_OUTPUT not in template(stage)["Outputs"]
    assert not {action for _, s in allow_statements(stage) for action in as_list(s["Action"])} & CHECKPOINT_ACTIONS


def test_the_durable_stage_has_one_function_on_python313_with_its_durable_configuration():
    functions = resources(DURABLE_STAGE, "AWS::Lambda::Function")
    assert list(functions) == [DURABLE_FUNCTION]
    properties = functions[DURABLE_FUNCTION]["Properties"]
    assert properties["Handler"] == DURABLE_HANDLER
    assert properties["Runtime"] == "python3.13"
    assert properties["Architectures"] == ["arm64"]
    assert properties["TracingConfig"] == {"Mode": "Active"}
    (layer,) = properties["Layers"]  # Powertools for its runtime, not the steps' python3.12 layer
    assert re.fullmatch(
        r"arn:aws:lambda:us-west-2:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:\d+", layer
    )
    durable = properties["DurableConfig"]
    # A request may give forward recovery up to a day to finish the saga: the execution must outlive it.
    assert FORWARD_DEADLINE_SECONDS[2] < durable["ExecutionTimeout"] <= 366 * 86400
    assert 1 <= durable["RetentionPeriodInDays"] <= 90
    # An invocation may run every step back to back: at least as long as the steps' functions get each.
    step_timeout = resources("dev", "AWS::Lambda::Function")[FUNCTIONS[0]]["Properties"]["Timeout"]
    assert properties["Timeout"] >= len(STEPS) * step_timeout


def test_the_durable_function_is_invoked_through_an_alias_of_a_published_version():
    stack = template(DURABLE_STAGE)
    aliases = resources(DURABLE_STAGE, "AWS::Lambda::Alias")
    alias = aliases[durable_alias_resource()]["Properties"]
    assert list(aliases) == [durable_alias_resource()]
    assert alias["FunctionName"] == {"Ref": DURABLE_FUNCTION}
    version, attribute = alias["FunctionVersion"]["Fn::GetAtt"]
    assert attribute == "Version"
    assert stack["Resources"][version]["Type"] == "AWS::Lambda::Version"
    assert stack["Resources"][version]["Properties"]["FunctionName"] == {"Ref": DURABLE_FUNCTION}
    # What the deploy's summary gives to start an execution with: the alias (a qualified ARN), not the function.
    assert stack["Outputs"][DURABLE_FUNCTION_OUTPUT]["Value"] == {"Ref": durable_alias_resource()}


def test_the_durable_stage_has_no_state_machine_and_no_step_functions():
    stack = template(DURABLE_STAGE)
    roles = resources(DURABLE_STAGE, "AWS::IAM::Role")
    assert list(roles) == [DURABLE_ROLE]
    assert not any(r["Type"].startswith("AWS::StepFunctions::") for r in stack["Resources"].values())
    assert not {"StateMachineName", "ResolveStateMachineName", *(s.arn_output for s in STEPS)} & stack["Outputs"].keys()
    assert {ResourceNames(resource).table_output for resource in RESOURCES} <= stack["Outputs"].keys()
    assert "SagaLogTableName" in stack["Outputs"]


def test_the_durable_role_may_touch_exactly_the_saga_tables_and_its_own_checkpoints():
    granted: dict[str, set[str]] = {}  # each resource (a table, its checkpoints, its logs) -> the actions on it
    for role, statement in allow_statements(DURABLE_STAGE):
        assert role == DURABLE_ROLE
        for resource in as_list(statement["Resource"]):
            table = isinstance(resource, dict) and "Fn::GetAtt" in resource
            key = resource["Fn::GetAtt"][0] if table else flatten(resource)
            granted.setdefault(key, set()).update(as_list(statement["Action"]))
    step_tables = set(TABLES) - {"SagaLogTable"}
    book_and_cancel = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"}  # as each step's own role
    assert {key: actions for key, actions in granted.items() if key in step_tables} == dict.fromkeys(
        step_tables, book_and_cancel
    )
    # It appends to the saga log, as the steps do; its resolutions close or keep attention records, as the
    # resolution state machine does.
    assert granted.pop("SagaLogTable") == {"dynamodb:PutItem", "dynamodb:UpdateItem"}
    for table in step_tables:
        granted.pop(table)
    (checkpoints,) = [key for key, actions in granted.items() if actions == CHECKPOINT_ACTIONS]
    granted.pop(checkpoints)
    (logs,) = [key for key, actions in granted.items() if actions == {"logs:CreateLogStream", "logs:PutLogEvents"}]
    granted.pop(logs)
    # Nothing else but X-Ray's traces, which have no resource-level permissions: no state machine, no invoke.
    assert granted == {'"*"': {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}}


def test_the_durable_function_sees_every_table_of_the_saga_and_runs_with_its_role():
    properties = resources(DURABLE_STAGE, "AWS::Lambda::Function")[DURABLE_FUNCTION]["Properties"]
    assert properties["Role"] == {"Fn::GetAtt": [DURABLE_ROLE, "Arn"]}
    tables = {key for key in properties["Environment"]["Variables"] if key.endswith("_TABLE")}
    expected = {"SAGA_LOG_TABLE"}
    for step in STEPS:
        expected |= {step.names.table_variable, step.names.provider_table_variable}
    assert tables == expected
    assert all(f"-{DURABLE_STAGE}-" in properties["Environment"]["Variables"][key] for key in tables)


def test_the_durable_package_holds_the_engine_the_app_and_the_pinned_durable_execution_sdk():
    from sagatools.deployed.durable_package import SDK, pinned_version

    package_dir(DURABLE_STAGE)  # ./build.sh package writes the durable function's package before osls runs
    code = resources(DURABLE_STAGE, "AWS::Lambda::Function")[DURABLE_FUNCTION]["Properties"]["Code"]
    assert code["S3Key"].endswith("/" + DURABLE_PACKAGE.rpartition("/")[2])
    with zipfile.ZipFile(ROOT / DURABLE_PACKAGE) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        assert f"Version: {pinned_version()}" in archive.read(metadata).decode().splitlines()
    app = APP.replace(".", "/")
    module = SDK.replace("-", "_")
    parents = {f"{app.rsplit('/', depth)[0]}/__init__.py" for depth in range(1, app.count("/") + 1)}
    # the engine, the app (not its tests) and the SDK at the root, where Lambda imports from: no handler, no tooling
    outside = {n for n in names if not n.startswith(("saga/", f"{app}/", f"{module}/", f"{module}-"))}
    assert outside == parents
    assert {DURABLE_HANDLER.rpartition(".")[0] + ".py", f"{app}/definition.py", f"{module}/__init__.py"} <= set(names)
    assert not [n for n in names if n.startswith(f"{app}/tests/") or "__pycache__" in n]
