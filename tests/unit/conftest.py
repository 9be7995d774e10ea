"""The unit tier: saga/ and the handlers on plain moto DynamoDB (mock_aws), no state machine."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from saga.clients import dynamodb_client
from saga.settings import Settings, get_settings
from sagatools.emulation.environment import EMBEDDED_STAGE, FAKE_ENVIRONMENT, LOCAL_ENVIRONMENT, REGION
from sagatools.emulation.in_process_lambda import LocalLambdaContext
from sagatools.results import SagaReader
from sagatools.serverless_config import load_service_config

CONFIG = load_service_config(EMBEDDED_STAGE)


@pytest.fixture(scope="module")
def _tables() -> Iterator[Any]:
    """moto with the stage's tables and the functions' environment, once per module (creating tables costs)."""
    with pytest.MonkeyPatch.context() as environment:
        for name, value in {**FAKE_ENVIRONMENT, **CONFIG.process_environment, **LOCAL_ENVIRONMENT}.items():
            environment.setenv(name, value)
        get_settings.cache_clear()
        dynamodb_client.cache_clear()
        with mock_aws():
            client = boto3.client("dynamodb", region_name=REGION)
            for request in CONFIG.create_table_requests():
                client.create_table(**request)
            yield client
        get_settings.cache_clear()
        dynamodb_client.cache_clear()


@pytest.fixture
def dynamodb(_tables: Any) -> Iterator[Any]:
    """A DynamoDB client on moto; every table is empty when the test starts."""
    yield _tables
    for request in CONFIG.create_table_requests():
        keys = [schema["AttributeName"] for schema in request["KeySchema"]]
        names = {f"#key{n}": key for n, key in enumerate(keys)}  # a key may be a reserved word (`key`)
        items = _tables.scan(
            TableName=request["TableName"], ProjectionExpression=", ".join(names), ExpressionAttributeNames=names
        )["Items"]
        for start in range(0, len(items), 25):  # BatchWriteItem's most
            deletes = [{"DeleteRequest": {"Key": item}} for item in items[start : start + 25]]
            _tables.batch_write_item(RequestItems={request["TableName"]: deletes})


@pytest.fixture
def settings(dynamodb: Any) -> Settings:
    return Settings.read(os.environ)


@pytest.fixture
def reader(settings: Settings, dynamodb: Any) -> SagaReader:
    return SagaReader(settings, dynamodb)


@pytest.fixture
def invoke_step(dynamodb: Any) -> Callable[..., dict[str, Any]]:
    """Calls a real handler module directly, as Lambda would."""

    def invoke(step: str, request: dict[str, Any], retry_count: int = 0) -> dict[str, Any]:
        module = importlib.import_module(f"functions.{step}")  # after the environment is set, as on Lambda
        context = LocalLambdaContext(
            function_name=step,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:{step}",
            memory_limit_in_mb=256,
            timeout_seconds=10,
        )
        event = {"request": request, "retry_count": retry_count, "execution_id": f"test-{step}"}
        result: dict[str, Any] = module.handler(event, context)
        return result

    return invoke
