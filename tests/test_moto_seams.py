"""The embedded stack relies on moto internals; if an upgrade moves one, fail here, loudly and by name."""

from __future__ import annotations

import inspect

import moto
import pytest
from botocore.exceptions import ClientError
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from sagatools.emulation.embedded import EmbeddedStack


def test_moto_is_the_pinned_version():
    assert moto.__version__ == "5.2.5", "the embedded stack's seams were checked against moto 5.2.5 only"


def test_lambda_simple_backend_invoke_has_the_signature_we_replace():
    parameters = list(inspect.signature(LambdaSimpleBackend.invoke).parameters)
    assert parameters == ["self", "function_name", "qualifier", "body", "headers", "response_headers"]


def test_retrier_sleeps_through_its_module_time_binding():
    assert "time.sleep(interval_seconds)" in inspect.getsource(retrier_decl.RetrierDecl._eval_body)


def test_the_stack_replaces_the_seams_and_restores_them():
    original_invoke, original_time = LambdaSimpleBackend.invoke, retrier_decl.time
    with EmbeddedStack() as stack:
        assert LambdaSimpleBackend.invoke is not original_invoke
        assert retrier_decl.time is stack.retry_clock
    assert LambdaSimpleBackend.invoke is original_invoke
    assert retrier_decl.time is original_time


def test_transactions_snapshot_whole_tables_in_the_code_we_patch():
    from moto.dynamodb.models import DynamoDBBackend

    source = inspect.getsource(DynamoDBBackend.transact_write_items)
    assert "copy.deepcopy(" in source
    assert "original_table_state" in source


def test_execution_worker_parses_through_its_module_binding():
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    assert "AmazonStateLanguageParser.parse(" in inspect.getsource(ExecutionWorker._get_evaluation_entrypoint)


def test_interpreter_builds_clients_through_module_bindings():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_dynamodb

    assert "boto_client_for(" in inspect.getsource(lambda_eval_utils._invoke_lambda_function)
    assert "boto_client_for(" in inspect.getsource(state_task_service_dynamodb)


def test_cancelled_transaction_restores_only_its_own_items(stack):
    # Given a booking table with one item, and a transaction whose second write fails its condition
    client, table = stack.dynamodb, stack.settings.hotel_table
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


def test_json_paths_are_parsed_through_module_bindings():
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    assert "parse(" in inspect.getsource(json_path.extract_json)
    assert hasattr(result_path, "parse")
    assert hasattr(json_path, "parse")


def test_execution_history_response_is_the_generic_one_we_replace():
    from moto.stepfunctions.responses import StepFunctionResponse

    source = inspect.getsource(StepFunctionResponse.get_execution_history)
    assert "ActionResult(execution_history)" in source


def test_history_written_directly_equals_what_moto_serializes(stack, run_saga):
    """The same events, the same fields and values, timestamps included, either way."""
    from moto.stepfunctions.responses import StepFunctionResponse

    from sagatools.emulation.speedups import _execution_history_as_json
    from sagatools.results import execution_history
    from tests.conftest import trip_request

    report = run_saga(trip_request("t-history", simulate={"book_car": "fail", "cancel_hotel": "transient:1"}))
    fast = execution_history(stack.stepfunctions, report.execution_arn)
    assert StepFunctionResponse.get_execution_history is _execution_history_as_json
    StepFunctionResponse.get_execution_history = stack.original(StepFunctionResponse, "get_execution_history")
    try:
        generic = execution_history(stack.stepfunctions, report.execution_arn)
    finally:
        StepFunctionResponse.get_execution_history = _execution_history_as_json
    assert fast == generic
