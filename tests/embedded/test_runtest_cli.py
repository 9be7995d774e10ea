"""runtest.sh as a user runs it: exit codes, --json on stdout only, refusal of bad files before any start."""

from __future__ import annotations

import io
import json
import subprocess

import pytest

from saga.catalogue import REQUESTS, RESOURCES, compensation_of, request_of, simulated_provider
from saga.definition import SAGA
from saga.keys import ID_FIELD, RECORDS_KEY
from sagatools.runtest.cli import main
from tests.helpers import (
    FAIL_FILE,
    LAST,
    ROOT,
    SUCCESS_FILE,
    book_step,
    cancel_step,
    rollback_records,
    rollback_states,
    saga_request,
    simulated_failure,
)

FAIL_ID = json.loads(FAIL_FILE.read_text())[ID_FIELD]


def run_main(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def write_request(tmp_path):
    def write(name: str, request: dict | str) -> str:
        path = tmp_path / name
        path.write_text(request if isinstance(request, str) else json.dumps(request))
        return str(path)

    return write


@pytest.mark.slow
def test_fail_file_rolls_back_through_the_real_script():
    # The README's command, as a user types it, on the app's fail sample (venv already there in CI: build.sh
    # test made it).
    sample = str(FAIL_FILE.relative_to(ROOT))
    done = subprocess.run(["./runtest.sh", sample, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["outcome"] == "ROLLED_BACK"
    assert result["status"] == "FAILED"
    failed_at = simulated_failure(FAIL_FILE)
    assert result[RECORDS_KEY] == rollback_records(failed_at)
    assert result["states"] == rollback_states(failed_at)


def test_success_file_commits_and_human_output_shows_states_and_summary():
    code, out, _ = run_main(str(SUCCESS_FILE))
    assert code == 0
    assert REQUESTS[0].state in out
    assert SAGA.done_state in out
    assert "COMMITTED" in out
    assert ", ".join(f"{resource} CONFIRMED" for resource in RESOURCES) in out


def test_json_for_several_files_is_an_array_in_input_order(write_request):
    first = write_request("b.json", saga_request("t-b", simulate={book_step(LAST): "fail"}))
    second = write_request("a.json", saga_request("t-a"))
    code, out, _ = run_main(first, second, "--json")
    results = json.loads(out)
    assert code == 0
    assert [r[ID_FIELD] for r in results] == ["t-b", "t-a"]
    assert [r["outcome"] for r in results] == ["ROLLED_BACK", "COMMITTED"]
    keys = {
        ID_FIELD,
        "execution_arn",
        "status",
        "outcome",
        "error",
        RECORDS_KEY,
        "providers",
        "saga_log",
        "states",
        "transitions",
        "duration_ms",
    }
    assert keys <= results[0].keys()
    assert {"step", "event", "at", "attempt"} <= results[0]["saga_log"][0].keys()
    # each step's reservation at its provider, in step order: booked there for the commit, cancelled for the rollback
    assert list(results[1]["providers"]) == list(RESOURCES)
    assert results[1]["providers"] == {r: "CONFIRMED" if simulated_provider(r) else None for r in RESOURCES}
    assert set(results[0]["providers"].values()) <= {"CANCELLED", None}


def test_needs_attention_exits_1(write_request):
    stuck = {book_step(LAST): "fail", cancel_step(LAST): "fail"}
    path = write_request("stuck.json", saga_request("t-stuck", simulate=stuck))
    code, out, _ = run_main(path, "--json")
    assert code == 1
    assert json.loads(out)["outcome"] == "NEEDS_ATTENTION"


def test_one_invalid_file_means_nothing_runs_and_stdout_stays_empty(write_request):
    good = write_request("good.json", saga_request("t-good"))
    bad_request = saga_request("t-bad")
    field = next(iter(bad_request[LAST]))  # a field the last step's model requires, left out
    del bad_request[LAST][field]
    bad = write_request("bad.json", bad_request)
    code, out, err = run_main(good, bad, "--json")
    assert (code, out) == (2, "")
    assert "bad.json" in err
    assert f"{LAST}.{field}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not valid JSON"), ("[]", "invalid request"), ('"x"', "invalid request"), ("", "not valid JSON")],
)
def test_unreadable_requests_exit_2_with_one_clear_line(write_request, content, message):
    code, out, err = run_main(write_request("x.json", content))
    assert (code, out) == (2, "")
    assert message in err
    assert "x.json" in err
    assert "Traceback" not in err


def test_missing_file_and_bad_arguments_exit_2():
    assert run_main("no-such-file.json")[0] == 2
    assert run_main()[0] == 2
    assert run_main(str(SUCCESS_FILE), "--bogus")[0] == 2
    assert run_main(str(SUCCESS_FILE), "--profile", "p")[0] == 2


def test_every_execution_gets_an_html_report(write_request, tmp_path):
    path = write_request("last.json", saga_request("t-report", simulate={book_step(LAST): "fail"}))
    code, out, err = run_main(path, "--json", "--report", str(tmp_path / "reports"))
    result = json.loads(out)
    page = tmp_path / "reports" / "t-report.html"
    assert code == 0
    assert result["report"] == str(page)
    assert f'data-state="{compensation_of(LAST).state}" data-status="succeeded"' in page.read_text()
    assert "reports" in err


def test_plain_output_when_not_a_terminal_names_each_state_and_the_report(tmp_path):
    code, out, _ = run_main(str(FAIL_FILE), "--report", str(tmp_path))
    assert code == 0
    lines = out.splitlines()
    failed_state = request_of(simulated_failure(FAIL_FILE)).state
    assert any(line.split()[1:3] == [failed_state, "FAILED,"] for line in lines if line.startswith(FAIL_ID))
    assert f"report: {tmp_path / f'{FAIL_ID}.html'}" in lines
    assert "\x1b[" not in out  # no escape codes in a pipe


def test_live_output_on_a_terminal_shows_each_saga_and_its_state():
    from rich.console import Console

    from sagatools.history import StateRun, StateStatus
    from sagatools.view.terminal import LiveOutput

    screen = io.StringIO()
    live = LiveOutput(Console(file=screen, force_terminal=True, width=100))
    live.started(["t-one", "t-two"])
    state = REQUESTS[-1].state
    run = StateRun(name=state, state_type="Task", status=StateStatus.RUNNING, entered_at=None, attempts=2)
    live.progress("t-one", [run], ended=False)
    live.close()
    text = screen.getvalue()
    assert "t-one" in text
    assert state in text
    assert "t-two" in text
