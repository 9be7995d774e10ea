"""The emulation relies on moto internals (sagatools/emulation/seams/); if an upgrade moves one, fail
here, loudly and by name. Then the behaviour each seam buys, on the running stack."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.models import botocore_stubber
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

from saga.catalogue import RESOURCES
from saga.saga_log import ATTENTION_INDEX
from sagatools.emulation.embedded import QUIET_LOGGER, EmbeddedStack
from sagatools.emulation.environment import REGION
from sagatools.emulation.seams import SEAMS, registered, seam_name
from sagatools.emulation.transactions import WRITE_LOCKED
from tests.helpers import ROOT, trip_request


@pytest.mark.parametrize("seam", SEAMS, ids=[seam.name for seam in SEAMS])
def test_seam_holds_on_the_installed_moto(seam):
    assert seam.holds(), f"{seam.name} moved: {seam.breaks}"


def test_every_replacement_the_stack_makes_is_in_the_registry(stack):
    # Powertools' log handler (whose stream the stack points at its log sink) is not moto's.
    moto_owned = [(owner, name) for owner, name in stack.replaced if not isinstance(owner, logging.Handler)]
    assert [seam_name(owner, name) for owner, name in moto_owned if not registered(owner, name)] == []
    assert len(moto_owned) >= len(WRITE_LOCKED) + 10


def test_the_stack_restores_every_replacement_on_exit():
    with EmbeddedStack() as stack:
        replaced = [(owner, attribute, stack.original(owner, attribute)) for owner, attribute in stack.replaced]
    assert replaced
    for owner, attribute, original in replaced:
        assert getattr(owner, attribute) is original, seam_name(owner, attribute)


def test_a_failed_start_undoes_the_mock_the_patches_and_the_environment(monkeypatch):
    # Given a stack whose definition cannot be created (after moto, the patches and the env are in place)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.setattr(EmbeddedStack, "definition_of", lambda self, machine: "{not a definition")
    level = logging.getLogger(QUIET_LOGGER).level
    # When it is entered
    with pytest.raises(ClientError, match="CreateStateMachine"):
        EmbeddedStack().__enter__()
    # Then nothing of it is left behind
    assert not botocore_stubber.enabled
    assert LambdaSimpleBackend.invoke.__name__ == "invoke"
    assert lambda_eval_utils.boto_client_for is boto_client_for
    assert retrier_decl.time is time
    assert "AWS_ACCESS_KEY_ID" not in os.environ
    assert logging.getLogger(QUIET_LOGGER).level == level
    # and a good stack still starts afterwards
    monkeypatch.undo()
    with EmbeddedStack() as stack:
        assert stack.state_machine_arn


def test_every_backend_write_path_is_under_one_lock(stack):
    from moto.dynamodb.models import DynamoDBBackend

    assert [getattr(DynamoDBBackend, name).__name__ for name in WRITE_LOCKED] == ["locked_write"] * len(WRITE_LOCKED)
    assert all(registered(DynamoDBBackend, name) for name in WRITE_LOCKED)


def test_index_queries_still_see_every_partition_while_key_queries_read_one(stack):
    # Given attention records of two trips and log entries of one
    client, table = stack.dynamodb, stack.settings.saga_log_table
    for trip in ("trip-a", "trip-b"):
        client.put_item(
            TableName=table,
            Item={
                "trip_id": {"S": trip},
                "sk": {"S": "ATTENTION#cancel_car"},
                "attention": {"S": "OPEN"},
                "at": {"S": f"2026-01-01T00:00:0{len(trip)}Z"},
            },
        )
        client.put_item(TableName=table, Item={"trip_id": {"S": trip}, "sk": {"S": "LOG#2"}})
    client.put_item(TableName=table, Item={"trip_id": {"S": "trip-a"}, "sk": {"S": "LOG#1"}})
    # When the index is queried, and one trip's key
    by_index = client.query(
        TableName=table,
        IndexName=ATTENTION_INDEX,
        KeyConditionExpression="attention = :open",
        ExpressionAttributeValues={":open": {"S": "OPEN"}},
    )["Items"]
    by_key = client.query(
        TableName=table,
        KeyConditionExpression="trip_id = :t",
        ExpressionAttributeValues={":t": {"S": "trip-a"}},
    )["Items"]
    # Then the index answers across trips, the key query with its own partition, in key order
    assert sorted(item["trip_id"]["S"] for item in by_index) == ["trip-a", "trip-b"]
    assert [item["sk"]["S"] for item in by_key] == ["ATTENTION#cancel_car", "LOG#1", "LOG#2"]


def test_cancelled_transaction_restores_only_its_own_items(stack):
    # Given a booking table with one item, and a transaction whose second write fails its condition
    client, table = stack.dynamodb, stack.settings.bookings_table(RESOURCES[0])
    client.put_item(TableName=table, Item={"trip_id": {"S": "kept"}, "status": {"S": "CONFIRMED"}})
    client.put_item(TableName=table, Item={"trip_id": {"S": "blocker"}, "status": {"S": "CONFIRMED"}})
    failing = [
        {"Put": {"TableName": table, "Item": {"trip_id": {"S": "new"}, "status": {"S": "CONFIRMED"}}}},
        {
            "Update": {
                "TableName": table,
                "Key": {"trip_id": {"S": "kept"}},
                "UpdateExpression": "SET #s = :c",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":c": {"S": "X"}},
            }
        },
        {
            "Put": {
                "TableName": table,
                "Item": {"trip_id": {"S": "blocker"}},
                "ConditionExpression": "attribute_not_exists(trip_id)",
            }
        },
    ]
    # When it is cancelled
    with pytest.raises(ClientError, match="TransactionCanceled"):
        client.transact_write_items(TransactItems=failing)
    # Then none of its writes remain and the other items are untouched
    items = {i["trip_id"]["S"]: i["status"]["S"] for i in client.scan(TableName=table)["Items"]}
    assert items == {"kept": "CONFIRMED", "blocker": "CONFIRMED"}


def test_history_written_directly_equals_what_moto_serializes(stack, run_saga):
    """The same events, the same fields and values, timestamps included, either way."""
    from moto.stepfunctions.responses import StepFunctionResponse

    from sagatools.emulation.speedups import _execution_history_as_json
    from sagatools.executions import execution_history

    report = run_saga(trip_request("t-history", simulate={"book_car": "fail", "cancel_hotel": "transient:1"}))
    fast = execution_history(stack.stepfunctions, report.execution_arn)
    assert StepFunctionResponse.get_execution_history is _execution_history_as_json
    StepFunctionResponse.get_execution_history = stack.original(StepFunctionResponse, "get_execution_history")
    try:
        generic = execution_history(stack.stepfunctions, report.execution_arn)
    finally:
        StepFunctionResponse.get_execution_history = _execution_history_as_json
    assert fast == generic


def test_every_replacement_the_local_endpoint_makes_is_in_the_registry(tmp_path):
    import sys

    from sagatools.emulation.local_server import replacements
    from sagatools.emulation.warm_lambda import WarmLambda
    from sagatools.fake_credentials import EndpointCredentials

    made = replacements(WarmLambda(sys.executable, tmp_path, {}), EndpointCredentials.made())
    assert [seam_name(owner, name) for owner, name, _ in made if not registered(owner, name)] == []


def test_a_program_read_from_the_run_cache_runs_as_a_fresh_parse(tmp_path, monkeypatch):
    """Same states, same events, same outcome; and the second stack parses nothing."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    from saga.models import parse_trip_request
    from sagatools.emulation.speedups import PARSED_DEFINITIONS
    from sagatools.executions import execution_history
    from sagatools.results import TripReader
    from sagatools.runtest.runner import SagaRunner
    from sagatools.trip_files import TripFile

    monkeypatch.setenv("RUNTEST_CACHE_DIR", str(tmp_path))
    parses = []
    fresh_parse = AmazonStateLanguageParser.parse
    monkeypatch.setattr(AmazonStateLanguageParser, "parse", lambda text: parses.append(1) or fresh_parse(text))
    request = trip_request("t-cached", simulate={"book_car": "fail", "cancel_flight": "transient:1"})
    seen = []
    for _ in ("parsed", "read back"):
        monkeypatch.setattr(PARSED_DEFINITIONS, "_parsed", {})  # a new process: only the disk is left
        parses.clear()
        with EmbeddedStack() as stack:
            reader = TripReader(stack.settings, stack.dynamodb)
            runner = SagaRunner(
                stack.stepfunctions, stack.state_machine_arn, reader, poll_seconds=0.005, timeout_seconds=60
            )
            [report] = runner.run([TripFile("t.json", parse_trip_request(request))])
            events = execution_history(stack.stepfunctions, report.execution_arn)
        seen.append((len(parses), report.outcome, report.states, [event["type"] for event in events]))
    (parsed, *first), (read_back, *second) = seen
    assert (parsed, read_back) == (1, 0)  # the saga's machine (the resolution's is made when first asked for)
    assert first == second
    assert len(list(tmp_path.glob("asl-programs/*.pickle"))) == 1


def test_dynamodb_results_written_as_they_are_equal_what_moto_serializes(stack, run_saga):
    """Query, GetItem, BatchGetItem and Scan, over the saga's own items and one of every attribute type
    (a binary one, which the fast path leaves to moto): the same answer either way."""
    from moto.dynamodb.responses import DynamoResult

    from sagatools.emulation import speedups
    from sagatools.emulation.speedups import _dynamo_result_as_json

    run_saga(trip_request("t-serialized", simulate={"book_car": "fail"}))
    settings, dynamodb = stack.settings, stack.dynamodb
    log_table, hotel_table = settings.saga_log_table, settings.bookings_table(RESOURCES[0])
    every_type = {
        "S": {"S": "text"},
        "N": {"N": "12.50"},
        "BOOL": {"BOOL": False},
        "NULL": {"NULL": True},
        "SS": {"SS": ["a", "b"]},
        "NS": {"NS": ["1", "2.5"]},
        "M": {"M": {"nested": {"L": [{"S": "x"}, {"N": "1"}, {"M": {}}]}, "empty": {"L": []}}},
    }
    dynamodb.put_item(TableName=hotel_table, Item={"trip_id": {"S": "t-every-type"}, **every_type})
    dynamodb.put_item(TableName=hotel_table, Item={"trip_id": {"S": "t-binary"}, "blob": {"B": b"\x00\xff"}})
    calls = [
        (
            "query",
            {
                "TableName": log_table,
                "KeyConditionExpression": "trip_id = :t",
                "ExpressionAttributeValues": {":t": {"S": "t-serialized"}},
                "ReturnConsumedCapacity": "TOTAL",
            },
        ),
        (
            "query",
            {
                "TableName": log_table,
                "KeyConditionExpression": "trip_id = :t",
                "ExpressionAttributeValues": {":t": {"S": "t-serialized"}},
                "Limit": 2,
            },
        ),
        (
            "query",
            {
                "TableName": log_table,
                "KeyConditionExpression": "trip_id = :t",
                "ExpressionAttributeValues": {":t": {"S": "no-such-trip"}},
            },
        ),
        ("get_item", {"TableName": hotel_table, "Key": {"trip_id": {"S": "t-every-type"}}}),
        ("get_item", {"TableName": hotel_table, "Key": {"trip_id": {"S": "t-binary"}}}),
        ("get_item", {"TableName": hotel_table, "Key": {"trip_id": {"S": "not-there"}}}),
        (
            "batch_get_item",
            {
                "RequestItems": {
                    hotel_table: {
                        "Keys": [
                            {"trip_id": {"S": t}} for t in ("t-serialized", "t-every-type", "t-binary", "not-there")
                        ]
                    },
                    log_table: {"Keys": [{"trip_id": {"S": "nobody"}, "sk": {"S": "0"}}]},
                }
            },
        ),
        ("scan", {"TableName": hotel_table}),
    ]

    def answers():
        found = []
        for operation, parameters in calls:
            reply = getattr(dynamodb, operation)(**parameters)
            reply.pop("ResponseMetadata")
            found.append(reply)
        return found

    assert DynamoResult.execute_result is _dynamo_result_as_json
    left_to_moto = []
    generic_serializer = speedups._original_dynamo_execute_result
    speedups._original_dynamo_execute_result = lambda *args: left_to_moto.append(1) or generic_serializer(*args)
    try:
        fast = answers()
    finally:
        speedups._original_dynamo_execute_result = generic_serializer
    assert len(left_to_moto) == 3  # the three answers holding the binary attribute; five written as they are
    DynamoResult.execute_result = stack.original(DynamoResult, "execute_result")
    try:
        generic = answers()
    finally:
        DynamoResult.execute_result = _dynamo_result_as_json
    assert fast == generic
    assert fast[0]["Count"] > 0
    assert fast[3]["Item"]["M"] == every_type["M"]


def test_the_interpreters_lambda_client_answers_as_motos_lambda_api_did(stack, monkeypatch):
    # Before InvokeOnlyClient, a Lambda task went through moto's Lambda API with its invoke replaced by
    # InProcessLambda's: the same calls, both ways, give the same fields (what the interpreter keeps of them).
    from moto.stepfunctions.parser.api import InvocationResponse
    from moto.utilities.collections import select_from_typed_dict

    from sagatools.emulation.embedded import function_arn
    from sagatools.emulation.in_process_lambda import InvokeOnlyClient

    monkeypatch.setattr(
        LambdaSimpleBackend,
        "invoke",
        lambda _backend, name, _qualifier, body, _headers, response_headers: stack.lambdas.invoke(
            name, body, response_headers
        ),
    )
    moto_lambda = stack.session_client("lambda")
    in_process = InvokeOnlyClient(stack.lambdas)
    book_hotel = function_arn(stack.config.functions["bookHotel"].name)
    request = {"request": trip_request("trip-both-ways"), "retry_count": 0, "execution_id": "arn:x"}
    calls = [
        {"FunctionName": book_hotel, "Payload": json.dumps(request).encode()},  # booked (by the first call below)
        {"FunctionName": book_hotel, "Payload": b'{"request": {"trip_id": 7}}'},  # the handler raises
        {"FunctionName": function_arn("no-such-function"), "Payload": b"{}"},
        {"FunctionName": book_hotel, "Payload": json.dumps(request).encode(), "InvocationType": "Event"},
    ]
    in_process.invoke(**calls[0])  # books: from here on both find it booked
    answered = []
    for call in calls:
        answers = []
        for client in (in_process, moto_lambda):
            answer = select_from_typed_dict(typed_dict=InvocationResponse, obj=client.invoke(**call))
            answer["Payload"] = json.loads(answer["Payload"].read())
            answers.append(answer)
        assert answers[0] == answers[1], call
        answered.append(answers[0])
    assert [answer["StatusCode"] for answer in answered] == [200, 200, 200, 202]
    assert [answer.get("FunctionError") for answer in answered] == [None, "Unhandled", "Unhandled", None]


@pytest.mark.parametrize(
    ("module", "use"),
    [("cryptography.x509", "moto.iam.models.x509.load_pem_x509_certificate")],
)
def test_a_module_moto_imports_for_what_it_never_does_here_is_loaded_only_when_used(module, use):
    # A process of its own: this one may have loaded them for another reason.
    check = (
        "import sys, sagatools.emulation, moto.iam.models, responses, moto.core.models\n"
        f"loaded = sys.modules[{module!r}]\n"
        "print(type(loaded).__name__)\n"
        f"print(callable({use}), type(loaded).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.split() == ["_LazyModule", "True", "module"]


STAND_INS_CHECK = """
import json, sys, time, uuid
from sagatools.emulation.embedded import ACCOUNT_ID, EmbeddedStack
from sagatools.emulation.environment import REGION
from moto.stepfunctions.parser.asl.eval.event import logging as step_functions_logging
LOGGING = {"level": "ALL", "includeExecutionData": True, "destinations": [
    {"cloudWatchLogsLogGroup": {"logGroupArn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:g:*"}}]}
def run(stack, definition, **options):
    arn = stack.stepfunctions.create_state_machine(name=f"m{uuid.uuid4().hex[:8]}",
        roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/r", definition=json.dumps(definition), **options)["stateMachineArn"]
    execution = stack.stepfunctions.start_execution(stateMachineArn=arn)["executionArn"]
    while (status := stack.stepfunctions.describe_execution(executionArn=execution)["status"]) == "RUNNING":
        time.sleep(0.01)
    return status
loaded = lambda: ["moto.logs.models" in sys.modules, "moto.stepfunctions.parser.asl.parse.preprocessor" in sys.modules]
with EmbeddedStack() as stack:
    print(run(stack, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, loggingConfiguration=LOGGING))
    print(*loaded())
    print(run(stack, {"Comment": uuid.uuid4().hex, "StartAt": "Q", "States": {"Q": {"Type": "Pass", "End": True}}}))
    print(*loaded())
    backend = step_functions_logging.logs_backends[ACCOUNT_ID][REGION]
    event = step_functions_logging.LogEvent(ingestion_time=1, log_event={"timestamp": 1, "message": "m"})
    print(type(backend).__name__, type(event).__name__, *loaded())
"""


def test_what_two_step_functions_modules_import_for_rare_calls_stays_unloaded_until_used(tmp_path):
    # Processes of their own (this one may have loaded both for another reason); the first fills the run cache
    environment = {**os.environ, "RUNTEST_CACHE_DIR": str(tmp_path)}
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", STAND_INS_CHECK], capture_output=True, text=True, cwd=ROOT, env=environment
        )
        assert done.returncode == 0, done.stderr
    # a logged machine runs without moto.logs, a cached program without the preprocessor; a new definition
    # is parsed (the preprocessor loads when first called), and the logging names reach moto.logs when used
    assert done.stdout.split() == [
        *("SUCCEEDED", "False", "False"),
        *("SUCCEEDED", "False", "True"),
        *("LogsBackend", "LogEvent", "True", "True"),
    ], done.stderr


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),
    form=st.sampled_from(
        ["moto", "microseconds Z", "seconds Z", "week date Z", "offset", "epoch", "epoch text", "not a time"]
    ),
)
def test_history_timestamps_read_faster_are_the_values_botocore_reads(moment, form):
    from botocore.parsers import DEFAULT_TIMESTAMP_PARSER
    from moto.core.utils import iso_8601_datetime_with_milliseconds

    from sagatools.emulation.speedups import timestamp_parser

    value: object = {
        "moto": iso_8601_datetime_with_milliseconds(moment),  # what moto's history events carry
        "microseconds Z": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "seconds Z": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "week date Z": moment.strftime("%G-W%V-%uT%H:%M:%SZ"),
        "offset": moment.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "epoch": moment.replace(tzinfo=UTC).timestamp(),
        "epoch text": str(moment.replace(tzinfo=UTC).timestamp()),
        "not a time": "yesterday-ishZ",
    }[form]
    try:
        expected = DEFAULT_TIMESTAMP_PARSER(value)
    except ValueError:
        with pytest.raises(ValueError, match="Invalid timestamp"):
            timestamp_parser(value)
        return
    parsed = timestamp_parser(value)
    assert parsed == expected
    assert type(parsed.tzinfo) is type(expected.tzinfo)
    assert parsed.isoformat() == expected.isoformat()


def test_the_routers_warmed_before_the_executions_start_are_those_of_the_services_the_tasks_call():
    from sagatools.emulation.speedups import services_called

    definition = json.dumps(
        {
            "States": {
                "A": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem"},
                "B": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke"},
                "C": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken"},
                "D": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f"},
            }
        }
    )
    assert services_called(definition) == {"dynamodb", "lambda", "sqs"}
    stack = EmbeddedStack()
    assert services_called(stack.definition) == {"dynamodb"}  # the saga log's records of a stuck compensation


def test_the_regions_moto_lists_from_the_default_session_are_those_of_a_session_of_its_own(stack):
    from boto3.session import Session
    from moto.core import base_backend

    standing_in = base_backend.Session()
    assert standing_in is boto3._get_default_session()  # no session of its own made
    own = Session()
    for service in ("dynamodb", "stepfunctions", "lambda", "iam", "sts"):
        for partition in own.get_available_partitions():
            got = standing_in.get_available_regions(service, partition_name=partition)
            assert got == own.get_available_regions(service, partition_name=partition)


def test_the_interpreters_service_clients_are_made_once_when_threads_first_ask_at_once(stack):
    from sagatools.emulation import speedups

    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda _: speedups._client(REGION, "sqs"), range(8)))
    assert len({id(client) for client in clients}) == 1
    assert clients[0].meta.service_model.service_name == "sqs"


@pytest.mark.parametrize("threshold", [0, 2])
def test_a_request_past_the_no_auth_threshold_is_checked_as_moto_checks_it(stack, monkeypatch, threshold):
    from moto import settings as moto_settings
    from moto.core.authorization import ActionAuthenticatorMixin

    def answers() -> list[str]:
        monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)
        monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", threshold)
        got = []
        for _ in range(threshold + 1):
            try:
                stack.dynamodb.list_tables()
                got.append("answered")
            except ClientError as refused:
                got.append(f"{refused.response['Error']['Code']}: {refused.response['Error']['Message']}")
        return got

    ours = answers()
    name = "_authenticate_and_authorize_normal_action"
    monkeypatch.setattr(ActionAuthenticatorMixin, name, stack.original(ActionAuthenticatorMixin, name))
    assert ours == answers()
    assert ours[:threshold] == ["answered"] * threshold
    assert ours[threshold] != "answered"  # moto knows no IAM key of the stack's fake credentials
