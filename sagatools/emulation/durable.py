"""The durable coordinator on the embedded stack: saga/durable.py's function, run in this process by the testing
SDK's runner with its waits skipped (an hour of forward retries takes seconds), its steps writing to the embedded
stack's tables. Nothing of the SDK or of the function is changed: the runner is its own checkpoint service.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner

from saga.durable import handler
from sagatools.durable_history import durable_operations
from sagatools.generate.template import durable_execution_timeout

if TYPE_CHECKING:
    from aws_durable_execution_sdk_python_testing.model import Event

# The SDK and its runner log every failed attempt with its traceback at ERROR: the saga log and the checkpoints
# record them already.
_SDK_LOGGERS = ("aws_durable_execution_sdk_python", "aws_durable_execution_sdk_python_testing")
POLL_SECONDS = 0.002
# How long an execution started for attention.sh may run (a resolution's retries, their waits skipped).
START_TIMEOUT_SECONDS = 120.0


@dataclass
class DurableRun:
    """One durable execution of the saga, as its checkpoint service recorded it."""

    execution_arn: str
    status: str  # SUCCEEDED, FAILED, or RUNNING when the run's time ended first
    error: str | None  # the error it ended with, by its class's name (SagaRolledBack), as Step Functions names it
    cause: str | None
    events: list[Event]  # its history: every checkpoint, in order
    seconds: float  # wall time, the skipped waits not counted

    def described(self, execution_input: str, started: datetime | None = None) -> dict[str, Any]:
        """The run as DescribeExecution describes a state machine's execution (what results.build_report reads)."""
        return {
            "executionArn": self.execution_arn,
            "status": self.status,
            "error": self.error,
            "cause": self.cause,
            "input": execution_input,
            "startDate": started,
        }

    @property
    def operations(self) -> int:
        """The durable operations AWS would meter for it (sagatools/durable_history.py)."""
        return durable_operations(self.events)


class DurableStack:
    """A context manager: inside it, sagas run as durable executions of the saga's function, one at a time (the
    embedded stack's handlers run one at a time too). Enter it inside an EmbeddedStack: that is where the steps'
    tables are."""

    def __init__(self, log_sink: IO[str]) -> None:
        self.log_sink = log_sink
        self._undo = contextlib.ExitStack()
        self._runner: DurableFunctionTestRunner | None = None
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[str, datetime, DurableRun]] = {}  # by execution name: its input, start and run

    def __enter__(self) -> DurableStack:
        with contextlib.ExitStack() as undo:
            for name in _SDK_LOGGERS:
                sdk_log = logging.getLogger(name)
                undo.callback(sdk_log.setLevel, sdk_log.level)
                sdk_log.setLevel(logging.CRITICAL)
            self._runner = undo.enter_context(DurableFunctionTestRunner(self._invoke, poll_interval=POLL_SECONDS))
            undo.callback(setattr, self, "_runner", None)
            self._undo = undo.pop_all()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._undo.close()

    def _invoke(self, event: Any, context: Any) -> Any:
        # What the function prints (Powertools' metrics) goes where the embedded handlers' output goes.
        with contextlib.redirect_stdout(self.log_sink):
            return handler(event, context)

    def run(self, name: str, request: dict[str, Any], timeout_seconds: float) -> DurableRun:
        """Start a durable execution of `request`, named `name` (a saga's: its saga id), and follow it to its end (or
        for `timeout_seconds`)."""
        assert self._runner is not None, "run inside the `with` block"
        with self._lock:
            started = datetime.now(UTC)
            began = time.perf_counter()
            arn = self._runner.run_async(
                input=json.dumps(request),
                execution_timeout=durable_execution_timeout(),  # as a durable stage's template sets it
                function_name=handler.__module__,
                execution_name=name,
            )
            try:
                result = self._runner.wait_for_result(arn, timeout=max(1, round(timeout_seconds)))
            except TimeoutError:
                result = None
            seconds = time.perf_counter() - began
            events = self._runner.get_execution_history(arn).events
        if result is None:
            run = DurableRun(arn, "RUNNING", None, None, events, seconds)
        else:
            error = result.error
            run = DurableRun(
                execution_arn=arn,
                status=result.execution_status.value if result.execution_status else result.status.value,
                error=error.type.rpartition(".")[2] if error and error.type else None,
                cause=error.message if error else None,
                events=events,
                seconds=seconds,
            )
        self._runs[name] = (json.dumps(request), started, run)
        return run

    # What attention.sh reads and starts of a stage's durable function (sagatools/attention/coordinators.py), as
    # sagatools/deployed/durable_executions.py gives it of a deployed one.

    def start(self, name: str, payload: dict[str, Any]) -> str:
        """Run an execution named `name` (a resolution, started as attention.sh starts it) to its end; its ARN."""
        return self.run(name, payload, START_TIMEOUT_SECONDS).execution_arn

    def describe(self, name: str) -> dict[str, Any] | None:
        """The execution of that name as DescribeExecution describes a state machine's, or None."""
        if name not in self._runs:
            return None
        execution_input, started, run = self._runs[name]
        return run.described(execution_input, started)

    def describe_execution(self, execution_arn: str) -> dict[str, Any]:
        name = next(name for name, (_, _, run) in self._runs.items() if run.execution_arn == execution_arn)
        described = self.describe(name)
        assert described is not None
        return described

    def history(self, execution_arn: str) -> list[Event]:
        return next(run.events for _, _, run in self._runs.values() if run.execution_arn == execution_arn)

    def running(self) -> set[str]:
        """A hint, as on Lambda: none here (each execution is followed to its end, or its timeout, as it starts)."""
        return set()
