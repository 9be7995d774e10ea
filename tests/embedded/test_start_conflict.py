"""A saga id taken by another request between runtest.sh's up-front check and the saga's start (another
process running the same ids): the batch is still reported, that saga among its results as a CONFLICT
with its own error, and the run exits 1. Refusing before any saga starts stays exit 2."""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import botocore.handlers
import pytest

from saga.keys import ID_FIELD, NOUNS
from saga.models import parse_request
from sagatools.cli import UsageError
from sagatools.exit_codes import EXIT_SAGA_FAILED
from sagatools.request_files import RequestFile
from sagatools.results import Outcome, SagaReader, SagaResult
from sagatools.runtest.cli import main
from sagatools.runtest.runner import SagaRunner
from sagatools.runtest.shards import run_sharded
from sagatools.view.terminal import compact_summary
from tests.helpers import LAST, book_step, run_in_a_fresh_interpreter, saga_request

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from sagatools.emulation.embedded import EmbeddedStack

TAKEN = "t-taken"  # the saga id the other process starts first, with its own request
BATCH = ["t-before", TAKEN, "t-after"]
START_EXECUTION = "provide-client-params.sfn.StartExecution"  # botocore's event, before the call is sent


def request_file(saga_id: str, **fields: Any) -> RequestFile:
    return RequestFile(f"{saga_id}.json", parse_request(saga_request(saga_id, **fields)))


OTHER = request_file(TAKEN, simulate={book_step(LAST): "fail"})  # the other process's request under the same id


def ended(client: BaseClient, arn: str) -> dict[str, Any]:
    """The execution once it ended: none is left running into the next test's stack (moto's mock is global)."""
    while (description := client.describe_execution(executionArn=arn))["status"] == "RUNNING":
        time.sleep(0.005)
    return description


class AnotherProcess:
    """Another runtest.sh at the worst moment: when this run is about to start TAKEN, the other one has started
    TAKEN with its own request and run it to its end (real calls to the same stack)."""

    def __init__(self) -> None:
        self.names: list[str] = []  # this run's StartExecution calls, in order
        self.taken_arn: str | None = None
        self._own_call = False

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        if self._own_call:
            return
        self.names.append(params["name"])
        if params["name"] != TAKEN or self.taken_arn is not None:
            return
        self._own_call = True
        try:
            other = boto3.client("stepfunctions", region_name=params["stateMachineArn"].split(":")[3])
            self.taken_arn = other.start_execution(
                stateMachineArn=params["stateMachineArn"], name=TAKEN, input=OTHER.execution_input
            )["executionArn"]
            ended(other, self.taken_arn)
        finally:
            self._own_call = False


@contextlib.contextmanager
def hooked(client: BaseClient, other: AnotherProcess) -> Iterator[None]:
    client.meta.events.register(START_EXECUTION, other, unique_id="another-process")
    try:
        yield
    finally:
        client.meta.events.unregister(START_EXECUTION, unique_id="another-process")


def runner_of(stack: EmbeddedStack) -> SagaRunner:
    return SagaRunner(
        stack.stepfunctions, stack.state_machine_arn, SagaReader(stack.settings, stack.dynamodb), 0.005, 120
    )


def assert_reported_with_the_conflict(results: list[SagaResult], names: list[str]) -> None:
    assert names == BATCH  # the other request took TAKEN after t-before had started
    assert [r.saga_id for r in results] == BATCH
    before, taken, after = results
    assert (before.outcome, after.outcome) == (Outcome.COMMITTED, Outcome.COMMITTED)
    assert (taken.outcome, taken.status, taken.error) == (Outcome.CONFLICT, "NOT_STARTED", "ExecutionAlreadyExists")
    assert f"{ID_FIELD} {TAKEN} already names an execution of a different request" in (taken.cause or "")
    assert f"give this request a new {ID_FIELD}" in (taken.cause or "")
    assert (taken.records, taken.saga_log, taken.reused_execution) == ({}, [], False)  # none of the other's


def test_a_saga_id_taken_while_the_batch_starts_is_a_conflict_reported_with_the_sagas_that_ran(stack):
    # Given a batch that passed the up-front check, and another process that starts one of its saga ids
    # with another request just before this run does
    runner, other = runner_of(stack), AnotherProcess()
    sagas = [request_file(saga_id) for saga_id in BATCH]
    runner.refuse_conflicts(sagas)
    # When the batch runs
    with hooked(stack.stepfunctions, other):
        results = runner.run(sagas)
    # Then every saga is reported in the batch's order, the taken one as a conflict with its own error
    assert_reported_with_the_conflict(results, other.names)
    # And the other request's saga is its own, as it ended: rolled back (its request fails the last booking)
    assert other.taken_arn is not None
    taken = stack.stepfunctions.describe_execution(executionArn=other.taken_arn)
    assert (taken["input"], taken["status"]) == (OTHER.execution_input, "FAILED")
    # And a big batch's summary lists it among the sagas that need a look, saying what to do
    look = [line for line in compact_summary(results) if line.startswith(TAKEN)]
    assert len(look) == 1
    assert "CONFLICT" in look[0]
    assert f"give it a new {ID_FIELD}" in look[0]


def test_a_saga_id_taken_before_the_run_is_refused_before_any_saga_starts(stack):
    # Given a saga id that ran with another request
    arn = stack.stepfunctions.start_execution(
        stateMachineArn=stack.state_machine_arn, name=TAKEN, input=OTHER.execution_input
    )["executionArn"]
    ended(stack.stepfunctions, arn)
    # When a batch holding that saga id under its own request is checked
    with pytest.raises(
        UsageError, match=f"{ID_FIELD} {TAKEN} already ran on this stage with a different request"
    ) as refused:
        runner_of(stack).refuse_conflicts([request_file(saga_id) for saga_id in BATCH])
    assert f"give this request a new {ID_FIELD}" in str(refused.value)
    # Then nothing of the batch started (runtest.sh exits 2 then: nothing ran)
    executions = stack.stepfunctions.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]
    assert [execution["name"] for execution in executions] == [TAKEN]


@pytest.fixture
def request_files(tmp_path) -> list[str]:
    paths = []
    for saga_id in BATCH:
        path = tmp_path / f"{saga_id}.json"
        path.write_text(json.dumps(saga_request(saga_id)))
        paths.append(str(path))
    return paths


@pytest.fixture
def another_process(monkeypatch) -> AnotherProcess:
    """The hook on the clients runtest.sh makes in its own stack: botocore registers BUILTIN_HANDLERS on each
    new session (as moto's stubber is), and each embedded stack's mock makes a new default session."""
    other = AnotherProcess()
    monkeypatch.setattr(
        botocore.handlers, "BUILTIN_HANDLERS", [*botocore.handlers.BUILTIN_HANDLERS, (START_EXECUTION, other)]
    )
    return other


@pytest.mark.parametrize("output", ["--json", "summary"])
def test_runtest_reports_a_conflict_found_while_starting_and_exits_1(request_files, another_process, tmp_path, output):
    # Given another process that takes one saga id of the batch just before runtest.sh starts it
    # When runtest.sh runs the batch
    out, err = io.StringIO(), io.StringIO()
    args = [*request_files, "--report", str(tmp_path / "pages")]
    code = main([*args, "--json"] if output == "--json" else args, stdout=out, stderr=err)
    # Then it exits 1 and reports every saga, the taken one as a conflict with its own error
    assert code == EXIT_SAGA_FAILED, err.getvalue()
    if output == "--json":
        documents = json.loads(out.getvalue())
        results = [SagaResult.model_validate({k: v for k, v in d.items() if k != "report"}) for d in documents]
        assert_reported_with_the_conflict(results, another_process.names)
        # Each saga that ran has its page; the taken one has none, so the page of the saga that did run
        # under its id (the other process's) is never overwritten
        assert [document[ID_FIELD] for document in documents if not document["report"]] == [TAKEN]
    else:
        text = out.getvalue()
        assert f"{TAKEN}: CONFLICT  (execution NOT_STARTED: ExecutionAlreadyExists)" in text
        assert f"{ID_FIELD} {TAKEN} already names an execution of a different request" in text
        assert f"3 {NOUNS}: 2 COMMITTED, 1 CONFLICT" in text


def check_a_sharded_batch_reports_a_conflict_found_while_starting() -> None:
    """Run by the test below in a new interpreter (a batch is forked only where no other thread runs)."""
    from sagatools.emulation.embedded import EmbeddedStack

    with EmbeddedStack() as stack:
        other = AnotherProcess()
        with hooked(stack.stepfunctions, other):  # the shards' copies of the client keep the hook
            sharded = run_sharded(
                stack, lambda observer: runner_of(stack), [request_file(t) for t in BATCH], None, 2, None
            )
        assert sharded is not None
        assert stack.lambdas.invocations == 0  # the sagas ran in the shards' processes
    results, _ = sharded
    taken = [r for r in results if r.saga_id == TAKEN]
    assert [r.saga_id for r in results] == BATCH
    assert [(r.outcome, r.error) for r in taken] == [(Outcome.CONFLICT, "ExecutionAlreadyExists")]
    assert [r.outcome for r in results if r.saga_id != TAKEN] == [Outcome.COMMITTED] * 2


def test_a_sharded_batch_reports_a_conflict_found_while_starting():
    run_in_a_fresh_interpreter(check_a_sharded_batch_reports_a_conflict_found_while_starting)
