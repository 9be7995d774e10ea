"""The AWS path against moto: deploy-stepfunc on a stack's outputs, then the AWS-mode runner on it."""

from __future__ import annotations

import io
import json
import types
from collections.abc import Iterator
from typing import TYPE_CHECKING

import botocore.endpoint
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from moto.core.exceptions import ServiceException

from saga.catalogue import REQUESTS, RESOURCES, TABLE_OUTPUTS, ResourceNames, compensation_of
from saga.keys import RECORDS_KEY
from sagatools.asl import RESOLVE_MACHINE, SAGA_MACHINE
from sagatools.deployed import deploy
from sagatools.deployed.stage import Stage
from sagatools.emulation.embedded import ACCOUNT_ID, EmbeddedStack
from sagatools.emulation.environment import REGION
from sagatools.generate.template import DURABLE_FUNCTION_OUTPUT, durable_function
from sagatools.runtest import cli as runner
from tests.helpers import (
    FAIL_FILE,
    LAST,
    SUCCESS_FILE,
    book_step,
    rollback_records,
    rollback_states,
    saga_request,
    simulated_failure,
)

if TYPE_CHECKING:
    from botocore.client import BaseClient


def create_stack(
    stack: EmbeddedStack, fault_injection: bool = True, stack_name: str = "lambda-saga-pattern-dev"
) -> dict[str, str]:
    """The stage's CloudFormation stack in moto, with the outputs deploy-stepfunc and the runner read."""
    outputs = {
        **stack.substitutions,
        **{ResourceNames(resource).table_output: table for resource, table in stack.settings.tables.items()},
        **{
            ResourceNames(resource).provider_table_output: table
            for resource, table in stack.settings.provider_tables.items()
        },
        "StateMachineName": stack.state_machine_name,
        "StateMachineRoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/lambda-saga-pattern-dev-saga-state-machine",
        "ResolveStateMachineName": stack.machine_name(RESOLVE_MACHINE),
        "ResolveStateMachineRoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/lambda-saga-pattern-dev-resolve-state-machine",
        "FaultInjection": "true" if fault_injection else "false",
    }
    template = {
        "Resources": {
            "SagaStateMachineLogGroup": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": f"/aws/vendedlogs/states/lambda-saga-pattern-dev-{SAGA_MACHINE.suffix}"},
            }
        },
        "Outputs": {
            **{key: {"Value": value} for key, value in outputs.items()},
            "StateMachineLogGroupArn": {"Value": {"Fn::GetAtt": ["SagaStateMachineLogGroup", "Arn"]}},
            "ResolveStateMachineLogGroupArn": {"Value": {"Fn::GetAtt": ["SagaStateMachineLogGroup", "Arn"]}},
        },
    }
    cloudformation = stack.session_client("cloudformation")
    cloudformation.create_stack(StackName=stack_name, TemplateBody=json.dumps(template))
    return outputs


@pytest.fixture
def stage_stack():
    with EmbeddedStack(stage="dev", create_state_machine=False) as stack:
        yield stack


def run_deploy(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return deploy.main(list(args), out=out, err=err), out.getvalue(), err.getvalue()


def run_runtest(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return runner.main(list(args), stdout=out, stderr=err), out.getvalue(), err.getvalue()


def test_deploy_creates_then_updates_the_state_machine_from_the_stack_outputs(stage_stack):
    outputs = create_stack(stage_stack)
    code, out, err = run_deploy("stepfunctions", "dev", REGION)
    assert code == 0, err
    assert out.startswith("Created state machine")
    assert "Using stage dev, region us-east-1" in err

    client = stage_stack.stepfunctions
    machines = {m["name"]: m["stateMachineArn"] for m in client.list_state_machines()["stateMachines"]}
    assert machines.keys() == {outputs["StateMachineName"], outputs["ResolveStateMachineName"]}
    described = client.describe_state_machine(stateMachineArn=machines[outputs["StateMachineName"]])
    assert described["type"] == "STANDARD"
    assert described["loggingConfiguration"]["level"] == "ALL"
    assert described["loggingConfiguration"]["includeExecutionData"] is True
    assert described["tracingConfiguration"] == {"enabled": True}
    assert outputs[REQUESTS[0].arn_output] in described["definition"]
    assert "${" not in described["definition"]

    resolution = client.describe_state_machine(stateMachineArn=machines[outputs["ResolveStateMachineName"]])
    assert resolution["roleArn"] == outputs["ResolveStateMachineRoleArn"]
    assert outputs[compensation_of(LAST).arn_output] in resolution["definition"]
    assert "${" not in resolution["definition"]

    code, out, _ = run_deploy("stepfunctions", "dev", REGION)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["Updated", "Updated"]
    assert len(client.list_state_machines()["stateMachines"]) == 2


def test_runner_drives_a_saga_on_the_deployed_state_machine(stage_stack):
    create_stack(stage_stack)
    assert run_deploy("stepfunctions", "dev", REGION)[0] == 0
    code, out, err = run_runtest(str(FAIL_FILE), "--stage", "dev", "--region", REGION, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["outcome"] == "ROLLED_BACK"
    failed_at = simulated_failure(FAIL_FILE)
    assert result[RECORDS_KEY] == rollback_records(failed_at)
    assert result["transitions"] == len(rollback_states(failed_at))


def test_runner_refuses_the_durable_coordinator_on_a_state_machine_stage(stage_stack, tmp_path):
    create_stack(stage_stack)
    assert run_deploy("stepfunctions", "dev", REGION)[0] == 0
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(saga_request("t-coordinator")))
    code, out, err = run_runtest(str(path), "--coordinator", "durable", "--stage", "dev", "--region", REGION)
    assert (code, out) == (2, "")
    assert "Stage dev is coordinated by the state machine (--coordinator stepfunctions), not durable" in err
    assert len(err.strip().splitlines()) == 2  # "running on stage dev ..." and the refusal


def test_runner_refuses_simulate_where_fault_injection_is_off(stage_stack, tmp_path):
    create_stack(stage_stack, fault_injection=False)
    assert run_deploy("stepfunctions", "dev", REGION)[0] == 0
    path = tmp_path / "faulty.json"
    path.write_text(json.dumps(saga_request("t-prod", simulate={book_step(LAST): "fail"})))
    code, out, err = run_runtest(str(path), "--stage", "dev", "--region", REGION, "--json")
    assert (code, out) == (2, "")
    assert "fault injection is off" in err


def test_missing_stack_and_missing_state_machine_are_one_sentence_each(stage_stack):
    code, _, err = run_deploy("stepfunctions", "nosuchstage", REGION)
    assert code == 1
    assert "Stack lambda-saga-pattern-nosuchstage is not deployed in us-east-1" in err
    assert "Traceback" not in err

    create_stack(stage_stack)
    code, _, err = run_runtest(str(SUCCESS_FILE), "--stage", "dev", "--region", REGION)
    assert code == 2
    assert "state machine of stage dev is not deployed" in err


def test_remove_deletes_the_state_machine(stage_stack):
    create_stack(stage_stack)
    run_deploy("stepfunctions", "dev", REGION)
    code, out, _ = run_deploy("remove-stepfunctions", "dev", REGION)
    assert code == 0
    assert out.startswith("Deleted state machine")
    assert stage_stack.stepfunctions.list_state_machines()["stateMachines"] == []


def test_dry_run_prints_a_complete_definition_and_deploys_nothing(stage_stack):
    create_stack(stage_stack)
    code, out, err = run_deploy("stepfunctions", "dev", REGION, "--dry-run")
    assert code == 0, err
    definition = json.loads(out)
    assert definition["StartAt"] == REQUESTS[0].state
    assert "${" not in out
    assert stage_stack.stepfunctions.list_state_machines()["stateMachines"] == []


def test_removing_prod_needs_force_and_then_lifts_the_tables_deletion_protection(monkeypatch):
    with EmbeddedStack(stage="prod", create_state_machine=False) as prod:
        outputs = create_stack(prod, stack_name="lambda-saga-pattern-prod")
        tables = [outputs[output] for output in TABLE_OUTPUTS]  # the records, the providers' ledgers, the saga log
        assert len(tables) == 2 * len(RESOURCES) + 1
        for table in tables:
            prod.dynamodb.update_table(TableName=table, DeletionProtectionEnabled=True)
        monkeypatch.setattr("sys.stdin", io.StringIO("prod\n"))  # not a terminal: typing does not count

        code, out, err = run_deploy("prepare-remove", "prod", REGION)
        assert code == 2
        assert "deletes stack lambda-saga-pattern-prod" in out
        assert "stage prod is protected: add --force" in err
        assert all(prod.dynamodb.describe_table(TableName=t)["Table"]["DeletionProtectionEnabled"] for t in tables)

        code, out, _ = run_deploy("prepare-remove", "prod", REGION, "--force")
        assert code == 0
        assert not any(prod.dynamodb.describe_table(TableName=t)["Table"]["DeletionProtectionEnabled"] for t in tables)


def test_removing_another_stage_only_says_what_it_deletes(stage_stack):
    create_stack(stage_stack)
    code, out, _ = run_deploy("prepare-remove", "dev", REGION)
    assert code == 0
    assert "deletes stack lambda-saga-pattern-dev" in out


def test_a_durable_stage_is_summed_up_by_its_function_alias_and_removed_without_state_machines(stage_stack):
    # A stage whose coordinator is the durable function: its stack outputs the alias and the tables, no machine.
    alias = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:lambda-saga-pattern-durable-{durable_function()}:durable"
    tables = {ResourceNames(resource).table_output: table for resource, table in stage_stack.settings.tables.items()}
    outputs = {DURABLE_FUNCTION_OUTPUT: alias, "FaultInjection": "true", **tables}
    template = {
        "Resources": {"Log": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/durable"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    stage_stack.session_client("cloudformation").create_stack(
        StackName="lambda-saga-pattern-durable", TemplateBody=json.dumps(template)
    )

    code, out, err = run_deploy("describe", "durable", REGION)
    assert code == 0, err
    assert f"durable function {alias}" in out
    assert "state machine" not in out

    code, out, err = run_deploy("prepare-remove", "durable", REGION)
    assert code == 0, err
    assert "and the durable function's executions." in out
    code, out, err = run_deploy("remove-stepfunctions", "durable", REGION)
    assert (code, out) == (0, ""), err  # nothing to delete before the stack goes

    # (attention.sh on a durable stage: tests/deploy/test_durable_stage.py)


class NotYetAuthorized(ServiceException):
    # What Step Functions answers while IAM has not propagated a new role (not in its published error shapes,
    # which moto warns about).
    code = "AccessDeniedException"


def test_a_role_iam_has_not_propagated_yet_is_retried_then_the_machine_is_created(stage_stack, monkeypatch):
    # Given IAM answers "not authorized" twice for the new role (as right after the stack created it)
    from moto.stepfunctions.models import StepFunctionBackend

    create = StepFunctionBackend.create_state_machine
    refusals = []

    def not_yet(self, *args, **kwargs):
        if len(refusals) < 2:
            refusals.append(1)
            raise NotYetAuthorized("The state machine IAM Role is not authorized to access the Log Destination")
        return create(self, *args, **kwargs)

    monkeypatch.setattr(StepFunctionBackend, "create_state_machine", not_yet)
    monkeypatch.setattr(deploy, "IAM_RETRY_DELAYS", (0.0, 0.0, 0.0))
    create_stack(stage_stack)
    # When the state machines are deployed / Then it waits it out and creates both
    code, out, err = run_deploy("stepfunctions", "dev", REGION)
    assert code == 0, err
    assert out.count("IAM is not ready yet") == 2
    assert len(stage_stack.stepfunctions.list_state_machines()["stateMachines"]) == 2


def test_iam_that_never_comes_ends_in_one_sentence(stage_stack, monkeypatch):
    from moto.stepfunctions.models import StepFunctionBackend

    def never(self, *args, **kwargs):
        raise NotYetAuthorized("The state machine IAM Role is not authorized to access the Log Destination")

    monkeypatch.setattr(StepFunctionBackend, "create_state_machine", never)
    monkeypatch.setattr(deploy, "IAM_RETRY_DELAYS", (0.0, 0.0))
    create_stack(stage_stack)
    code, out, err = run_deploy("stepfunctions", "dev", REGION)
    assert code == 1
    assert out.count("IAM is not ready yet") == 2
    assert "deploy-stepfunc: AWS refused the call: The state machine IAM Role is not authorized" in err
    assert "Traceback" not in err


class _Body:
    """The raw body botocore reads an HTTP response from."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_kwargs: object) -> Iterator[bytes]:
        yield self.data


def test_a_throttled_account_slows_the_runner_down_but_loses_no_result(stage_stack, monkeypatch, tmp_path):
    """On a real account DescribeExecution refills 15/s and GetExecutionHistory 20/s; a batch outruns
    both. Here the first read of each kind is answered ThrottlingException over HTTP, below the SDK's
    retries (the adaptive rate limiter then paces every call: more throttles only make this test slow)."""
    create_stack(stage_stack)
    assert run_deploy("stepfunctions", "dev", REGION)[0] == 0
    throttled: list[str] = []
    backoffs: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=backoffs.append))

    def every_other_read(request: AWSPreparedRequest, event_name: str, **_kwargs: object) -> AWSResponse | None:
        operation_name = event_name.rpartition(".")[2]
        if operation_name in throttled:
            return None
        throttled.append(operation_name)
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, _Body(body))

    stage_client = Stage.client

    def client_with_throttling(stage: Stage, service: str) -> BaseClient:
        client = stage_client(stage, service)
        if service == "stepfunctions":
            for operation in ("DescribeExecution", "GetExecutionHistory"):
                client.meta.events.register_first(f"before-send.sfn.{operation}", every_other_read)
        return client

    monkeypatch.setattr(Stage, "client", client_with_throttling)
    paths = []
    for n in range(3):
        path = tmp_path / f"throttled-{n}.json"
        path.write_text(json.dumps(saga_request(f"throttled-{n}")))
        paths.append(str(path))
    code, out, err = run_runtest(*paths, "--stage", "dev", "--region", REGION, "--json")
    assert code == 0, err
    assert [result["outcome"] for result in json.loads(out)] == ["COMMITTED"] * 3
    assert {"DescribeExecution", "GetExecutionHistory"} <= set(throttled)
    assert backoffs, "the SDK should have backed off before retrying"
