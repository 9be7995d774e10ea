"""runtest.sh --stage on a stage coordinated by the durable function, as far as moto reaches: the stage's stack and
tables in moto, and Lambda's durable execution API (which moto does not have) answered by a small service in this
process that runs saga/durable.py with the testing SDK's runner (sagatools/emulation/durable.py).

The service reads each request as botocore serialized it for the wire (path, headers, query string), and every answer
it gives is checked against Lambda's service model, as botocore's Stubber checks its own.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import botocore.handlers
import pytest
from botocore.awsrequest import AWSResponse
from botocore.validate import validate_parameters

from saga.catalogue import REQUESTS, ResourceNames
from saga.definition import SAGA
from saga.keys import ID_FIELD
from sagatools.asl import NEEDS_ATTENTION_ERROR, ROLLED_BACK_ERROR
from sagatools.emulation.embedded import ACCOUNT_ID, EmbeddedStack
from sagatools.emulation.environment import REGION
from sagatools.generate.template import DURABLE_FUNCTION_OUTPUT, durable_function
from sagatools.results import SagaResult
from sagatools.runtest import cli as runtest
from tests.helpers import LAST, book_step, cancel_step, rollback_states, saga_request

FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:lambda-saga-pattern-durable-{durable_function()}"
ALIAS = f"{FUNCTION}:durable"
HISTORY_PAGE = 5  # events a page: a saga's history takes several
NAME_LIMIT = 64  # the longest DurableExecutionName Lambda takes
# runtest --json's keys for a saga by the durable function: every field of the result, in the app's words
JSON_KEYS = {field.serialization_alias or field.alias or name for name, field in SagaResult.model_fields.items()}


@dataclass
class Execution:
    arn: str
    name: str
    payload: str
    started: datetime
    run: Any  # sagatools.emulation.durable.DurableRun


class DurableService:
    """Lambda's durable execution API for one function, its executions run to their end when started."""

    def __init__(self, durable: Any) -> None:
        self.durable = durable  # a DurableStack
        self.executions: dict[str, Execution] = {}  # by name
        self.invoked: list[str] = []  # the names Invoke was called with
        self.unlisted: set[str] = set()  # names lists leave out until Invoke names them (a list lags a start)
        self.refuse: dict[str, str] = {}  # operation -> error code it answers with

    def __call__(self, model: Any, params: dict[str, Any], **_: object) -> tuple[AWSResponse, dict[str, Any]] | None:
        serve = {
            "Invoke": self.invoke,
            "ListDurableExecutionsByFunction": self.list_executions,
            "GetDurableExecution": self.get_execution,
            "GetDurableExecutionHistory": self.get_history,
        }.get(model.name)
        if serve is None:
            return None  # not the durable API: moto answers
        if model.name in self.refuse:
            code = self.refuse[model.name]
            return AWSResponse("", 400, {}, None), {"Error": {"Code": code, "Message": f"{code} (test)"}}
        path = [unquote(part) for part in params["url_path"].split("?")[0].split("/")]
        status, answer = serve(path, params["headers"], params["query_string"], params["body"])
        if status < 300:
            validate_parameters(answer, model.output_shape)
        return AWSResponse("", status, {}, None), answer

    def invoke(self, path: list[str], headers: dict[str, str], query: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        assert path[3] == ALIAS, "started through the stage's alias"
        assert headers["X-Amz-Invocation-Type"] == "Event"
        name, payload = headers["X-Amz-Durable-Execution-Name"], body.decode()
        if len(name) > NAME_LIMIT:  # Lambda's bound, which botocore does not check before sending
            return 400, {"Error": {"Code": "InvalidParameterValueException", "Message": f"{name} is too long"}}
        self.invoked.append(name)
        self.unlisted.discard(name)
        if (existing := self.executions.get(name)) is not None:
            if json.loads(existing.payload) != json.loads(payload):
                error = {"Code": "DurableExecutionAlreadyStartedException", "Message": f"{name} already started"}
                return 409, {"Error": error}
            return 202, {"StatusCode": 202, "DurableExecutionArn": existing.arn}
        self.start(name, payload)
        return 202, {"StatusCode": 202, "DurableExecutionArn": self.executions[name].arn}

    def start(self, name: str, payload: str) -> Execution:
        started = datetime.now(UTC)
        run = self.durable.run(name, json.loads(payload), 60)
        self.executions[name] = Execution(
            f"{FUNCTION}:1/durable-execution/{name}/{uuid.uuid4()}", name, payload, started, run
        )
        return self.executions[name]

    def list_executions(self, path: list[str], headers: Any, query: dict[str, Any], body: Any):
        assert path[3] == FUNCTION, "listed across the function's versions"
        # The name filter read as broadly as Lambda's documentation allows: the names that contain it.
        wanted = query.get("DurableExecutionName", "")
        names = [name for name in self.executions if wanted in name]
        shown = [self.executions[name] for name in names if name not in self.unlisted]
        return 200, {
            "DurableExecutions": [
                {
                    "DurableExecutionArn": execution.arn,
                    "DurableExecutionName": execution.name,
                    "FunctionArn": f"{FUNCTION}:1",
                    "Status": execution.run.status,
                    "StartTimestamp": execution.started,
                }
                for execution in shown
            ]
        }

    def _by_arn(self, arn: str) -> Execution:
        return next(execution for execution in self.executions.values() if execution.arn == arn)

    def get_execution(self, path: list[str], headers: Any, query: dict[str, Any], body: Any):
        assert query == {"IncludeExecutionData": "true"}
        execution = self._by_arn(path[3])
        answer: dict[str, Any] = {
            "DurableExecutionArn": execution.arn,
            "DurableExecutionName": execution.name,
            "FunctionArn": f"{FUNCTION}:1",
            "InputPayload": execution.payload,
            "Status": execution.run.status,
            "StartTimestamp": execution.started,
        }
        if execution.run.status != "RUNNING":
            answer["EndTimestamp"] = execution.started + timedelta(seconds=execution.run.seconds)
        failed = [event for event in execution.run.events if event.event_type == "ExecutionFailed"]
        if failed:
            error = failed[-1].execution_failed_details.error.payload
            answer["Error"] = {"ErrorType": error.type, "ErrorMessage": error.message}
        return 200, answer

    def get_history(self, path: list[str], headers: Any, query: dict[str, Any], body: Any):
        assert query["IncludeExecutionData"] == "true"
        events = [as_lambda_gives(event.to_dict()) for event in self._by_arn(path[3]).run.events]
        start = int(query.get("Marker", 0))
        page: dict[str, Any] = {"Events": events[start : start + HISTORY_PAGE]}
        if start + HISTORY_PAGE < len(events):
            page["NextMarker"] = str(start + HISTORY_PAGE)
        return 200, page


def as_lambda_gives(event: dict[str, Any]) -> dict[str, Any]:
    """The testing SDK's event as Lambda gives it: a step's end always has its RetryDetails (required by the service
    model), which the SDK's own events leave out when a step succeeded at its first attempt."""
    for key in ("StepSucceededDetails", "StepFailedDetails"):
        if key in event:
            event[key].setdefault("RetryDetails", {"CurrentAttempt": 1})
    return event


@pytest.fixture
def durable_stage(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[EmbeddedStack, DurableService]]:
    """Stage `durable`: its stack's outputs (the alias, the tables, fault injection) in moto's CloudFormation, its
    tables in moto's DynamoDB, its durable executions in a DurableService every boto3 session reaches."""
    with EmbeddedStack(stage="dev", create_state_machine=False) as stack:
        create_durable_stack(stack)
        from sagatools.emulation.durable import DurableStack  # inside the stack, as Lambda imports the function

        with DurableStack(io.StringIO()) as durable:
            service = DurableService(durable)
            # Registered as moto registers itself: every session the stage makes has it, before moto's own handler.
            handlers = [*botocore.handlers.BUILTIN_HANDLERS, ("before-call.lambda", service)]
            monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", handlers)
            yield stack, service


def create_durable_stack(stack: EmbeddedStack, fault_injection: bool = True) -> None:
    tables = {ResourceNames(resource).table_output: table for resource, table in stack.settings.tables.items()}
    provider_tables = {
        ResourceNames(resource).provider_table_output: table
        for resource, table in stack.settings.provider_tables.items()
    }
    outputs = {
        **stack.substitutions,  # the saga log's table among them
        DURABLE_FUNCTION_OUTPUT: ALIAS,
        "FaultInjection": "true" if fault_injection else "false",
        **tables,
        **provider_tables,
    }
    template = {
        "Resources": {"Log": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/durable"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    stack.session_client("cloudformation").create_stack(
        StackName="lambda-saga-pattern-durable", TemplateBody=json.dumps(template)
    )


def run_runtest(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = runtest.main([*args, "--stage", "durable", "--region", REGION], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def write(tmp_path: Path, name: str, request: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(request))
    return str(path)


def test_runtest_runs_sagas_on_a_durable_stage_as_the_embedded_durable_run_reports_them(durable_stage, tmp_path):
    _, service = durable_stage
    stuck = {book_step(LAST): "fail", cancel_step(LAST): "fail"}
    files = [
        write(tmp_path, "ok.json", saga_request("s-ok")),
        write(tmp_path, "fail.json", saga_request("s-fail", simulate={book_step(LAST): "fail"})),
        write(tmp_path, "stuck.json", saga_request("s-stuck", simulate=stuck)),
    ]
    code, out, err = run_runtest(*files, "--json", "--report", str(tmp_path))
    assert out, err
    on_stage = json.loads(out)

    assert code == 1, err  # a saga needs attention
    assert service.invoked == ["s-ok", "s-fail", "s-stuck"]
    assert [r["outcome"] for r in on_stage] == ["COMMITTED", "ROLLED_BACK", "NEEDS_ATTENTION"]
    assert [r["error"] for r in on_stage] == [None, ROLLED_BACK_ERROR, NEEDS_ATTENTION_ERROR]  # the class names
    for result in on_stage:
        assert result.keys() == JSON_KEYS | {"report"}  # durable_operations among them
        assert (result["transitions"], result["billed_transitions"]) == (0, 0)
        assert result["execution_arn"] == service.executions[result[ID_FIELD]].arn
        assert result["duration_ms"] is not None  # from the execution's start and end
        assert Path(result["report"]).is_file()
    assert on_stage[0]["states"] == [step.state for step in REQUESTS] + [SAGA.done_state]
    assert on_stage[1]["states"] == rollback_states(LAST)
    assert on_stage[0]["durable_operations"] == 1 + len(REQUESTS)  # the start, and one per step
    assert on_stage[2]["needs_attention"]


def test_live_progress_shows_each_sagas_states_from_its_checkpoints(durable_stage, tmp_path):
    path = write(tmp_path, "ok.json", saga_request("s-live"))
    code, out, err = run_runtest(path, "--report", str(tmp_path))
    assert code == 0, err
    assert "running on stage durable" in err
    for step in REQUESTS:
        assert step.state in out
    assert "COMMITTED" in out


def test_a_second_run_of_a_file_reports_the_same_execution_without_starting_it_again(durable_stage, tmp_path):
    _, service = durable_stage
    path = write(tmp_path, "ok.json", saga_request("s-again"))
    first = json.loads(run_runtest(path, "--json", "--report", str(tmp_path))[1])
    code, out, err = run_runtest(path, path, "--json", "--report", str(tmp_path))
    again, repeated = json.loads(out)
    assert code == 0, err
    assert service.invoked == ["s-again"]  # started once
    assert first["execution_arn"] == again["execution_arn"] == repeated["execution_arn"]
    assert (first["reused_execution"], again["reused_execution"], repeated["reused_execution"]) == (False, True, True)
    assert again["outcome"] == "COMMITTED"


def test_a_saga_id_that_ran_there_with_another_request_is_refused_before_anything_starts(durable_stage, tmp_path):
    _, service = durable_stage
    assert run_runtest(write(tmp_path, "a.json", saga_request("s-taken")), "--json")[0] == 0
    other = saga_request("s-taken", simulate={book_step(LAST): "fail"})
    code, out, err = run_runtest(write(tmp_path, "b.json", other), write(tmp_path, "c.json", saga_request("s-new")))
    assert (code, out) == (2, "")
    assert "s-taken already ran on this stage with a different request" in err
    assert service.invoked == ["s-taken"]  # nothing more started


def test_a_saga_id_taken_by_another_request_since_the_check_is_a_conflict(durable_stage, tmp_path):
    # Given another request started under the id, not yet listed when runtest looks (the list lags)
    _, service = durable_stage
    service.start("s-raced", json.dumps(saga_request("s-raced", simulate={book_step(LAST): "fail"})))
    service.unlisted.add("s-raced")
    code, out, err = run_runtest(write(tmp_path, "raced.json", saga_request("s-raced")), "--json")
    result = json.loads(out)
    assert code == 1, err
    assert (result["status"], result["outcome"], result["error"]) == (
        "NOT_STARTED",
        "CONFLICT",
        "ExecutionAlreadyExists",
    )
    assert result["execution_arn"] == service.executions["s-raced"].arn
    assert "already names an execution of a different request on this stage" in result["cause"]


def test_a_coordinator_the_stage_does_not_have_is_refused_in_one_sentence(durable_stage, tmp_path):
    _, service = durable_stage
    path = write(tmp_path, "ok.json", saga_request("s-coordinator"))
    code, out, err = run_runtest(path, "--coordinator", "stepfunctions")
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 2  # "running on stage durable ..." and the refusal
    assert "Stage durable is coordinated by the durable function (--coordinator durable), not stepfunctions" in err
    assert run_runtest(path, "--coordinator", "durable", "--json")[0] == 0  # its own coordinator, named
    assert service.invoked == ["s-coordinator"]


def test_simulate_is_refused_where_fault_injection_is_off(tmp_path, monkeypatch):
    with EmbeddedStack(stage="dev", create_state_machine=False) as stack:
        create_durable_stack(stack, fault_injection=False)
        path = write(tmp_path, "faulty.json", saga_request("s-prod", simulate={book_step(LAST): "fail"}))
        code, out, err = run_runtest(path, "--json")
    assert (code, out) == (2, "")
    assert "fault injection is off on stage durable" in err


@pytest.mark.parametrize(
    ("code", "said"),
    [
        ("ResourceNotFoundException", f"The durable function of stage durable ({ALIAS}) is not deployed: run"),
        ("AccessDeniedException", "AWS refused the call: AccessDeniedException (test)"),
    ],
)
def test_a_refusal_of_lambdas_api_is_one_sentence(durable_stage, tmp_path, code, said):
    _, service = durable_stage
    service.refuse["ListDurableExecutionsByFunction"] = code
    status, out, err = run_runtest(write(tmp_path, "ok.json", saga_request("s-refused")), "--json")
    assert (status, out) == (2, "")
    assert said in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 2  # "running on stage durable ..." and the one sentence


def run_attention(*args: str) -> tuple[int, str, str]:
    from sagatools.attention import cli as attention

    out, err = io.StringIO(), io.StringIO()
    code = attention.main([*args, "--stage", "durable", "--region", REGION], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_attention_lists_shows_and_resolves_a_stuck_saga_on_a_durable_stage(durable_stage, tmp_path):
    # Given a saga run on the durable stage whose last compensation stays stuck
    _, service = durable_stage
    stuck = {book_step(LAST): "fail", cancel_step(LAST): "fail"}
    code, _, err = run_runtest(write(tmp_path, "stuck.json", saga_request("s-operated", simulate=stuck)), "--json")
    assert code == 1, err
    # Then attention.sh lists it from the saga log's attention index, and shows its durable execution
    code, out, err = run_attention("list", "--json")
    assert code == 0, err
    assert [(record[ID_FIELD], record["step"]) for record in json.loads(out)] == [("s-operated", cancel_step(LAST))]
    code, out, err = run_attention("show", "s-operated", "--json")
    shown = json.loads(out)
    assert (code, shown["outcome"]) == (0, "NEEDS_ATTENTION"), err
    assert [e["arn"] for e in shown["executions"]] == [service.executions["s-operated"].arn]
    # When it is resolved, the resolution is an execution of the same function, started through the alias with the
    # saga's request (its faults dropped) and the direction
    code, out, err = run_attention("resolve", "s-operated", "--json", "--report", str(tmp_path))
    resolved = json.loads(out)
    assert (code, resolved["outcome"]) == (0, "RESOLVED"), err
    assert service.invoked == ["s-operated", "s-operated-resolve-1"]
    resolution = service.executions["s-operated-resolve-1"]
    document = json.loads(resolution.payload)
    assert (document["direction"], "simulate" in document["request"]) == ("backward", False)
    assert set(resolved["bookings"].values()) == {"CANCELLED"}
    (record,) = resolved["attention"]
    # Closed by the resolution, named as the function knows its own execution (here the testing SDK's runner's ARN;
    # on Lambda, the ARN the service gives)
    assert (record["attention"], record["resolved_by"]) == ("RESOLVED", resolution.run.execution_arn)
    assert [(e["name"], e["outcome"]) for e in resolved["executions"]] == [
        ("s-operated", "NEEDS_ATTENTION"),
        ("s-operated-resolve-1", "RESOLVED"),
    ]
    assert "resolving s-operated (rolling it back): execution s-operated-resolve-1" in err
    # And nothing is left open
    code, out, err = run_attention("list", "--json")
    assert (code, json.loads(out)) == (0, [])


def test_a_resolution_of_a_durable_stage_started_by_another_call_is_followed_not_started_again(durable_stage, tmp_path):
    # Given a stuck saga whose resolution another call (or the console) has already started and seen end
    _, service = durable_stage
    stuck = {book_step(LAST): "fail", cancel_step(LAST): "fail"}
    request = saga_request("s-raced-resolve", simulate=stuck)
    assert run_runtest(write(tmp_path, "stuck.json", request), "--json")[0] == 1
    again = {key: value for key, value in request.items() if key != "simulate"}
    service.start("s-raced-resolve-resolve-1", json.dumps({"request": again, "direction": "backward"}))
    # Then this call finds the trip settled meanwhile and starts nothing
    code, out, err = run_attention("resolve", "s-raced-resolve", "--json", "--report", str(tmp_path))
    assert (code, json.loads(out)["outcome"]) == (0, "RESOLVED"), err
    assert service.invoked == ["s-raced-resolve"]  # the resolution was not invoked by this call


def test_a_saga_with_the_longest_id_is_resolved_under_a_name_lambda_takes(durable_stage, tmp_path):
    # Given a stuck saga whose id is as long as an id may be (64 characters, as long as a durable execution's name)
    _, service = durable_stage
    saga_id = "s-" + "x" * 62
    stuck = {book_step(LAST): "fail", cancel_step(LAST): "fail"}
    assert run_runtest(write(tmp_path, "long.json", saga_request(saga_id, simulate=stuck)), "--json")[0] == 1
    # Then its resolution runs under a name within Lambda's bound, and show finds it as the saga's
    code, out, err = run_attention("resolve", saga_id, "--json", "--report", str(tmp_path))
    assert (code, json.loads(out)["outcome"]) == (0, "RESOLVED"), err
    (resolution,) = service.invoked[1:]
    assert len(resolution) <= NAME_LIMIT
    assert resolution.startswith(saga_id[:40])
    assert resolution.endswith("-resolve-1")
    code, out, err = run_attention("show", saga_id, "--json")
    assert [e["name"] for e in json.loads(out)["executions"]] == [saga_id, resolution]
