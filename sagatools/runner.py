"""runtest.sh: validate trip requests, run their sagas, show what happened.

    runtest.sh FILE... [--json] [--report DIR] [--logs] [--timeout SECONDS] [--stage S [--region R] [--profile P]]

Without --stage the sagas run on the embedded stack. Every file and option is checked before anything
starts; one bad file means nothing runs. Exit status: 0 every saga ended COMMITTED or ROLLED_BACK;
1 any needs attention or did not finish; 2 usage errors, unreadable or invalid requests, an
unreachable stage; 74 the results could not be written to stdout; 130 interrupted (Ctrl-C);
143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from botocore.exceptions import BotoCoreError, ClientError

from sagatools.asl import load_definition
from sagatools.cli import (
    EXIT_INTERRUPTED,
    EXIT_NOT_DELIVERED,
    EXIT_OK,
    EXIT_SAGA_FAILED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    Delivery,
    Terminated,
    UsageError,
    prepare_report_directory,
    say,
    start_up_over,
    stream_open,
    taking_signals,
)
from sagatools.deployed.stage import (
    Stage,
    StageError,
    execution_arn,
    explain,
    settings_from_outputs,
    state_machine_arn,
)
from sagatools.results import Outcome, SagaResult, TripReader, build_report, execution_history
from sagatools.terminal_text import shown, shown_lines
from sagatools.trip_files import RequestFileError, TripFile, load_trip_files
from sagatools.view.history import state_runs
from sagatools.view.html_page import write_page

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from sagatools.view.terminal import ProgressObserver


def output_dir() -> Path:
    """Where a run's handler log and pages go unless told: `.runtest/` of the current directory, or
    $RUNTEST_DIR (the tests set it, so they never write into the user's own)."""
    return Path(os.environ.get("RUNTEST_DIR") or ".runtest")


def report_dir() -> Path:
    return output_dir() / "reports"


# Up to this many running sagas, their states are shown as they complete; beyond it, when each ends.
LIVE_PROGRESS_LIMIT = 8
AWS_POLL_SECONDS = 1.0
NOT_STARTED = "NOT_STARTED"  # the status of a trip whose execution the --timeout left no time to start
SHOW_REPORT_PATHS = 5  # beyond this many pages, name the folder


@dataclass
class _Started:
    trip: TripFile
    execution_arn: str
    reused: bool


class SagaRunner:
    """Starts one execution per trip (named after the trip id), polls them to the end, reads the results."""

    def __init__(
        self,
        stepfunctions: BaseClient,
        state_machine_arn: str,
        reader: TripReader,
        poll_seconds: float,
        timeout_seconds: float,
        observer: ProgressObserver | None = None,
        on_deadline: Callable[[], None] | None = None,
    ) -> None:
        self.on_deadline = on_deadline  # the embedded stack freezes its executions: reading back goes fast
        self.stepfunctions = stepfunctions
        self.state_machine_arn = state_machine_arn
        self.reader = reader
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.observer = observer
        self.histories: dict[str, list[dict[str, Any]]] = {}  # by execution ARN, after run()
        self._final_history: dict[str, list[dict[str, Any]]] = {}
        # Trip ids whose execution existed before this run (running or ended), as refuse_conflicts found
        # them: StartExecution answers a running one's ARN as if it had just started it.
        self._existing: set[str] = set()

    def run(self, trips: list[TripFile]) -> list[SagaResult]:
        """Start, wait and read back; the run stops starting and waiting `timeout_seconds` after it began."""
        start_up_over()
        deadline = time.monotonic() + self.timeout_seconds
        started, not_started = [], []
        for earlier, trip in self._with_earlier(trips):
            if time.monotonic() > deadline:
                not_started.append(trip)
            else:
                started.append(self._start(trip, earlier))
        trip_of = {item.execution_arn: item.trip.request.trip_id for item in started}
        descriptions = self.wait(trip_of, deadline)
        # An ended execution's history is final: reuse the one fetched to show its last states.
        histories = {
            arn: self._final_history.pop(arn, []) or execution_history(self.stepfunctions, arn) for arn in trip_of
        }
        self.histories.update(histories)
        results = {
            id(item.trip): build_report(
                item.trip.path,
                item.trip.request.trip_id,
                descriptions[item.execution_arn],
                histories[item.execution_arn],
                self.reader,
                item.reused,
            )
            for item in started
        }
        for trip in not_started:
            results[id(trip)] = self._not_started(trip)
        return [results[id(trip)] for trip in trips]

    def _not_started(self, trip: TripFile) -> SagaResult:
        """A trip the run had no time to start: UNFINISHED, with nothing read (nothing was done)."""
        arn = self._execution_arn(trip.request.trip_id)
        self.histories[arn] = []
        return SagaResult(
            file=trip.path,
            trip_id=trip.request.trip_id,
            execution_arn=arn,
            status=NOT_STARTED,
            outcome=None,
            error=None,
            cause=f"not started: the --timeout of {self.timeout_seconds:g} s ended first",
            bookings={},
            saga_log=[],
            needs_attention=[],
            states=[],
            transitions=0,
            duration_ms=None,
        )

    @staticmethod
    def _with_earlier(trips: list[TripFile]) -> list[tuple[set[str], TripFile]]:
        seen: set[str] = set()
        pairs = []
        for trip in trips:
            pairs.append((set(seen), trip))
            seen.add(trip.request.trip_id)
        return pairs

    def _start(self, trip: TripFile, earlier_trip_ids: set[str]) -> _Started:
        name = trip.request.trip_id
        try:
            arn = self.stepfunctions.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=trip.execution_input
            )["executionArn"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            # The trip's saga exists already: report that one, never start a second (if it is this trip).
            arn = self._execution_arn(name)
            self.check_same_request(trip, arn)
            return _Started(trip, arn, reused=True)
        return _Started(trip, arn, reused=name in earlier_trip_ids or name in self._existing)

    def refuse_conflicts(self, trips: list[TripFile]) -> None:
        """UsageError naming every trip whose id already ran on this state machine with another request."""
        problems = []
        for trip in {trip.request.trip_id: trip for trip in trips}.values():
            try:
                self.check_same_request(trip, self._execution_arn(trip.request.trip_id))
                self._existing.add(trip.request.trip_id)
            except UsageError as error:
                problems.append(str(error))
            except ClientError as error:
                if error.response["Error"]["Code"] != "ExecutionDoesNotExist":
                    raise
        if problems:
            raise UsageError("\n".join(problems))

    def check_same_request(self, trip: TripFile, execution_arn: str) -> None:
        existing = self.stepfunctions.describe_execution(executionArn=execution_arn)
        if json.loads(existing.get("input") or "null") != json.loads(trip.execution_input):
            raise UsageError(
                f"{shown(trip.path)}: trip_id {trip.request.trip_id} already ran on this stage with a different "
                f"request ({execution_arn}); give this request a new trip_id"
            )

    def _execution_arn(self, name: str) -> str:
        return execution_arn(self.state_machine_arn, name)

    def wait(self, trip_of: dict[str, str], deadline: float) -> dict[str, dict[str, Any]]:
        """Poll until every execution has ended or the deadline: one ListExecutions a round, not N calls."""
        if self.observer is not None:
            self.observer.started(list(dict.fromkeys(trip_of.values())))
        descriptions: dict[str, dict[str, Any]] = {}
        pending = set(trip_of)
        while pending:
            # Few executions: describe each (and show its progress). Many: one list says which to describe.
            live = len(pending) <= LIVE_PROGRESS_LIMIT
            running = set() if live else self._running()
            for arn in sorted(pending):
                if arn in running:
                    continue
                if time.monotonic() > deadline:
                    break
                # ListExecutions is eventually consistent on AWS: only DescribeExecution says it ended.
                description = self.stepfunctions.describe_execution(executionArn=arn)
                ended = description["status"] != "RUNNING"
                if self.observer is not None and (live or ended):
                    events = execution_history(self.stepfunctions, arn)
                    if ended:
                        self._final_history[arn] = events
                    self.observer.progress(trip_of[arn], state_runs(events), ended)
                if ended:
                    descriptions[arn] = description
                    pending.discard(arn)
            if pending and time.monotonic() > deadline:
                if self.on_deadline is not None:
                    self.on_deadline()
                # What the unfinished ones are doing now: one DescribeExecution each, then the results.
                for arn in pending:
                    descriptions[arn] = self.stepfunctions.describe_execution(executionArn=arn)
                break
            if pending:
                # More executions polled a round means more work a round: wait longer, but not much.
                pause = min(self.poll_seconds * len(pending), max(self.poll_seconds, 0.25))
                time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
        return descriptions

    def _running(self) -> set[str]:
        running: set[str] = set()
        request: dict[str, Any] = {"stateMachineArn": self.state_machine_arn, "statusFilter": "RUNNING"}
        while True:
            page = self.stepfunctions.list_executions(**request, maxResults=1000)
            running.update(execution["executionArn"] for execution in page["executions"])
            if not page.get("nextToken"):
                return running
            request["nextToken"] = page["nextToken"]


def human_output(out: TextIO) -> ProgressObserver:
    """The live progress and summaries a person reads (runtest.sh, attention.sh resolve)."""
    from sagatools.view import terminal  # rich: imported only where a person reads the output

    return terminal.human_output(out)


def exit_code(reports: list[SagaResult]) -> int:
    clean = {Outcome.COMMITTED, Outcome.ROLLED_BACK}
    return EXIT_OK if all(report.outcome in clean for report in reports) else EXIT_SAGA_FAILED


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive, finite number of seconds")
    return seconds


def _name(option: str) -> Any:
    def named(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{option} needs a name, not an empty string")
        return text

    return named


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="runtest.sh",
        description="Run sagas on the embedded stack (default) or on a deployed stage.",
        allow_abbrev=False,  # --js is not --json: every option is spelled out
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="trip request JSON file(s)")
    parser.add_argument("--json", action="store_true", help="print only JSON on stdout")
    parser.add_argument(
        "--stage", type=_name("--stage"), help="run on this deployed stage instead of the embedded stack"
    )
    parser.add_argument("--region", type=_name("--region"), help="AWS region of the stage")
    parser.add_argument("--profile", type=_name("--profile"), help="AWS profile to use")
    parser.add_argument("--logs", action="store_true", help="show the handlers' JSON logs on stderr")
    parser.add_argument(
        "--timeout", type=_positive_seconds, default=600.0, help="seconds to wait for the sagas, from the start (600)"
    )
    parser.add_argument(
        "--report",
        default=str(report_dir()),
        metavar="DIR",
        help=f"write one HTML page per execution into this directory ({report_dir()})",
    )
    return parser.parse_args(argv)


def main(
    argv: list[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    before_start: Callable[[], object] | None = None,
) -> int:
    """`before_start` runs inside the handling of KeyboardInterrupt and Terminated, before anything else:
    the entry point hands Ctrl-C over to the runner there, so no signal falls between two handlers."""
    err = stderr or sys.stderr or io.StringIO()
    try:
        with taking_signals(before_start):
            return _main(sys.argv[1:] if argv is None else argv, stdout if stdout is not None else sys.stdout, err)
    except KeyboardInterrupt:
        # Started executions go on (on a stage) or end with the process (embedded).
        say(err, "runtest: interrupted")
        return EXIT_INTERRUPTED
    except Terminated:
        say(err, "runtest: terminated")
        return EXIT_TERMINATED


def _main(argv: list[str], raw_out: TextIO | None, err: TextIO) -> int:
    try:
        args = _arguments(argv)
    except SystemExit as exit_:  # argparse has printed the usage line
        return EXIT_USAGE if exit_.code else EXIT_OK
    if not stream_open(raw_out):
        say(err, "runtest: stdout is closed, so no result could be delivered; nothing was run")
        return EXIT_NOT_DELIVERED
    assert raw_out is not None
    out = cast("TextIO", Delivery(raw_out))
    report_dir = Path(args.report)
    human = None
    try:
        if args.stage is None and (args.region or args.profile):
            raise UsageError("--region and --profile go with --stage (the embedded stack needs neither)")
        prepare_report_directory(report_dir)
        trips = load_trip_files(args.files)
        human = None if args.json else human_output(out)
        if args.stage is None:
            result = run_embedded(trips, human, args.logs, args.timeout, err)
        else:
            stage = Stage.choose(args.stage, args.region, args.profile)
            say(err, f"runtest: running on {stage.describe()}")
            result = run_on_stage(trips, stage, human, args.timeout)
    except (UsageError, StageError, RequestFileError) as error:
        say(err, "\n".join(f"runtest: {line}" for line in shown_lines(str(error)).splitlines()))
        return EXIT_USAGE
    finally:
        if human is not None:
            human.close()
    pages = write_pages(result, report_dir, err)
    if args.json:
        documents = [
            {**report.model_dump(mode="json"), "report": str(pages[report.execution_arn] or "")}
            for report in result.reports
        ]
        print(json.dumps(documents if len(args.files) > 1 else documents[0], indent=2), file=out)
        say(err, f"runtest: execution reports in {shown(str(report_dir))}/")
    else:
        assert human is not None
        human.summaries(result.reports)
        unique = [page for page in dict.fromkeys(pages.values()) if page is not None]
        if len(unique) <= SHOW_REPORT_PATHS:
            for path in unique:
                print(f"report: {shown(str(path))}", file=out)
        else:
            print(f"reports: {len(unique)} pages in {shown(str(report_dir))}/ (one per trip id)", file=out)
    out.flush()
    failure = cast("Delivery", out).failure
    if failure is not None:
        say(
            err,
            f"runtest: the results could not be written to stdout ({failure}); {len(result.reports)} "
            f"{'saga' if len(result.reports) == 1 else 'sagas'} ran, their pages are in {shown(str(report_dir))}/",
        )
        return EXIT_NOT_DELIVERED
    return exit_code(result.reports)


@dataclass
class RunResult:
    reports: list[SagaResult]
    histories: dict[str, list[dict[str, Any]]]  # by execution ARN
    definition: dict[str, Any]  # the ASL the executions ran


def write_pages(result: RunResult, directory: Path, err: TextIO) -> dict[str, Path | None]:
    """One HTML page per execution, by execution ARN; a page that cannot be written is a warning, never a
    lost result (None)."""
    pages: dict[str, Path | None] = {}
    for report in result.reports:
        if report.execution_arn in pages:
            continue
        try:
            pages[report.execution_arn] = write_page(
                directory, result.definition, result.histories[report.execution_arn], report
            )
        except OSError as error:
            pages[report.execution_arn] = None
            say(err, f"runtest: warning: the page of {report.trip_id} was not written ({error.strerror or error})")
    return pages


def run_embedded(
    trips: list[TripFile], human: ProgressObserver | None, show_logs: bool, timeout: float, err: TextIO
) -> RunResult:
    from sagatools.emulation.embedded import EmbeddedStack  # moto is heavy: import it only when it is needed

    with contextlib.ExitStack() as resources:
        if show_logs:
            log_sink: TextIO = err
        else:
            output_dir().mkdir(parents=True, exist_ok=True)
            log_sink = resources.enter_context((output_dir() / "handlers.log").open("w"))
        stack = resources.enter_context(EmbeddedStack(log_sink=log_sink))
        runner = SagaRunner(
            stack.stepfunctions,
            stack.state_machine_arn,
            TripReader(stack.settings, stack.dynamodb),
            poll_seconds=0.01,
            timeout_seconds=timeout,
            observer=human,
            on_deadline=stack.lambdas.freeze,
        )
        reports = runner.run(trips)
        return RunResult(reports, runner.histories, load_definition())


# A stage that stops answering mid-run (an endpoint stopped or killed, a stack removed) may hold a call
# past the --timeout: this long after it, the run ends anyway, in one sentence.
STAGE_GRACE_SECONDS = 5.0


def run_on_stage(trips: list[TripFile], stage: Stage, human: ProgressObserver | None, timeout: float) -> RunResult:
    """The same runner against a deployed stage: its state machine and its tables, from the stack outputs."""
    watchdog = threading.Timer(timeout + STAGE_GRACE_SECONDS, _stage_did_not_answer, (stage, timeout))
    watchdog.daemon = True
    watchdog.start()
    try:
        return _run_on_stage(trips, stage, human, timeout)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in {"StateMachineDoesNotExist", "ExecutionDoesNotExist", "ResourceNotFoundException"}:
            raise StageError(
                f"Stage {stage.name} lost its state machine or tables during the run ({code}): was it removed?"
                f" Deploy it again with {stage.deploy_command}."
            ) from None
        raise StageError(explain(error, stage)) from None
    except BotoCoreError as error:
        raise StageError(explain(error, stage)) from None
    finally:
        watchdog.cancel()


def _stage_did_not_answer(stage: Stage, timeout: float) -> None:
    os.write(
        2,
        f"runtest: stage {stage.name} ({stage.region}) did not answer within the --timeout of {timeout:g} s and"
        f" {STAGE_GRACE_SECONDS:g} s more; the sagas started there go on, and running the same files again"
        " reports them\n".encode(),
    )
    os._exit(EXIT_USAGE)


def _run_on_stage(trips: list[TripFile], stage: Stage, human: ProgressObserver | None, timeout: float) -> RunResult:
    outputs = stage.outputs()
    settings = settings_from_outputs(outputs)
    if not settings.fault_injection and (refused := [trip.path for trip in trips if trip.request.simulate]):
        raise UsageError(
            f"fault injection is off on stage {stage.name}; remove `simulate` from {', '.join(map(shown, refused))}"
        )
    arn = state_machine_arn(outputs, stage.region)
    stepfunctions = stage.client("stepfunctions")
    try:
        deployed = stepfunctions.describe_state_machine(stateMachineArn=arn)
    except ClientError as error:
        if error.response["Error"]["Code"] == "StateMachineDoesNotExist":
            raise StageError(
                f"The state machine of stage {stage.name} is not deployed: run ./deploy-stepfunc.sh "
                f"{stage.name} {stage.region}."
            ) from None
        raise StageError(explain(error, stage)) from None
    runner = SagaRunner(
        stepfunctions,
        arn,
        TripReader(settings, stage.client("dynamodb")),
        poll_seconds=AWS_POLL_SECONDS,
        timeout_seconds=timeout,
        observer=human,
    )
    runner.refuse_conflicts(trips)
    reports = runner.run(trips)
    return RunResult(reports, runner.histories, json.loads(deployed["definition"]))


if __name__ == "__main__":
    sys.exit(main())
