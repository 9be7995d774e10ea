"""runtest.sh: validate trip requests, run their sagas, show what happened.

    runtest.sh FILE... [--json] [--stage S --region R --profile P] [--logs] [--timeout SECONDS]

Without --stage the sagas run on the embedded stack. Every file is read and validated before anything
starts; one bad file means nothing runs. Exit 0 when every saga ended COMMITTED or ROLLED_BACK, 1 when
any needs attention or did not finish, 2 for usage errors and unreadable or invalid requests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from saga.errors import InvalidTripRequest
from saga.models import TripRequest, parse_trip_request
from sagatools.asl import load_definition
from sagatools.deployed.stage import Stage, StageError, explain, settings_from_outputs, state_machine_arn
from sagatools.results import Outcome, SagaResult, TripReader, build_report, execution_history
from sagatools.view.history import state_runs
from sagatools.view.html_page import write_page
from sagatools.view.terminal import ProgressObserver, human_output

if TYPE_CHECKING:
    from botocore.client import BaseClient

EXIT_OK, EXIT_SAGA_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_FILE_BYTES = 10 * 1024 * 1024
LOG_DIR = Path(".runtest")
REPORT_DIR = LOG_DIR / "reports"
# Up to this many running sagas, their states are shown as they complete; beyond it, when each ends.
LIVE_PROGRESS_LIMIT = 8
AWS_POLL_SECONDS = 1.0
SHOW_REPORT_PATHS = 5  # beyond this many pages, name the folder


class UsageError(Exception):
    """Bad arguments or bad request files: reported in one message each, exit 2."""


@dataclass(frozen=True)
class TripFile:
    path: str
    request: TripRequest

    @property
    def execution_input(self) -> str:
        # Canonical, so the same request always makes the same input (StartExecution idempotency).
        return self.request.model_dump_json(by_alias=True, exclude_none=True)


def load_trip_file(path: str) -> TripFile:
    file = Path(path)
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise UsageError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB, not a trip request")
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise UsageError(f"{path}: cannot read: {reason}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}: not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None
    try:
        return TripFile(path, parse_trip_request(data))
    except InvalidTripRequest as error:
        lines = str(error).splitlines()
        raise UsageError("\n".join(f"{path}: invalid request: {line}" for line in lines)) from None


def load_trip_files(paths: list[str]) -> list[TripFile]:
    """Every file, or UsageError naming every bad one."""
    loaded, problems = [], []
    for path in paths:
        try:
            loaded.append(load_trip_file(path))
        except UsageError as error:
            problems.append(str(error))
    if problems:
        raise UsageError("\n".join(problems))
    return loaded


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
    ) -> None:
        self.stepfunctions = stepfunctions
        self.state_machine_arn = state_machine_arn
        self.reader = reader
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.observer = observer
        self.histories: dict[str, list[dict[str, Any]]] = {}  # by execution ARN, after run()
        self._final_history: dict[str, list[dict[str, Any]]] = {}

    def run(self, trips: list[TripFile]) -> list[SagaResult]:
        started = [self._start(trip, earlier) for earlier, trip in self._with_earlier(trips)]
        trip_of = {item.execution_arn: item.trip.request.trip_id for item in started}
        descriptions = self._wait(trip_of)
        # An ended execution's history is final: reuse the one fetched to show its last states.
        histories = {
            arn: self._final_history.pop(arn, []) or execution_history(self.stepfunctions, arn) for arn in trip_of
        }
        self.histories.update(histories)
        return [
            build_report(
                item.trip.path,
                item.trip.request.trip_id,
                descriptions[item.execution_arn],
                histories[item.execution_arn],
                self.reader,
                item.reused,
            )
            for item in started
        ]

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
            # The trip's saga exists already: report that one, never start a second.
            return _Started(trip, self._execution_arn(name), reused=True)
        return _Started(trip, arn, reused=name in earlier_trip_ids)

    def _execution_arn(self, name: str) -> str:
        prefix, _, machine = self.state_machine_arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{name}"

    def _wait(self, trip_of: dict[str, str]) -> dict[str, dict[str, Any]]:
        """Poll until every execution has ended (or the timeout): one ListExecutions a round, not N calls."""
        deadline = time.monotonic() + self.timeout_seconds
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
                for arn in pending:
                    descriptions[arn] = self.stepfunctions.describe_execution(executionArn=arn)
                break
            if pending:
                # More executions polled a round means more work a round: wait longer, but not much.
                time.sleep(min(self.poll_seconds * len(pending), max(self.poll_seconds, 0.25)))
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


def exit_code(reports: list[SagaResult]) -> int:
    clean = {Outcome.COMMITTED, Outcome.ROLLED_BACK}
    return EXIT_OK if all(report.outcome in clean for report in reports) else EXIT_SAGA_FAILED


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="runtest.sh",
        description="Run booking sagas on the embedded stack (default) or on a deployed stage.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="trip request JSON file(s)")
    parser.add_argument("--json", action="store_true", help="print only JSON on stdout")
    parser.add_argument("--stage", help="run on this deployed stage instead of the embedded stack")
    parser.add_argument("--region", help="AWS region of the stage")
    parser.add_argument("--profile", help="AWS profile to use")
    parser.add_argument("--logs", action="store_true", help="show the handlers' JSON logs on stderr")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the sagas (600)")
    parser.add_argument(
        "--report",
        default=str(REPORT_DIR),
        metavar="DIR",
        help=f"write one HTML page per execution here ({REPORT_DIR})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = _arguments(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:  # argparse has printed the usage line
        return EXIT_USAGE if exit_.code else EXIT_OK
    human = None
    try:
        if args.stage is None and (args.region or args.profile):
            raise UsageError("--region and --profile go with --stage (the embedded stack needs neither)")
        if args.timeout <= 0:
            raise UsageError("--timeout must be a positive number of seconds")
        trips = load_trip_files(args.files)
        human = None if args.json else human_output(out)
        if args.stage is None:
            result = run_embedded(trips, human, args.logs, args.timeout, err)
        else:
            stage = Stage.choose(args.stage, args.region, args.profile)
            print(f"runtest: running on {stage.describe()}", file=err)
            result = run_on_stage(trips, stage, human, args.timeout)
    except (UsageError, StageError) as error:
        print("\n".join(f"runtest: {line}" for line in str(error).splitlines()), file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Started executions go on (on AWS) or end with the process (embedded); nothing is half-written.
        print("runtest: interrupted", file=err)
        return EXIT_INTERRUPTED
    finally:
        if human is not None:
            human.close()
    pages = write_pages(result, Path(args.report))
    if args.json:
        documents = [
            {**report.model_dump(mode="json"), "report": str(pages[report.execution_arn])} for report in result.reports
        ]
        print(json.dumps(documents if len(args.files) > 1 else documents[0], indent=2), file=out)
        print(f"runtest: execution reports in {Path(args.report)}/", file=err)
    else:
        assert human is not None
        human.summaries(result.reports)
        unique = list(dict.fromkeys(pages.values()))
        if len(unique) <= SHOW_REPORT_PATHS:
            for path in unique:
                print(f"report: {path}", file=out)
        else:
            print(f"reports: {len(unique)} pages in {Path(args.report)}/ (one per trip id)", file=out)
    return exit_code(result.reports)


@dataclass
class RunResult:
    reports: list[SagaResult]
    histories: dict[str, list[dict[str, Any]]]  # by execution ARN
    definition: dict[str, Any]  # the ASL the executions ran


def write_pages(result: RunResult, directory: Path) -> dict[str, Path]:
    """One HTML page per execution; the path of each, by execution ARN."""
    pages = {}
    for report in result.reports:
        if report.execution_arn not in pages:
            pages[report.execution_arn] = write_page(
                directory, result.definition, result.histories[report.execution_arn], report
            )
    return pages


def run_embedded(
    trips: list[TripFile], human: ProgressObserver | None, show_logs: bool, timeout: float, err: TextIO
) -> RunResult:
    from sagatools.emulation.embedded import EmbeddedStack  # moto is heavy: import it only when it is needed

    with contextlib.ExitStack() as resources:
        if show_logs:
            log_sink: TextIO = err
        else:
            LOG_DIR.mkdir(exist_ok=True)
            log_sink = resources.enter_context((LOG_DIR / "handlers.log").open("w"))
        stack = resources.enter_context(EmbeddedStack(log_sink=log_sink))
        runner = SagaRunner(
            stack.stepfunctions,
            stack.state_machine_arn,
            TripReader(stack.settings, stack.dynamodb),
            poll_seconds=0.01,
            timeout_seconds=timeout,
            observer=human,
        )
        reports = runner.run(trips)
        return RunResult(reports, runner.histories, load_definition())


def run_on_stage(trips: list[TripFile], stage: Stage, human: ProgressObserver | None, timeout: float) -> RunResult:
    """The same runner against a deployed stage: its state machine and its tables, from the stack outputs."""
    outputs = stage.outputs()
    settings = settings_from_outputs(outputs)
    if not settings.fault_injection and (refused := [trip.path for trip in trips if trip.request.simulate]):
        raise UsageError(f"fault injection is off on stage {stage.name}; remove `simulate` from {', '.join(refused)}")
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
    except BotoCoreError as error:
        raise StageError(explain(error, stage)) from None
    runner = SagaRunner(
        stepfunctions,
        arn,
        TripReader(settings, stage.client("dynamodb")),
        poll_seconds=AWS_POLL_SECONDS,
        timeout_seconds=timeout,
        observer=human,
    )
    reports = runner.run(trips)
    return RunResult(reports, runner.histories, json.loads(deployed["definition"]))


if __name__ == "__main__":
    sys.exit(main())
