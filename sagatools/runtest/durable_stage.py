"""runtest.sh --stage S on a stage coordinated by the durable function: each saga started as a durable execution of
the stage's function (named after its saga id, as the state machine names its executions), followed with live
progress and read back as on the embedded stack (sagatools/runtest/durable.py): the same results, pages and exit codes.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from sagatools.asl import load_definition
from sagatools.cli import UsageError
from sagatools.deployed.durable_executions import DurableExecutions, ExecutionAlreadyExists
from sagatools.deployed.stage import Stage, StageError
from sagatools.durable_history import durable_operations
from sagatools.executions import DurableWatcher
from sagatools.runtest.durable import conflict, durable_result, not_started, repeated
from sagatools.runtest.runner import ran_with_another_request, same_request
from sagatools.runtest.stacks import RunResult

if TYPE_CHECKING:
    from sagatools.request_files import RequestFile
    from sagatools.results import SagaReader, SagaResult
    from sagatools.view.terminal import ProgressObserver


def run_durable_on_stage(
    sagas: list[RequestFile],
    stage: Stage,
    executions: DurableExecutions,
    reader: SagaReader,
    human: ProgressObserver | None,
    timeout: float,
) -> RunResult:
    """Start each saga (a saga that ran on the stage with the same request is reported again, never started twice),
    follow them to their end (or for `timeout` seconds) and read back what each did."""
    existing = refuse_conflicts(sagas, stage, executions)
    deadline = time.monotonic() + timeout
    first_of: dict[str, RequestFile] = {}
    started: dict[str, str] = {}  # saga id -> its execution's ARN
    reused: set[str] = set()  # saga ids whose execution this run did not start
    unstarted: dict[str, SagaResult] = {}  # by saga id
    for saga in sagas:
        saga_id = saga.request.saga_id
        if first_of.setdefault(saga_id, saga) is not saga:
            continue
        if saga_id in existing:
            started[saga_id] = existing[saga_id]
            reused.add(saga_id)
        elif time.monotonic() > deadline:
            unstarted[saga_id] = not_started(saga, timeout)
        else:
            try:
                started[saga_id] = executions.start(saga_id, json.loads(saga.execution_input))
            except ExecutionAlreadyExists:
                # Started since refuse_conflicts looked: by the same request, that one is this saga's; else a conflict.
                found = executions.describe(saga_id)
                if found is not None and same_request(saga, found):
                    started[saga_id] = found["executionArn"]
                    reused.add(saga_id)
                else:
                    arn = found["executionArn"] if found else f"durable-execution/{saga_id}/another-request"
                    unstarted[saga_id] = conflict(saga, arn, "on this stage")
    watcher = DurableWatcher(executions, stage.poll_seconds, human)
    descriptions = watcher.wait({arn: saga_id for saga_id, arn in started.items()}, deadline)
    histories: dict[str, list[dict[str, Any]]] = {}
    by_id = dict(unstarted)
    for saga_id, arn in started.items():
        histories[arn] = watcher.history(arn)
        operations = durable_operations(watcher.checkpoints[arn])  # the events `history` read
        by_id[saga_id] = durable_result(
            first_of[saga_id], descriptions[arn], histories[arn], operations, reader, saga_id in reused
        )
    for report in unstarted.values():
        histories.setdefault(report.execution_arn, [])
    reports = [
        by_id[saga.request.saga_id]
        if first_of[saga.request.saga_id] is saga
        else repeated(saga, first_of[saga.request.saga_id], by_id[saga.request.saga_id])
        for saga in sagas
    ]
    return RunResult(reports, histories, load_definition())


def refuse_conflicts(sagas: list[RequestFile], stage: Stage, executions: DurableExecutions) -> dict[str, str]:
    """The ARNs of the sagas that ran on the stage already with the same request, by saga id; UsageError naming every
    saga whose id ran there with another request. StageError if the stage's durable function is not there."""
    existing, problems = {}, []
    for saga_id, saga in {saga.request.saga_id: saga for saga in sagas}.items():
        try:
            found = executions.describe(saga_id)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            raise StageError(
                f"The durable function of stage {stage.name} ({executions.qualified_function_arn}) is not deployed:"
                f" run {stage.deploy_command}."
            ) from None
        if found is None:
            continue
        if same_request(saga, found):
            existing[saga_id] = found["executionArn"]
        else:
            problems.append(ran_with_another_request(saga, found["executionArn"]))
    if problems:
        raise UsageError("\n".join(problems))
    return existing
