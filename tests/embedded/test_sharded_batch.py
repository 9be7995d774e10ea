"""A big batch on several cores (sagatools/runtest/shards.py): the stack forked once per shard, and what
the batch reports is what one process running all of it reports."""

from __future__ import annotations

import io
import json
import re
import threading
from typing import TYPE_CHECKING, Any

from saga.catalogue import COMPENSATIONS, REQUESTS, RETRIABLES, compensation_of, request_of
from saga.definition import SAGA
from saga.keys import ID_FIELD
from saga.models import parse_request
from sagatools.request_files import RequestFile
from sagatools.results import SagaReader, SagaResult
from sagatools.runtest.runner import SagaRunner
from sagatools.runtest.shards import run_sharded
from tests.helpers import run_in_a_fresh_interpreter, saga_request

if TYPE_CHECKING:
    from sagatools.emulation.embedded import EmbeddedStack
    from sagatools.history import StateRun


def scenarios() -> list[dict[str, Any]]:
    """A request of every kind the saga can end in: a commit, a refusal at each step, a lost response, a passing
    fault, a compensation retried and one stuck, and forward recovery's cases where the app has a pivot."""
    first, last = REQUESTS[0], REQUESTS[-1]
    simulated: list[dict[str, str] | None] = [
        None,
        *({step.name: "fail"} for step in REQUESTS),
        {last.name: "crash_after_write"},
        {REQUESTS[len(REQUESTS) // 2].name: "transient:2"},
        {last.name: "fail", compensation_of(first.resource).name: "transient:2"},
        {last.name: "fail", COMPENSATIONS[min(1, len(COMPENSATIONS) - 1)].name: "fail"},
    ]
    requests = [saga_request(simulate=simulate) for simulate in simulated]
    if RETRIABLES and SAGA.pivot is not None:
        past = RETRIABLES[-1]
        section = dict(saga_request()[past.resource])
        if past.spec.alternatives_for:
            section["alternatives"] = ["Other Provider 1", "Other Provider 2"]
        # retried to success, a lost response, out of time (8 retries outlast the default hour), refused by
        # every provider, refused at the pivot (a rollback), and taken by an alternative
        faults = ["transient:6", "crash_after_write", "transient:8", "fail"]
        forward = [{past.name: fault} for fault in faults] + [{request_of(SAGA.pivot.resource).name: "fail"}]
        forward += [{past.name: "fail:1"}] if past.spec.alternatives_for else []
        requests += [
            saga_request(simulate=simulate, recovery={"mode": "forward"}, **{past.resource: section})
            for simulate in forward
        ]
    return requests


# Every scenario, and every third repeated at the end of the batch with the same id (it must find the first
# one's execution).
SCENARIOS = scenarios()
_TIME = re.compile(r'"(\d{4}-\d\d-\d\dT[^"]*)"')
_DURATIONS = re.compile(r'"(duration_ms|waited_ms|forward_waited_seconds)": [\d.]+')


def batch(prefix: str) -> list[RequestFile]:
    files = [
        RequestFile(f"{n:02d}.json", parse_request({**request, ID_FIELD: f"{prefix}-{n:02d}"}))
        for n, request in enumerate(SCENARIOS)
    ]
    return files + [RequestFile(f"again-{file.path}", file.request) for file in files[1::3]]


def runner_of(stack: EmbeddedStack):
    def make(observer) -> SagaRunner:
        reader = SagaReader(stack.settings, stack.dynamodb)
        return SagaRunner(stack.stepfunctions, stack.state_machine_arn, reader, 0.005, 120, observer)

    return make


def comparable(reports: list[SagaResult], prefix: str) -> list[Any]:
    """The reports without what differs from run to run (times, durations) or by name (the prefix)."""
    text = json.dumps([report.model_dump(mode="json") for report in reports], sort_keys=True)
    text = _DURATIONS.sub(r'"\1": 0', _TIME.sub('"T"', text)).replace(f"{prefix}-", "ID-")
    return json.loads(text)


class Heard:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def started(self, saga_ids: list[str]) -> None:
        self.calls.append(("started", saga_ids))

    def progress(self, saga_id: str, runs: list[StateRun], ended: bool) -> None:
        self.calls.append(("progress", (saga_id, [run.name for run in runs], ended)))

    def close(self) -> None: ...

    def summaries(self, reports: list[SagaResult]) -> None: ...


def check_a_sharded_batch_reports_what_one_process_reports() -> None:
    """Run by the test below in a new interpreter: a batch is forked only where no other thread runs, and
    earlier tests in a worker leave executions' threads behind (a run past its --timeout freezes them)."""
    from sagatools.emulation.embedded import EmbeddedStack

    with EmbeddedStack() as stack:
        make, heard, files = runner_of(stack), Heard(), batch("shard")
        sharded = run_sharded(stack, make, files, heard, 2, None)
        assert sharded is not None
        reports, histories = sharded
        assert stack.lambdas.invocations == 0  # every handler ran in a shard's process, none in this one
        alone = make(None)
        single = alone.run(batch("one"))
        assert stack.lambdas.invocations > 0  # the stack is this process's again
    assert comparable(reports, "shard") == comparable(single, "one")
    assert {r.outcome for r in reports} >= {"COMMITTED", "ROLLED_BACK", "NEEDS_ATTENTION"}
    repeated = len(reports) - len(SCENARIOS)  # each found its first execution: they ran in one shard
    assert [r.reused_execution for r in reports] == [False] * len(SCENARIOS) + [True] * repeated
    assert set(histories) == {r.execution_arn for r in reports}
    for report in reports:
        other = alone.histories[report.execution_arn.replace("shard-", "one-")]
        assert [e["type"] for e in histories[report.execution_arn]] == [e["type"] for e in other]
    # the observer heard one start, of the whole batch in its order, then every saga's end
    kinds = [kind for kind, _ in heard.calls]
    assert kinds[0] == "started"
    assert kinds.count("started") == 1
    assert heard.calls[0][1] == list(dict.fromkeys(file.request.saga_id for file in files))
    ended = {saga_id for kind, (saga_id, *_, done) in heard.calls[1:] if done}
    assert ended == {file.request.saga_id for file in files}


def test_a_sharded_batch_reports_what_one_process_reports():
    run_in_a_fresh_interpreter(check_a_sharded_batch_reports_what_one_process_reports)


def test_with_another_thread_running_the_batch_stays_in_this_process(stack):
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert run_sharded(stack, runner_of(stack), batch("kept"), None, 2, None) is None
    finally:
        release.set()
        other.join()
    # nothing was started, and this process's Lambda dispatcher runs again
    (report,) = runner_of(stack)(None).run(batch("after")[-2:-1])
    assert report.outcome is not None
    assert stack.lambdas.invocations > 0


def test_handlers_logging_to_a_stream_that_is_no_file_keep_the_batch_in_this_process(stack):
    assert run_sharded(stack, runner_of(stack), batch("log"), None, 2, io.StringIO()) is None
