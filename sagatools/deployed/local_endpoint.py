"""The local cloud's endpoint: start, stop and find the moto server that the stage `local` deploys to.

    python -m sagatools.deployed.local_endpoint start|stop|status|url     (./build.sh local ...)

Its state lives under .runtest/local/: endpoint.json (port, pid, when it started, which Python runs
the handlers), server.log, the functions' logs and their unpacked code. The server itself is
sagatools/emulation/local_server.py; this module never imports moto.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from sagatools.serverless_config import PROJECT_ROOT, load_service_config

LOCAL_STAGE = "local"
STATE_DIR = PROJECT_ROOT / ".runtest" / "local"
STATE_FILE = STATE_DIR / "endpoint.json"
PREFERRED_PORT = 4599
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class EndpointNotRunning(Exception):
    """No local endpoint answers; the message says how to start one."""


@dataclass(frozen=True)
class Endpoint:
    port: int
    pid: int
    started_at: float  # epoch seconds
    python: str  # the Python that runs the handlers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2):  # noqa: S310 - our loopback URL
                return True
        except (urllib.error.URLError, OSError):
            return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state() -> Endpoint | None:
    """The endpoint as recorded, if its process still runs; a stale record is removed."""
    try:
        endpoint = Endpoint(**json.loads(STATE_FILE.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not _alive(endpoint.pid):
        STATE_FILE.unlink(missing_ok=True)
        return None
    return endpoint


def running_endpoint() -> Endpoint:
    """The running endpoint, or EndpointNotRunning with the one sentence that says what to do."""
    endpoint = read_state()
    if endpoint is None or not endpoint.answers():
        raise EndpointNotRunning(
            "The local endpoint is not running: start it with ./build.sh local start"
            " (./build.sh deploy local starts it too)."
        )
    return endpoint


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen: int = probe.getsockname()[1]
            return chosen
    raise OSError("no free port on 127.0.0.1")


def runtime_python(runtime: str, err: TextIO) -> str:
    """The interpreter serverless.yml's runtime names (python3.12) if this machine has it, else this one."""
    version = runtime.removeprefix("python")
    candidates = [shutil.which(runtime)]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(path) for path in sorted(pyenv_root.glob(f"versions/{version}*/bin/{runtime}"), reverse=True)]
    for candidate in filter(None, candidates):
        try:
            found = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
        except OSError:
            continue
        if found.returncode == 0 and found.stdout.strip() == str(tuple(int(p) for p in version.split("."))):
            return candidate
    print(
        f"local endpoint: {runtime} is not on this machine; the handlers run on Python "
        f"{sys.version_info.major}.{sys.version_info.minor} instead",
        file=err,
    )
    return sys.executable


def runtime_environment(python: str, err: TextIO) -> str:
    """A virtualenv of that Python holding requirements.txt: the stand-in for the Powertools layer and
    the runtime's boto3. Made once, remade when requirements.txt changes; returns its python."""
    requirements = PROJECT_ROOT / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes() + python.encode()).hexdigest()
    # Beside the project's own environment: it outlives the endpoint, like .venv.
    home = PROJECT_ROOT / ".venv" / "lambda-runtimes" / Path(python).name
    stamp = home / ".installed"
    executable = home / "bin" / "python"
    if stamp.exists() and stamp.read_text() == digest and executable.exists():
        return str(executable)
    print(f"local endpoint: preparing the handlers' runtime ({python}, requirements.txt)", file=err)
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(home)], check=True, capture_output=True)
    subprocess.run(
        [str(executable), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(requirements)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    stamp.write_text(digest)
    return str(executable)


def start(out: TextIO, err: TextIO) -> Endpoint:
    running = read_state()
    if running is not None and running.answers():
        print(f"local endpoint already running at {running.url} (pid {running.pid})", file=err)
        return running
    if running is not None:
        stop(err)
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    python = runtime_environment(runtime_python(load_service_config(LOCAL_STAGE).runtime, err), err)
    port = _free_port(PREFERRED_PORT)
    if port != PREFERRED_PORT:
        print(f"local endpoint: port {PREFERRED_PORT} is busy, using {port}", file=err)
    log = (STATE_DIR / "server.log").open("a")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sagatools.emulation.local_server",
            "--port",
            str(port),
            "--state-dir",
            str(STATE_DIR),
            "--python",
            python,
        ],
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env={**os.environ, **FAKE_CREDENTIALS, "PYTHONPATH": str(PROJECT_ROOT)},
        start_new_session=True,  # its own process group: stop ends it and every environment it started
    )
    endpoint = Endpoint(port=port, pid=process.pid, started_at=time.time(), python=python)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not endpoint.answers():
        if process.poll() is not None or time.monotonic() > deadline:
            _terminate(process.pid)
            raise EndpointNotRunning(f"The local endpoint did not start; see {STATE_DIR / 'server.log'}.")
        time.sleep(0.1)
    STATE_FILE.write_text(json.dumps(asdict(endpoint)))
    print(f"local endpoint running at {endpoint.url} (pid {endpoint.pid})", file=err)
    return endpoint


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
    """Stop the endpoint and everything it started; False if none was running."""
    try:
        recorded = Endpoint(**json.loads(STATE_FILE.read_text()))
    except (OSError, ValueError, TypeError):
        return False
    was_running = _alive(recorded.pid)
    if was_running:
        _terminate(recorded.pid)
    STATE_FILE.unlink(missing_ok=True)
    if not was_running:
        print("local endpoint: its state was stale (the process was gone) and is cleaned", file=err)
    return was_running


def deployed_stages(endpoint: Endpoint) -> list[str]:
    import boto3  # only status needs it

    service = load_service_config(LOCAL_STAGE).service
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-west-2"
    client = boto3.client(
        "cloudformation",
        endpoint_url=endpoint.url,
        region_name=region,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    stacks = client.describe_stacks().get("Stacks", [])
    return sorted(
        f"{stack['StackName'].removeprefix(service + '-')} ({region})"
        for stack in stacks
        if stack["StackName"].startswith(service + "-")
        and stack["StackStatus"].endswith("_COMPLETE")
        and "DELETE" not in stack["StackStatus"]
    )


def status(out: TextIO) -> int:
    endpoint = read_state()
    if endpoint is None or not endpoint.answers():
        print("local endpoint: not running (start it with ./build.sh local start)", file=out)
        return EXIT_OK
    uptime = int(time.time() - endpoint.started_at)
    print(f"local endpoint: running at {endpoint.url}", file=out)
    print(f"  pid       {endpoint.pid}", file=out)
    print(f"  uptime    {uptime // 3600}h {uptime % 3600 // 60}m {uptime % 60}s", file=out)
    print(f"  handlers  {endpoint.python}", file=out)
    stages = deployed_stages(endpoint)
    print(f"  stages    {', '.join(stages) if stages else 'none deployed'}", file=out)
    print(f"  state     {STATE_DIR}", file=out)
    return EXIT_OK


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1 or arguments[0] not in {"start", "stop", "status", "url"}:
        print("usage: ./build.sh local start|stop|status|url", file=err)
        return EXIT_USAGE
    command = arguments[0]
    try:
        if command == "start":
            start(out, err)
        elif command == "stop":
            print("local endpoint stopped" if stop(err) else "local endpoint: not running", file=err)
        elif command == "status":
            return status(out)
        else:
            print(running_endpoint().url, file=out)
    except EndpointNotRunning as error:
        print(f"local endpoint: {error}", file=err)
        return EXIT_USAGE
    except subprocess.CalledProcessError as error:
        print(f"local endpoint: preparing the handlers' runtime failed ({error})", file=err)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
