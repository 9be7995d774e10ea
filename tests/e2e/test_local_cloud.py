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
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from saga.catalogue import RESOURCES, by_name, compensation_of
from saga.models import BookingStatus
from saga.spec import LAMBDA_FAULTS, LAMBDA_TIMEOUTS
from sagatools.fake_credentials import FAKE_CREDENTIALS, EndpointCredentials
from sagatools.results import Outcome, SagaResult
from sagatools.working_tree import copy_working_tree
from tests.helpers import alive, endpoint_client, proc_stat

pytestmark = pytest.mark.slow

REGION = "eu-west-1"  # not the default: the region must follow AWS_REGION like on any stage
SERVICE = "lambda-saga-pattern"


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
    refused = run(project, "./runtest.sh", "test-booking-success.json", "--stage", "local")
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
    success, rollback, stuck = results(
        project, "test-booking-success.json", "test-booking-fail.json", "examples/stuck-compensation.json"
    )
    timings["three sagas"] = time.perf_counter() - started
    assert success.outcome is Outcome.COMMITTED
    assert rollback.outcome is Outcome.ROLLED_BACK
    assert stuck.outcome is Outcome.NEEDS_ATTENTION
    assert success.transitions == len(RESOURCES) + 1
    # and the tables say the same, read with any AWS SDK through the endpoint
    dynamodb = client(url, "dynamodb")
    hotel = dynamodb.get_item(
        TableName=f"{SERVICE}-local-hotel-bookings", Key={"saga_id": {"S": success.saga_id}}, ConsistentRead=True
    )["Item"]
    assert hotel["status"]["S"] == BookingStatus.CONFIRMED
    log = dynamodb.query(
        TableName=f"{SERVICE}-local-saga-log",
        KeyConditionExpression="saga_id = :t",
        ExpressionAttributeValues={":t": {"S": rollback.saga_id}},
    )["Items"]
    assert len(log) == len(rollback.saga_log)
    assert rollback.bookings["hotel"] is BookingStatus.CANCELLED
    assert [record.step for record in stuck.needs_attention]
    # but not with moto's usual fake credentials, nor with a guessed secret: refused, the stage unchanged
    fake = EndpointCredentials(FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"], FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    guessed = EndpointCredentials(credentials.access_key_id, "guessed")
    function = client(url, "lambda").list_functions()["Functions"][0]["FunctionName"]
    for others, code in ((fake, "UnrecognizedClientException"), (guessed, "InvalidSignatureException")):
        delete = functools.partial(
            client(url, "dynamodb", others).delete_table, TableName=f"{SERVICE}-local-hotel-bookings"
        )
        invoke = functools.partial(client(url, "lambda", others).invoke, FunctionName=function, Payload=b"{}")
        assert [refusal(delete), refusal(invoke)] == [(403, code)] * 2
    assert f"{SERVICE}-local-hotel-bookings" in dynamodb.list_tables()["TableNames"]
    executions = client(url, "stepfunctions").list_executions(
        stateMachineArn=success.execution_arn.rsplit(":", 1)[0].replace(":execution:", ":stateMachine:")
    )
    assert {e["name"] for e in executions["executions"]} >= {success.saga_id, rollback.saga_id, stuck.saga_id}

    # When a handler is edited in the working tree but not redeployed
    car_py = project / "trip" / "car.py"
    car_py.write_text(car_py.read_text().replace('return f"CAR-{call.saga_id}"', 'return f"CAR-V2-{call.saga_id}"'))
    assert "-V2-" in car_py.read_text()
    # (and, deployed with the same redeploy: cancelFlight times out on its first attempt, with a 2 s timeout)
    cancel_flight_py = project / "functions" / "cancel_flight.py"
    cancel_flight_py.write_text(
        cancel_flight_py.read_text()
        + "\n_cancel_flight = handler\n\n\n"
        + "def handler(event, context):\n"
        + '    if event["retry_count"] == 0 and event["request"]["saga_id"].startswith("trip-timeout"):\n'
        + '        __import__("time").sleep(4)\n'
        + "    return _cancel_flight(event, context)\n"
    )
    assert "sleep(4)" in cancel_flight_py.read_text()
    steps_yml = project / "serverless.steps.yml"
    steps_yml.write_text(
        steps_yml.read_text().replace(
            "    handler: functions/cancel_flight.handler\n",
            "    handler: functions/cancel_flight.handler\n    timeout: 2\n",
        )
    )
    trip = json.loads((project / "test-booking-success.json").read_text())

    def reference_of(saga_id):
        path = project / f"{saga_id}.json"
        path.write_text(json.dumps({**trip, "saga_id": saga_id}))
        (result,) = results(project, path.name)
        assert result.outcome is Outcome.COMMITTED
        item = dynamodb.get_item(TableName=f"{SERVICE}-local-car-bookings", Key={"saga_id": {"S": saga_id}})["Item"]
        return item["reference"]["S"]

    # Then the stage still runs what was deployed
    assert reference_of("trip-before-redeploy") == "CAR-trip-before-redeploy"
    # and after a redeploy it runs the change
    redeployed = timed("redeploy", "./build.sh", "deploy", "local")
    assert redeployed.returncode == 0, redeployed.stdout + redeployed.stderr
    assert reference_of("trip-after-redeploy") == "CAR-V2-trip-after-redeploy"
    # A compensation whose function times out (Lambda answers Sandbox.Timedout) is retried, not flagged
    path = project / "trip-timeout.json"
    path.write_text(json.dumps({**trip, "saga_id": "trip-timeout", "simulate": {"book_car": "fail"}}))
    (timed_out,) = results(project, path.name)
    assert timed_out.outcome is Outcome.ROLLED_BACK, timed_out.cause
    assert not timed_out.needs_attention
    history = client(url, "stepfunctions").get_execution_history(executionArn=timed_out.execution_arn)["events"]
    failures = [
        event["lambdaFunctionFailedEventDetails"]["error"]
        for event in history
        if event["type"] == "LambdaFunctionFailed"
    ]
    assert failures == ["BookingRefused", "Sandbox.Timedout"], failures  # the simulated refusal, then the timeout
    assert infrastructure_faults(url, timed_out.execution_arn) == ["LambdaFunctionFailed: Sandbox.Timedout"]
    flight_log = [(e.event.value, e.attempt) for e in timed_out.log_of(compensation_of("flight").name)]
    assert flight_log[-1] == ("END", 2), flight_log

    # When an operator looks after the stuck saga: list shows it
    listed = run(project, "./attention.sh", "list", "--stage", "local", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(r["saga_id"], r["step"]) for r in json.loads(listed.stdout)] == [
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
    # a resolution without it brings every booking to CANCELLED and closes the record (exit 0)
    resolved = run(project, "./attention.sh", "resolve", stuck.saga_id, "--stage", "local", "--json")
    timings["resolution"] = time.perf_counter() - started
    assert resolved.returncode == 0, resolved.stderr
    trip = json.loads(resolved.stdout)
    assert trip["outcome"] == "RESOLVED"
    assert set(trip["bookings"].values()) == {"CANCELLED"}
    assert [e["name"] for e in trip["executions"]] == [
        stuck.saga_id,
        f"{stuck.saga_id}-resolve-1",
        f"{stuck.saga_id}-resolve-2",
    ]
    # list is empty again, list --all shows it resolved, and the saga log holds every attempt in order
    assert json.loads(run(project, "./attention.sh", "list", "--stage", "local", "--json").stdout) == []
    everything = json.loads(run(project, "./attention.sh", "list", "--stage", "local", "--all", "--json").stdout)
    assert [(r["saga_id"], r["attention"]) for r in everything] == [(stuck.saga_id, "RESOLVED")]
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
    assert run(project, "./attention.sh", "resolve", "no-such-trip", "--stage", "local").returncode == 2

    # Two resolve calls at once for one stuck trip: one execution runs, and both end with the trip resolved
    other = project / "stuck-again.json"
    other.write_text(
        json.dumps(
            {**json.loads((project / "examples/stuck-compensation.json").read_text()), "saga_id": "trip-stuck-twice"}
        )
    )
    assert results(project, other.name)[0].outcome is Outcome.NEEDS_ATTENTION
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"AWS_REGION": REGION}
    calls = [
        subprocess.Popen(
            ["./attention.sh", "resolve", "trip-stuck-twice", "--stage", "local", "--json"],
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
    both = json.loads(run(project, "./attention.sh", "show", "trip-stuck-twice", "--stage", "local", "--json").stdout)
    assert [e["name"] for e in both["executions"]] == ["trip-stuck-twice", "trip-stuck-twice-resolve-1"]
    assert both["outcome"] == "RESOLVED"

    # Forward recovery on the stage: every example ends as on the embedded stack, the same ASL and handlers
    forward_files = sorted(str(path.relative_to(project)) for path in project.glob("examples/forward-*.json"))
    if forward_files:
        # (a second trip left unfinished, to roll back: the refused-everywhere example under another id)
        refused = json.loads((project / "examples/forward-refused-everywhere-car.json").read_text())
        (project / "rolled-back.json").write_text(json.dumps({**refused, "saga_id": "trip-fwd-rolled-back"}))
        *on_stage, again = results(project, *forward_files, "rolled-back.json")
        embedded = run(project, "./runtest.sh", *forward_files, "--json")
        assert embedded.returncode in (0, 1), embedded.stderr
        for staged, local in zip(on_stage, json.loads(embedded.stdout), strict=True):
            # (a loaded machine may fail a task the way Lambda or DynamoDB can, retried as on AWS: each such
            # retry is one more billed transition; the in-process embedded Lambda has none)
            faults = infrastructure_faults(url, staged.execution_arn)
            assert (staged.outcome, staged.bookings, staged.billed_transitions - len(faults)) == (
                Outcome(local["outcome"]),
                local["bookings"],
                local["billed_transitions"],
            ), (staged.saga_id, faults, [(e.step, e.event.value, e.attempt, e.detail) for e in staged.saga_log])
            assert staged.recovery == SagaResult.model_validate(local).recovery
        unfinished = [r for r in on_stage if r.outcome is Outcome.NEEDS_ATTENTION and r.recovery.pivot_passed]
        assert unfinished, "an example leaves a forward trip unfinished"
        # an unfinished trip is finished forward by resolve; a second one is undone whole with --roll-back
        finished = run(project, "./attention.sh", "resolve", unfinished[0].saga_id, "--stage", "local", "--json")
        assert finished.returncode == 0, finished.stderr
        trip = json.loads(finished.stdout)
        assert (trip["outcome"], set(trip["bookings"].values())) == ("RESOLVED", {"CONFIRMED"})
        assert again.outcome is Outcome.NEEDS_ATTENTION
        listed = json.loads(run(project, "./attention.sh", "list", "--stage", "local", "--json").stdout)
        assert sorted((r["saga_id"], r["kind"]) for r in listed) == sorted(
            (record.saga_id, "UNFINISHED_FORWARD") for r in [*unfinished[1:], again] for record in r.needs_attention
        )
        undone = run(project, "./attention.sh", "resolve", again.saga_id, "--roll-back", "--stage", "local", "--json")
        assert undone.returncode == 0, undone.stderr
        trip = json.loads(undone.stdout)
        assert (trip["outcome"], set(trip["bookings"].values())) == ("RESOLVED", {"CANCELLED"})

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
