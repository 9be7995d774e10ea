"""The local cloud's endpoint: start, stop and find the moto server that the stage `local` deploys to.

    ./build.sh local start|stop|status|url     (sagatools/deployed/local_commands.py)

Its state lives under .runtest/local/ (0700): endpoint.json (port, pid, a token, when it started, which
Python runs the handlers), credentials (0600: the access key and secret made at start, without which the
endpoint answers 403), endpoint.lock, server.log, the functions' logs and their unpacked code. The server
itself is sagatools/emulation/local_server.py; this module never imports moto.

The endpoint is known by more than its pid, which a crash or a reboot can hand to any process: the
server holds an exclusive lock on endpoint.lock for as long as it runs (so "running" never depends on
how fast it answers, and a second server cannot start), and its command line carries the token of its
record (so `stop` and `start` only ever signal that process). Starts are serialised by start.lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from sagatools.deployed.lambda_runtime import runtime_environment, runtime_python
from sagatools.deployed.local_stages import LOCAL_STAGE, deployed_stages
from sagatools.fake_credentials import FAKE_CREDENTIALS, CredentialsFolderNotPrivate, EndpointCredentials
from sagatools.project import PROJECT_ROOT
from sagatools.serverless_config import load_service_config

STATE_DIR = PROJECT_ROOT / ".runtest" / "local"
STATE_FILE = STATE_DIR / "endpoint.json"
SERVER_MODULE = "sagatools.emulation.local_server_process"
PROBE_SECONDS = 2.0
PREFERRED_PORT = 4599
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


class EndpointNotRunning(Exception):
    """No local endpoint answers; the message says how to start one."""


def lock_file() -> Path:
    """Held by the running server for its whole life (beside the record, wherever that is)."""
    return STATE_FILE.with_name("endpoint.lock")


def credentials_file() -> Path:
    """The running endpoint's credentials (beside the record): an AWS shared credentials file."""
    return STATE_FILE.with_name("credentials")


@dataclass(frozen=True)
class Endpoint:
    port: int
    pid: int
    started_at: float  # epoch seconds
    python: str  # the Python that runs the handlers
    token: str = ""  # on the server's command line: what makes the pid this endpoint's

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answers(self, timeout: float = PROBE_SECONDS) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=timeout):  # noqa: S310 - our loopback URL
                return True
        except urllib.error.HTTPError as refused:
            return refused.code == 403  # as the endpoint refuses any unsigned request: it answered
        except (urllib.error.URLError, OSError):
            return False

    def is_the_process(self) -> bool:
        """Whether `pid` is this endpoint's server (not a process that got the number after it)."""
        command = _command_line(self.pid)
        if command is None or SERVER_MODULE not in command:
            return False
        return f"--token {self.token}" in command if self.token else f"--port {self.port}" in command


def _command_line(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        pass
    try:  # no /proc (macOS): ps says the same
        found = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None


def lock_held() -> bool:
    """Whether a server holds endpoint.lock (it does while it runs, however busy it is)."""
    try:
        handle = lock_file().open("a")
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


@contextlib.contextmanager
def _starting() -> Iterator[None]:
    """One start at a time: a second waits, then finds the first one's endpoint."""
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    with STATE_FILE.with_name("start.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _alive(pid: int) -> bool:
    """Whether the process runs. One that has exited but is not yet reaped does not: the endpoint outlives the
    command that started it, so init reaps it, in its own time (over a second on some machines)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc to ask (macOS): the signal's answer stands
    return state not in {"Z", "X"}  # a zombie, or dead


def _recorded() -> Endpoint | None:
    try:
        return Endpoint(**json.loads(STATE_FILE.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def read_state() -> Endpoint | None:
    """The endpoint as recorded, if that very process still runs; a stale record is removed."""
    endpoint = _recorded()
    if endpoint is None:
        return None
    if not (_alive(endpoint.pid) and endpoint.is_the_process()):
        if not lock_held():  # no server at all: the record is only history
            STATE_FILE.unlink(missing_ok=True)
        return None
    return endpoint


def running_endpoint() -> Endpoint:
    """The running endpoint, or EndpointNotRunning with the one sentence that says what to do."""
    endpoint = read_state()
    if endpoint is None:
        raise EndpointNotRunning(
            "The local endpoint is not running: start it with ./build.sh local start"
            " (./build.sh deploy local starts it too)."
        )
    return endpoint


def owner_credentials() -> EndpointCredentials:
    """The running endpoint's credentials, or EndpointNotRunning with the one sentence that says what to do."""
    credentials = EndpointCredentials.read(credentials_file())
    if credentials is None:
        running_endpoint()  # not running at all: that sentence
        raise EndpointNotRunning(
            f"The local endpoint's credentials ({credentials_file()}) cannot be read: restart it with"
            " ./build.sh local stop, then ./build.sh local start."
        )
    return credentials


def start(out: TextIO, err: TextIO) -> Endpoint:
    with _starting():
        return _start(err)


def _start(err: TextIO) -> Endpoint:
    running = read_state()
    if running is not None:  # never stopped for being slow: a busy endpoint holds stages and records
        busy = "" if running.answers() else " (busy: it did not answer a probe within 2 s)"
        print(f"local endpoint already running at {running.url} (pid {running.pid}){busy}", file=err)
        return running
    if lock_held():
        raise EndpointNotRunning(
            f"Another local endpoint holds {lock_file()} but its record is gone; stop that process (fuser"
            f" {lock_file()} names it) before starting a new one."
        )
    recorded = _recorded()
    if recorded is not None and _alive(recorded.pid):
        print(
            f"local endpoint: the recorded pid {recorded.pid} is another process now (left alone); starting anew",
            file=err,
        )
    STATE_FILE.unlink(missing_ok=True)
    try:  # new ones for each endpoint: those of one stopped open nothing
        EndpointCredentials.made().write(credentials_file())
    except CredentialsFolderNotPrivate as error:
        raise EndpointNotRunning(f"{error}.") from None
    python = runtime_environment(runtime_python(load_service_config(LOCAL_STAGE).runtime, err), err)
    port_file = STATE_DIR / "endpoint.port"
    port_file.unlink(missing_ok=True)
    log = (STATE_DIR / "server.log").open("a")
    token = uuid.uuid4().hex
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            SERVER_MODULE,
            "--port",
            str(PREFERRED_PORT),
            "--state-dir",
            str(STATE_DIR),
            "--python",
            python,
            "--token",
            token,
        ],
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env={**os.environ, **FAKE_CREDENTIALS, "PYTHONPATH": str(PROJECT_ROOT)},
        start_new_session=True,  # its own process group: stop ends it and every environment it started
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    endpoint: Endpoint | None = None
    while endpoint is None or not endpoint.answers():
        if process.poll() is not None or time.monotonic() > deadline:
            _terminate(process.pid)
            raise EndpointNotRunning(_why_not_started())
        if endpoint is None:
            endpoint = _bound(port_file, token, process.pid, python)
        time.sleep(0.1)
    if endpoint.port != PREFERRED_PORT:
        print(f"local endpoint: port {PREFERRED_PORT} is busy, using {endpoint.port}", file=err)
    STATE_FILE.write_text(json.dumps(asdict(endpoint)))
    print(f"local endpoint running at {endpoint.url} (pid {endpoint.pid})", file=err)
    return endpoint


def _why_not_started() -> str:
    """The server's own one-line refusal (a moto that does not fit), else where to look."""
    log = STATE_DIR / "server.log"
    with contextlib.suppress(OSError):
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        if lines and lines[-1].startswith("local endpoint: "):
            return f"The local endpoint did not start: {lines[-1].removeprefix('local endpoint: ')}."
    return f"The local endpoint did not start; see {log}."


def _bound(port_file: Path, token: str, pid: int, python: str) -> Endpoint | None:
    """The endpoint once its server has bound a port and said which, under this start's token."""
    try:
        bound = json.loads(port_file.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(bound, dict) or bound.get("token") != token or not isinstance(bound.get("port"), int):
        return None
    return Endpoint(port=bound["port"], pid=pid, started_at=time.time(), python=python, token=token)


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # anything of its group still there (an environment mid-invocation)


def stop(err: TextIO) -> bool:
    """Stop the endpoint and everything it started; False if none was running. Only the process whose
    command line carries the record's token is ever signalled."""
    recorded = _recorded()
    if recorded is None:
        return False
    was_running = _alive(recorded.pid) and recorded.is_the_process()
    if was_running:
        stages = deployed_stages(recorded.url, EndpointCredentials.read(credentials_file()), timeout=PROBE_SECONDS)
        _terminate(recorded.pid)
        if stages:
            print(f"local endpoint: stages {', '.join(stages)} are gone with it", file=err)
    elif _alive(recorded.pid):
        print(
            f"local endpoint: the recorded pid {recorded.pid} is not the endpoint (a process that got the number"
            " after a crash or a reboot): left alone; the stale record is cleaned",
            file=err,
        )
    else:
        print("local endpoint: its state was stale (the process was gone) and is cleaned", file=err)
    STATE_FILE.unlink(missing_ok=True)
    if not lock_held():  # no endpoint left that they open
        credentials_file().unlink(missing_ok=True)
    return was_running
