"""Lambda for the local endpoint: the deployed zip, run in warm execution environments.

Each function's registered code (the zip CloudFormation took from S3) is unpacked once per code
hash, and runs in its own processes of the runtime's Python (lambda_worker.py): one process per
execution environment, started on demand (a cold start), reused by later invocations, several at
once per function when invocations overlap, up to a bound. A handler that runs past the function's
Timeout is killed and reported as Lambda reports it (Sandbox.Timedout); a process that dies is an
unhandled error (Runtime.ExitError) and is replaced on the next invocation. Nothing here imports moto.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sagatools.emulation.execution_environment import (
    WORKER,
    WORKER_INTERPRETER,
    EnvironmentFailed,
    ExecutionEnvironment,
    FunctionVersion,
)
from sagatools.emulation.fork_server import ForkServer

ENVIRONMENTS_PER_FUNCTION = 4
# A function's log is rotated past this size: copied to <function>.log.1 (the one before is dropped), then
# emptied in place, which the environments writing to it (in append mode) carry on with.
LOG_ROTATE_BYTES = 20 * 1024 * 1024


@dataclass
class Statistics:
    invocations: int = 0
    cold_starts: int = 0
    timeouts: int = 0
    crashes: int = 0
    started_at: float = field(default_factory=time.monotonic)


class WarmLambda:
    """The pool of execution environments of every function, created on demand and reused."""

    def __init__(
        self,
        python: str,
        work_dir: Path,
        base_env: dict[str, str],
        per_function: int = ENVIRONMENTS_PER_FUNCTION,
        fork: bool = True,
    ) -> None:
        self.python = python
        self.work_dir = work_dir
        self.base_env = base_env
        self.per_function = per_function
        # Environments are forked from one process that has imported the libraries (fork_server.py).
        self.forks: ForkServer | None = ForkServer(python, WORKER, {**base_env, **WORKER_INTERPRETER}) if fork else None
        self.log_rotate_bytes = LOG_ROTATE_BYTES
        self.statistics = Statistics()
        self._idle: dict[tuple[str, str, str], list[ExecutionEnvironment]] = {}
        self._busy: dict[tuple[str, str, str], int] = {}
        self._all: list[ExecutionEnvironment] = []
        self._changed = threading.Condition()
        self._unpack_lock = threading.Lock()
        self._logs: dict[str, IO[str]] = {}
        self._retired: set[str] = set()  # functions deleted: their busy environments end with their call
        # The queue clock: seconds during which some invocation waited for an environment (see queue_clock).
        self._waiting = 0
        self._queued_total = 0.0
        self._queued_since = 0.0

    def invoke(self, function: FunctionVersion, code: bytes, payload: str) -> tuple[bytes, bool]:
        """(response payload, whether it is a function error) for one invocation."""
        self._rotate(function.name)
        environment = self._acquire(function, code)
        try:
            answer = environment.invoke(payload, function.timeout_seconds)
        except EnvironmentFailed as failure:
            self._retire(environment, failure)
            error = {"errorType": failure.error_type, "errorMessage": str(failure)}
            return json.dumps(error).encode(), True
        self._release(environment)
        if "error" in answer:
            return json.dumps(answer["error"]).encode(), True
        return str(answer["result"]).encode(), False

    def _acquire(self, function: FunctionVersion, code: bytes) -> ExecutionEnvironment:
        key = function.key
        environment: ExecutionEnvironment | None
        with self._changed:
            self.statistics.invocations += 1
            self._retired.discard(function.name)  # deployed again after a remove
            self._retire_other_versions(function)
            while True:
                idle = self._idle.setdefault(key, [])
                while idle and idle[-1].process.poll() is not None:
                    # Died while idle (killed, out of memory): Lambda would not hand it an invocation.
                    dead = idle.pop()
                    dead.kill()
                    self._all.remove(dead)
                    self.statistics.crashes += 1
                if idle:
                    environment = idle.pop()
                    break
                if self._busy.get(key, 0) < self.per_function:
                    environment = None
                    break
                self._queue(+1)
                try:
                    self._changed.wait()
                finally:
                    self._queue(-1)
            self._busy[key] = self._busy.get(key, 0) + 1
        if environment is None:
            try:
                environment = self._start(function, code)
            except BaseException:
                with self._changed:
                    self._busy[key] -= 1
                    self._changed.notify_all()
                raise
        return environment

    def _queue(self, change: int) -> None:
        """An invocation starts (+1) or stops (-1) waiting for an environment. Holds self._changed."""
        now = time.monotonic()
        if self._waiting == 0 and change > 0:
            self._queued_since = now
        self._waiting += change
        if self._waiting == 0:
            self._queued_total += now - self._queued_since

    def queue_clock(self) -> float:
        """Seconds, so far, during which at least one invocation waited for a free environment. On AWS an
        invocation never waits for one (Lambda scales out, or throttles); a Task's timeout here is
        lengthened by the queue clock's advance, so waiting in line is not the function's time."""
        with self._changed:
            ongoing = time.monotonic() - self._queued_since if self._waiting else 0.0
            return self._queued_total + ongoing

    def _retire_other_versions(self, function: FunctionVersion) -> None:
        """A redeploy makes a new version of the function: its old idle environments are retired now
        (busy ones when their invocation ends, in _release). Holds self._changed."""
        self._retire_idle(lambda key: key[0] == function.name and key != function.key)

    def retire_function(self, name: str) -> None:
        """The function was deleted (a remove, or a redeploy that replaced it): retire its idle environments."""
        with self._changed:
            self._retire_idle(lambda key: key[0] == name)
            self._retired.add(name)

    def _retire_idle(self, retired: Callable[[tuple[str, str, str]], bool]) -> None:
        """Close, in the background, every idle environment whose version `retired` names. Holds self._changed."""
        for key in [key for key in self._idle if retired(key)]:
            for old in self._idle.pop(key):
                self._retire_in_background(old)

    def _retire_in_background(self, environment: ExecutionEnvironment) -> None:
        self._all.remove(environment)
        threading.Thread(target=environment.close, daemon=True).start()

    def environments(self) -> int:
        """How many execution environments run now (for tests and status)."""
        with self._changed:
            return len(self._all)

    def _start(self, function: FunctionVersion, code: bytes) -> ExecutionEnvironment:
        task_root = self._unpacked(function.code_sha, code)
        environment = ExecutionEnvironment(
            self.python, task_root, function, self.base_env, self._log(function.name), self.forks
        )
        with self._changed:
            self.statistics.cold_starts += 1
            self._all.append(environment)
        return environment

    def _release(self, environment: ExecutionEnvironment) -> None:
        key = environment.function.key
        with self._changed:
            self._busy[key] -= 1
            newer = any(other[0] == key[0] and other != key for other in self._idle)
            if newer or key[0] in self._retired:  # its version was replaced or deleted meanwhile
                self._retire_in_background(environment)
            else:
                self._idle.setdefault(key, []).append(environment)
            self._changed.notify_all()

    def _retire(self, environment: ExecutionEnvironment, failure: EnvironmentFailed) -> None:
        key = environment.function.key
        with self._changed:
            self._busy[key] -= 1
            if failure.error_type == "Sandbox.Timedout":
                self.statistics.timeouts += 1
            else:
                self.statistics.crashes += 1
            self._all.remove(environment)
            self._changed.notify_all()

    def _unpacked(self, code_sha: str, code: bytes) -> Path:
        safe = "".join(c if c.isalnum() else "_" for c in code_sha) or "empty"
        task_root = self.work_dir / "code" / safe
        with self._unpack_lock:
            if not (task_root / ".unpacked").exists():
                task_root.mkdir(parents=True, exist_ok=True)
                with zipfile.ZipFile(io.BytesIO(code)) as archive:
                    archive.extractall(task_root)
                (task_root / ".unpacked").touch()
        return task_root

    def _rotate(self, function_name: str) -> None:
        path = self.work_dir / "logs" / f"{function_name}.log"
        with self._unpack_lock:
            try:
                if path.stat().st_size <= self.log_rotate_bytes:
                    return
                shutil.copyfile(path, path.with_name(path.name + ".1"))
                os.truncate(path, 0)
            except OSError:
                return  # no log yet, or a disk too full to copy it: the lines are dropped, not the call

    def _log(self, function_name: str) -> IO[str]:
        with self._unpack_lock:
            if function_name not in self._logs:
                directory = self.work_dir / "logs"
                directory.mkdir(parents=True, exist_ok=True)
                self._logs[function_name] = (directory / f"{function_name}.log").open(
                    "a", buffering=1, encoding="utf-8"
                )
            return self._logs[function_name]

    def close(self) -> None:
        with self._changed:
            environments, self._all = self._all, []
            self._idle.clear()
        for environment in environments:  # all of them wind down at once, then each is waited for
            environment.end_input()
        for environment in environments:
            environment.close()
        if self.forks is not None:  # after the environments: it reports their exit
            self.forks.close()
        for log in self._logs.values():
            log.close()
