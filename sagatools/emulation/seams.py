"""Every moto internal the emulation replaces, wraps or relies on, with why and what breaks if it moves.

moto is pinned exactly (requirements-tools.txt). Each seam carries a check of the assumption it makes
about the installed moto; tests/test_moto_seams.py runs every check by name, and fails if the
embedded stack replaces anything that is not listed here. Upgrading moto: run those tests first.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import moto
from botocore import loaders
from moto import settings as moto_settings
from moto.awslambda import utils as lambda_utils
from moto.awslambda.models import LambdaFunction
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.cloudformation.models import CloudFormationBackend
from moto.cloudformation.responses import CloudFormationResponse
from moto.core import config as moto_config
from moto.core import responses as moto_responses
from moto.core import routing as moto_routing
from moto.core import serialize as moto_serialize
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb import responses as dynamodb_responses
from moto.dynamodb.models.table import Table
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.stepfunctions.parser import models as stepfunctions_models
from moto.stepfunctions.parser.asl.component import eval_component
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_batch,
    state_task_service_dynamodb,
)
from moto.stepfunctions.parser.asl.utils import boto_client, json_path
from moto.stepfunctions.parser.backend import execution_worker
from moto.stepfunctions.responses import StepFunctionResponse
from werkzeug.routing.rules import Rule

from sagatools.emulation import lean_moto
from sagatools.emulation.transactions import WRITE_LOCKED

MOTO_VERSION = "5.2.5"


@dataclass(frozen=True)
class Seam:
    name: str  # the moto internal, dotted
    why: str  # what the emulation does with it
    breaks: str  # what goes wrong, and how visibly, if moto moves it
    holds: Callable[[], bool]  # checks the assumption against the installed moto


def _source(thing: object) -> str:
    return inspect.getsource(thing)  # type: ignore[arg-type]


def _parameters(function: Callable[..., object]) -> list[str]:
    return list(inspect.signature(function).parameters)


def _passes_index_name_eighth() -> bool:
    """DynamoDBBackend.query passes index_name as the 8th positional argument after the hash key."""
    call = re.search(r"table\.query\(([^)]*)\)", _source(dynamodb_models.DynamoDBBackend.query))
    positional = [arg.strip() for arg in call.group(1).split(",") if arg.strip() and "=" not in arg] if call else []
    return positional[7:8] == ["index_name"] and _parameters(Table.query)[8] == "index_name"


def seam_name(owner: object, attribute: str) -> str:
    """The registry name of `owner.attribute` (a module or a class)."""
    if isinstance(owner, ModuleType):
        return f"{owner.__name__}.{attribute}"
    if isinstance(owner, type):
        return f"{owner.__module__}.{owner.__qualname__}.{attribute}"
    return f"{type(owner).__module__}.{type(owner).__qualname__}.{attribute}"


def _backend_write(name: str) -> Seam:
    return Seam(
        f"moto.dynamodb.models.DynamoDBBackend.{name}",
        "wrapped in one lock shared by every DynamoDB write, so a transaction's undo never races another write",
        "a write path outside the lock could interleave with a cancelled transaction's undo and be lost",
        lambda: callable(getattr(dynamodb_models.DynamoDBBackend, name, None)),
    )


def _batch_job_statuses_match() -> bool:
    """lean_moto's JobStatus has the members of moto's own (read from its source, not imported: the
    import is what the stub avoids), and the interpreter imports nothing else from that module."""
    source = (Path(moto.__file__).parent / "batch" / "utils.py").read_text()
    enum = re.search(r"class JobStatus\(str, Enum\):\n((?:    \w+ = \"\w+\"\n)+)", source)
    members = dict(re.findall(r"    (\w+) = \"(\w+)\"", enum.group(1))) if enum else {}
    imports = re.findall(r"from moto\.batch\.utils import (.+)", _source(state_task_service_batch))
    return members == {status.name: status.value for status in lean_moto.JobStatus} and imports == ["JobStatus"]


SEAMS: tuple[Seam, ...] = (
    Seam(
        "moto.__version__",
        "every seam below was checked against this version",
        "any of them may have moved",
        lambda: moto.__version__ == MOTO_VERSION,
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
        "replaced: the invoked function's real handler runs in this process (InProcessLambda)",
        "every Lambda task would return moto's canned 'Simple Lambda happy path OK' instead of running a step",
        lambda: (
            _parameters(LambdaSimpleBackend.invoke)
            == ["self", "function_name", "qualifier", "body", "headers", "response_headers"]
        ),
    ),
    Seam(
        "moto.batch.utils",
        "replaced in sys.modules by lean_moto's module holding only JobStatus (the interpreter's only use of it)",
        "every ./runtest.sh would import moto.batch and moto.ec2 again (1.6 s); a moved enum breaks Batch tasks,"
        " which no saga has",
        _batch_job_statuses_match,
    ),
    Seam(
        "moto.awslambda_simple.models.LambdaSimpleBackend.delete_function",
        "wrapped (local endpoint): a deleted function's warm environments are retired with it",
        "after ./build.sh remove, every environment of the removed functions would stay running",
        lambda: _parameters(LambdaSimpleBackend.delete_function) == ["self", "function_name", "qualifier"],
    ),
    Seam(
        "moto.stepfunctions.parser.asl.component.state.exec.execute_state.threading",
        "replaced (local endpoint): a Task's TimeoutSeconds does not count the time its invocation queued for a"
        " warm environment",
        "under load, sagas would time out waiting in line and take the timeout path (wrong outcomes)",
        lambda: (
            "threading.Event()" in _source(execute_state.ExecutionState._evaluate_with_timeout)
            and "terminated_event.wait(timeout_seconds)" in _source(execute_state.ExecutionState._evaluate_with_timeout)
        ),
    ),
    Seam(
        "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl.time",
        "replaced by a clock that records retry waits instead of sleeping them",
        "failure scenarios would sleep their real backoff (a stuck compensation: about a minute)",
        lambda: "time.sleep(interval_seconds)" in _source(retrier_decl.RetrierDecl._eval_body),
    ),
    Seam(
        "moto.dynamodb.models.copy",
        "replaced so TransactWriteItems does not deep-copy whole tables; transactions.py keeps an item-level undo",
        "every transaction would copy every named table again (slow), or the undo would restore stale tables",
        lambda: (
            "copy.deepcopy(" in _source(dynamodb_models.DynamoDBBackend.transact_write_items)
            and "original_table_state" in _source(dynamodb_models.DynamoDBBackend.transact_write_items)
        ),
    ),
    *(_backend_write(name) for name in WRITE_LOCKED),
    Seam(
        "moto.dynamodb.responses.DynamoHandler.batch_write_item",
        "relied on: BatchWriteItem writes through the backend's put_item/delete_item, so it is under the lock",
        "batch writes would bypass the lock",
        lambda: (
            "self.dynamodb_backend.put_item(" in _source(dynamodb_responses.DynamoHandler.batch_write_item)
            and "self.dynamodb_backend.delete_item(" in _source(dynamodb_responses.DynamoHandler.batch_write_item)
        ),
    ),
    Seam(
        "moto.dynamodb.models.DynamoDBBackend.execute_transaction",
        "relied on: PartiQL transactions and batches run through execute_statement, so they are under the lock",
        "PartiQL writes would bypass the lock",
        lambda: (
            "self.execute_statement(" in _source(dynamodb_models.DynamoDBBackend.execute_transaction)
            and "self.execute_statement(" in _source(dynamodb_models.DynamoDBBackend.batch_execute_statement)
        ),
    ),
    Seam(
        "moto.dynamodb.models.table.Table.query",
        "wrapped: a query on the table's key tells all_items which partition it needs; reads index_name as"
        " the 8th positional argument, as DynamoDBBackend.query passes it",
        "a moved argument would silently restrict an index query to one partition: wrong query results",
        lambda: _passes_index_name_eighth() and "self.all_items()" in _source(Table.query),
    ),
    Seam(
        "moto.dynamodb.responses.DynamoResult.execute_result",
        "replaced: a result that is already what the generic serializer would write (modeled keys only, no"
        " blob, date or None) goes through that serializer's body and headers without its member-by-member walk",
        "reading a batch's results back would spend a third of its time in moto's serializer (slower, not wrong)",
        lambda: (
            "serializer.serialize(self.result)" in _source(moto_responses.ActionResult.execute_result)
            and "_serialized_result_to_response(" in _source(moto_serialize.ResponseSerializer._serialize_result)
            and "json.dumps(body" in _source(moto_serialize.BaseJSONSerializer._serialize_body)
            and "DynamoResult" in _source(dynamodb_responses)
        ),
    ),
    Seam(
        "moto.dynamodb.models.table.Table.all_items",
        "replaced: returns one partition's items while a key query runs (moto scans the whole table)",
        "queries would fall back to whole-table scans (slow, not wrong)",
        lambda: _parameters(Table.all_items) == ["self"],
    ),
    Seam(
        "moto.stepfunctions.parser.backend.execution_worker.AmazonStateLanguageParser",
        "replaced by ParsedDefinitions: each definition parsed once, the program kept on disk between runs",
        "every execution would parse the ASL again with ANTLR (100-150 ms for ours)",
        lambda: (
            "AmazonStateLanguageParser.parse(" in _source(execution_worker.ExecutionWorker._get_evaluation_entrypoint)
            and ")[0]" in _source(execution_worker.ExecutionWorker._get_evaluation_entrypoint)
        ),
    ),
    Seam(
        "moto.stepfunctions.parser.models.AmazonStateLanguageParser",
        "replaced by the same ParsedDefinitions: CreateStateMachine's validation parse is the one the executions"
        " use (a definition that does not parse raises as before and is not kept)",
        "CreateStateMachine would parse each definition again (100-150 ms for ours, twice a stack)",
        lambda: (
            "AmazonStateLanguageParser.parse(definition)" in _source(stepfunctions_models.StepFunctionsParserBackend)
            and "InvalidDefinition" in _source(stepfunctions_models.StepFunctionsParserBackend._validate_definition)
        ),
    ),
    Seam(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils.boto_client_for",
        "replaced: one shared boto3 client per region and service for the interpreter's Lambda calls",
        "a client built per task (~5 ms each)",
        lambda: (
            "boto_client_for(" in _source(lambda_eval_utils._invoke_lambda_function)
            and _parameters(boto_client.boto_client_for) == ["region", "service", "state_credentials"]
        ),
    ),
    Seam(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb"
        ".boto_client_for",
        "replaced: one shared boto3 client for the interpreter's DynamoDB tasks (the attention record)",
        "a client built per task (~5 ms each)",
        lambda: "boto_client_for(" in _source(state_task_service_dynamodb),
    ),
    Seam(
        "moto.stepfunctions.parser.asl.utils.json_path.parse",
        "replaced by a cache of parsed JSONPaths",
        "every path would be parsed again by jsonpath-ng's yacc parser",
        lambda: "parse(path)" in _source(json_path),
    ),
    Seam(
        "moto.stepfunctions.parser.asl.component.common.path.result_path.parse",
        "replaced by a cache of parsed JSONPaths",
        "every ResultPath would be parsed again",
        lambda: "parse(" in _source(result_path.ResultPath),
    ),
    Seam(
        "moto.stepfunctions.responses.StepFunctionResponse.get_execution_history",
        "replaced: the backend's events written as JSON directly (same events, no generic serializer)",
        "GetExecutionHistory would cost 10-20 ms again; a changed backend call would fail every history read",
        lambda: (
            "self.stepfunction_backend.get_execution_history(" in _source(StepFunctionResponse.get_execution_history)
        ),
    ),
    Seam(
        "moto.core.responses.method_names_from_class",
        "replaced by a cached copy: a response class's methods are listed once, not on every request",
        "every request would run inspect.getmembers again",
        lambda: "method_names_from_class(self.__class__)" in _source(moto_responses.BaseResponse),
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
            "if protocol not in self._routers:" in _source(moto_routing.ServiceOperationRouter._get_router)
            and "self._get_router(protocol).match(request)" in _source(moto_routing.ServiceOperationRouter.match)
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

# The local endpoint's (local_server.py) own seams.
SEAMS += (
    Seam(
        "moto.cloudformation.models.CloudFormationBackend.validate_template",
        "wrapped: only cfn-lint's errors refuse a template (moto refuses on warnings too; osls writes W3005)",
        "osls deploy fails at ValidateTemplate on a template AWS accepts",
        lambda: (
            _parameters(CloudFormationBackend.validate_template) == ["self", "template"]
            and "cfn_lint[0].message" in _source(CloudFormationResponse.validate_template)
        ),
    ),
    Seam(
        "moto.awslambda.models.LambdaFunction",
        "read: the deployed function's code_bytes, code_sha_256, handler, environment_vars, timeout, memory_size",
        "the endpoint could not find the deployed zip or its configuration: every invocation would fail",
        lambda: all(
            f"self.{attribute}" in _source(LambdaFunction)
            for attribute in ("code_bytes", "code_sha_256", "handler", "environment_vars", "timeout", "memory_size")
        ),
    ),
    Seam(
        "moto.awslambda.utils.get_backend",
        "relied on: the Lambda backend (Docker or simple) is chosen per request from moto's config",
        "Lambda would try to start Docker, which this machine does not have",
        lambda: '"use_docker", True) is False' in _source(lambda_utils.get_backend),
    ),
    Seam(
        "moto.settings.moto_server_port",
        "set through MOTO_PORT: the interpreter's own calls (Lambda, DynamoDB tasks) go back to this server",
        "every task would call port 5000 and fail",
        lambda: "MOTO_PORT" in _source(moto_settings.moto_server_port),
    ),
    Seam(
        "moto.moto_server.werkzeug_app.DomainDispatcherApplication",
        "the endpoint serves moto's app as moto's own ThreadedMotoServer does",
        "the endpoint would not start",
        lambda: (
            "DomainDispatcherApplication(create_backend_app)" in _source(ThreadedMotoServer._server_entry)
            and "request_handler=MotoRequestHandler" in _source(ThreadedMotoServer._server_entry)
        ),
    ),
    # werkzeug's, under moto's routers:
    Seam(
        "werkzeug.routing.rules.Rule._compile_builder",
        "replaced: a rule's URL builder is compiled when a URL is first built (moto's routers only match)",
        "each router's map would compile two builders per rule again (~0.25 s for Lambda's; slower, not wrong)",
        lambda: (
            "self._compile_builder(False).__get__(self, None)" in _source(Rule.compile)
            and _parameters(Rule._compile_builder) == ["self", "append_unknown"]
        ),
    ),
    # botocore's, not moto's: the tools' process reads botocore's data files once (sagatools/botocore_data.py).
    Seam(
        "botocore.loaders.JSONFileLoader.load_file",
        "replaced: a data file decoded once per process and kept in .runtest/cache, a copy for each caller",
        "every session would decode endpoints.json and the service models again (slower, not wrong)",
        lambda: (
            list(loaders._JSON_OPEN_METHODS)[:2] == [".json", ".json.gz"]
            and _parameters(loaders.JSONFileLoader.load_file) == ["self", "file_path"]
            and "_JSON_OPEN_METHODS" in _source(loaders.JSONFileLoader.load_file)
        ),
    ),
    Seam(
        "botocore.loaders.Loader.list_available_services",
        "replaced: each search path's services listed once per process",
        "each session would list every service's folder again (thousands of stat calls)",
        lambda: (
            "def list_available_services(self, type_name):" in _source(loaders.Loader)
            and "self.search_paths" in _source(loaders.Loader)
            and "key = (func.__name__,) + args" in _source(loaders.instance_cache)
        ),
    ),
)


def registered(owner: object, attribute: str) -> bool:
    return any(seam.name == seam_name(owner, attribute) for seam in SEAMS)
