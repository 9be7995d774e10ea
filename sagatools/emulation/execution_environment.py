"""One Lambda execution environment of the local endpoint: a process of the runtime's Python
(lambda_worker.py) holding one function version's unpacked code, invoked over its pipes, killed when a
handler runs past the function's Timeout (Sandbox.Timedout), failed when it dies (Runtime.ExitError).
Nothing here imports moto.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sagatools.emulation.fork_server import read_line
from sagatools.emulation.lambda_worker import INITIALISED

if TYPE_CHECKING:
    from sagatools.emulation.fork_server import ForkedWorker, ForkServer

WORKER = Path(__file__).with_name("lambda_worker.py")
# How every worker's interpreter runs, started fresh or forked from the fork server (which is started so).
WORKER_INTERPRETER = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
# Lambda's Init phase (the cold start's import of the handler) may take this long, apart from the timeout.
INIT_LIMIT_SECONDS = 10


@dataclass(frozen=True)
class FunctionVersion:
    """What an invocation needs of a function, as the Lambda backend registered it."""

    name: str
    arn: str
    handler: str
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int
    code_sha: str

    @property
    def key(self) -> tuple[str, str, str]:
        # A new deploy changes the code hash or the configuration: its environments are new ones.
        return (self.name, self.code_sha, json.dumps([self.handler, self.environment, self.timeout_seconds]))


class EnvironmentFailed(Exception):
    """The environment cannot answer any more (timed out or died); it has been killed."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class ExecutionEnvironment:
    """One process of the runtime's Python holding one function's code, invoked one request at a time."""

    def __init__(
        self,
        python: str,
        task_root: Path,
        function: FunctionVersion,
        base_env: dict[str, str],
        log: IO[str],
        forks: ForkServer | None = None,
    ) -> None:
        self.function = function
        read_end, write_end = os.pipe()
        environment = {
            **base_env,
            **function.environment,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout_seconds),
            "LAMBDA_TASK_ROOT": str(task_root),
            "_HANDLER": function.handler,
            "LAMBDA_WORKER_RESPONSE_FD": str(write_end),
            **WORKER_INTERPRETER,
        }
        forked = forks.start_worker(task_root, environment, log, write_end) if forks is not None else None
        self.process: subprocess.Popen[str] | ForkedWorker = forked or subprocess.Popen(
            [python, str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            cwd=task_root,
            env=environment,
            pass_fds=(write_end,),
            text=True,
        )
        os.close(write_end)
        self._responses = read_end
        self._pending = bytearray()  # what read_line has read past the last line it returned
        self._started = time.monotonic()
        self._initialised = False

    def invoke(self, payload: str, timeout_seconds: float) -> dict[str, Any]:
        request = {
            "payload": payload,
            "function_arn": self.function.arn,
            "request_id": str(uuid.uuid4()),
            "timeout_seconds": timeout_seconds,
        }
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise self._died() from None
        if not self._initialised:
            # As on Lambda, the Init phase (importing the handler) has a limit of its own and the timeout
            # starts after it; an Init past its limit is finished inside the invocation, on the timeout.
            first = self._read_line(self._started + INIT_LIMIT_SECONDS)
            if first == "":
                raise self._died()
            self._initialised = first == INITIALISED
        deadline = time.monotonic() + timeout_seconds
        line = self._read_line(deadline)
        if line == INITIALISED:  # an Init that ran past its limit, over now
            self._initialised = True
            line = self._read_line(deadline)
        if line is None:
            self.kill()
            raise EnvironmentFailed(
                "Sandbox.Timedout",
                f"RequestId: {request['request_id']} Error: Task timed out after {timeout_seconds:.2f} seconds",
            )
        if not line:
            raise self._died()
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _read_line(self, deadline: float) -> str | None:
        """The worker's next line ('' if it closed its end), or None if none came by `deadline`."""
        return read_line(self._responses, self._pending, deadline)

    def _died(self) -> EnvironmentFailed:
        code = self.process.wait(timeout=5)
        self.kill()
        return EnvironmentFailed("Runtime.ExitError", f"Runtime exited with error: exit status {code}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        self._close_pipes()

    def end_input(self) -> None:
        """No more invocations: the worker exits once it has read to the end (close waits for that)."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()

    def close(self) -> None:
        """End the process the way Lambda retires an environment: no more invocations, then gone."""
        self.end_input()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self._responses >= 0:
            os.close(self._responses)
            self._responses = -1
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
