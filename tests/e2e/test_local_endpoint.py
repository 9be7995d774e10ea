"""The local endpoint's state: a stale record is cleaned, a busy port is not reused, the stage needs it running."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ConnectionClosedError

from saga.keys import ID_FIELD
from sagatools.deployed import local_commands, local_endpoint
from sagatools.deployed.stage import Stage, StageError, explain
from sagatools.fake_credentials import FAKE_CREDENTIALS, EndpointCredentials
from tests.helpers import SUCCESS_FILE, proc_stat


@pytest.fixture
def state_file(tmp_path, monkeypatch):
    path = tmp_path / "endpoint.json"
    monkeypatch.setattr(local_endpoint, "STATE_FILE", path)
    return path


def a_dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_record_of_a_process_that_is_gone_is_cleaned(state_file):
    state_file.write_text(json.dumps({"port": 1, "pid": a_dead_pid(), "started_at": 0, "python": "python3"}))
    assert local_endpoint.read_state() is None
    assert not state_file.exists()


def test_an_endpoint_that_exited_is_not_running_while_it_waits_to_be_reaped():
    # `stop` waits for the endpoint to end; init reaps it in its own time (over a second on some machines)
    process = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while (stat := proc_stat(Path(f"/proc/{process.pid}/stat"))) is None or stat[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(process.pid, 0)  # the signal still finds it
        assert not local_endpoint._alive(process.pid)  # what stop's wait for the endpoint's end asks
    finally:
        process.wait()
    with subprocess.Popen(["sleep", "30"]) as running:
        assert local_endpoint._alive(running.pid)
        running.kill()


def test_stop_with_a_stale_record_says_so_and_cleans_it(state_file):
    state_file.write_text(json.dumps({"port": 1, "pid": a_dead_pid(), "started_at": 0, "python": "python3"}))
    err = io.StringIO()
    assert local_endpoint.stop(err) is False
    assert "stale" in err.getvalue()
    assert not state_file.exists()


def test_a_busy_port_is_not_chosen():
    from sagatools.emulation.local_server import bind

    with contextlib.closing(socket.socket()) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        server = bind(taken, EndpointCredentials.made(), "credentials")  # the server binds its port itself
        try:
            assert server.port != taken
            assert server.port > 0
        finally:
            server.server_close()


def test_url_and_the_local_stage_say_how_to_start_the_endpoint_when_it_is_not_running(state_file):
    out, err = io.StringIO(), io.StringIO()
    assert local_commands.main(["url"], out, err) == 2
    assert out.getvalue() == ""
    assert "./build.sh local start" in err.getvalue()
    with pytest.raises(StageError, match=r"\./build\.sh local start"):
        Stage.choose("local", None, None).client("stepfunctions")


def test_the_local_stage_takes_the_region_like_any_stage_and_no_profile(monkeypatch, state_file):
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_PROFILE", "someone")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"])
    endpoints = EndpointCredentials.made()
    endpoints.write(local_endpoint.credentials_file())
    stage = Stage.choose("local", None, None)
    assert stage.region == "ap-south-1"
    assert "profile" not in stage.describe()
    # the endpoint's own keys, whatever the environment says
    credentials = stage.session().get_credentials()
    assert (credentials.access_key, credentials.secret_key) == (endpoints.access_key_id, endpoints.secret_access_key)


def test_usage(capsys):
    assert local_commands.main(["restart"]) == 2


@pytest.fixture
def unrelated_process():
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def test_stop_never_signals_a_process_that_got_the_endpoints_pid(state_file, unrelated_process):
    # A record left by a crash, whose pid now belongs to another program
    record = {"port": 1, "pid": unrelated_process.pid, "started_at": 0, "python": "python3", "token": "abc"}
    state_file.write_text(json.dumps(record))
    err = io.StringIO()
    assert local_endpoint.stop(err) is False
    assert unrelated_process.poll() is None  # still running: not signalled
    assert "not the endpoint" in err.getvalue()
    assert not state_file.exists()


def test_a_record_whose_pid_is_another_process_is_not_running(state_file, unrelated_process):
    record = {"port": 1, "pid": unrelated_process.pid, "started_at": 0, "python": "python3", "token": "abc"}
    state_file.write_text(json.dumps(record))
    assert local_endpoint.read_state() is None
    with pytest.raises(local_endpoint.EndpointNotRunning):
        local_endpoint.running_endpoint()
    assert unrelated_process.poll() is None


def test_the_endpoint_is_running_while_it_holds_its_lock_however_slow(state_file, tmp_path):
    import fcntl
    import sys

    # A process that looks like the server (its module and token on the command line) and holds the lock
    script = (
        "import fcntl, sys, time; h = open(sys.argv[1], 'a'); fcntl.flock(h, fcntl.LOCK_EX); print('held', flush=True);"
        " time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(local_endpoint.lock_file()), local_endpoint.SERVER_MODULE, "--token", "t1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        state_file.write_text(
            json.dumps({"port": 9, "pid": holder.pid, "started_at": 0, "python": "python3", "token": "t1"})
        )
        assert local_endpoint.lock_held()
        found = local_endpoint.read_state()  # port 9 answers nothing: it is running all the same
        assert found is not None
        assert found.pid == holder.pid
        with local_endpoint.lock_file().open("a") as handle, pytest.raises(BlockingIOError):
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        holder.kill()
        holder.wait()
    assert not local_endpoint.lock_held()


@pytest.mark.parametrize("region", ["xx-fake-1", "US-WEST-2", "us-west-2 ", ""])
def test_a_region_aws_does_not_have_is_one_sentence_everywhere(region, monkeypatch, tmp_path):
    from sagatools.attention import cli as attention
    from sagatools.runtest import cli as runner

    monkeypatch.setenv("AWS_REGION", region or "eu-west-1")
    request = tmp_path / "request.json"
    request.write_text(SUCCESS_FILE.read_text())
    arguments = ["--region", region] if region else []
    for tool, argv in (
        (runner, [str(request), "--stage", "local", *(arguments or ["--region", "no-such-9"])]),
        (attention, ["list", "--stage", "local", *(arguments or ["--region", "no-such-9"])]),
    ):
        out, err = io.StringIO(), io.StringIO()
        assert tool.main(argv, out, err) == 2
        (line,) = err.getvalue().strip().splitlines()[-1:]
        assert "is not an AWS region" in line
        assert "Traceback" not in err.getvalue()


@pytest.mark.parametrize("saga_id", ["", "a\x1b[2Jb", "x" * 65, "saga 1"])
def test_attention_refuses_a_saga_id_that_cannot_be_one_in_a_sentence(saga_id):
    from sagatools.attention import cli as attention

    for command in ("show", "resolve"):
        out, err = io.StringIO(), io.StringIO()
        assert attention.main([command, saga_id, "--stage", "local"], out, err) == 2
        assert "\x1b" not in err.getvalue()
        assert err.getvalue().count("\n") == 1
        assert f"{ID_FIELD} '" in err.getvalue()


class OneAnswerServer:
    """Answers every request on loopback with `answer` (raw HTTP) and closes the connection."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.listener.accept()
                with connection:
                    connection.recv(65536)
                    connection.sendall(self.answer)


DESCRIBED = json.dumps({"executionArn": "arn:aws:states:us-west-2:1:execution:m:t", "status": "SUCCEEDED"}).encode()


@pytest.mark.parametrize(
    ("body", "cut_short"),
    [(b"", True), (DESCRIBED[:20], True), (DESCRIBED, False)],
    ids=["headers only", "half a body", "whole"],
)
def test_an_answer_cut_short_is_a_closed_connection_not_a_success_with_no_fields(body, cut_short, monkeypatch):
    # A server killed while it answers has sent its headers: botocore alone parses what came (an empty
    # body is a DescribeExecution with no status at all).
    server = OneAnswerServer(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
        + f"Content-Length: {len(DESCRIBED)}\r\n\r\n".encode()
        + body
    )
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    stage = Stage.choose("dev", "us-west-2", None)
    client = stage.client("stepfunctions")
    execution = "arn:aws:states:us-west-2:1:execution:m:t"
    if not cut_short:
        assert client.describe_execution(executionArn=execution)["status"] == "SUCCEEDED"
        return
    with pytest.raises(ConnectionClosedError) as raised:
        client.describe_execution(executionArn=execution)
    assert "stopped answering" in explain(raised.value, Stage.choose("local", "us-west-2", None))


def test_a_running_endpoint_whose_credentials_cannot_be_read_is_one_sentence_saying_restart_it(state_file):
    import sys

    # Given an endpoint that runs (its module and token on its command line), with no credentials beside its record
    command = [sys.executable, "-c", "import time; time.sleep(60)", local_endpoint.SERVER_MODULE, "--token", "t2"]
    with subprocess.Popen(command) as server:
        try:
            record = {"port": 9, "pid": server.pid, "started_at": 0, "python": "python3", "token": "t2"}
            state_file.write_text(json.dumps(record))
            # When the local stage is used
            with pytest.raises(StageError) as refused:
                Stage.choose("local", "us-west-2", None).client("stepfunctions")
        finally:
            server.kill()
    # Then one sentence says where they should be and how to get new ones
    assert str(local_endpoint.credentials_file()) in str(refused.value)
    assert "restart it with ./build.sh local stop, then ./build.sh local start." in str(refused.value)
    assert "\n" not in str(refused.value)
