"""runtest.sh against a hostile or careless user: what it reads, its options, how the run ends, what it writes.

Each test is one class of problem, checked through the contract (exit status, stdout, stderr, files).
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from saga.catalogue import REQUESTS, RESOURCES
from saga.definition import SAGA
from saga.keys import ID_FIELD, NOUN, NOUNS
from saga.models import RequestModel
from saga.request_fields import Text
from sagatools.cli import output_dir
from sagatools.request_files import MAX_FILE_BYTES, RequestFile
from sagatools.runtest.cli import main
from sagatools.runtest.runner import SagaRunner
from tests.helpers import BASE_REQUEST, LAST, ROOT, book_step, cancel_step, running, saga_request

if TYPE_CHECKING:
    from pydantic import BaseModel

RUNNER = [sys.executable, "-m", "sagatools.runtest"]
# A refusal at the last step: the dearest rollback. With the compensation of the step before it stuck (the
# last step's own in a saga of one step), the saga needs attention.
REFUSED = {book_step(LAST): "fail"}
STUCK_AT = RESOURCES[-2] if len(RESOURCES) > 1 else LAST
STUCK = {**REFUSED, cancel_step(STUCK_AT): "fail"}


def run_main(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def run_process(*args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RUNNER, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


@pytest.fixture
def good(tmp_path) -> str:
    path = tmp_path / "good.json"
    path.write_text(json.dumps(saga_request("t-good")))
    return str(path)


@pytest.fixture
def write(tmp_path):
    def write(name: str, content: str | bytes) -> str:
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return str(path)

    return write


# What is read ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_before_anything_is_read_from_it(device, good):
    done = run_process(good, device, timeout=30)
    assert done.returncode == 2
    assert f"{device}: a character device, not a {NOUN} request file" in done.stderr
    assert done.stdout == ""


@pytest.mark.slow
def test_a_named_pipe_is_refused_instead_of_waiting_for_a_writer(tmp_path, good):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    done = run_process(good, str(fifo), timeout=30)
    assert done.returncode == 2
    assert f"a named pipe, not a {NOUN} request file" in done.stderr


def test_a_directory_and_an_oversized_file_are_refused(tmp_path, write, good):
    big = write("big.json", b" " * (MAX_FILE_BYTES + 1))
    code, out, err = run_main(good, str(tmp_path), big)
    assert code == 2
    assert out == ""
    assert f"a directory, not a {NOUN} request file" in err
    assert "big.json: larger than" in err


def test_deep_nesting_and_huge_numbers_are_clean_errors_naming_every_bad_file(write, good):
    nested = write("nested.json", "[" * 100_000 + "]" * 100_000)
    request = saga_request("t-deep")
    simulate_nested = write(
        "in-simulate.json", json.dumps(request)[:-1] + ', "simulate": ' + "[" * 5000 + "]" * 5000 + "}"
    )
    huge = write("huge.json", json.dumps(request).replace(f'"{ID_FIELD}"', '"n": ' + "9" * 5000 + f', "{ID_FIELD}"'))
    moderate = write("moderate.json", "[" * 200 + "]" * 200)
    code, out, err = run_main(good, nested, simulate_nested, huge, moderate)
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    for name in ("nested.json", "in-simulate.json", "huge.json", "moderate.json"):
        assert f"{name}: not a {NOUN} request" in err, name


def sections() -> list[tuple[str, type[BaseModel]]]:
    """The request's sections in order: those of no step, then each step's."""
    return [*SAGA.sections.items(), *((step.resource, step.request) for step in SAGA.steps)]


# The readable-text fields (saga.request_fields.Text) the success sample fills, as (section, field as written).
TEXT_FIELDS = [
    (section, field.alias or name)
    for section, model in sections()
    for name, field in model.model_fields.items()
    if all(any(given is check for given in field.metadata) for check in Text.__metadata__)
    and (field.alias or name) in BASE_REQUEST[section]
]
STEP_TEXT_FIELDS = [(section, name) for section, name in TEXT_FIELDS if section in RESOURCES]
# A field read by its alias only (`from` for a Python name `from_`), as (section, alias, Python name).
ALIASED = [
    (section, field.alias, name)
    for section, model in sections()
    for name, field in model.model_fields.items()
    if field.alias not in (None, name) and field.alias in BASE_REQUEST[section]
]


def set_text(where: tuple[str, str], value: str) -> Callable[[dict[str, Any]], None]:
    section, name = where
    return lambda request: request[section].__setitem__(name, value)


def by_python_name(request: dict[str, Any]) -> None:
    section, alias, name = ALIASED[0]
    request[section][name] = request[section].pop(alias)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param(
            by_python_name,
            ".".join(ALIASED[0][::2]) if ALIASED else "",
            id="from_",
            marks=pytest.mark.skipif(not ALIASED, reason="no field of the app's request is written by an alias"),
        ),
        pytest.param(set_text(TEXT_FIELDS[0], "   "), ".".join(TEXT_FIELDS[0]), id="spaces"),
        pytest.param(set_text(TEXT_FIELDS[0], "Ada\x00Lovelace"), ".".join(TEXT_FIELDS[0]), id="nul"),
        pytest.param(set_text(STEP_TEXT_FIELDS[0], "Inn\x1b[31m"), ".".join(STEP_TEXT_FIELDS[0]), id="escape"),
        pytest.param(set_text(STEP_TEXT_FIELDS[-1], "\t"), ".".join(STEP_TEXT_FIELDS[-1]), id="tab-only"),
        pytest.param(
            lambda r: r.__setitem__("simulate", {book_step(RESOURCES[0]): "transient:1\n"}),
            "simulate",
            id="trailing-newline",
        ),
    ],
)
def test_the_model_refuses_what_the_readme_says_it_refuses(change, field, write):
    request = saga_request("t-loose")
    change(request)
    code, _, err = run_main(write("loose.json", json.dumps(request)))
    assert code == 2
    assert f"invalid request: {field}" in err
    assert "\x1b" not in err
    assert "\x00" not in err


def test_duplicate_keys_are_refused(write):
    text = json.dumps(saga_request("t-dup")).replace(
        f'"{ID_FIELD}": "t-dup"', f'"{ID_FIELD}": "t-dup", "{ID_FIELD}": "t-other"'
    )
    code, _, err = run_main(write("dup.json", text))
    assert code == 2
    assert f'duplicate key "{ID_FIELD}"' in err


def test_one_saga_id_with_two_requests_in_a_batch_is_refused_before_anything_runs(write, tmp_path):
    first = write("a.json", json.dumps(saga_request("t-same")))
    second = write("b.json", json.dumps(saga_request("t-same", simulate=REFUSED)))
    code, out, err = run_main(first, second, "--report", str(tmp_path / "pages"))
    assert code == 2
    assert out == ""
    assert f"b.json: {ID_FIELD} t-same is also in" in err
    assert not list((tmp_path / "pages").glob("*.html"))


def test_one_saga_id_with_the_same_request_twice_stays_a_reuse(write):
    first = write("a.json", json.dumps(saga_request("t-twice")))
    second = write("b.json", json.dumps(saga_request("t-twice")))
    code, out, _ = run_main(first, second, "--json")
    results = json.loads(out)
    assert code == 0
    assert results[0]["execution_arn"] == results[1]["execution_arn"]
    assert [r["reused_execution"] for r in results] == [False, True]


# Options, checked before anything runs ----------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        ["--report", "{file}"],
        ["--report", "/proc/no-such-place/pages"],
        ["--stage", ""],
        ["--timeout", "nan"],
        ["--timeout", "inf"],
        ["--timeout", "-1"],
        ["--js"],
        ["--region", "eu-west-1"],
    ],
    ids=["report-is-a-file", "report-impossible", "empty-stage", "nan", "inf", "negative", "abbreviation", "region"],
)
def test_bad_options_exit_2_before_anything_runs(arguments, good, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    code, out, err = run_main(good, *[a.replace("{file}", str(a_file)) for a in arguments])
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert "COMMITTED" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_report_directory_exits_2(good, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, _, err = run_main(good, "--report", str(locked))
    assert code == 2
    assert "cannot write pages there" in err


# When the run ends ----------------------------------------------------------------------------------


class NeverEnding:
    """A Step Functions client whose executions never end (AWS's answer for a slow stage), around the real one."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def describe_execution(self, executionArn):  # noqa: N803 - the AWS parameter name
        return {**self._real.describe_execution(executionArn=executionArn), "status": "RUNNING", "stopDate": None}


def test_the_timeout_bounds_the_wait_and_unfinished_sagas_are_reported(stack, reader):
    sagas = [RequestFile(f"t-{n}.json", parsed_request(f"t-slow-{n}")) for n in range(5)]
    runner = SagaRunner(NeverEnding(stack.stepfunctions), stack.state_machine_arn, reader, 0.05, timeout_seconds=1.0)
    started = time.monotonic()
    results = runner.run(sagas)
    waited = time.monotonic() - started
    assert waited < 1.0 + 5.0  # the stated overhead: describing the unfinished ones and reading their tables
    assert [r.outcome for r in results] == [None] * 5


def test_sagas_the_timeout_leaves_no_time_to_start_are_reported_not_started(stack, reader):
    # Given more sagas than can be started in the time given (each StartExecution takes milliseconds)
    sagas = [RequestFile(f"t-{n}.json", parsed_request(f"t-late-{n}")) for n in range(40)]
    runner = SagaRunner(stack.stepfunctions, stack.state_machine_arn, reader, 0.05, timeout_seconds=0.01)
    # When the run's time is up / Then the rest are not started, and say so; every saga has its result
    results = runner.run(sagas)
    assert len(results) == 40
    not_started = [r for r in results if r.status == "NOT_STARTED"]
    assert not_started
    assert all(r.outcome is None and "timeout" in (r.cause or "") for r in not_started)


def parsed_request(saga_id: str):
    from saga.models import parse_request

    return parse_request(saga_request(saga_id))


def test_unfinished_sagas_exit_1_and_say_unfinished_without_a_none_duration(write):
    from sagatools.results import SagaResult
    from sagatools.view.terminal import compact_summary, summary

    result = SagaResult(
        file="f.json",
        saga_id="t-u",
        execution_arn="arn:aws:states:us-east-1:1:execution:m:t-u",
        status="RUNNING",
        outcome=None,
        error=None,
        cause=None,
        records={},
        saga_log=[],
        needs_attention=[],
        states=[booking.state for booking in REQUESTS[:2]],
        transitions=2,
        duration_ms=None,
    )
    assert "UNFINISHED" in summary(result)
    assert "None" not in summary(result)
    assert any("t-u" in line and result.states[-1] in line for line in compact_summary([result] * 11))


@pytest.mark.slow
def test_a_reader_that_goes_away_loses_no_saga_and_gets_no_traceback(good, tmp_path):
    process = subprocess.Popen(
        [*RUNNER, good, "--report", str(tmp_path / "pages")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    process.stdout.read(10)  # `| head -c 10`
    process.stdout.close()
    _, err = process.communicate(timeout=60)
    assert process.returncode == 74
    assert b"Traceback" not in err
    assert b"could not be written to stdout" in err
    assert (tmp_path / "pages" / "t-good.html").exists()  # the saga ran


@pytest.mark.slow
def test_a_full_disk_on_stdout_exits_74_without_a_traceback(good, tmp_path):
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*RUNNER, good, "--json", "--report", str(tmp_path)],
            cwd=ROOT,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 74
    assert "Traceback" not in done.stderr
    assert "No space left on device" in done.stderr


@pytest.mark.slow
def test_a_closed_stdout_exits_74_and_runs_nothing(good, tmp_path):
    done = subprocess.run(  # noqa: S602
        f"{' '.join(RUNNER)} {good} --json --report {tmp_path} >&-",
        shell=True,
        cwd=ROOT,
        capture_output=False,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 74
    assert "stdout is closed" in done.stderr
    assert not list(tmp_path.glob("*.html"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signal_number", "code", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
@pytest.mark.parametrize("delay", [0.3, 0.9, 1.5, 2.2])
def test_a_signal_at_any_phase_ends_cleanly(signal_number, code, word, delay, tmp_path):
    files = []
    for n in range(20):
        path = tmp_path / f"t{n}.json"
        path.write_text(json.dumps(saga_request(f"t-signal-{n}", simulate=REFUSED)))
        files.append(str(path))
    process = subprocess.Popen(
        [*RUNNER, *files, "--report", str(tmp_path / "pages")],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(delay)
    process.send_signal(signal_number)
    _, err = process.communicate(timeout=60)
    assert "Traceback" not in err
    if process.returncode != 0:  # it may have finished before the signal
        assert process.returncode == code
        assert f"runtest: {word}" in err


@pytest.mark.slow
def test_a_signal_at_any_moment_of_start_up_never_prints_a_traceback(tmp_path):
    # 200 tries through runtest.sh, spread over its first 0.3 s (the shell, the interpreter's own start,
    # the first imports): SIGINT and SIGTERM in turn, four at a time.
    path = tmp_path / "request.json"
    path.write_text(json.dumps(saga_request("t-start-up", simulate=REFUSED)))
    tries = [(n * 0.3 / 200, (signal.SIGINT, signal.SIGTERM)[n % 2]) for n in range(200)]

    def one(attempt: tuple[float, signal.Signals]) -> tuple[int, str, signal.Signals]:
        delay, number = attempt
        process = subprocess.Popen(
            ["./runtest.sh", str(path), "--report", str(tmp_path / "pages")],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        process.send_signal(number)
        _, err = process.communicate(timeout=120)
        return process.returncode, err, number

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        ended = list(pool.map(one, tries))
    words = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated", 143)}
    for code, err, number in ended:
        assert "Traceback" not in err, err
        word, expected = words[number]
        # the code and its one line; or the run had ended; or the signal came in the shell's first
        # instant, before it could take it (killed by it, silently)
        assert (code == expected and err.strip().endswith(f"runtest: {word}")) or code in (0, -number), (code, err)
    assert sum(code in (130, 143) for code, _, _ in ended) >= 180


# A batch big enough to run on every core (sagatools/runtest/shards.py): its processes end with it.
several_cores = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: a batch runs in one process")


def start_batch(tmp_path, size: int = 60) -> tuple[subprocess.Popen[str], list[int]]:
    """runtest.sh on `size` rollbacks in a new process group, once it has forked its shards: (it, their pids)."""
    files = []
    for n in range(size):
        path = tmp_path / f"t{n}.json"
        path.write_text(json.dumps(saga_request(f"t-shard-{n}", simulate=REFUSED)))
        files.append(str(path))
    process = subprocess.Popen(
        [*RUNNER, *files, "--json", "--report", str(tmp_path / "pages")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if len(shards := [int(pid) for pid in children.read_text().split()]) >= 2:
            return process, shards
        time.sleep(0.01)
    process.kill()
    raise AssertionError(f"no shards started: {process.communicate()[1][-2000:]}")


@pytest.mark.slow
@several_cores
@pytest.mark.parametrize(
    ("signal_number", "code", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_a_signal_to_a_batch_on_every_core_ends_all_of_its_processes(signal_number, code, word, tmp_path):
    process, shards = start_batch(tmp_path)
    os.killpg(process.pid, signal_number)  # what Ctrl-C does: the whole foreground process group
    out, err = process.communicate(timeout=60)
    assert (process.returncode, out) == (code, "")
    assert err.strip().endswith(f"runtest: {word}"), err
    assert "Traceback" not in err, err
    assert not any(running(pid) for pid in shards)


@several_cores
@pytest.mark.parametrize("to_stderr", [True, False], ids=["--logs", "handlers.log"])
def test_the_handler_logs_of_a_batch_on_every_core_are_whole_lines(to_stderr, tmp_path):
    files = []
    for n in range(24):  # commits, rollbacks and retries, so every handler logs and publishes metrics
        path = tmp_path / f"t{n}.json"
        faults = [None, REFUSED, {book_step(STUCK_AT): "transient:2"}][n % 3]
        path.write_text(json.dumps(saga_request(f"t-log-{n}", simulate=faults)))
        files.append(str(path))
    report = str(tmp_path / "pages")
    done = run_process(*files, "--json", "--report", report, *(["--logs"] if to_stderr else []), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    log = done.stderr if to_stderr else (output_dir() / "handlers.log").read_text()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]  # each line whole
    assert {record.get("correlation_id") for record in records} >= {f"t-log-{n}" for n in range(24)}
    assert sum("_aws" in record for record in records) >= 24  # the metrics, printed, are lines too


@pytest.mark.slow
@several_cores
def test_a_shard_killed_mid_batch_ends_the_run_in_one_line(tmp_path):
    process, shards = start_batch(tmp_path)
    os.kill(shards[0], signal.SIGKILL)
    out, err = process.communicate(timeout=60)
    assert (process.returncode, out) == (1, "")
    assert "Traceback" not in err, err
    assert "ended before it handed over their results (killed by SIGKILL)" in err
    assert not any(running(pid) for pid in shards)


@pytest.mark.slow
@several_cores
def test_shards_end_when_their_parent_is_killed(tmp_path):
    process, shards = start_batch(tmp_path)
    process.kill()  # no chance to stop them itself
    process.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in shards) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(pid) for pid in shards)


# What is written ------------------------------------------------------------------------------------


def test_a_link_planted_where_a_page_goes_is_replaced_not_followed(good, tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (pages / "t-good.html").symlink_to(victim)
    code, _, _ = run_main(good, "--report", str(pages))
    assert code == 0
    assert victim.read_text() == "precious"
    assert not (pages / "t-good.html").is_symlink()
    assert "<html" in (pages / "t-good.html").read_text()


def test_a_page_that_cannot_be_written_loses_no_result(good, tmp_path):
    pages = tmp_path / "pages"
    (pages / "t-good.html").mkdir(parents=True)  # a directory where the page goes
    code, out, err = run_main(good, "--json", "--report", str(pages))
    assert code == 0
    assert json.loads(out)["outcome"] == "COMMITTED"
    assert "warning: the page of t-good was not written" in err


def test_file_names_reach_the_terminal_escaped(write):
    name = write("evil\x1b]0;owned\x07.json", "{not json")
    code, _, err = run_main(name)
    assert code == 2
    assert "\x1b" not in err
    assert "\x07" not in err
    assert "\\x1b]0;owned\\x07.json" in err


# Reading a big batch ----------------------------------------------------------------------------------


def test_a_big_batch_ends_with_counts_and_names_the_sagas_that_need_a_look(write, tmp_path):
    files = [write(f"ok{n}.json", json.dumps(saga_request(f"t-ok-{n}"))) for n in range(10)]
    files += [write(f"rb{n}.json", json.dumps(saga_request(f"t-rb-{n}", simulate=REFUSED))) for n in range(5)]
    files += [write(f"st{n}.json", json.dumps(saga_request(f"t-stuck-{n}", simulate=STUCK))) for n in range(3)]
    code, out, _ = run_main(*files, "--report", str(tmp_path / "pages"))
    assert code == 1
    assert f"18 {NOUNS}: 10 COMMITTED, 5 ROLLED_BACK, 3 NEEDS_ATTENTION" in out
    for n in range(3):
        assert any(line.startswith(f"t-stuck-{n} ") and cancel_step(STUCK_AT) in line for line in out.splitlines())
    assert "  compensations  " not in out  # no per-saga detail block for 18 sagas
    assert "t-rb-0" not in out.split(f"18 {NOUNS}:")[1]  # a clean rollback is counted, not listed


def test_a_file_of_thousands_of_unknown_fields_is_refused_quickly_in_a_screenful(write):
    wide = write("wide.json", json.dumps({f"k{n}": 1 for n in range(60_000)}))
    code, out, err = run_main(wide)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 21
    # every unknown field, and every required field missing (the id and each section), 20 of them shown
    required = [name for name, field in RequestModel.model_fields.items() if field.is_required()]
    assert lines[-1].endswith(f"invalid request: and {60_000 + len(required) - 20} more problems")
