"""The local Lambda's fork server: one process of the runtime's Python that has imported the runtime's and
the layer's libraries once (lambda_worker.py --fork-server), from which each execution environment is
forked instead of started fresh. A cold start then imports the function's own code only (about 0.15 s
instead of 1 s here); what the handler's module does at import, Init's limit included, is unchanged.

A worker is forked only where a fresh one would import the same modules: the environment variables
the server's imports read have the same values in the function's environment, and the function's code
holds no top-level module of the same name as one the server loaded. Anywhere else, and whenever the
server cannot answer, the environment is started fresh (execution_environment.py). Nothing here imports moto.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

# How long the server's imports may take before environments are started fresh instead.
READY_SECONDS = 30


def read_line(fd: int, pending: bytearray, deadline: float | None) -> str | None:
    """The next line from `fd` ('' once it is closed), or None if none came by `deadline` (monotonic; None:
    no end). Read
    by hand (os.read into `pending`): a buffered reader could take two lines at once and leave select blind."""
    searched = 0
    while (end := pending.find(b"\n", searched)) < 0:
        searched = len(pending)
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not select.select([fd], [], [], timeout)[0]:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return ""
        pending += chunk
    line = pending[:end].decode()
    del pending[: end + 1]
    return line


class ForkedWorker:
    """A worker forked by the server, with what an execution environment uses of a Popen: its stdin,
    poll, wait, kill. Its pid, then its exit code, come from the server (its parent) on `report`."""

    def __init__(self, report: socket.socket, stdin: IO[str]) -> None:
        self.stdin: IO[str] | None = stdin
        self.returncode: int | None = None
        self._report = report
        self._pending = bytearray()
        pid = read_line(report.fileno(), self._pending, time.monotonic() + READY_SECONDS)
        self.pid = int(pid) if pid else 0  # 0: the server did not fork it (see ForkServer.start_worker)

    def poll(self) -> int | None:
        if self.returncode is None:
            self._read_exit(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._read_exit(timeout)
            if self.returncode is None:
                assert timeout is not None
                raise subprocess.TimeoutExpired("lambda_worker.py", timeout)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None and self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def close(self) -> None:
        if self.stdin is not None:
            self.stdin.close()
        self._report.close()

    def _read_exit(self, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        line = read_line(self._report.fileno(), self._pending, deadline)
        if line is None:
            return
        if not line:  # the server is gone and cannot say: the worker is ended here, and reported killed
            self.kill()
            line = str(-signal.SIGKILL)
        self.returncode = int(line)
        self._report.close()


class ForkServer:
    """The pool's fork server for one Python: started on first use, asked for workers over a socket."""

    def __init__(self, python: str, worker: Path, base_env: dict[str, str]) -> None:
        self._python, self._worker, self._base_env = python, worker, base_env
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._terms: dict[str, Any] | None = None
        self._failed = False

    def start_worker(
        self, task_root: Path, environment: dict[str, str], log: IO[str], response_fd: int
    ) -> ForkedWorker | None:
        """A worker forked for `task_root` with `environment`, or None where it must be started fresh."""
        with self._lock:
            control = self._ready()
            if control is None or not self._agrees(task_root, environment):
                return None
            stdin_read, stdin_write = os.pipe()
            report, their_report = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            message = json.dumps({"environment": environment, "cwd": str(task_root)}).encode()
            try:
                socket.send_fds(control, [message], [stdin_read, log.fileno(), response_fd, their_report.fileno()])
            except OSError:
                self._failed = True  # the server died: fresh starts from here on
                os.close(stdin_write)
                report.close()
                return None
            finally:
                os.close(stdin_read)
                their_report.close()
        worker = ForkedWorker(report, open(stdin_write, "w", encoding="utf-8"))  # noqa: SIM115 - the worker's
        if not worker.pid:
            worker.close()
            return None
        return worker

    def _ready(self) -> socket.socket | None:
        """The control socket once the server has imported its libraries (started here the first time)."""
        if self._failed:
            return None
        if self._control is None:
            ours: socket.socket | None = None
            try:
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                environment = {**self._base_env, "LAMBDA_FORK_SERVER_FD": str(theirs.fileno())}
                self._process = subprocess.Popen(
                    [self._python, str(self._worker), "--fork-server"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    cwd="/",
                    env=environment,
                    pass_fds=(theirs.fileno(),),
                )
                theirs.close()
                ready = select.select([ours], [], [], READY_SECONDS)[0]
                terms = json.loads(ours.recv(1 << 20)) if ready else None
            except (OSError, ValueError):
                terms = None
            if not terms or ours is None:
                self._failed = True
                if ours is not None:
                    ours.close()
                self.close()
                return None
            self._control, self._terms = ours, terms
        return self._control

    def _agrees(self, task_root: Path, environment: dict[str, str]) -> bool:
        assert self._terms is not None
        read = self._terms["environment"]
        if read is None or any(environment.get(key) != value for key, value in read.items()):
            return False
        names = {entry.name.partition(".")[0] for entry in os.scandir(task_root)}
        return not names & set(self._terms["modules"])

    def close(self) -> None:
        """Stop the server (its workers end when their input closes, as ever)."""
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
            self._process = None
