"""runtest.sh --coordinator durable: the sagas run as durable executions of the saga's durable function
(saga/durable.py) on the embedded stack, one after another, and what each did is read back as for the state machine:
the same SagaResult, its pages and progress drawn from the execution's checkpoints (sagatools/durable_history.py).
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING, Any, TextIO

from sagatools.asl import load_definition
from sagatools.durable_history import state_history
from sagatools.history import state_runs
from sagatools.results import (
    Outcome,
    SagaReader,
    SagaResult,
    build_report,
    outcome_of,
)
from sagatools.runtest.runner import CONFLICT_ERROR, NOT_STARTED, conflict_cause, unstarted_result
from sagatools.runtest.stacks import RunResult, handler_log

if TYPE_CHECKING:
    from collections.abc import Callable

    from sagatools.emulation.durable import DurableRun
    from sagatools.request_files import RequestFile
    from sagatools.view.terminal import ProgressObserver


def run_durable(
    sagas: list[RequestFile], human: ProgressObserver | None, show_logs: bool, timeout: float, err: TextIO
) -> RunResult:
    """Each saga as a durable execution, on the embedded stack's tables, within `timeout` seconds in all."""
    from sagatools.emulation.embedded import EmbeddedStack  # moto is heavy: imported only when it is needed

    with contextlib.ExitStack() as resources:
        log_sink = handler_log(resources, show_logs, err)
        stack = resources.enter_context(EmbeddedStack(log_sink=log_sink, create_state_machine=False))
        # Imported inside the stack, as Lambda imports the function: Powertools reads its settings at import.
        from sagatools.emulation.durable import DurableStack

        durable = resources.enter_context(DurableStack(log_sink))
        reader = SagaReader(stack.settings, stack.dynamodb)
        deadline = time.monotonic() + timeout
        if human is not None:
            human.started([saga.request.saga_id for saga in sagas])
        reports: list[SagaResult] = []
        histories: dict[str, list[dict[str, object]]] = {}
        ran: dict[str, tuple[RequestFile, SagaResult]] = {}  # by saga id: a repeated id reports the same execution
        for saga in sagas:
            saga_id = saga.request.saga_id
            if saga_id in ran:
                reports.append(repeated(saga, *ran[saga_id]))
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                reports.append(not_started(saga, timeout))
                histories[reports[-1].execution_arn] = []
                continue
            run = durable.run(saga_id, json.loads(saga.execution_input), left)
            history = state_history(run.events)
            report = durable_report(saga, run, history, reader)
            if human is not None:
                human.progress(saga_id, state_runs(history), ended=run.status != "RUNNING")
            histories[run.execution_arn] = history
            ran[saga_id] = (saga, report)
            reports.append(report)
        return RunResult(reports, histories, load_definition())


def durable_report(
    saga: RequestFile,
    run: DurableRun,
    history: list[dict[str, object]],
    reader: SagaReader,
    outcome: Callable[[str, str | None], Outcome | None] = outcome_of,
) -> SagaResult:
    """What one durable execution of the saga (or, with `resolution_outcome_of`, of its resolution) on the embedded
    stack did (durable_result), timed by its wall time (the skipped waits not counted)."""
    report = durable_result(saga, run.described(saga.execution_input), history, run.operations, reader, outcome=outcome)
    return report.model_copy(update={"duration_ms": round(run.seconds * 1000) if run.status != "RUNNING" else None})


def durable_result(
    saga: RequestFile,
    description: dict[str, Any],
    history: list[dict[str, Any]],
    operations: int,
    reader: SagaReader,
    reused: bool = False,
    outcome: Callable[[str, str | None], Outcome | None] = outcome_of,
) -> SagaResult:
    """What one durable execution of the saga did, read as a state machine's execution is (results.build_report) from
    its `description` (as DescribeExecution gives one): its end, and the records, saga log and ledgers it left;
    billed by its durable `operations`, not by transitions."""
    report = build_report(saga.path, saga.request.saga_id, description, history, reader, reused, outcome)
    return report.model_copy(
        update={
            "transitions": 0,  # a durable function has no states to enter (`states` are those its operations stand for)
            "billed_transitions": 0,
            "durable_operations": operations,
        }
    )


def repeated(saga: RequestFile, first: RequestFile, report: SagaResult) -> SagaResult:
    """A saga whose id an earlier file of the run already ran (`first`, as `report` says): that execution again, or a
    conflict when the requests differ."""
    if report.status == NOT_STARTED:
        return report.model_copy(update={"file": saga.path})
    if first.execution_input != saga.execution_input:
        return conflict(saga, report.execution_arn, "in this run")
    return report.model_copy(update={"file": saga.path, "reused_execution": True})


def not_started(saga: RequestFile, timeout: float) -> SagaResult:
    arn = f"durable-execution/{saga.request.saga_id}/not-started"
    return unstarted_result(saga, arn, None, None, f"not started: the --timeout of {timeout:g} s ended first")


def conflict(saga: RequestFile, execution_arn: str, where: str) -> SagaResult:
    return unstarted_result(
        saga, execution_arn, Outcome.CONFLICT, CONFLICT_ERROR, conflict_cause(saga, execution_arn, where)
    )
