"""What moto does slowly and the embedded stack does once, none of which changes what an API call answers.

Each is a speed-up in the sense of changes.py: checked when applied, skipped (one line on stderr) where it
does not fit the installed moto. Kept where a profile of a run showed it earns its lines:
- the definition is parsed once (ANTLR, 100-150 ms for ours, and again for every execution), and the
  program kept on disk for the next run (ParsedDefinitions);
- on the local endpoint, the interpreter's Lambda tasks share one boto3 client per region instead of
  building one per task (~5 ms each);
- every JSONPath the interpreter evaluates is parsed once per distinct path (jsonpath-ng's yacc parser);
- GetExecutionHistory is written as JSON directly (moto's generic serializer visits ~60 members per
  event: 10-20 ms a call, and the runner reads every saga's history);
- a Query on a table's key looks at that partition only (moto sorts and scans the whole table: most of a
  200-saga batch's time);
- moto lists a service's regions from boto3's default session rather than a Session of its own (~30 ms of
  every start).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from sagatools.emulation.changes import Change, Replacement, expect, expect_parameters, parameters
from sagatools.run_cache import DiskCache, code_fingerprint

if TYPE_CHECKING:
    from botocore.client import BaseClient


class ParsedDefinitions:
    """Stands in for AmazonStateLanguageParser where moto validates a definition and where each execution
    parses it: one parse per definition, shared by every stack in the process and kept on disk between runs.

    The parsed program holds no per-execution state (that lives in each execution's Environment). On disk
    it is keyed by the definition's text and by the content of moto's ASL code, so a changed definition or
    another moto is a new parse, never a stale program.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parsed: dict[str, Any] = {}
        self._disk = DiskCache("asl-programs")
        self._code = ""

    def parse(self, definition: str) -> tuple[Any, None]:
        from moto.stepfunctions.parser.asl.parse import asl_parser

        with self._lock:  # ANTLR's parser is not meant to be shared across threads while it parses
            if definition not in self._parsed:
                if not self._code:
                    self._code = code_fingerprint(Path(asl_parser.__file__).parents[2])
                self._parsed[definition] = self._disk.get_or_make(
                    (self._code, definition), lambda: asl_parser.AmazonStateLanguageParser.parse(definition)[0]
                )
            # moto's callers read the program only (the parse tree is for its static analyser, not run here).
            return self._parsed[definition], None


PARSED_DEFINITIONS = ParsedDefinitions()


def _parsed_once() -> list[Replacement]:
    from moto.stepfunctions.parser import models as stepfunctions_models
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend import execution_worker

    expect_parameters(AmazonStateLanguageParser.parse, ["definition"])
    return [
        (execution_worker, "AmazonStateLanguageParser", PARSED_DEFINITIONS),
        (stepfunctions_models, "AmazonStateLanguageParser", PARSED_DEFINITIONS),
    ]


_clients: dict[tuple[str, str], BaseClient] = {}
_clients_lock = threading.Lock()


def _shared_client(region: str, service: str, state_credentials: Any = None) -> BaseClient:
    """One client per region and service, made when a task first calls it: under a lock, as executions'
    threads may reach their first such task at once."""
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    with _clients_lock:
        if (region, service) not in _clients:
            _clients[region, service] = boto_client_for(region=region, service=service)
        return _clients[region, service]


def _shared_lambda_task_clients() -> list[Replacement]:
    """The local endpoint's Lambda tasks (the embedded stack has its own in-process client instead)."""
    _clients.clear()  # clients belong to one endpoint's session
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    expect_parameters(lambda_eval_utils.boto_client_for, ["region", "service", "state_credentials"])  # type: ignore[attr-defined]
    return [(lambda_eval_utils, "boto_client_for", _shared_client)]


SHARED_LAMBDA_TASK_CLIENTS = Change(
    "one boto3 client for the interpreter's Lambda tasks", False, _shared_lambda_task_clients
)


def _json_paths_parsed_once() -> list[Replacement]:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    # A parsed path is not changed by use, so each distinct path is parsed once.
    expect_parameters(json_path.parse, ["path", "debug"])  # type: ignore[attr-defined]
    expect_parameters(result_path.parse, ["string"])  # type: ignore[attr-defined]
    return [(json_path, "parse", cache(json_path.parse)), (result_path, "parse", cache(result_path.parse))]  # type: ignore[attr-defined]


def _epoch_seconds(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _history_as_json() -> list[Replacement]:
    from moto.stepfunctions.responses import StepFunctionResponse

    expect_parameters(StepFunctionResponse.get_execution_history, ["self"])

    def get_execution_history(response: StepFunctionResponse) -> str:
        history = response.stepfunction_backend.get_execution_history(response._get_param("executionArn"))
        return json.dumps(history, default=_epoch_seconds)

    return [(StepFunctionResponse, "get_execution_history", get_execution_history)]


_partition_hint = threading.local()


def _partition_queries() -> list[Replacement]:
    from moto.dynamodb.models.table import Table

    query, all_items = Table.query, Table.all_items
    # index_name is read as the 8th positional argument of Table.query, as DynamoDBBackend.query passes it.
    expect(parameters(query)[:9] == PARTITION_QUERY_PARAMETERS, "Table.query's parameters")
    expect_parameters(all_items, ["self"])

    def partition_query(table: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name is not None or hash_key is None:
            return query(table, hash_key, *args, **kwargs)
        _partition_hint.key = (table, hash_key)
        try:
            return query(table, hash_key, *args, **kwargs)
        finally:
            _partition_hint.key = None

    def partition_items(table: Table) -> list[Any]:
        hint = getattr(_partition_hint, "key", None)
        if hint is None or hint[0] is not table:
            return all_items(table)
        partition = table.items.get(hint[1])
        if partition is None:
            return []
        if not table.range_key_attr:
            return [partition]
        return sorted(partition.values(), key=lambda item: item.range_key)

    return [(Table, "query", partition_query), (Table, "all_items", partition_items)]


PARTITION_QUERY_PARAMETERS = [
    "self",
    "hash_key",
    "range_comparison",
    "range_objs",
    "limit",
    "exclusive_start_key",
    "scan_index_forward",
    "projection_expressions",
    "index_name",
]


def _regions_from_the_default_session() -> list[Replacement]:
    from moto.core import base_backend

    # moto makes a Session only to list a service's regions (BaseBackend.get_available_regions / the
    # BackendDict): boto3's default session answers that from the same botocore data, already loaded.
    expect(base_backend.Session is boto3.Session, "moto.core.base_backend.Session")  # type: ignore[attr-defined]
    return [(base_backend, "Session", boto3._get_default_session)]


def _one_model_loader() -> list[Replacement]:
    from moto.core import utils
    from moto.core.loaders import create_loader

    # moto makes a new botocore loader for every service model it reads (its routers', its serializers'),
    # and each new loader lists every service's folder again before it reads one (~20 ms each). One loader
    # keeps botocore's own cache of what it listed and read; the models it returns are the same.
    expect(utils.create_loader is create_loader, "moto.core.utils.create_loader")  # type: ignore[attr-defined]
    expect_parameters(create_loader, [])
    return [(utils, "create_loader", cache(create_loader))]


def _method_names_listed_once() -> list[Replacement]:
    from moto.core import responses

    # moto lists a response class's methods (inspect.getmembers) on every request it dispatches; the classes
    # are fixed once imported, so each is listed once.
    names = responses.method_names_from_class  # type: ignore[attr-defined]
    expect_parameters(names, ["clazz"])
    return [(responses, "method_names_from_class", cache(names))]


SPEED_UPS = (
    Change("a definition parsed once, kept in the run cache", False, _parsed_once),
    Change("each JSONPath parsed once", False, _json_paths_parsed_once),
    Change("execution history written as JSON", False, _history_as_json),
    Change("a Query on a table's key reads its partition only", False, _partition_queries),
    Change("regions listed from boto3's default session", False, _regions_from_the_default_session),
    Change("one botocore loader for moto's service models", False, _one_model_loader),
    Change("a response class's methods listed once", False, _method_names_listed_once),
)


def warm_up(definitions: list[str]) -> None:
    """Fill moto's lazily built, unlocked caches before many threads race to fill them: the routers of the
    services the stack's clients and the definitions' tasks call (Lambda's: InvokeOnlyClient calls none).
    A router left unbuilt here is built by the first request, as moto does."""
    try:
        from moto.core.routing import get_service_router

        for service in sorted({"dynamodb", "stepfunctions"}.union(*map(services_called, definitions)) - {"lambda"}):
            router = get_service_router(service)
            router._get_router(str(router._service_model.protocol))  # the protocol's router, made on first use
    except (ImportError, AttributeError, TypeError):
        return


def services_called(definition: str) -> set[str]:
    """The services whose integrations the definition's Task states call (arn:aws:states:::dynamodb:putItem)."""
    return set(re.findall(r'"arn:aws:states:::([a-z0-9-]+):', definition))


def _url_builders_compiled_when_used() -> list[Replacement]:
    from werkzeug.routing.rules import Rule

    compile_builder = Rule._compile_builder
    expect_parameters(compile_builder, ["self", "append_unknown"])

    def lazily_compiled(rule: Rule, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        # werkzeug compiles two URL builders per rule (Python source, through ast) as a map is made; moto's
        # routers only ever match URLs, so a builder is compiled if and when a URL is built.
        compiled: list[Callable[..., tuple[str, str]]] = []

        def build(self: Rule, *args: Any, **kwargs: Any) -> tuple[str, str]:
            if not compiled:
                compiled.append(compile_builder(self, append_unknown).__get__(self, None))
            return compiled[0](*args, **kwargs)

        return build

    return [(Rule, "_compile_builder", lazily_compiled)]


URL_BUILDERS = Change("werkzeug's URL builders compiled when used", False, _url_builders_compiled_when_used)
