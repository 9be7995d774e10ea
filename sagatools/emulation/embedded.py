"""The embedded stack: the real ASL and the real handlers on moto, in this process, no AWS account.

- Step Functions: moto's ASL interpreter (`execute_state_machine`), one thread per execution.
- DynamoDB: moto, tables created from serverless.yml.
- Lambda: moto's `awslambda_simple` backend, whose `invoke` is replaced by `InProcessLambda`, which
  imports the handler named in serverless.yml and calls it with a Lambda-like context, one at a time.
- Retry waits: moto sleeps for real in its retrier; here they are recorded and skipped, so a failure
  scenario runs in milliseconds while the ASL keeps its real intervals.
- Transactions: moto's whole-table snapshot is replaced by an item-level undo (transactions.py).
- The definition is parsed once, and the interpreter's boto3 clients are reused (speedups.py).
These seams are moto internals (moto is pinned exactly); tests/test_moto_seams.py fails if one moves.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import queue
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import boto3
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core import DEFAULT_ACCOUNT_ID
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from saga.settings import Settings
from sagatools.asl import STATE_MACHINE_SUFFIX, placeholders, render_definition
from sagatools.emulation import speedups, transactions
from sagatools.serverless_config import FunctionSpec, ServiceConfig, load_service_config

if TYPE_CHECKING:
    from botocore.client import BaseClient

REGION = "us-east-1"
ACCOUNT_ID = DEFAULT_ACCOUNT_ID
_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
# Local-only settings on top of serverless.yml's: fault injection is always on here, and there is no
# X-Ray daemon to send traces to.
_LOCAL_ENVIRONMENT = {"FAULT_INJECTION": "true", "POWERTOOLS_TRACE_DISABLED": "true"}
# moto times a Task by the wall clock, and here that includes the time an invocation waits for the
# one-at-a-time dispatcher behind every other execution's: in a 200-trip batch that queue, not the
# handler, reached the ASL's 30 s and sent sagas down the timeout path. Locally, tasks get 10x.
TIMEOUT_SCALE = 10
# CloudFormation table properties that CreateTable does not take.
_TABLE_PROPERTIES = {"TableName", "AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes"}


@dataclass
class LambdaContext:
    """What the Lambda runtime hands a handler, as far as Powertools and our handlers use it."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class _Invocation:
    spec: FunctionSpec
    event: dict[str, Any]
    response_headers: dict[str, str]
    done: threading.Event = field(default_factory=threading.Event)
    payload: bytes = b""


class InProcessLambda:
    """Runs the real handler of an invoked function in this process, one invocation at a time.

    One at a time because Powertools keeps the correlation id per process, and because every
    DynamoDB write must be serialized (see transactions.py). A single worker takes the
    invocations in arrival order: with hundreds of executions waiting, a plain lock is neither fair
    nor cheap (waiters starved past their task timeouts in a 200-trip batch).
    """

    def __init__(self, functions: list[FunctionSpec], log_sink: IO[str]) -> None:
        self._functions = {spec.name: spec for spec in functions}
        self._handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
        self._queue: queue.SimpleQueue[_Invocation | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self.log_sink = log_sink
        self.invocations = 0
        self.handler_seconds = 0.0

    def start(self) -> None:
        self._worker = threading.Thread(target=self._work, name="in-process-lambda", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=10)
            self._worker = None

    def invoke(self, function_name: str, body: bytes | str, response_headers: dict[str, str]) -> bytes:
        spec = self._functions.get(function_name.split(":")[6] if function_name.startswith("arn:") else function_name)
        if spec is None:
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload("ResourceNotFoundException", f"Function not found: {function_name}")
        invocation = _Invocation(spec, json.loads(body or "{}"), response_headers)
        self._queue.put(invocation)
        invocation.done.wait()
        return invocation.payload

    def _work(self) -> None:
        while (invocation := self._queue.get()) is not None:
            with contextlib.redirect_stdout(self.log_sink):
                invocation.payload = self._run(invocation)
            invocation.done.set()

    def _run(self, invocation: _Invocation) -> bytes:
        spec = invocation.spec
        context = LambdaContext(
            function_name=spec.name,
            invoked_function_arn=function_arn(spec.name),
            memory_limit_in_mb=256,
            timeout_seconds=spec.timeout,
        )
        started = time.perf_counter()
        try:
            result = self._handler(spec)(invocation.event, context)
            return json.dumps(result).encode()
        except Exception as error:  # noqa: BLE001 - reported to the caller as the Lambda runtime does
            invocation.response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload(type(error).__name__, str(error), traceback.format_tb(error.__traceback__))
        finally:
            self.invocations += 1
            self.handler_seconds += time.perf_counter() - started

    def _handler(self, spec: FunctionSpec) -> Callable[[dict[str, Any], Any], Any]:
        if spec.name not in self._handlers:
            module_path, _, attribute = spec.handler.rpartition(".")
            module = importlib.import_module(module_path.replace("/", "."))
            self._handlers[spec.name] = getattr(module, attribute)
        return self._handlers[spec.name]


def _error_payload(error_type: str, message: str, stack: list[str] | None = None) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": stack or []}).encode()


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"


class VirtualRetryClock:
    """Stands in for the `time` module in moto's retrier: waits are recorded, not slept."""

    def __init__(self) -> None:
        self.requested_waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.requested_waits.append(seconds)


class EmbeddedStack:
    """A context manager: inside it, boto3 talks to the embedded stack."""

    def __init__(
        self, stage: str = "local", log_sink: IO[str] | None = None, create_state_machine: bool = True
    ) -> None:
        self._create_state_machine = create_state_machine
        self.config: ServiceConfig = load_service_config(stage)
        self.retry_clock = VirtualRetryClock()
        self.lambdas = InProcessLambda(list(self.config.functions.values()), log_sink or io.StringIO())
        self.state_machine_arn = ""
        self._mock = mock_aws(
            config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        )
        self._saved_environ: dict[str, str | None] = {}
        self._saved_seams: list[tuple[object, str, object]] = []

    def __enter__(self) -> EmbeddedStack:
        # moto's interpreter logs every caught error at ERROR level; the history records them already.
        logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(logging.CRITICAL)
        # A refused request publishes no metric, and Powertools warns about that on every such call.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        self._set_environment({**_FAKE_CREDENTIALS, **self.config.environment, **_LOCAL_ENVIRONMENT})
        self._mock.start()
        self.lambdas.start()
        lambdas = self.lambdas
        self._replace(
            LambdaSimpleBackend,
            "invoke",
            lambda _backend, function_name, _qualifier, body, _headers, response_headers: lambdas.invoke(
                function_name, body, response_headers
            ),
        )
        self._replace(retrier_decl, "time", self.retry_clock)
        for owner, name, replacement in transactions.patches() + speedups.patches():
            self._replace(owner, name, replacement)
        # Powertools' log handler keeps the stream it was created with (stdout): point it at the sink.
        from saga.observability import logger

        self._replace(logger.registered_handler, "stream", self.lambdas.log_sink)
        speedups.warm_up(REGION)
        for properties in self.config.tables.values():
            self.dynamodb.create_table(**{k: v for k, v in properties.items() if k in _TABLE_PROPERTIES})
        if self._create_state_machine:
            self.state_machine_arn = self.stepfunctions.create_state_machine(
                name=self.state_machine_name,
                definition=self.definition,
                roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{self.config.service}-{self.config.stage}-saga",
                type="STANDARD",
            )["stateMachineArn"]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.lambdas.stop()
        for owner, name, original in reversed(self._saved_seams):
            setattr(owner, name, original)
        self._saved_seams.clear()
        self._mock.stop()
        for name, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    @property
    def substitutions(self) -> dict[str, str]:
        values = {spec.step.arn_output: function_arn(spec.name) for spec in self.config.functions.values()}
        values["SagaLogTableName"] = self.config.environment["SAGA_LOG_TABLE"]
        return values

    @property
    def state_machine_name(self) -> str:
        return f"{self.config.service}-{self.config.stage}-{STATE_MACHINE_SUFFIX}"

    @property
    def definition(self) -> str:
        """The ASL as deployed, but with every TimeoutSeconds scaled by TIMEOUT_SCALE (see there)."""
        definition = render_definition(self.substitutions)
        if missing := placeholders(definition):
            raise ValueError(f"the embedded stack has no value for {', '.join(sorted(missing))}")
        parsed = json.loads(definition)
        for state in parsed["States"].values():
            if "TimeoutSeconds" in state:
                state["TimeoutSeconds"] *= TIMEOUT_SCALE
        return json.dumps(parsed)

    @property
    def settings(self) -> Settings:
        """The handlers' settings as the embedded stack sets them (for reading the tables back)."""
        environment = {**self.config.environment, **_LOCAL_ENVIRONMENT}
        return Settings(
            hotel_table=environment["HOTEL_TABLE"],
            flight_table=environment["FLIGHT_TABLE"],
            car_table=environment["CAR_TABLE"],
            saga_log_table=environment["SAGA_LOG_TABLE"],
            fault_injection=environment["FAULT_INJECTION"] == "true",
        )

    def session_client(self, service: str) -> BaseClient:
        return boto3.client(service, region_name=REGION)

    @property
    def stepfunctions(self) -> BaseClient:
        return boto3.client("stepfunctions", region_name=REGION)

    @property
    def dynamodb(self) -> BaseClient:
        return boto3.client("dynamodb", region_name=REGION)

    def _set_environment(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_environ.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _replace(self, owner: object, name: str, value: object) -> None:
        self._saved_seams.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    def original(self, owner: object, name: str) -> object:
        """What a replaced attribute was before the stack started (for tests that compare)."""
        return next(saved for o, n, saved in self._saved_seams if o is owner and n == name)
