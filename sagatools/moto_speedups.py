"""Two costs of moto's Step Functions interpreter that the embedded stack removes.

- Every execution re-parses the definition with ANTLR (~30 ms for ours): parse once per definition.
  The parsed program holds no per-execution state (that lives in each execution's Environment).
- Every Lambda task and DynamoDB task builds a new boto3 client (~5 ms): build one per region and
  service. moto answers every client with the same fake credentials, so nothing else differs.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any

from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_dynamodb
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for
from moto.stepfunctions.parser.backend import execution_worker

if TYPE_CHECKING:
    from botocore.client import BaseClient


class _ParsedOnce:
    """Stands in for AmazonStateLanguageParser in moto's execution worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parsed: dict[str, Any] = {}

    def parse(self, definition: str) -> Any:
        with self._lock:  # ANTLR's parser is not meant to be shared across threads while it parses
            if definition not in self._parsed:
                self._parsed[definition] = AmazonStateLanguageParser.parse(definition)
            return self._parsed[definition]


@cache
def _client(region: str, service: str) -> BaseClient:
    return boto_client_for(region=region, service=service)


def _shared_client(region: str, service: str, state_credentials: Any = None) -> BaseClient:
    return _client(region, service)


def patches() -> list[tuple[object, str, object]]:
    """(owner, attribute, replacement) triples for the embedded stack to apply and undo."""
    _client.cache_clear()  # clients belong to one mock session
    return [
        (execution_worker, "AmazonStateLanguageParser", _ParsedOnce()),
        (lambda_eval_utils, "boto_client_for", _shared_client),
        (state_task_service_dynamodb, "boto_client_for", _shared_client),
    ]
