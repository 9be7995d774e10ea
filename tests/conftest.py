"""Fixtures: the embedded stack (moto started before any client exists), trip requests, a saga runner."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from saga.models import parse_trip_request
from sagatools.emulation.embedded import EmbeddedStack
from sagatools.emulation.in_process_lambda import LocalLambdaContext
from sagatools.results import SagaResult, TripReader
from sagatools.runner import SagaRunner, TripFile


@pytest.fixture
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack() as embedded:
        yield embedded


@pytest.fixture
def run_sagas(stack: EmbeddedStack) -> Callable[..., list[SagaResult]]:
    """Runs requests concurrently through the real ASL on the embedded stack, as runtest.sh does."""

    def run(*requests: dict[str, Any]) -> list[SagaResult]:
        runner = SagaRunner(
            stack.stepfunctions,
            stack.state_machine_arn,
            TripReader(stack.settings, stack.dynamodb),
            poll_seconds=0.005,
            timeout_seconds=120,
        )
        return runner.run([TripFile(f"{r['trip_id']}.json", parse_trip_request(r)) for r in requests])

    return run


@pytest.fixture
def run_saga(run_sagas: Callable[..., list[SagaResult]]) -> Callable[[dict[str, Any]], SagaResult]:
    return lambda request: run_sagas(request)[0]


@pytest.fixture
def invoke_step(stack: EmbeddedStack) -> Callable[..., dict[str, Any]]:
    """Calls a real handler module directly, as Lambda would, with the embedded stack's tables."""

    def invoke(step: str, request: dict[str, Any], retry_count: int = 0) -> dict[str, Any]:
        module = importlib.import_module(f"functions.{step}")
        context = LocalLambdaContext(
            function_name=step,
            invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{step}",
            memory_limit_in_mb=256,
            timeout_seconds=10,
        )
        event = {"request": request, "retry_count": retry_count, "execution_id": f"test-{step}"}
        return module.handler(event, context)

    return invoke


@pytest.fixture
def reader(stack: EmbeddedStack) -> TripReader:
    return TripReader(stack.settings, stack.dynamodb)
