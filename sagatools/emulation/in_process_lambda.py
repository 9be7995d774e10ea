"""Lambda, in this process: the handler named in serverless.yml, called as the Lambda runtime would.

Used by the embedded stack in place of moto's Lambda API (embedded.py's `_in_process_lambda`): the
interpreter's Lambda tasks get `InvokeOnlyClient` as their client, so moto's Lambda (and the dozen moto
services its models import) is never loaded. Nothing here imports moto.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import io
import json
import queue
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sagatools.serverless_config import FunctionSpec


@dataclass
class LocalLambdaContext:
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
    nor cheap (waiters starved past their task timeouts in a 200-saga batch).
    """

    def __init__(self, functions: list[FunctionSpec], log_sink: IO[str], arn_of: Callable[[str], str]) -> None:
        self._functions = {spec.name: spec for spec in functions}
        self._arn_of = arn_of
        self._handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
        self._queue: queue.SimpleQueue[_Invocation | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._stopping = False
        self._frozen = threading.Event()
        self.log_sink = log_sink
        self.invocations = 0
        self.invocations_of: collections.Counter[str] = collections.Counter()  # function name -> invocations
        self.handler_seconds = 0.0
        self._running: FunctionSpec | None = None  # the function whose handler the worker runs now

    def start(self) -> None:
        self._stopping = False
        self._frozen.clear()
        self._worker = threading.Thread(target=self._work, name="in-process-lambda", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        """Finish the invocation in progress; those still queued are answered with an error, not run
        (the stack is going away: a run that ends at its --timeout must not wait for them)."""
        if self._worker is not None:
            self._stopping = True
            self._queue.put(None)
            self._worker.join(timeout=10)
            self._worker = None

    def freeze(self) -> None:
        """No invocation runs or returns any more: every execution stays where it is until the process
        ends (a run past its --timeout reads the stack as it stands, without the executions moving on)."""
        self._frozen.set()

    def running_here(self) -> FunctionSpec | None:
        """The function whose handler makes this call: the one running now, if the caller is its worker thread
        (a handler's API calls are made on it; the executions' and the runner's on threads of their own)."""
        return self._running if threading.current_thread() is self._worker else None

    def invoke(self, function_name: str, body: bytes | str, response_headers: dict[str, str]) -> bytes:
        spec = self._functions.get(function_name.split(":")[6] if function_name.startswith("arn:") else function_name)
        if spec is None:
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload("ResourceNotFoundException", f"Function not found: {function_name}")
        invocation = _Invocation(spec, json.loads(body or "{}"), response_headers)
        if self._frozen.is_set():
            threading.Event().wait()  # never answered: this execution thread (a daemon) ends with the process
        self._queue.put(invocation)
        invocation.done.wait()
        return invocation.payload

    def _work(self) -> None:
        while (invocation := self._queue.get()) is not None:
            if self._frozen.is_set():
                continue  # left unanswered, see freeze()
            if self._stopping:
                invocation.response_headers["x-amz-function-error"] = "Unhandled"
                invocation.payload = _error_payload("Lambda.ServiceException", "the embedded stack stopped")
            else:
                with contextlib.redirect_stdout(self.log_sink):
                    invocation.payload = self._run(invocation)
            invocation.done.set()

    def _run(self, invocation: _Invocation) -> bytes:
        spec = invocation.spec
        context = LocalLambdaContext(
            function_name=spec.name,
            invoked_function_arn=self._arn_of(spec.name),
            memory_limit_in_mb=spec.memory_mb,
            timeout_seconds=spec.timeout,
        )
        started = time.perf_counter()
        self._running = spec
        try:
            result = self._handler(spec)(invocation.event, context)
            return json.dumps(result).encode()
        except Exception as error:  # noqa: BLE001 - reported to the caller as the Lambda runtime does
            invocation.response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload(type(error).__name__, str(error), traceback.format_tb(error.__traceback__))
        finally:
            self._running = None
            self.invocations += 1
            self.invocations_of[spec.name] += 1
            self.handler_seconds += time.perf_counter() - started

    def _handler(self, spec: FunctionSpec) -> Callable[[dict[str, Any], Any], Any]:
        if spec.name not in self._handlers:
            module_path, _, attribute = spec.handler.rpartition(".")
            module = importlib.import_module(module_path.replace("/", "."))
            self._handlers[spec.name] = getattr(module, attribute)
        return self._handlers[spec.name]


def _error_payload(error_type: str, message: str, stack: list[str] | None = None) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": stack or []}).encode()


# Past this, moto's Lambda API answers with its ResponseSizeTooLarge error instead of the payload.
_MOTO_PAYLOAD_LIMIT = 6_000_000
_STATUS_OF_INVOCATION_TYPE = {"Event": 202, "DryRun": 204}


class InvokeOnlyClient:
    """The one call moto's interpreter makes of its Lambda client (Invoke), answered with the fields moto's
    Lambda API gives botocore when its invoke runs the handler in this process: the status code, the payload
    and, when the handler raised, the function error. No request is serialised or parsed."""

    def __init__(self, lambdas: InProcessLambda) -> None:
        self._lambdas = lambdas

    def invoke(  # Invoke's own parameter names, as the interpreter passes them
        self,
        FunctionName: str,  # noqa: N803
        Payload: bytes | str = b"",  # noqa: N803
        InvocationType: str = "RequestResponse",  # noqa: N803
        **_: Any,
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        payload = self._lambdas.invoke(FunctionName, Payload, headers)
        if InvocationType != "Event" and sys.getsizeof(payload) > _MOTO_PAYLOAD_LIMIT:
            headers["x-amz-function-error"] = "Unhandled"
            payload = json.dumps(
                {
                    "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
                    "errorType": "Function.ResponseSizeTooLarge",
                }
            ).encode()
        response: dict[str, Any] = {
            "StatusCode": _STATUS_OF_INVOCATION_TYPE.get(InvocationType, 200),
            "Payload": io.BytesIO(payload),
        }
        if "x-amz-function-error" in headers:
            response["FunctionError"] = headers["x-amz-function-error"]
        return response
