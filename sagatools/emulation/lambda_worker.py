"""One warm Lambda execution environment: runs inside the runtime's Python, with the standard library only.

Started by warm_lambda.py with the function's code unpacked in LAMBDA_TASK_ROOT (as /var/task on
Lambda), its environment, and _HANDLER naming the handler. It imports the handler once (the cold
start, said by one line {"initialised": true}), then answers invocations until its stdin closes: one
JSON request per line on stdin, one JSON response per line on the file descriptor named by
LAMBDA_WORKER_RESPONSE_FD. The handler's own output (stdout, stderr: its logs) goes wherever the
parent sent them, as on Lambda.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

# The line a worker writes once its handler is imported (the end of Lambda's Init phase).
INITIALISED = json.dumps({"initialised": True})


class Context:
    """What the Lambda runtime hands a handler (the attributes Powertools and handlers read)."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = request["function_arn"]
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.aws_request_id = request.get("request_id") or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        self._deadline = time.monotonic() + float(request["timeout_seconds"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _Logs:
    """The handler's stdout or stderr, where a write the disk refuses (full) is dropped, not raised: a log
    line must never change what a step does. Said once, on the environment's stderr, if that still can."""

    lost = False

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except OSError as error:
            self._dropped(error)
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as error:
            self._dropped(error)

    def _dropped(self, error: OSError) -> None:
        if not _Logs.lost:
            _Logs.lost = True
            note = f"lambda worker: logs are dropped from here ({error.strerror or error}); outcomes are not\n"
            with contextlib.suppress(OSError):
                os.write(2, note.encode())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _error(error_type: str, message: str, stack: list[str]) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message, "stackTrace": stack}


def _load_handler() -> tuple[Callable[..., Any] | None, dict[str, Any] | None]:
    module_path, _, attribute = os.environ["_HANDLER"].rpartition(".")
    sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
    try:
        module = importlib.import_module(module_path.replace("/", "."))
        return getattr(module, attribute), None
    except Exception as error:  # noqa: BLE001 - reported on every invocation, as Lambda reports an init error
        kind = "Runtime.HandlerNotFound" if isinstance(error, AttributeError) else "Runtime.ImportModuleError"
        return None, _error(kind, f"{type(error).__name__}: {error}", traceback.format_tb(error.__traceback__))


def main() -> None:
    responses = os.fdopen(int(os.environ["LAMBDA_WORKER_RESPONSE_FD"]), "w", buffering=1)
    sys.stdout, sys.stderr = _Logs(sys.stdout), _Logs(sys.stderr)
    handler, init_error = _load_handler()
    responses.write(INITIALISED + "\n")  # the Init phase is over: the function's timeout applies from here
    for line in sys.stdin:
        request = json.loads(line)
        answer: dict[str, Any]
        if handler is None:
            answer = {"error": init_error}
        else:
            try:
                result = handler(json.loads(request["payload"] or "null"), Context(request))
                answer = {"result": json.dumps(result)}
            except Exception as error:  # noqa: BLE001 - an unhandled function error, reported as Lambda does
                answer = {"error": _error(type(error).__name__, str(error), traceback.format_tb(error.__traceback__))}
        sys.stdout.flush()
        sys.stderr.flush()
        responses.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
