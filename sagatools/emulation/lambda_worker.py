"""One warm Lambda execution environment: runs inside the runtime's Python, with the standard library only.

Started by warm_lambda.py with the function's code unpacked in LAMBDA_TASK_ROOT (as /var/task on
Lambda), its environment, and _HANDLER naming the handler. It imports the handler once (the cold
start, said by one line {"initialised": true}), then answers invocations until its stdin closes: one
JSON request per line on stdin, one JSON response per line on the file descriptor named by
LAMBDA_WORKER_RESPONSE_FD. The handler's own output (stdout, stderr: its logs) goes wherever the
parent sent them, as on Lambda.

Started with --fork-server, it is the pool's fork server instead (fork_server.py): it imports the runtime's
and the layer's libraries once (PRELOADED: most of a cold start), then forks one worker per environment
asked for, each of which goes on as a worker started fresh would, with the environment, folder and
descriptors it was sent. It says what a fork must agree with (the environment variables the imports read,
the modules they loaded), so that a worker is forked only where a fresh one would import the same.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import select
import signal
import socket
import sys
import threading
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


# The runtime's and the Powertools layer's libraries, in the order a handler imports them. Not the Tracer:
# the X-Ray SDK reads the function's own variables (LAMBDA_TASK_ROOT among them) when it is imported.
PRELOADED = (
    "boto3",
    "botocore.session",
    "botocore.client",
    "pydantic",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.utilities.parser",
)


def _preload() -> dict[str, Any]:
    """Import PRELOADED (what is not installed is left out); return what a fork must agree with: the
    environment variables read meanwhile (None: all of them were) and the top-level modules now loaded."""
    read: set[str] = set()
    environ_class = type(os.environ)
    getitem, iterate = environ_class.__getitem__, environ_class.__iter__

    def recorded_getitem(self: Any, key: str) -> str:
        read.add(key)
        return getitem(self, key)

    def recorded_iter(self: Any) -> Any:
        read.add("*")
        return iterate(self)

    environ_class.__getitem__, environ_class.__iter__ = recorded_getitem, recorded_iter  # type: ignore[method-assign]
    try:
        for name in PRELOADED:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
    finally:
        environ_class.__getitem__, environ_class.__iter__ = getitem, iterate  # type: ignore[method-assign]
    forkable = "*" not in read and threading.active_count() == 1  # a thread would not survive the fork
    return {
        "environment": {key: os.environ.get(key) for key in sorted(read)} if forkable else None,
        "modules": sorted({name.partition(".")[0] for name in sys.modules}),
    }


def serve_forks(control: socket.socket) -> None:
    """Fork a worker for each request on `control` (one message: JSON and four descriptors) until it closes;
    tell each request's report socket the worker's pid, then its exit code once it has ended."""
    control.sendall((json.dumps(_preload()) + "\n").encode())
    reports: dict[int, socket.socket] = {}
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    while True:
        ready, _, _ = select.select([control.fileno(), wake_read], [], [])
        if wake_read in ready:
            os.read(wake_read, 4096)
            _reap(reports)
        if control.fileno() in ready:
            message, fds, _, _ = socket.recv_fds(control, 1 << 20, 4)
            if not message:
                return  # the pool is gone; the workers end when their input closes
            report = socket.socket(fileno=fds[3])
            pid = os.fork()
            if pid == 0:
                for closed in (control, *reports.values()):
                    closed.close()
                for fd in (wake_read, wake_write):
                    os.close(fd)
                _become_worker(json.loads(message), fds[:3], report)
            for fd in fds[:3]:
                os.close(fd)
            reports[pid] = report
            report.sendall(f"{pid}\n".encode())


def _reap(reports: dict[int, socket.socket]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        report = reports.pop(pid, None)
        if report is not None:
            with contextlib.suppress(OSError):
                report.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            report.close()


def _become_worker(request: dict[str, Any], fds: list[int], report: socket.socket) -> None:
    """In the forked child: the descriptors, variables, folder and signals of a worker started fresh, then
    main(); the process ends as that interpreter would (exit code, atexit)."""
    code: Any = 0
    try:
        report.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        stdin, log, response = fds
        os.dup2(stdin, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(stdin)
        os.close(log)
        os.environ.clear()
        os.environ.update(request["environment"])
        os.environ["LAMBDA_WORKER_RESPONSE_FD"] = str(response)
        os.chdir(request["cwd"])
        del sys.argv[1:]
        main()
    except SystemExit as exit_:
        code = exit_.code
    except BaseException:  # noqa: BLE001 - what the interpreter would print before exiting with 1
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        if code is not None and not isinstance(code, int):
            with contextlib.suppress(BaseException):
                print(code, file=sys.stderr)
            code = 1
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(code or 0)


if __name__ == "__main__":
    if sys.argv[1:] == ["--fork-server"]:
        serve_forks(socket.socket(fileno=int(os.environ.pop("LAMBDA_FORK_SERVER_FD"))))
    else:
        main()
