"""The local endpoint's state: a stale record is cleaned, a busy port is not reused, the stage needs it running."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import subprocess

import pytest

from sagatools.deployed import local_endpoint
from sagatools.deployed.stage import Stage, StageError


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


def test_stop_with_a_stale_record_says_so_and_cleans_it(state_file):
    state_file.write_text(json.dumps({"port": 1, "pid": a_dead_pid(), "started_at": 0, "python": "python3"}))
    err = io.StringIO()
    assert local_endpoint.stop(err) is False
    assert "stale" in err.getvalue()
    assert not state_file.exists()


def test_a_busy_port_is_not_chosen():
    with contextlib.closing(socket.socket()) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        chosen = local_endpoint._free_port(taken)
    assert chosen != taken
    assert chosen > 0


def test_url_and_the_local_stage_say_how_to_start_the_endpoint_when_it_is_not_running(state_file):
    out, err = io.StringIO(), io.StringIO()
    assert local_endpoint.main(["url"], out, err) == 2
    assert out.getvalue() == ""
    assert "./build.sh local start" in err.getvalue()
    with pytest.raises(StageError, match=r"\./build\.sh local start"):
        Stage.choose("local", None, None).client("stepfunctions")


def test_the_local_stage_takes_the_region_like_any_stage_and_no_profile(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_PROFILE", "someone")
    stage = Stage.choose("local", None, None)
    assert stage.region == "ap-south-1"
    assert "profile" not in stage.describe()
    assert stage.session().get_credentials().access_key == "testing"


def test_usage(capsys):
    assert local_endpoint.main(["restart"]) == 2
