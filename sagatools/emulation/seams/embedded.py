"""The embedded stack's seams: Step Functions' interpreter, DynamoDB, Lambda (in-process), and moto's
routing and serialisation, as sagatools/emulation/embedded.py, transactions.py and speedups.py use them."""

from __future__ import annotations

import ast
import logging
import re
import textwrap

import moto
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core import authorization as moto_authorization
from moto.core import base_backend as moto_base_backend
from moto.core import config as moto_config
from moto.core import responses as moto_responses
from moto.core import routing as moto_routing
from moto.core import serialize as moto_serialize
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb import responses as dynamodb_responses
from moto.dynamodb.models.table import Table
from moto.stepfunctions.parser import models as stepfunctions_models
from moto.stepfunctions.parser.api import InvocationResponse
from moto.stepfunctions.parser.asl.component import eval_component
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils, state_task_lambda
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_dynamodb,
)
from moto.stepfunctions.parser.asl.utils import boto_client, json_path
from moto.stepfunctions.parser.backend import execution_worker
from moto.stepfunctions.responses import StepFunctionResponse

from sagatools.emulation.seams.seam import Seam, parameters, source
from sagatools.emulation.transactions import WRITE_LOCKED

MOTO_VERSION = "5.2.5"


def _passes_index_name_eighth() -> bool:
    """DynamoDBBackend.query passes index_name as the 8th positional argument after the hash key."""
    call = re.search(r"table\.query\(([^)]*)\)", source(dynamodb_models.DynamoDBBackend.query))
    positional = [arg.strip() for arg in call.group(1).split(",") if arg.strip() and "=" not in arg] if call else []
    return positional[7:8] == ["index_name"] and parameters(Table.query)[8] == "index_name"


def _backend_write(name: str) -> Seam:
    return Seam(
        f"moto.dynamodb.models.DynamoDBBackend.{name}",
        "wrapped in one lock shared by every DynamoDB write, so a transaction's undo never races another write",
        "a write path outside the lock could interleave with a cancelled transaction's undo and be lost",
        lambda: callable(getattr(dynamodb_models.DynamoDBBackend, name, None)),
    )


def _lambda_tasks_read_only_what_invoke_only_client_answers() -> bool:
    """Both kinds of Lambda task call Invoke once with the task's parameters and keep only the fields of
    moto's InvocationResponse that InvokeOnlyClient gives (StatusCode, FunctionError, Payload; moto's
    simple Lambda sets no LogResult or ExecutedVersion)."""
    invoke = source(lambda_eval_utils._invoke_lambda_function)
    integration = source(lambda_eval_utils.execute_lambda_function_integration)
    return (
        "lambda_client.invoke(**parameters)" in invoke
        and 'invocation_response["Payload"]' in invoke
        and "select_from_typed_dict" in integration
        and "_invoke_lambda_function(" in integration
        and "lambda_eval_utils.execute_lambda_function_integration(" in source(state_task_lambda)
        and set(InvocationResponse.__annotations__)
        == {"StatusCode", "FunctionError", "LogResult", "Payload", "ExecutedVersion"}
    )


def _session_only_lists_regions() -> bool:
    """moto's base_backend makes a Session only in get_session, whose result only lists partitions and regions."""
    text = source(moto_base_backend)
    uses = re.findall(r"get_session\(\)\.(\w+)", text)
    return (
        text.count("Session()") == 1
        and bool(uses)
        and set(uses) <= {"get_available_partitions", "get_available_regions"}
    )


def _request_checker_made_only_past_the_threshold() -> bool:
    """moto's normal action imports IAMRequest only to hand it to the check, which makes one only once
    INITIAL_NO_AUTH_ACTION_COUNT requests have passed, with keyword arguments (what _iam_request takes)."""
    mixin = moto_authorization.ActionAuthenticatorMixin
    check = textwrap.dedent(source(mixin._authenticate_and_authorize_action))
    calls = [
        node
        for node in ast.walk(ast.parse(check))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "iam_request_cls"
    ]
    threshold = check.find(">= settings.INITIAL_NO_AUTH_ACTION_COUNT")
    return (
        parameters(mixin._authenticate_and_authorize_normal_action) == ["self", "resource"]
        and "self._authenticate_and_authorize_action(IAMRequest, resource)"
        in source(mixin._authenticate_and_authorize_normal_action)
        and check.count("iam_request_cls") == 2  # the parameter, and the one call
        and len(calls) == 1
        and not calls[0].args
        and all(keyword.arg for keyword in calls[0].keywords)
        and 0 <= threshold < check.find("iam_request_cls(")
    )


EMBEDDED_SEAMS: tuple[Seam, ...] = (
    Seam(
        "moto.__version__",
        "every seam below was checked against this version",
        "any of them may have moved",
        lambda: moto.__version__ == MOTO_VERSION,
    ),
    Seam(
        "moto.core.base_backend.Session",
        "boto3's default session stands in for the Session moto makes only to list a service's regions",
        "a use of that session beyond region listing would get the stack's own (its clients' credentials)",
        _session_only_lists_regions,
    ),
    Seam(
        "moto.core.authorization.ActionAuthenticatorMixin._authenticate_and_authorize_normal_action",
        "hands moto's check a maker of IAMRequest that imports it (with moto.s3, moto.sts) when a request is checked",
        "every ./runtest.sh would import moto's request checker for requests it never checks (~5 ms); a check"
        " that made its request differently would fail on the first request past the threshold",
        _request_checker_made_only_past_the_threshold,
    ),
    Seam(
        "moto.core.config.default_user_config",
        "mock_aws(config=...) turns on Step Functions execution and keeps Lambda off Docker",
        "executions would not run (status stays RUNNING), or Lambda would try to start Docker",
        lambda: (
            moto_config.default_user_config["stepfunctions"].get("execute_state_machine") is not None
            and moto_config.default_user_config["lambda"].get("use_docker") is not None
        ),
    ),
    Seam(
        "moto.awslambda_simple.models.LambdaSimpleBackend.invoke",
        "replaced (local endpoint): the invoked function's deployed zip runs in a warm environment",
        "every Lambda task would return moto's canned 'Simple Lambda happy path OK' instead of running a step",
        lambda: (
            parameters(LambdaSimpleBackend.invoke)
            == ["self", "function_name", "qualifier", "body", "headers", "response_headers"]
        ),
    ),
    Seam(
        "moto.awslambda_simple.models.LambdaSimpleBackend.delete_function",
        "wrapped (local endpoint): a deleted function's warm environments are retired with it",
        "after ./build.sh remove, every environment of the removed functions would stay running",
        lambda: parameters(LambdaSimpleBackend.delete_function) == ["self", "function_name", "qualifier"],
    ),
    Seam(
        "moto.stepfunctions.parser.asl.component.state.exec.execute_state.threading",
        "replaced (local endpoint): a Task's TimeoutSeconds does not count the time its invocation queued for a"
        " warm environment",
        "under load, sagas would time out waiting in line and take the timeout path (wrong outcomes)",
        lambda: (
            "threading.Event()" in source(execute_state.ExecutionState._evaluate_with_timeout)
            and "terminated_event.wait(timeout_seconds)" in source(execute_state.ExecutionState._evaluate_with_timeout)
        ),
    ),
    Seam(
        "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl.time",
        "replaced by a clock that records retry waits instead of sleeping them",
        "failure scenarios would sleep their real backoff (a stuck compensation: about a minute)",
        lambda: "time.sleep(interval_seconds)" in source(retrier_decl.RetrierDecl._eval_body),
    ),
    Seam(
        "moto.dynamodb.models.copy",
        "replaced so TransactWriteItems does not deep-copy whole tables; transactions.py keeps an item-level undo",
        "every transaction would copy every named table again (slow), or the undo would restore stale tables",
        lambda: (
            "copy.deepcopy(" in source(dynamodb_models.DynamoDBBackend.transact_write_items)
            and "original_table_state" in source(dynamodb_models.DynamoDBBackend.transact_write_items)
        ),
    ),
    *(_backend_write(name) for name in WRITE_LOCKED),
    Seam(
        "moto.dynamodb.responses.DynamoHandler.batch_write_item",
        "relied on: BatchWriteItem writes through the backend's put_item/delete_item, so it is under the lock",
        "batch writes would bypass the lock",
        lambda: (
            "self.dynamodb_backend.put_item(" in source(dynamodb_responses.DynamoHandler.batch_write_item)
            and "self.dynamodb_backend.delete_item(" in source(dynamodb_responses.DynamoHandler.batch_write_item)
        ),
    ),
    Seam(
        "moto.dynamodb.models.DynamoDBBackend.execute_transaction",
        "relied on: PartiQL transactions and batches run through execute_statement, so they are under the lock",
        "PartiQL writes would bypass the lock",
        lambda: (
            "self.execute_statement(" in source(dynamodb_models.DynamoDBBackend.execute_transaction)
            and "self.execute_statement(" in source(dynamodb_models.DynamoDBBackend.batch_execute_statement)
        ),
    ),
    Seam(
        "moto.dynamodb.models.table.Table.query",
        "wrapped: a query on the table's key tells all_items which partition it needs; reads index_name as"
        " the 8th positional argument, as DynamoDBBackend.query passes it",
        "a moved argument would silently restrict an index query to one partition: wrong query results",
        lambda: _passes_index_name_eighth() and "self.all_items()" in source(Table.query),
    ),
    Seam(
        "moto.dynamodb.responses.DynamoResult.execute_result",
        "replaced: a result that is already what the generic serializer would write (modeled keys only, no"
        " blob, date or None) goes through that serializer's body and headers without its member-by-member walk",
        "reading a batch's results back would spend a third of its time in moto's serializer (slower, not wrong)",
        lambda: (
            "serializer.serialize(self.result)" in source(moto_responses.ActionResult.execute_result)
            and "_serialized_result_to_response(" in source(moto_serialize.ResponseSerializer._serialize_result)
            and "json.dumps(body" in source(moto_serialize.BaseJSONSerializer._serialize_body)
            and "DynamoResult" in source(dynamodb_responses)
        ),
    ),
    Seam(
        "moto.dynamodb.models.table.Table.all_items",
        "replaced: returns one partition's items while a key query runs (moto scans the whole table)",
        "queries would fall back to whole-table scans (slow, not wrong)",
        lambda: parameters(Table.all_items) == ["self"],
    ),
    Seam(
        "moto.stepfunctions.parser.backend.execution_worker.AmazonStateLanguageParser",
        "replaced by ParsedDefinitions: each definition parsed once, the program kept on disk between runs",
        "every execution would parse the ASL again with ANTLR (100-150 ms for ours)",
        lambda: (
            "AmazonStateLanguageParser.parse(" in source(execution_worker.ExecutionWorker._get_evaluation_entrypoint)
            and ")[0]" in source(execution_worker.ExecutionWorker._get_evaluation_entrypoint)
        ),
    ),
    Seam(
        "moto.stepfunctions.parser.models.AmazonStateLanguageParser",
        "replaced by the same ParsedDefinitions: CreateStateMachine's validation parse is the one the executions"
        " use (a definition that does not parse raises as before and is not kept)",
        "CreateStateMachine would parse each definition again (100-150 ms for ours, twice a stack)",
        lambda: (
            "AmazonStateLanguageParser.parse(definition)" in source(stepfunctions_models.StepFunctionsParserBackend)
            and "InvalidDefinition" in source(stepfunctions_models.StepFunctionsParserBackend._validate_definition)
        ),
    ),
    Seam(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils.boto_client_for",
        "replaced: the interpreter's Lambda tasks call InvokeOnlyClient (embedded stack: the handlers in this"
        " process, moto's Lambda never loaded) or one shared boto3 client per region (local endpoint)",
        "every Lambda task would go to moto's Lambda API, which runs no handler here (and loads a dozen moto"
        " services, ~0.1 s of every start); or a client would be built per task (~5 ms each)",
        lambda: (
            "boto_client_for(" in source(lambda_eval_utils._invoke_lambda_function)
            and parameters(boto_client.boto_client_for) == ["region", "service", "state_credentials"]
            and _lambda_tasks_read_only_what_invoke_only_client_answers()
        ),
    ),
    Seam(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb"
        ".boto_client_for",
        "replaced: one shared boto3 client for the interpreter's DynamoDB tasks (the attention record)",
        "a client built per task (~5 ms each)",
        lambda: "boto_client_for(" in source(state_task_service_dynamodb),
    ),
    Seam(
        "moto.stepfunctions.parser.asl.utils.json_path.parse",
        "replaced by a cache of parsed JSONPaths",
        "every path would be parsed again by jsonpath-ng's yacc parser",
        lambda: "parse(path)" in source(json_path),
    ),
    Seam(
        "moto.stepfunctions.parser.asl.component.common.path.result_path.parse",
        "replaced by a cache of parsed JSONPaths",
        "every ResultPath would be parsed again",
        lambda: "parse(" in source(result_path.ResultPath),
    ),
    Seam(
        "moto.stepfunctions.responses.StepFunctionResponse.get_execution_history",
        "replaced: the backend's events written as JSON directly (same events, no generic serializer)",
        "GetExecutionHistory would cost 10-20 ms again; a changed backend call would fail every history read",
        lambda: (
            "self.stepfunction_backend.get_execution_history(" in source(StepFunctionResponse.get_execution_history)
        ),
    ),
    Seam(
        "moto.core.responses.method_names_from_class",
        "replaced by a cached copy: a response class's methods are listed once, not on every request",
        "every request would run inspect.getmembers again",
        lambda: "method_names_from_class(self.__class__)" in source(moto_responses.BaseResponse),
    ),
    Seam(
        "moto.core.routing.get_service_router",
        "called before executions start, to fill its cache (it has no lock) while one thread runs",
        "hundreds of executions reaching their first task at once would each build the service model",
        lambda: hasattr(moto_routing.get_service_router, "cache_info"),
    ),
    Seam(
        "moto.core.routing.ServiceOperationRouter._get_router",
        "called before executions start for each service's own protocol: the protocol's router (for Lambda a"
        " werkzeug map whose rules compile, ~0.25 s) is made on first use, with no lock",
        "in a batch, every execution reaching its first Lambda task at once built that router again (seen: 1.5 s"
        " of CPU in a 50-trip batch)",
        lambda: (
            "if protocol not in self._routers:" in source(moto_routing.ServiceOperationRouter._get_router)
            and "self._get_router(protocol).match(request)" in source(moto_routing.ServiceOperationRouter.match)
        ),
    ),
    Seam(
        "moto.stepfunctions.parser.asl.component.eval_component.LOG",
        "its logger is set to CRITICAL: it logs every caught task error at ERROR, which the history records",
        "a rolled-back saga would print moto tracebacks on stderr",
        lambda: (
            isinstance(eval_component.LOG, logging.Logger)
            and eval_component.LOG.name == "moto.stepfunctions.parser.asl.component.eval_component"
        ),
    ),
)
