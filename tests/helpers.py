"""Helpers shared by the test modules (fixtures are in conftest.py): requests, and checks of a result.

Everything here asks the served app (saga/definition.py): its samples, its id field, its steps. The tests of
the engine name no app, so they run unchanged on any (tests/second_app.py runs them on tests/apps/parcel).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saga.catalogue import REQUESTS, RESOURCES, by_name, by_state, compensation_of, request_of, simulated_provider
from saga.definition import APP, SAGA
from saga.keys import ID_FIELD
from saga.models import RecordStatus
from saga.saga_log import AttentionState, LogEvent

if TYPE_CHECKING:
    from botocore.config import Config

    from sagatools.fake_credentials import EndpointCredentials
    from sagatools.results import SagaResult

ROOT = Path(__file__).resolve().parent.parent
# The served app's folder, and its sample requests: samples/success.json does every step, samples/fail.json
# makes a step refuse (README "Make it yours": every app has both).
APP_DIR = ROOT.joinpath(*APP.split("."))
SUCCESS_FILE = APP_DIR / "samples" / "success.json"
FAIL_FILE = APP_DIR / "samples" / "fail.json"
BASE_REQUEST: dict[str, Any] = json.loads(SUCCESS_FILE.read_text())


def saga_request(saga_id: str = "saga-test", simulate: dict[str, str] | None = None, **sections: Any) -> dict[str, Any]:
    """A valid request (the app's success sample), with the given id, faults and section overrides."""
    request = copy.deepcopy(BASE_REQUEST)
    request[ID_FIELD] = saga_id
    request.update(sections)
    if simulate is not None:
        request["simulate"] = simulate
    return request


def step_of_state(state: str) -> str:
    """The step an ASL state invokes (BookHotel -> book_hotel, CancelFlightAfterStuck -> cancel_flight), or ''."""
    found = by_state(state)
    return found.name if found else ""


def assert_log_agrees_with_tables(result: SagaResult) -> None:
    """A booking is CANCELLED if its cancel ENDed, else CONFIRMED if its book ENDed, else absent."""
    ended = {entry.step for entry in result.saga_log if entry.event is LogEvent.END}
    assert list(result.records) == list(RESOURCES)
    for resource in RESOURCES:
        if compensation_of(resource).name in ended:
            assert result.records[resource] is RecordStatus.CANCELLED, resource
        elif request_of(resource).name in ended:
            assert result.records[resource] is RecordStatus.CONFIRMED, resource
        else:
            assert result.records[resource] is None, resource


def assert_providers_agree(result: SagaResult) -> None:
    """Every provider's ledger agrees with the saga's records, for each step whose work calls a simulated provider:
    booked at both or at neither, unless an open attention record names the step (`attention.sh resolve` ends it).
    The summary and the page name exactly those that disagree."""
    assert list(result.providers) == list(RESOURCES)
    named = {resource_of(record.step) for record in result.needs_attention if record.attention is AttentionState.OPEN}
    disagreeing = []
    for resource in RESOURCES:
        if simulated_provider(resource) is None:
            continue
        at_provider = result.providers[resource] is RecordStatus.CONFIRMED
        in_records = result.records[resource] is RecordStatus.CONFIRMED
        if at_provider != in_records:
            assert resource in named, f"{resource}: {result.providers[resource]} at its provider, {result.records}"
            disagreeing.append(resource)
    assert result.provider_disagreements() == disagreeing


def book_step(resource: str) -> str:
    return request_of(resource).name


def cancel_step(resource: str) -> str:
    return compensation_of(resource).name


def resource_of(step_name: str) -> str:
    found = by_name(step_name)
    assert found is not None, step_name
    return found.resource


def is_compensation(step_name: str) -> bool:
    found = by_name(step_name)
    return found is not None and found.is_compensation


def is_booking(step_name: str) -> bool:
    found = by_name(step_name)
    return found is not None and not found.is_compensation


# What the definition makes a saga cost, in states entered (saga/definition.py has n steps):
# a success is each request and the done state; a rollback at step k is k requests, k compensations and
# RolledBack. Nothing else: an extra state would cost every saga.
def success_states() -> list[str]:
    return [booking.state for booking in REQUESTS] + [SAGA.done_state]


def rollback_states(failed_at: str) -> list[str]:
    """The states of a clean rollback after the request of `failed_at` failed."""
    upto = RESOURCES.index(failed_at) + 1
    return (
        [booking.state for booking in REQUESTS[:upto]]
        + [compensation_of(resource).state for resource in reversed(RESOURCES[:upto])]
        + ["RolledBack"]
    )


def rollback_records(failed_at: str) -> dict[str, str | None]:
    """Every booking up to the failed one CANCELLED (a tombstone where it was never written), the later ones absent."""
    upto = RESOURCES.index(failed_at) + 1
    return {resource: ("CANCELLED" if index < upto else None) for index, resource in enumerate(RESOURCES)}


def simulated_failure(path: Path) -> str:
    """The resource whose request the request file makes fail (`"book_x": "fail"`)."""
    simulate = json.loads(path.read_text()).get("simulate", {})
    (failing,) = [name for name, mode in simulate.items() if mode == "fail" and is_booking(name)]
    return resource_of(failing)


LAST = RESOURCES[-1]  # the last step: a refusal there is the dearest rollback


def proc_stat(path: Path) -> tuple[str, int] | None:
    """(state, process group) from a /proc/PID/stat, or None once the process is gone."""
    try:
        state, _parent, group = path.read_text().rsplit(")", 1)[1].split()[:3]
    except (OSError, ValueError):
        return None
    return state, int(group)


def alive(stat: tuple[str, int] | None) -> bool:
    """Whether a proc_stat is of a running process: one that has exited and waits to be reaped (a
    zombie) does not run."""
    return stat is not None and stat[0] not in {"Z", "X"}


def running(pid: int) -> bool:
    return alive(proc_stat(Path(f"/proc/{pid}/stat")))


@contextmanager
def failing_dynamodb_calls(operation: str, times: int, code: str, *texts: str) -> Iterator[list[str]]:
    """The handlers' next `times` DynamoDB `operation` calls whose request holds every one of `texts` answer
    `code` (a ClientError), as DynamoDB would once botocore's own retries gave up. Yields the codes answered."""
    from botocore.awsrequest import AWSResponse

    from saga.clients import dynamodb_client

    answered: list[str] = []

    def answer(params: dict[str, Any], **_kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        body = params.get("body", b"")
        text = body.decode() if isinstance(body, bytes) else str(body)
        if len(answered) >= times or not all(wanted in text for wanted in texts):
            return None
        answered.append(code)
        error = {"Error": {"Code": code, "Message": f"injected {code}"}, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return AWSResponse("https://dynamodb.local", 400, {}, None), error

    events = dynamodb_client().meta.events
    events.register(f"before-call.dynamodb.{operation}", answer)
    try:
        yield answered
    finally:
        events.unregister(f"before-call.dynamodb.{operation}", answer)


def run_in_a_fresh_interpreter(check: Callable[[], None]) -> None:
    """Runs `check`, a function of a test module, in a new Python process (what forks a stack needs one of
    its own), and fails with the end of its stderr if it does."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", f"from {check.__module__} import {check.__name__}; {check.__name__}()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def endpoint_client(
    url: str, service: str, region: str, credentials: EndpointCredentials, config: Config | None = None
) -> Any:
    """A boto3 client of the local endpoint at `url`, in `region`, signing with `credentials`."""
    import boto3

    return boto3.client(service, endpoint_url=url, region_name=region, config=config, **credentials.keywords())


def browser_or_skip() -> None:
    """Headless Chromium for a page test: skipped where it is missing, but a failure in CI (which installs it)."""
    import os

    import pytest

    from sagatools.view.browser import BrowserMissing, chromium

    try:
        chromium()
    except BrowserMissing as missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: ./build.sh test installs it in CI")
        pytest.skip(str(missing))


def embedded_stage_view(stack: Any, durable: Any = None, stage_name: str = "local") -> Any:
    """What attention.sh reaches of the embedded stack, as of a stage: its state machines or, given the stack's
    DurableStack, its durable function."""
    from sagatools.attention.coordinators import Coordinator, DurableFunction, StateMachines
    from sagatools.attention.stage_view import StageView
    from sagatools.deployed.stage import Stage
    from sagatools.emulation.environment import REGION
    from sagatools.results import SagaReader

    coordinator: Coordinator = (
        DurableFunction(durable, poll_seconds=0.005)
        if durable is not None
        else StateMachines(stack.stepfunctions, stack.state_machine_arn, stack.resolution_state_machine_arn, 0.005)
    )
    stage = Stage(name=stage_name, region=REGION, profile=None)
    return StageView(stage=stage, reader=SagaReader(stack.settings, stack.dynamodb), coordinator=coordinator)
