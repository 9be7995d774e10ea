"""The local cloud under faults: it never hangs, never kills what is not its own, never changes an outcome.

One copy of the working tree, one endpoint of its own, one deployment; each test does to it what an
adversary would (starts at once, stops the endpoint, kills environments, kills the endpoint). That a
remove retires every environment is checked by tests/e2e/test_local_cloud.py, which removes its stage.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from saga.catalogue import REQUESTS, compensation_of
from saga.definition import SAGA
from saga.keys import ID_FIELD
from saga.providers import LATE
from sagatools.asl import SAGA_MACHINE
from sagatools.fake_credentials import EndpointCredentials
from sagatools.results import Outcome, SagaResult
from sagatools.view.terminal import COMPACT_ABOVE
from sagatools.working_tree import copy_working_tree
from tests.helpers import LAST, ROOT, SUCCESS_FILE, assert_providers_agree, book_step, endpoint_client

pytestmark = pytest.mark.slow

REGION = "eu-west-1"


def stage_environment(**env: str) -> dict[str, str]:
    """This process's environment without any AWS setting but the region the copy's stage is in."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"AWS_REGION": REGION, **env}


def run(project: Path, *command: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=project, capture_output=True, text=True, timeout=timeout, env=stage_environment(**env)
    )


def endpoint_pid(project: Path) -> int:
    pid: int = json.loads((project / ".runtest/local/endpoint.json").read_text())["pid"]
    return pid


def servers(project: Path) -> list[int]:
    """The local servers running for this copy (by their state folder on the command line)."""
    found = subprocess.run(["pgrep", "-f", f"local_server.*{project}/.runtest/local"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def workers(project: Path) -> list[int]:
    found = subprocess.run(["pgrep", "-f", "lambda_worker.py"], capture_output=True, text=True)
    return [pid for pid in map(int, found.stdout.split()) if f"{project}/.runtest/local" in _cwd(pid)]


def _cwd(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def request_file(project: Path, saga_id: str, **changes: object) -> str:
    """The app's success sample under `saga_id`, with `changes`, written in the copy: its name there."""
    sample = project / SUCCESS_FILE.relative_to(ROOT)
    request = json.loads(sample.read_text()) | {ID_FIELD: saga_id, **changes}
    path = project / f"{saga_id}.json"
    path.write_text(json.dumps(request))
    return path.name


def results(done: subprocess.CompletedProcess[str]) -> list[SagaResult]:
    documents = json.loads(done.stdout)
    return [SagaResult.model_validate(d) for d in (documents if isinstance(documents, list) else [documents])]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    copy = copy_working_tree(tmp_path_factory.mktemp("local-faults") / "project")
    # Two starts at once give one endpoint
    starts = [
        subprocess.Popen(
            ["./build.sh", "local", "start"],
            cwd=copy,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=stage_environment(),
        )
        for _ in range(2)
    ]
    try:
        answers = [start.communicate(timeout=180) for start in starts]
        assert [start.returncode for start in starts] == [0, 0], answers
        assert len(servers(copy)) == 1
        deployed = run(copy, "./build.sh", "deploy", "local")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        yield copy
    finally:  # whatever happened, even in this set-up, leave nothing of this copy running
        for pid in servers(copy):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def test_two_starts_at_once_gave_one_endpoint_and_stop_leaves_none(project):
    assert servers(project) == [endpoint_pid(project)]


def test_a_busy_endpoint_is_reported_running_and_start_keeps_it(project):
    pid = endpoint_pid(project)
    os.kill(pid, signal.SIGSTOP)
    try:
        status = run(project, "./build.sh", "local", "status", timeout=60)
        started = run(project, "./build.sh", "local", "start", timeout=60)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert "running" in status.stdout
    assert "busy" in status.stdout
    assert "not running" not in status.stdout
    assert started.returncode == 0
    assert "already running" in started.stderr
    assert servers(project) == [pid]


def test_a_stopped_endpoint_ends_the_run_by_its_timeout_in_one_sentence(project):
    pid = endpoint_pid(project)
    name = request_file(project, "saga-hung")
    process = subprocess.Popen(
        ["./runtest.sh", name, "--stage", "local", "--timeout", "4", "--json"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=stage_environment(),
    )
    time.sleep(1.0)
    os.kill(pid, signal.SIGSTOP)
    started = time.monotonic()
    try:
        _, err = process.communicate(timeout=60)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert time.monotonic() - started < 4 + 5 + 3  # the --timeout, its grace, and start-up
    assert process.returncode in (1, 2), err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2  # the stage it runs on, then one sentence


def test_a_rerun_of_a_running_or_ended_execution_is_a_reuse(project):
    from saga.models import parse_request
    from sagatools.request_files import RequestFile

    # (slowed by retries: three transient failures, then it books; in forward recovery where the app can)
    forward = {"recovery": {"mode": "forward"}} if SAGA.pivot is not None else {}
    name = request_file(project, "saga-rerun", simulate={book_step(LAST): "transient:3"}, **forward)
    request = parse_request(json.loads((project / name).read_text()))
    machines = _client(project, "stepfunctions").list_state_machines()["stateMachines"]
    (saga,) = [m["stateMachineArn"] for m in machines if m["name"].endswith(f"-{SAGA_MACHINE.suffix}")]
    _client(project, "stepfunctions").start_execution(
        stateMachineArn=saga, name="saga-rerun", input=RequestFile(name, request).execution_input
    )
    done = run(project, "./runtest.sh", name, "--stage", "local", "--json")
    assert done.returncode == 0, done.stderr
    (report,) = results(done)
    assert report.reused_execution is True
    assert report.outcome is Outcome.COMMITTED


def test_an_environment_killed_while_idle_fails_no_invocation(project):
    warm = run(project, "./runtest.sh", request_file(project, "saga-warm"), "--stage", "local", "--json")
    assert warm.returncode == 0, warm.stderr
    killed = workers(project)
    assert killed, "warm environments after a saga"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    done = run(project, "./runtest.sh", request_file(project, "saga-after-kill"), "--stage", "local", "--json")
    assert done.returncode == 0, done.stderr
    (report,) = results(done)
    assert report.outcome is Outcome.COMMITTED
    assert report.billed_transitions == report.transitions  # not one failed attempt


def test_records_a_resolution_started_by_hand_left_are_shown_with_the_reason_and_can_be_closed(project):
    client = _client(project, "stepfunctions")
    (machine,) = [m["stateMachineArn"] for m in client.list_state_machines()["stateMachines"] if "resolve" in m["name"]]
    arn = client.start_execution(
        stateMachineArn=machine, name="orphan-by-hand", input=json.dumps({"request": {ID_FIELD: "saga-orphan"}})
    )["executionArn"]
    deadline = time.monotonic() + 60
    while client.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    shown = run(project, "./attention.sh", "show", "saga-orphan", "--stage", "local")
    assert shown.returncode == 0, shown.stderr
    assert f"no saga ran under this {ID_FIELD}" in shown.stdout
    refused = run(project, "./attention.sh", "resolve", "saga-orphan", "--stage", "local")
    assert refused.returncode == 2
    assert "./attention.sh close saga-orphan" in refused.stderr
    assert "Traceback" not in refused.stderr
    closed = run(project, "./attention.sh", "close", "saga-orphan", "--reason", "a bad request", "--stage", "local")
    assert closed.returncode == 0, closed.stderr
    listed = json.loads(run(project, "./attention.sh", "list", "--stage", "local", "--json").stdout)
    assert "saga-orphan" not in {record[ID_FIELD] for record in listed}
    everything = json.loads(run(project, "./attention.sh", "list", "--all", "--stage", "local", "--json").stdout)
    reasons = {record["resolved_by"] for record in everything if record[ID_FIELD] == "saga-orphan"}
    assert reasons == {"operator (attention.sh close): a bad request"}


def provider_matrix() -> dict[str, dict[str, str]]:
    """Saga id -> its `simulate`: a success; at each request step a refusal, a lost answer and a late booking;
    and a stuck compensation (the last step refuses, the first step's compensation keeps failing)."""
    matrix: dict[str, dict[str, str]] = {"matrix-success": {}}
    for step in REQUESTS:
        for mode in ("fail", "crash_after_write", LATE):
            matrix[f"matrix-{step.name}-{mode}"] = {step.name: mode}
    matrix["matrix-stuck"] = {REQUESTS[-1].name: "fail", compensation_of(REQUESTS[0].resource).name: "fail"}
    return matrix


def summaries(output: str, saga_ids: list[str]) -> dict[str, str]:
    """Each saga's summary in `./runtest.sh`'s terminal output: from its `<id>: ` line to the next saga's."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in output.splitlines():
        if (saga_id := line.split(": ", 1)[0]) in saga_ids:
            current = found.setdefault(saga_id, [])
        current.append(line)
    return {saga_id: "\n".join(lines) for saga_id, lines in found.items()}


def test_every_providers_ledger_agrees_with_the_bookings_under_each_fault(project):
    """The fault matrix through the real `./runtest.sh --stage local`: for every saga, each provider's ledger agrees
    with the saga's records (booked at both or at neither) unless an open attention record names the step, and the
    summary shows a DISAGREEMENT line exactly then."""
    matrix = provider_matrix()
    names = [
        request_file(project, saga_id, **({"simulate": simulate} if simulate else {}))
        for saga_id, simulate in matrix.items()
    ]
    done = run(project, "./runtest.sh", *names, "--stage", "local", "--json", timeout=300)
    assert done.returncode in (0, 1), done.stderr  # 1: some sagas rolled back or need attention, as asked
    reports = {report.saga_id: report for report in results(done)}
    assert list(reports) == list(matrix)
    for saga_id, report in reports.items():
        assert report.outcome not in (None, Outcome.CONFLICT), (saga_id, report.status, report.error)
        assert_providers_agree(report)
    assert reports["matrix-success"].outcome is Outcome.COMMITTED
    assert reports["matrix-stuck"].outcome is Outcome.NEEDS_ATTENTION
    # Run again as a user reads it: the ended executions are reused, each summarised in full (a batch of at most
    # COMPACT_ABOVE sagas; above that the summary is compact).
    shown: dict[str, str] = {}
    for start in range(0, len(names), COMPACT_ABOVE):
        again = run(project, "./runtest.sh", *names[start : start + COMPACT_ABOVE], "--stage", "local", timeout=300)
        assert again.returncode in (0, 1), again.stderr
        shown |= summaries(again.stdout, list(matrix))
    assert list(shown) == list(matrix)
    for saga_id, report in reports.items():
        assert ("DISAGREEMENT" in shown[saga_id]) == bool(report.provider_disagreements()), shown[saga_id]


def test_a_killed_endpoint_ends_the_run_at_once_in_one_sentence(project):
    names = [request_file(project, f"saga-killed-{n}") for n in range(5)]
    process = subprocess.Popen(
        ["./runtest.sh", *names, "--stage", "local", "--timeout", "60"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=stage_environment(),
    )
    time.sleep(1.5)
    os.killpg(endpoint_pid(project), signal.SIGKILL)
    started = time.monotonic()
    _, err = process.communicate(timeout=60)
    assert time.monotonic() - started < 15
    assert "Traceback" not in err
    if process.returncode != 0:  # it may have ended before the kill
        assert process.returncode == 2, err
        assert "stopped answering" in err or "not running" in err
    stopped = run(project, "./build.sh", "local", "stop")
    assert stopped.returncode == 0
    assert servers(project) == []


def _client(project: Path, service: str):
    port = json.loads((project / ".runtest/local/endpoint.json").read_text())["port"]
    credentials = EndpointCredentials.read(project / ".runtest/local/credentials")  # the endpoint's own
    assert credentials is not None
    return endpoint_client(f"http://127.0.0.1:{port}", service, REGION, credentials)
