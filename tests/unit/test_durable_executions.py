"""The durable function's executions through Lambda's durable execution API (sagatools/deployed/durable_executions.py).

botocore's Stubber checks every request against Lambda's service model (operation, parameter names and shapes) and
every answer against its output shape, so these tests prove what is sent and what is read, without AWS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from saga.catalogue import REQUESTS
from saga.definition import SAGA
from sagatools.deployed.durable_executions import DurableExecutions, ExecutionAlreadyExists
from sagatools.durable_history import state_history
from sagatools.results import states_entered

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:lambda-saga-pattern-durable-bookingSaga"
ALIAS = f"{FUNCTION}:durable"
STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def execution_arn(name: str) -> str:
    return f"{FUNCTION}:3/durable-execution/{name}/0e7f1c2a-6b7d-4c1e-9a3b-2d5f8e9c1a4b"


@pytest.fixture
def stubbed() -> Iterator[tuple[DurableExecutions, Stubber]]:
    client = botocore.session.get_session().create_client(
        "lambda", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        yield DurableExecutions(client, ALIAS), stubber
        stubber.assert_no_pending_responses()


def listed(name: str) -> dict[str, Any]:
    return {
        "DurableExecutions": [
            {
                "DurableExecutionArn": execution_arn(name),
                "DurableExecutionName": name,
                "FunctionArn": f"{FUNCTION}:3",
                "Status": "SUCCEEDED",
                "StartTimestamp": STARTED,
            }
        ]
    }


def execution(name: str, status: str, **more: Any) -> dict[str, Any]:
    return {
        "DurableExecutionArn": execution_arn(name),
        "DurableExecutionName": name,
        "FunctionArn": f"{FUNCTION}:3",
        "Status": status,
        "StartTimestamp": STARTED,
        "InputPayload": json.dumps({"trip_id": name}),
        **more,
    }


def test_start_invokes_the_alias_asynchronously_under_the_name(stubbed):
    executions, stubber = stubbed
    payload = {"trip_id": "t-1", "hotel": {"nights": 2}}
    stubber.add_response(
        "invoke",
        {"StatusCode": 202, "DurableExecutionArn": execution_arn("t-1")},
        {
            "FunctionName": ALIAS,
            "InvocationType": "Event",
            "DurableExecutionName": "t-1",
            "Payload": json.dumps(payload).encode(),
        },
    )
    assert executions.start("t-1", payload) == execution_arn("t-1")


def test_start_of_a_name_that_holds_another_payload_is_a_conflict(stubbed):
    executions, stubber = stubbed
    stubber.add_client_error(
        "invoke",
        service_error_code="DurableExecutionAlreadyStartedException",
        service_message="execution t-1 already exists",
        http_status_code=409,
    )
    with pytest.raises(ExecutionAlreadyExists, match="t-1"):
        executions.start("t-1", {"trip_id": "t-1"})


def test_start_passes_on_any_other_refusal(stubbed):
    executions, stubber = stubbed
    stubber.add_client_error("invoke", service_error_code="ResourceNotFoundException", http_status_code=404)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        executions.start("t-1", {"trip_id": "t-1"})


@pytest.mark.parametrize(
    ("lambda_status", "step_functions_status"),
    [
        ("RUNNING", "RUNNING"),
        ("PAUSED", "RUNNING"),
        ("PAUSING", "RUNNING"),
        ("SUCCEEDED", "SUCCEEDED"),
        ("FAILED", "FAILED"),
        ("TIMED_OUT", "TIMED_OUT"),
        ("STOPPED", "ABORTED"),
        ("DELETING", "ABORTED"),
    ],
)
def test_describe_gives_the_named_execution_as_describe_execution_would(stubbed, lambda_status, step_functions_status):
    executions, stubber = stubbed
    stubber.add_response(
        "list_durable_executions_by_function",
        listed("t-2"),
        {"FunctionName": FUNCTION, "DurableExecutionName": "t-2", "MaxItems": 1000},
    )
    ended = STARTED + timedelta(seconds=3)
    stubber.add_response(
        "get_durable_execution",
        execution("t-2", lambda_status, EndTimestamp=ended),
        {"DurableExecutionArn": execution_arn("t-2"), "IncludeExecutionData": True},
    )
    assert executions.describe("t-2") == {
        "executionArn": execution_arn("t-2"),
        "status": step_functions_status,
        "error": None,
        "cause": None,
        "input": json.dumps({"trip_id": "t-2"}),
        "startDate": STARTED,
        "stopDate": ended,
    }


def test_describe_names_the_error_by_its_class_as_step_functions_does(stubbed):
    executions, stubber = stubbed
    stubber.add_response("list_durable_executions_by_function", listed("t-3"))
    error = {"ErrorType": "saga.named_errors.SagaRolledBack", "ErrorMessage": "hotel refused; every step undone"}
    stubber.add_response("get_durable_execution", execution("t-3", "FAILED", Error=error))
    described = executions.describe("t-3")
    assert described is not None
    assert (described["status"], described["error"], described["cause"]) == (
        "FAILED",
        "SagaRolledBack",
        "hotel refused; every step undone",
    )


def test_describe_of_a_name_no_execution_has_is_none(stubbed):
    executions, stubber = stubbed
    stubber.add_response("list_durable_executions_by_function", {"DurableExecutions": []})
    stubber.add_response("list_durable_executions_by_function", {"DurableExecutions": []})  # the alias's, too
    assert executions.describe("t-unknown") is None


def test_an_execution_only_the_alias_lists_is_found_there(stubbed):
    # Should an unqualified list give only $LATEST's executions (as older SDK pages say), those started through the
    # alias are read from the alias's list
    executions, stubber = stubbed
    stubber.add_response(
        "list_durable_executions_by_function",
        {"DurableExecutions": []},
        {"FunctionName": FUNCTION, "DurableExecutionName": "t-5", "MaxItems": 1000},
    )
    stubber.add_response(
        "list_durable_executions_by_function",
        listed("t-5"),
        {"FunctionName": FUNCTION, "Qualifier": "durable", "DurableExecutionName": "t-5", "MaxItems": 1000},
    )
    stubber.add_response("get_durable_execution", execution("t-5", "SUCCEEDED"))
    described = executions.describe("t-5")
    assert described is not None
    assert described["executionArn"] == execution_arn("t-5")


def test_describe_takes_only_the_execution_of_exactly_that_name(stubbed):
    # Given a list that also holds names containing it (the saga's resolution, another saga's longer id)
    executions, stubber = stubbed
    others = [listed(name)["DurableExecutions"][0] for name in ("t-1-resolve-1", "t-10")]
    newer = [{**other, "StartTimestamp": STARTED + timedelta(hours=1)} for other in others]
    stubber.add_response(
        "list_durable_executions_by_function", {"DurableExecutions": [*newer, *listed("t-1")["DurableExecutions"]]}
    )
    stubber.add_response(
        "get_durable_execution",
        execution("t-1", "SUCCEEDED"),
        {"DurableExecutionArn": execution_arn("t-1"), "IncludeExecutionData": True},
    )
    described = executions.describe("t-1")
    assert described is not None
    assert described["executionArn"] == execution_arn("t-1")


def test_a_start_whose_answer_names_no_execution_finds_it_by_its_name(stubbed):
    executions, stubber = stubbed
    stubber.add_response("invoke", {"StatusCode": 202})
    stubber.add_response("list_durable_executions_by_function", listed("t-4"))
    stubber.add_response("get_durable_execution", execution("t-4", "RUNNING"))
    assert executions.start("t-4", {"trip_id": "t-4"}) == execution_arn("t-4")


def at(seconds: int) -> datetime:
    return STARTED + timedelta(seconds=seconds)


def step_events(event_id: int, operation: str, state: str) -> list[dict[str, Any]]:
    return [
        {
            "EventType": "StepStarted",
            "EventId": event_id,
            "Id": operation,
            "Name": state,
            "EventTimestamp": at(event_id),
        },
        {
            "EventType": "StepSucceeded",
            "EventId": event_id + 1,
            "Id": operation,
            "Name": state,
            "EventTimestamp": at(event_id + 1),
            "StepSucceededDetails": {"Result": {"Payload": "{}"}, "RetryDetails": {"CurrentAttempt": 1}},
        },
    ]


def test_history_reads_every_page_as_the_testing_sdks_events(stubbed):
    executions, stubber = stubbed
    arn = execution_arn("t-4")
    started = {
        "EventType": "ExecutionStarted",
        "EventId": 1,
        "Id": "execution",
        "EventTimestamp": at(0),
        "ExecutionStartedDetails": {"Input": {"Payload": "{}"}, "ExecutionTimeout": 3600},
    }
    steps = [
        event for number, step in enumerate(REQUESTS) for event in step_events(2 + 2 * number, step.name, step.state)
    ]
    succeeded = {
        "EventType": "ExecutionSucceeded",
        "EventId": 2 + len(steps),
        "Id": "execution",
        "EventTimestamp": at(2 + len(steps)),
        "ExecutionSucceededDetails": {"Result": {"Payload": "{}"}},
    }
    first, second = [started, *steps[:2]], [*steps[2:], succeeded]
    stubber.add_response(
        "get_durable_execution_history",
        {"Events": first, "NextMarker": "page-2"},
        {"DurableExecutionArn": arn, "IncludeExecutionData": True, "MaxItems": 1000},
    )
    stubber.add_response(
        "get_durable_execution_history",
        {"Events": second},
        {"DurableExecutionArn": arn, "IncludeExecutionData": True, "MaxItems": 1000, "Marker": "page-2"},
    )
    events = executions.history(arn)
    assert [event.event_type for event in events] == [e["EventType"] for e in [*first, *second]]
    assert events[0].event_timestamp == at(0)
    # Read as the state machine's history: each step's state, then the Succeed state
    assert states_entered(state_history(events)) == [step.state for step in REQUESTS] + [SAGA.done_state]
    assert executions.operations(events) == 1 + len(REQUESTS)  # the start, and one per step attempt


def test_running_lists_the_functions_unended_executions(stubbed):
    executions, stubber = stubbed
    stubber.add_response(
        "list_durable_executions_by_function",
        listed("t-5"),
        {"FunctionName": FUNCTION, "Statuses": ["RUNNING", "PAUSING", "PAUSED"], "MaxItems": 1000},
    )
    assert executions.running() == {execution_arn("t-5")}
