"""Costs of moto that the embedded stack removes, none of which changes what an API call answers.

- CreateStateMachine and then every execution parse the definition with ANTLR (100-150 ms for ours):
  parse once per definition, and keep the program on disk for the next run (ParsedDefinitions).
- Every Lambda task and DynamoDB task builds a new boto3 client (~5 ms): build one per region and
  service, when first called. moto answers every client with the same fake credentials, so nothing else differs.
- A DynamoDB Query on a table's key sorts and scans every item of the table (a batch of 200 trips
  spent most of its time there): here the query of one partition looks at that partition only.
- Every JSONPath the interpreter evaluates ($.results..., $$.Execution.Input) is parsed again by
  jsonpath-ng's yacc parser: parse each distinct path once (a parsed path is not changed by use).
- moto's generic response serializer visits every possible member of every history event (~60 per
  event), so GetExecutionHistory cost 10-20 ms: here the same events are written as JSON directly.
  moto keeps their timestamps as ISO 8601 strings in UTC ('...Z'), which botocore hands to dateutil
  (80 µs each, a tenth of a 200-trip batch): `timestamp_parser` reads those with datetime (2 µs) into
  the very value dateutil gives (the same instant, in the zone object dateutil picks for UTC on this
  machine), and leaves any other text to botocore.
- moto's generic serializer walks every possible member of a response's shape for every item of a Query
  or BatchGetItem (a third of reading a batch's results back): a DynamoDB result that is already what it
  would write (only modeled keys, no blobs, dates or None) is written as it is, by the same serializer.
- moto lists a response class's methods with inspect.getmembers on every request: once per class.
- moto imports its IAM request checker (with moto.s3 and moto.sts: ~5 ms of every start) on every
  request, to check it only once INITIAL_NO_AUTH_ACTION_COUNT requests have passed (never, as
  the stack runs): it is imported when a request is first checked.
- moto makes a boto3 Session of its own only to list each service's regions (30 ms of every start: the
  session's handlers, the endpoint data decoded again): it gets boto3's default session, the clients'.
- moto loads a service's model and router on first use, in a cache without a lock: when a batch's
  executions all reach their first Lambda task at once, every thread loaded the Lambda model (and
  built a client) at the same time, and each built Lambda's werkzeug router (~0.25 s of CPU apiece).
  `warm_up` builds the routers once, before any execution starts (the clients the tasks call are made
  under a lock, see `_client`); and the router's URL builders, which moto never uses (it only matches
  URLs), are compiled only if a URL is ever built.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.parsers import DEFAULT_TIMESTAMP_PARSER
from moto import settings as moto_settings
from moto.core import base_backend as moto_base_backend
from moto.core import responses as moto_responses
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.routing import get_service_router
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoResult
from moto.stepfunctions.parser import models as stepfunctions_models
from moto.stepfunctions.parser.asl.component.common.path import result_path as moto_result_path
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_dynamodb
from moto.stepfunctions.parser.asl.parse import asl_parser
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import json_path as moto_json_path
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for
from moto.stepfunctions.parser.backend import execution_worker
from moto.stepfunctions.responses import StepFunctionResponse
from werkzeug.routing.rules import Rule

from sagatools.run_cache import DiskCache, code_fingerprint

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.model import Shape


class ParsedDefinitions:
    """Stands in for AmazonStateLanguageParser where moto validates a definition and where each execution
    parses it: one parse per definition, shared by every stack in the process and kept on disk between runs.

    The parsed program holds no per-execution state (that lives in each execution's Environment). On disk
    it is keyed by the definition's text and by the content of every file of moto's ASL code, so a
    changed definition or another moto is a new parse, never a stale program.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parsed: dict[str, Any] = {}
        self._disk = DiskCache("asl-programs")
        self._code = ""

    def parse(self, definition: str) -> tuple[Any, None]:
        with self._lock:  # ANTLR's parser is not meant to be shared across threads while it parses
            if definition not in self._parsed:
                if not self._code:
                    self._code = code_fingerprint(Path(asl_parser.__file__).parents[2])
                self._parsed[definition] = self._disk.get_or_make(
                    (self._code, definition), lambda: AmazonStateLanguageParser.parse(definition)[0]
                )
            # moto's callers read the program only (the parse tree is for its static analyser, not run here).
            return self._parsed[definition], None


PARSED_DEFINITIONS = ParsedDefinitions()


_clients: dict[tuple[str, str], BaseClient] = {}
_clients_lock = threading.Lock()


def _client(region: str, service: str) -> BaseClient:
    """One client per region and service, made when a task first calls it (most runs call no service but
    Lambda): under a lock, as executions' threads may reach their first such task at once."""
    with _clients_lock:
        if (region, service) not in _clients:
            _clients[region, service] = boto_client_for(region=region, service=service)
        return _clients[region, service]


def _shared_client(region: str, service: str, state_credentials: Any = None) -> BaseClient:
    return _client(region, service)


def _clients_with(lambda_client: object) -> Callable[..., object]:
    def client_for(region: str, service: str, state_credentials: Any = None) -> object:
        return lambda_client if service == "lambda" else _client(region, service)

    return client_for


_partition_hint = threading.local()
_original_query = Table.query
_original_all_items = Table.all_items


def _query(table: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    # Positional as DynamoDBBackend.query passes them: index_name is the 8th argument of Table.query.
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    if index_name is not None or hash_key is None:
        return _original_query(table, hash_key, *args, **kwargs)
    _partition_hint.key = (table, hash_key)
    try:
        return _original_query(table, hash_key, *args, **kwargs)
    finally:
        _partition_hint.key = None


def _all_items(table: Table) -> list[Any]:
    hint = getattr(_partition_hint, "key", None)
    if hint is None or hint[0] is not table:
        return _original_all_items(table)
    partition = table.items.get(hint[1])
    if partition is None:
        return []
    if not table.range_key_attr:
        return [partition]
    return sorted(partition.values(), key=lambda item: item.range_key)


def _parsed_once(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """`parse` with a cache: a parsed path is not changed by use, so each distinct path is parsed once."""
    return cache(parse)


_original_method_names = moto_responses.method_names_from_class  # type: ignore[attr-defined]  # a seam


def _default_session() -> boto3.session.Session:
    """What moto's region listing gets for a `Session()`: boto3's default session (the stack's clients'),
    whose loader has the endpoint data decoded already. The regions are read from botocore's data alone."""
    return boto3._get_default_session()


@cache
def _method_names(clazz: type) -> list[str]:
    # The response classes are fixed at import; their method names never change while moto runs.
    return _original_method_names(clazz)


def _iam_request(**request: Any) -> Any:
    """moto's IAMRequest for a request to be checked, imported then (moto calls it only past the threshold)."""
    from moto.iam.access_control import IAMRequest

    return IAMRequest(**request)


def _authorize_normal_action(self: ActionAuthenticatorMixin, resource: str = "*") -> None:
    self._authenticate_and_authorize_action(_iam_request, resource)  # type: ignore[arg-type]  # called like the class


def _epoch_seconds(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@cache
def _zone_of_utc_text() -> tzinfo | None:
    """What dateutil makes of 'Z': tzlocal() where this machine's zone is called UTC, else its tzutc()."""
    return DEFAULT_TIMESTAMP_PARSER("2000-01-01T00:00:00.000Z").tzinfo  # type: ignore[no-any-return]


# moto's form (iso_8601_datetime_with_milliseconds) and its kin, which datetime and dateutil read alike.
_UTC_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z")


def timestamp_parser(value: Any) -> datetime:
    if isinstance(value, str) and _UTC_TEXT.fullmatch(value):
        try:
            return datetime.fromisoformat(value).replace(tzinfo=_zone_of_utc_text())
        except ValueError:  # a date that does not exist (2026-02-30): botocore's own error
            pass
    parsed: datetime = DEFAULT_TIMESTAMP_PARSER(value)
    return parsed


def _execution_history_as_json(response: StepFunctionResponse) -> str:
    history = response.stepfunction_backend.get_execution_history(response._get_param("executionArn"))
    return json.dumps(history, default=_epoch_seconds)


_original_compile_builder = Rule._compile_builder


def _builder_compiled_on_first_use(rule: Rule, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
    # werkzeug compiles two URL builders per rule (Python source, through ast) as a map is made; moto's
    # routers only ever match URLs, so a builder is compiled if and when a URL is built.
    compiled: list[Callable[..., tuple[str, str]]] = []

    def build(self: Rule, *args: Any, **kwargs: Any) -> tuple[str, str]:
        if not compiled:
            compiled.append(_original_compile_builder(self, append_unknown).__get__(self, None))
        return compiled[0](*args, **kwargs)

    return build


_original_dynamo_execute_result = DynamoResult.execute_result
# A scalar the generic serializer writes as it is (blobs are base64-encoded and timestamps formatted there).
_AS_IS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "long": (int,),
    "double": (int, float),
    "float": (int, float),
}


def _as_is(value: Any, shape: Shape) -> bool:
    """True if moto's generic JSON serializer would write `value` unchanged: every key a member of its shape,
    no None, no blob or timestamp (bytes and dates are converted there, and left to it)."""
    kind = shape.type_name
    if kind == "structure":
        members = shape.members
        return isinstance(value, dict) and all(
            name in members and item is not None and _as_is(item, members[name]) for name, item in value.items()
        )
    if kind == "map":
        return isinstance(value, dict) and all(
            isinstance(name, str) and item is not None and _as_is(item, shape.value) for name, item in value.items()
        )
    if kind == "list":
        return isinstance(value, list) and all(item is not None and _as_is(item, shape.member) for item in value)
    if kind == "string" and shape.serialization.get("jsonvalue"):
        return False
    types = _AS_IS.get(kind)
    return types is not None and isinstance(value, types) and (kind == "boolean" or not isinstance(value, bool))


def _dynamo_result_as_json(result: DynamoResult, context: Any) -> Any:
    """moto's generic serializer walks every possible member of the output shape for every item (a Query's
    items, a BatchGetItem's): when the result is already what it would write, write it as it is, through the
    same serializer's body and headers."""
    output_shape = context.operation_model.output_shape
    transformers = getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None)
    if output_shape is None or transformers or not _as_is(result.result, output_shape):
        return _original_dynamo_execute_result(result, context)
    serializer = context.serializer_class(
        operation_model=context.operation_model, pretty_print=moto_settings.PRETTIFY_RESPONSES
    )
    response = serializer._serialized_result_to_response(
        serializer._create_default_response(), result.result, output_shape, result.result
    )
    return response["status_code"], response["headers"], response["body"]


def warm_up(definitions: list[str]) -> None:
    """Fill moto's lazily built, unlocked caches before many threads race to fill them: the routers of the
    services the stack's clients and the definitions' tasks call (Lambda's: InvokeOnlyClient calls none)."""
    for service in sorted({"dynamodb", "stepfunctions"}.union(*map(services_called, definitions)) - {"lambda"}):
        router = get_service_router(service)
        router._get_router(str(router._service_model.protocol))  # the protocol's router, made on first use


def services_called(definition: str) -> set[str]:
    """The services whose integrations the definition's Task states call (arn:aws:states:::dynamodb:putItem)."""
    return set(re.findall(r'"arn:aws:states:::([a-z0-9-]+):', definition))


def patches(lambda_client: object | None = None) -> list[tuple[object, str, object]]:
    """(owner, attribute, replacement) triples for the embedded stack to apply and undo; with a
    `lambda_client`, the interpreter's Lambda tasks call it instead of moto's Lambda API."""
    _clients.clear()  # clients belong to one mock session
    return [
        (moto_responses, "method_names_from_class", _method_names),
        (ActionAuthenticatorMixin, "_authenticate_and_authorize_normal_action", _authorize_normal_action),
        (moto_base_backend, "Session", _default_session),
        (Rule, "_compile_builder", _builder_compiled_on_first_use),
        (StepFunctionResponse, "get_execution_history", _execution_history_as_json),
        (moto_json_path, "parse", _parsed_once(moto_json_path.parse)),  # type: ignore[attr-defined]
        (moto_result_path, "parse", _parsed_once(moto_result_path.parse)),  # type: ignore[attr-defined]
        (DynamoResult, "execute_result", _dynamo_result_as_json),
        (Table, "query", _query),
        (Table, "all_items", _all_items),
        (execution_worker, "AmazonStateLanguageParser", PARSED_DEFINITIONS),
        (stepfunctions_models, "AmazonStateLanguageParser", PARSED_DEFINITIONS),
        (
            lambda_eval_utils,
            "boto_client_for",
            _shared_client if lambda_client is None else _clients_with(lambda_client),
        ),
        (state_task_service_dynamodb, "boto_client_for", _shared_client),
    ]
