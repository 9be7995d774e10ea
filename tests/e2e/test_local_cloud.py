"""The local cloud end to end, with the user's commands: start, deploy, run, inspect, redeploy, remove, stop.

It runs in a copy of the working tree (sharing .venv and node_modules), so it can edit a handler there
and see that only a redeploy changes what the stage runs, and so its endpoint is its own.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from saga.catalogue import RESOURCES, RETRIABLES, ResourceNames, by_name, compensation_of
from saga.definition import SAGA
from saga.keys import ID_FIELD, RECORDS_KEY
from saga.models import RecordStatus, parse_request
from saga.providers import SimulatedProvider
from saga.spec import LAMBDA_FAULTS, LAMBDA_TIMEOUTS, StepCall
from sagatools.fake_credentials import FAKE_CREDENTIALS, EndpointCredentials
from sagatools.results import Outcome, SagaResult
from sagatools.working_tree import copy_working_tree
from tests.helpers import (
    APP_DIR,
    FAIL_FILE,
    LAST,
    ROOT,
    SUCCESS_FILE,
    alive,
    book_step,
    endpoint_client,
    proc_stat,
    saga_request,
)

pytestmark = pytest.mark.slow

REGION = "eu-west-1"  # not the default: the region must follow AWS_REGION like on any stage
SERVICE = "lambda-saga-pattern"
FIRST = RESOURCES[0]
# The compensation of the step before the last (the last's own in a saga of one step): it stays stuck in the
# stuck saga, and times out once after the redeploy. A refusal at the last step rolls every step back.
SLOW = compensation_of(RESOURCES[-2] if len(RESOURCES) > 1 else LAST)
REFUSED = {book_step(LAST): "fail"}
# The app's sample requests, as the copy's runtest.sh is given them (relative to the project).
SUCCESS = str(SUCCESS_FILE.relative_to(ROOT))
FAIL = str(FAIL_FILE.relative_to(ROOT))


def table(resource: str) -> str:
    """The local stage's table of a step's records."""
    return f"{SERVICE}-local-{ResourceNames(resource).table_suffix}"


def write_request(project: Path, saga_id: str, **changes: object) -> str:
    """The app's success sample under `saga_id`, with `changes`, written in the copy: its name there."""
    path = project / f"{saga_id}.json"
    path.write_text(json.dumps(saga_request(saga_id) | changes))
    return path.name


def reworked(project: Path) -> bool:
    """Edits the last step's own work in the copy, in the app's module that declares it, as a user edits a
    step: its action's reference gets a V2- prefix. False if the last step has no work of its own."""
    work = SAGA.steps[-1].work
    if work is None:
        return False
    module = sys.modules[work.action.__module__]
    (name,) = [variable for variable, value in vars(module).items() if value is work]
    path = project / Path(str(module.__file__)).relative_to(ROOT)
    as_deployed = f"_{name}_as_deployed"
    edit = f'__import__("dataclasses").replace({as_deployed}, action=lambda call: "V2-" + {as_deployed}.action(call))'
    path.write_text(f"{path.read_text()}\n\n{as_deployed} = {name}\n{name} = {edit}\n")
    return True


def reference_given(saga_id: str) -> str:
    """What the last step's own work (as the working tree has it) answers for the success sample as `saga_id`, its
    simulated provider (if it calls one) answering a new key with the reference it is given."""
    work = SAGA.steps[-1].work
    assert work is not None
    section = parse_request(saga_request(saga_id)).details_for(LAST)
    with mock.patch.object(SimulatedProvider, "book", lambda _provider, _call, reference: reference):
        return str(work.action(StepCall(saga_id, LAST, section)))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    copy = copy_working_tree(tmp_path_factory.mktemp("local-cloud") / "project")
    yield copy
    # Whatever happened, leave nothing running.
    state = copy / ".runtest" / "local" / "endpoint.json"
    if state.exists():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(json.loads(state.read_text())["pid"], signal.SIGKILL)


def run(project: Path, *command: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment["AWS_REGION"] = REGION
    return subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=timeout, env=environment)


def results(project: Path, *files: str) -> list[SagaResult]:
    done = run(project, "./runtest.sh", *files, "--stage", "local", "--json")
    assert done.returncode in (0, 1), done.stderr
    documents = json.loads(done.stdout)
    return [SagaResult.model_validate(d) for d in (documents if isinstance(documents, list) else [documents])]


CREDENTIALS: dict[str, EndpointCredentials] = {}  # the copy's endpoint's, read once it has started


def client(url: str, service: str, credentials: EndpointCredentials | None = None):
    return endpoint_client(url, service, REGION, credentials or CREDENTIALS["endpoint"])


def refusal(call: Callable[[], object]) -> tuple[int, str]:
    """The HTTP status and error code a call that must be refused got."""
    with pytest.raises(ClientError) as refused:
        call()
    return refused.value.response["ResponseMetadata"]["HTTPStatusCode"], refused.value.response["Error"]["Code"]


def infrastructure_faults(url: str, execution_arn: str) -> list[str]:
    """The task failures of an execution that no step raised: Lambda's faults and timeouts, a task timeout,
    a failed service call (the DynamoDB tasks). On a busy machine the local cloud has them, as AWS can."""
    history = client(url, "stepfunctions").get_paginator("get_execution_history")
    faults = []
    for page in history.paginate(executionArn=execution_arn):
        for event in page["events"]:
            kind = event["type"]
            if kind in ("LambdaFunctionFailed", "LambdaFunctionTimedOut", "TaskFailed", "TaskTimedOut"):
                details = next(value for key, value in event.items() if key.endswith("EventDetails"))
                error = details.get("error", kind)
                if kind.startswith("Task") or error in (*LAMBDA_FAULTS, *LAMBDA_TIMEOUTS, "States.Timeout"):
                    faults.append(f"{kind}: {error}")
    return faults


def workers(project: Path) -> list[int]:
    """The warm Lambda environments of this copy's endpoint (their working folder is under it)."""
    found = subprocess.run(["pgrep", "-f", "lambda_worker.py"], capture_output=True, text=True, check=False)
    pids = []
    for pid in map(int, found.stdout.split()):
        with contextlib.suppress(OSError):
            if f"{project}/.runtest/local" in os.readlink(f"/proc/{pid}/cwd"):
                pids.append(pid)
    return pids


def group_alive(pid: int) -> bool:
    """Whether a process of the group runs (one that has exited and waits for init to reap it does not)."""
    stats = (proc_stat(path) for path in Path("/proc").glob("[0-9]*/stat"))
    return any(alive(stat) and stat[1] == pid for stat in stats if stat is not None)


def test_deploy_run_inspect_redeploy_remove_stop(project, capsys):
    timings = {}

    def timed(name, *command):
        started = time.perf_counter()
        done = run(project, *command)
        timings[name] = time.perf_counter() - started
        return done

    # Given no endpoint: the stage says how to start one (exit 2, one sentence)
    refused = run(project, "./runtest.sh", SUCCESS, "--stage", "local")
    assert refused.returncode == 2
    assert "./build.sh local start" in refused.stderr
    assert "Traceback" not in refused.stderr

    # When the endpoint starts (twice: the second reuses it)
    assert timed("start", "./build.sh", "local", "start").returncode == 0
    url = run(project, "./build.sh", "local", "url").stdout
    assert url.startswith("http://127.0.0.1:")
    assert url.count("\n") == 1
    url = url.strip()
    pid = json.loads((project / ".runtest/local/endpoint.json").read_text())["pid"]
    again = run(project, "./build.sh", "local", "start")
    assert again.returncode == 0
    assert json.loads((project / ".runtest/local/endpoint.json").read_text())["pid"] == pid
    # with credentials of its own, its owner's only (tests/e2e/test_local_owner_only.py: another user's view)
    state = project / ".runtest" / "local"
    assert (stat.S_IMODE(state.stat().st_mode), stat.S_IMODE((state / "credentials").stat().st_mode)) == (0o700, 0o600)
    credentials = EndpointCredentials.read(state / "credentials")
    assert credentials is not None
    CREDENTIALS["endpoint"] = credentials

    # and the stage is deployed with the AWS deploy (osls, CloudFormation, deploy-stepfunc)
    deployed = timed("deploy", "./build.sh", "deploy", "local")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "state machine" in deployed.stdout
    status = run(project, "./build.sh", "local", "status").stdout
    assert f"local ({REGION})" in status
    assert str(pid) in status

    # Then the success, rollback and stuck sagas end as on the embedded stack, through the deployed zip
    started = time.perf_counter()
    stuck_file = write_request(project, "saga-stuck", simulate={**REFUSED, SLOW.name: "fail"})
    success, rollback, stuck = results(project, SUCCESS, FAIL, stuck_file)
    timings["three sagas"] = time.perf_counter() - started
    assert success.outcome is Outcome.COMMITTED
    assert rollback.outcome is Outcome.ROLLED_BACK
    assert stuck.outcome is Outcome.NEEDS_ATTENTION
    assert success.transitions == len(RESOURCES) + 1
    # and the tables say the same, read with any AWS SDK through the endpoint
    dynamodb = client(url, "dynamodb")
    first = dynamodb.get_item(TableName=table(FIRST), Key={ID_FIELD: {"S": success.saga_id}}, ConsistentRead=True)[
        "Item"
    ]
    assert first["status"]["S"] == RecordStatus.CONFIRMED
    log = dynamodb.query(
        TableName=f"{SERVICE}-local-saga-log",
        KeyConditionExpression="#id = :t",
        ExpressionAttributeNames={"#id": ID_FIELD},
        ExpressionAttributeValues={":t": {"S": rollback.saga_id}},
    )["Items"]
    assert len(log) == len(rollback.saga_log)
    assert rollback.records[FIRST] is RecordStatus.CANCELLED
    assert [record.step for record in stuck.needs_attention]
    # but not with moto's usual fake credentials, nor with a guessed secret: refused, the stage unchanged
    fake = EndpointCredentials(FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"], FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    guessed = EndpointCredentials(credentials.access_key_id, "guessed")
    function = client(url, "lambda").list_functions()["Functions"][0]["FunctionName"]
    for others, code in ((fake, "UnrecognizedClientException"), (guessed, "InvalidSignatureException")):
        delete = functools.partial(client(url, "dynamodb", others).delete_table, TableName=table(FIRST))
        invoke = functools.partial(client(url, "lambda", others).invoke, FunctionName=function, Payload=b"{}")
        assert [refusal(delete), refusal(invoke)] == [(403, code)] * 2
    assert table(FIRST) in dynamodb.list_tables()["TableNames"]
    executions = client(url, "stepfunctions").list_executions(
        stateMachineArn=success.execution_arn.rsplit(":", 1)[0].replace(":execution:", ":stateMachine:")
    )
    assert {e["name"] for e in executions["executions"]} >= {success.saga_id, rollback.saga_id, stuck.saga_id}

    # When a step's own work is edited in the working tree (the last step's, in the app) but not redeployed
    edited = reworked(project)
    # (and, deployed with the same redeploy: a compensation times out on its first attempt, with a 2 s timeout)
    slow_py = project / SLOW.handler_file
    slow_py.write_text(
        slow_py.read_text()
        + "\n_deployed = handler\n\n\n"
        + "def handler(event, context):\n"
        + f'    if event["retry_count"] == 0 and event["request"]["{ID_FIELD}"].startswith("saga-timeout"):\n'
        + '        __import__("time").sleep(4)\n'
        + "    return _deployed(event, context)\n"
    )
    assert "sleep(4)" in slow_py.read_text()
    steps_yml = project / "serverless.steps.yml"
    handler_line = f"    handler: {SLOW.handler}\n"
    assert handler_line in steps_yml.read_text()
    steps_yml.write_text(steps_yml.read_text().replace(handler_line, f"{handler_line}    timeout: 2\n"))

    def reference_of(saga_id):
        (result,) = results(project, write_request(project, saga_id))
        assert result.outcome is Outcome.COMMITTED
        item = dynamodb.get_item(TableName=table(LAST), Key={ID_FIELD: {"S": saga_id}})["Item"]
        return item["reference"]["S"]

    # Then the stage still runs what was deployed
    if edited:
        assert reference_of("saga-before-redeploy") == reference_given("saga-before-redeploy")
    # and after a redeploy it runs the change
    redeployed = timed("redeploy", "./build.sh", "deploy", "local")
    assert redeployed.returncode == 0, redeployed.stdout + redeployed.stderr
    if edited:
        assert reference_of("saga-after-redeploy") == f"V2-{reference_given('saga-after-redeploy')}"
    # A compensation whose function times out (Lambda answers Sandbox.Timedout) is retried, not flagged
    (timed_out,) = results(project, write_request(project, "saga-timeout", simulate=REFUSED))
    assert timed_out.outcome is Outcome.ROLLED_BACK, timed_out.cause
    assert not timed_out.needs_attention
    history = client(url, "stepfunctions").get_execution_history(executionArn=timed_out.execution_arn)["events"]
    failures = [
        event["lambdaFunctionFailedEventDetails"]["error"]
        for event in history
        if event["type"] == "LambdaFunctionFailed"
    ]
    assert failures == [SAGA.errors.refused, "Sandbox.Timedout"], failures  # the simulated refusal, then the timeout
    assert infrastructure_faults(url, timed_out.execution_arn) == ["LambdaFunctionFailed: Sandbox.Timedout"]
    slow_log = [(e.event.value, e.attempt) for e in timed_out.log_of(SLOW.name)]
    assert slow_log[-1] == ("END", 2), slow_log

    # When an operator looks after the stuck saga: list shows it
    listed = run(project, "./attention.sh", "list", "--stage", "local", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(r[ID_FIELD], r["step"]) for r in json.loads(listed.stdout)] == [
        (stuck.saga_id, record.step) for record in stuck.needs_attention
    ]
    # a resolution with the fault kept stays stuck (exit 1), its record open with the new attempts
    started = time.perf_counter()
    kept = run(project, "./attention.sh", "resolve", stuck.saga_id, "--stage", "local", "--keep-faults", "--json")
    assert kept.returncode == 1, kept.stderr
    (record,) = stuck.needs_attention
    stuck_step = by_name(record.step)
    assert stuck_step is not None
    assert json.loads(kept.stdout)["attention"][0]["attempts"] == stuck_step.retry.attempts
    # a resolution without it brings every step's record to CANCELLED and closes the record (exit 0)
    resolved = run(project, "./attention.sh", "resolve", stuck.saga_id, "--stage", "local", "--json")
    timings["resolution"] = time.perf_counter() - started
    assert resolved.returncode == 0, resolved.stderr
    saga = json.loads(resolved.stdout)
    assert saga["outcome"] == "RESOLVED"
    assert set(saga[RECORDS_KEY].values()) == {"CANCELLED"}
    assert [e["name"] for e in saga["executions"]] == [
        stuck.saga_id,
        f"{stuck.saga_id}-resolve-1",
        f"{stuck.saga_id}-resolve-2",
    ]
    # list is empty again, list --all shows it resolved, and the saga log holds every attempt in order
    assert json.loads(run(project, "./attention.sh", "list", "--stage", "local", "--json").stdout) == []
    everything = json.loads(run(project, "./attention.sh", "list", "--stage", "local", "--all", "--json").stdout)
    assert [(r[ID_FIELD], r["attention"]) for r in everything] == [(stuck.saga_id, "RESOLVED")]
    shown = json.loads(run(project, "./attention.sh", "show", stuck.saga_id, "--stage", "local", "--json").stdout)
    stuck_step = stuck.needs_attention[0].step
    runs = [
        e["execution_id"].rsplit(":", 1)[1]
        for e in shown["saga_log"]
        if e["step"] == stuck_step and e["event"] != "START"
    ]
    assert runs[0] == stuck.saga_id
    assert runs[-1] == f"{stuck.saga_id}-resolve-2"
    assert f"{stuck.saga_id}-resolve-1" in runs
    assert run(project, "./attention.sh", "resolve", "no-such-saga", "--stage", "local").returncode == 2

    # Two resolve calls at once for one stuck saga: one execution runs, and both end with the saga resolved
    other = write_request(project, "saga-stuck-twice", simulate={**REFUSED, SLOW.name: "fail"})
    assert results(project, other)[0].outcome is Outcome.NEEDS_ATTENTION
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"AWS_REGION": REGION}
    calls = [
        subprocess.Popen(
            ["./attention.sh", "resolve", "saga-stuck-twice", "--stage", "local", "--json"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        for _ in range(2)
    ]
    answers = [call.communicate(timeout=120) for call in calls]
    assert [call.returncode for call in calls] == [0, 0], answers
    both = json.loads(run(project, "./attention.sh", "show", "saga-stuck-twice", "--stage", "local", "--json").stdout)
    assert [e["name"] for e in both["executions"]] == ["saga-stuck-twice", "saga-stuck-twice-resolve-1"]
    assert both["outcome"] == "RESOLVED"

    # Forward recovery on the stage: every forward example of the app ends as on the embedded stack, the same
    # ASL and handlers (an app with steps past a pivot, and examples of them)
    examples = project / APP_DIR.relative_to(ROOT) / "examples"
    forward_files = sorted(str(path.relative_to(project)) for path in examples.glob("forward-*.json"))
    if forward_files and RETRIABLES:
        # (a second saga left unfinished, to roll back: the first step past the pivot refused everywhere)
        rolled_back = write_request(
            project, "saga-fwd-rolled-back", recovery={"mode": "forward"}, simulate={RETRIABLES[0].name: "fail"}
        )
        *on_stage, again = results(project, *forward_files, rolled_back)
        embedded = run(project, "./runtest.sh", *forward_files, "--json")
        assert embedded.returncode in (0, 1), embedded.stderr
        for staged, local in zip(on_stage, json.loads(embedded.stdout), strict=True):
            # (a loaded machine may fail a task the way Lambda or DynamoDB can, retried as on AWS: each such
            # retry is one more billed transition; the in-process embedded Lambda has none)
            faults = infrastructure_faults(url, staged.execution_arn)
            assert (staged.outcome, staged.records, staged.billed_transitions - len(faults)) == (
                Outcome(local["outcome"]),
                local[RECORDS_KEY],
                local["billed_transitions"],
            ), (staged.saga_id, faults, [(e.step, e.event.value, e.attempt, e.detail) for e in staged.saga_log])
            assert staged.recovery == SagaResult.model_validate(local).recovery
        unfinished = [r for r in on_stage if r.outcome is Outcome.NEEDS_ATTENTION and r.recovery.pivot_passed]
        assert unfinished, "an example leaves a forward saga unfinished"
        # an unfinished saga is finished forward by resolve; a second one is undone whole with --roll-back
        finished = run(project, "./attention.sh", "resolve", unfinished[0].saga_id, "--stage", "local", "--json")
        assert finished.returncode == 0, finished.stderr
        saga = json.loads(finished.stdout)
        assert (saga["outcome"], set(saga[RECORDS_KEY].values())) == ("RESOLVED", {"CONFIRMED"})
        assert again.outcome is Outcome.NEEDS_ATTENTION
        listed = json.loads(run(project, "./attention.sh", "list", "--stage", "local", "--json").stdout)
        assert sorted((r[ID_FIELD], r["kind"]) for r in listed) == sorted(
            (record.saga_id, "UNFINISHED_FORWARD") for r in [*unfinished[1:], again] for record in r.needs_attention
        )
        undone = run(project, "./attention.sh", "resolve", again.saga_id, "--roll-back", "--stage", "local", "--json")
        assert undone.returncode == 0, undone.stderr
        saga = json.loads(undone.stdout)
        assert (saga["outcome"], set(saga[RECORDS_KEY].values())) == ("RESOLVED", {"CANCELLED"})

    # When the stage is removed: the state machine, then the stack, and every warm environment with them
    assert workers(project)
    assert {os.stat(f"/proc/{pid}").st_uid for pid in workers(project)} == {os.getuid()}  # the endpoint's user
    removed = timed("remove", "./build.sh", "remove", "local")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    deadline = time.monotonic() + 10
    while workers(project) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workers(project) == []
    assert not client(url, "stepfunctions").list_state_machines()["stateMachines"]
    stacks = client(url, "cloudformation").describe_stacks()["Stacks"]
    assert all(stack["StackStatus"] == "DELETE_COMPLETE" for stack in stacks)

    # and the endpoint stops: nothing of it is left running
    assert timed("stop", "./build.sh", "local", "stop").returncode == 0
    assert not group_alive(pid)
    assert not (project / ".runtest/local/endpoint.json").exists()
    assert not (project / ".runtest/local/credentials").exists()
    with capsys.disabled():
        print("\nlocal cloud: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
