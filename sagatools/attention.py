"""attention.sh: the operator's half of a stuck saga: list the trips that need attention, show one,
resolve them (the compensations again, through Step Functions), keeping the record.

    attention.sh list    --stage S [--region R] [--profile P] [--json] [--all]
    attention.sh show    TRIP_ID --stage S ... [--json]
    attention.sh resolve TRIP_ID... --stage S ... [--json] [--keep-faults] [--roll-back] [--report DIR]
    attention.sh close   TRIP_ID --reason TEXT --stage S ... [--json]

A resolution is an execution of the stage's resolution state machine (statemachine/resolve-stuck.asl.json)
named <trip_id>-resolve-<n>; the state machine itself closes or keeps the trip's attention records, so a
resolution started from the console does the same. A trip left unfinished past its pivot (forward
recovery) is finished forward, or with --roll-back undone whole; a stuck compensation is run again.
Exit status as runtest.sh's: 0 done (or nothing to do), 1 a trip still needs attention, 2 usage errors
and unknown trips, 130 interrupted, 143 terminated.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from saga.models import BookingStatus
from saga.request_fields import TRIP_ID_PATTERN, TRIP_ID_RULE
from saga.saga_log import AttentionKind, AttentionRecord, AttentionState, LogEntry, SagaLog
from sagatools.asl import RESOLVE_MACHINE
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
    start_up_over,
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
from sagatools.results import (
    Outcome,
    SagaResult,
    TripReader,
    build_report,
    execution_history,
    outcome_of,
    resolution_outcome_of,
)
from sagatools.runner import SagaRunner, human_output, report_dir
from sagatools.terminal_text import shown
from sagatools.view.html_page import write_page

if TYPE_CHECKING:
    from botocore.client import BaseClient

ATTENTION_INDEX = "attention-index"
RESOLUTION_TIMEOUT_SECONDS = 900.0
NOTHING_OPEN = "NOTHING_OPEN"  # a trip that never needed attention


class UnknownTrip(Exception):
    """No saga ran under this trip id on the stage."""


class Execution(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    arn: str
    status: str
    outcome: Outcome | None = None  # the saga's (COMMITTED, ...) or a resolution's (RESOLVED, NEEDS_ATTENTION)
    started: str | None = None
    report: str | None = None


class TripView(BaseModel):
    """One trip as `show` and `resolve --json` give it."""

    trip_id: str
    outcome: str
    executions: list[Execution]
    attention: list[AttentionRecord]
    bookings: dict[str, BookingStatus | None]
    saga_log: list[LogEntry] = []


def resolution_name(trip_id: str, number: int) -> str:
    return f"{trip_id}-resolve-{number}"


@dataclass
class StageView:
    """What the operator reaches on a stage: its tables, its two state machines."""

    stage: Stage
    stepfunctions: BaseClient
    dynamodb: BaseClient
    reader: TripReader
    saga_machine: str
    resolve_machine: str
    saga_log_table: str
    definition: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, stage: Stage) -> StageView:
        outputs = stage.outputs()
        settings = settings_from_outputs(outputs)
        dynamodb = stage.client("dynamodb")
        if RESOLVE_MACHINE.name_output not in outputs:
            raise StageError(f"Stage {stage.name} has no resolution state machine: redeploy it with ./build.sh deploy.")
        return cls(
            stage=stage,
            stepfunctions=stage.client("stepfunctions"),
            dynamodb=dynamodb,
            reader=TripReader(settings, dynamodb),
            saga_machine=state_machine_arn(outputs, stage.region),
            resolve_machine=state_machine_arn(outputs, stage.region, RESOLVE_MACHINE),
            saga_log_table=settings.saga_log_table,
        )

    def describe(self, machine_arn: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.stepfunctions.describe_execution(executionArn=execution_arn(machine_arn, name))
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return None
            raise
        return found

    def records(self, include_resolved: bool) -> list[AttentionRecord]:
        """Attention records from the attention index (never a table scan), oldest first."""
        states = [AttentionState.OPEN] + ([AttentionState.RESOLVED] if include_resolved else [])
        found = []
        for state in states:
            request: dict[str, Any] = {
                "TableName": self.saga_log_table,
                "IndexName": ATTENTION_INDEX,
                "KeyConditionExpression": "attention = :state",
                "ExpressionAttributeValues": {":state": {"S": state.value}},
            }
            while True:
                page = self.dynamodb.query(**request)
                found += [SagaLog.attention_record(item) for item in page["Items"]]
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(found, key=lambda record: record.at)

    def executions(self, trip_id: str) -> list[Execution]:
        """The saga's execution, then every resolution of the trip, in order."""
        found = []
        saga = self.describe(self.saga_machine, trip_id)
        if saga is not None:
            found.append(_execution(trip_id, saga, outcome_of))
        number = 1
        while (resolution := self.describe(self.resolve_machine, resolution_name(trip_id, number))) is not None:
            found.append(_execution(resolution_name(trip_id, number), resolution, resolution_outcome_of))
            number += 1
        return found

    def trip(self, trip_id: str) -> TripView:
        executions = self.executions(trip_id)
        log, attention = self.reader.saga_log.read(trip_id)
        if not executions and not log and not attention:
            raise UnknownTrip(f"no saga ran under trip id {trip_id} on stage {self.stage.name}")
        still_open = [record for record in attention if record.attention is AttentionState.OPEN]
        return TripView(
            trip_id=trip_id,
            outcome=Outcome.NEEDS_ATTENTION.value
            if still_open
            else (Outcome.RESOLVED.value if attention else NOTHING_OPEN),
            executions=[_with_page(execution) for execution in executions],
            attention=attention,
            bookings=self.reader.bookings(trip_id),
            saga_log=log,
        )


def _execution(
    name: str, description: dict[str, Any], outcome: Callable[[str, str | None], Outcome | None]
) -> Execution:
    started = description.get("startDate")
    return Execution(
        name=name,
        arn=description["executionArn"],
        status=description["status"],
        outcome=outcome(description["status"], description.get("error")),
        started=started.isoformat() if started is not None else None,
    )


def short_cause(cause: str | None) -> str:
    """The handler's own message inside a Step Functions cause (JSON within JSON), else the cause as it is."""
    if not cause:
        return ""
    try:
        outer = json.loads(cause)
        inner = json.loads(outer.get("Cause", "{}")) if isinstance(outer, dict) else {}
        message = inner.get("errorMessage") if isinstance(inner, dict) else None
    except (ValueError, TypeError):
        message = None
    return shown(message or cause)[:160]


def _with_page(execution: Execution) -> Execution:
    page = report_dir() / f"{execution.name}.html"
    return execution.model_copy(update={"report": str(page)}) if page.exists() else execution


class Resolver:
    """Starts and follows the resolutions of trips; one execution per trip, never two at once."""

    def __init__(
        self, view: StageView, keep_faults: bool, report_dir: Path, out: TextIO, err: TextIO, roll_back: bool = False
    ) -> None:
        self.view = view
        self.keep_faults = keep_faults
        self.roll_back = roll_back
        self.report_dir = report_dir
        self.out, self.err = out, err

    def resolve(self, trip_ids: list[str], human: bool) -> list[TripView]:
        started: dict[str, tuple[str, str]] = {}  # trip -> (execution name, arn)
        # Every trip read (and known: UnknownTrip otherwise) before anything starts.
        views = {trip_id: self.view.trip(trip_id) for trip_id in trip_ids}
        for trip_id, view in list(views.items()):
            if not any(record.attention is AttentionState.OPEN for record in view.attention):
                print(f"attention: {trip_id} has nothing open: nothing to resolve", file=self.err)
                continue
            execution = self._start(trip_id)
            if execution is None:
                print(f"attention: {trip_id} was resolved meanwhile by another call", file=self.err)
                views[trip_id] = self.view.trip(trip_id)
                continue
            started[trip_id] = execution
        if started:
            self._follow(started, human)
        for trip_id in started:
            views[trip_id] = self.view.trip(trip_id)
        return [views[trip_id] for trip_id in trip_ids]

    def _start(self, trip_id: str) -> tuple[str, str] | None:
        saga = self.view.describe(self.view.saga_machine, trip_id)
        if saga is None:
            raise UnknownTrip(
                f"trip {trip_id} has open attention records but no saga execution to take its request from (a"
                f" resolution started by hand with another request?): close them with ./attention.sh close {trip_id}"
                f" --reason TEXT --stage {self.view.stage.name}"
            )
        request = json.loads(saga["input"])
        if not self.keep_faults:
            request.pop("simulate", None)  # the provider is back
        executions = self.view.executions(trip_id)
        running = [execution for execution in executions[1:] if execution.status == "RUNNING"]
        if running:  # another call's resolution is under way: follow it, never start a second
            print(f"attention: {trip_id} is already being resolved: execution {running[-1].name}", file=self.err)
            return running[-1].name, running[-1].arn
        _, attention = self.view.reader.saga_log.read(trip_id)
        still_open = [record for record in attention if record.attention is AttentionState.OPEN]
        if not still_open:
            return None  # another call's resolution ended in the meantime and closed them
        number = len(executions)  # the saga is number 0: resolutions count from 1
        name = resolution_name(trip_id, number)
        direction = self.direction(still_open)
        # A token of this call makes the input differ from any other call's: a second start under the
        # same name is then refused (ExecutionAlreadyExists) instead of silently joining the first.
        payload = json.dumps({"request": request, "direction": direction, "requested_by": str(uuid.uuid4())})
        arn = execution_arn(self.view.resolve_machine, name)
        try:
            self.view.stepfunctions.start_execution(stateMachineArn=self.view.resolve_machine, name=name, input=payload)
            how = "finishing it forward" if direction == "forward" else "rolling it back"
            print(f"attention: resolving {trip_id} ({how}): execution {name}", file=self.err)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            print(f"attention: {trip_id} is already being resolved by another call: execution {name}", file=self.err)
        return name, arn

    def direction(self, still_open: list[AttentionRecord]) -> str:
        """Forward when every open record is a step past the pivot left to do, unless the operator asked
        for a roll-back; a stuck compensation means a roll-back is under way, and it is finished."""
        unfinished = all(record.kind is AttentionKind.UNFINISHED_FORWARD for record in still_open)
        return "forward" if unfinished and not self.roll_back else "backward"

    def _follow(self, started: dict[str, tuple[str, str]], human: bool) -> None:
        observer = human_output(self.out) if human else None
        runner = SagaRunner(
            self.view.stepfunctions,
            self.view.resolve_machine,
            self.view.reader,
            poll_seconds=0.2 if self.view.stage.is_local else 1.0,
            timeout_seconds=RESOLUTION_TIMEOUT_SECONDS,
            observer=observer,
        )
        trip_of = {arn: trip_id for trip_id, (_, arn) in started.items()}
        try:
            descriptions = runner.wait(trip_of, time.monotonic() + RESOLUTION_TIMEOUT_SECONDS)
        finally:
            if observer is not None:
                observer.close()
        definition = json.loads(
            self.view.stepfunctions.describe_state_machine(stateMachineArn=self.view.resolve_machine)["definition"]
        )
        for trip_id, (name, arn) in started.items():
            events = execution_history(self.view.stepfunctions, arn)
            result = build_report(
                name, trip_id, descriptions[arn], events, self.view.reader, False, resolution_outcome_of
            )
            self._page(name, definition, events, result)

    def _page(self, name: str, definition: dict[str, Any], events: list[dict[str, Any]], result: SagaResult) -> None:
        try:
            page = write_page(self.report_dir, definition, events, result.model_copy(update={"trip_id": name}))
        except OSError as error:
            print(f"attention: warning: the page of {name} was not written ({error.strerror or error})", file=self.err)
            return
        print(
            f"attention: {name}: {result.outcome.value if result.outcome else 'UNFINISHED'}, report {page}",
            file=self.err,
        )


def close_records(view: StageView, trip_id: str, reason: str) -> TripView:
    """Close every open attention record of the trip by hand: RESOLVED, when, and by whom and why (kept)."""
    _, attention = view.reader.saga_log.read(trip_id)
    still_open = [record for record in attention if record.attention is AttentionState.OPEN]
    if not still_open:
        raise UnknownTrip(f"trip {trip_id} has no open attention record on stage {view.stage.name}")
    now = datetime.now(UTC).isoformat()
    for record in still_open:
        view.reader.saga_log.close_attention(record, now, f"operator (attention.sh close): {reason}")
    return view.trip(trip_id)


def print_list(records: list[AttentionRecord], include_resolved: bool, out: TextIO) -> None:
    if not records:
        print("No trip needs attention." if not include_resolved else "No attention records.", file=out)
        return
    for record in records:
        state = "" if record.attention is AttentionState.OPEN else f"  RESOLVED {record.resolved_at}"
        attempts = f", {record.attempts} more attempts by resolutions" if record.attempts else ""
        print(
            f"{shown(record.trip_id):<24} {shown(record.step):<14} since {shown(record.at)}"
            f"  {shown(str(record.error))}{attempts}{state}",
            file=out,
        )
        print(f"{'':<24} kind: {record.kind.value} ({_what_to_do(record)})", file=out)
        if record.cause:
            print(f"{'':<24} cause: {short_cause(record.cause)}", file=out)
        if record.execution_id:
            print(f"{'':<24} raised by {record.execution_id}", file=out)


def _what_to_do(record: AttentionRecord) -> str:
    if record.kind is AttentionKind.UNFINISHED_FORWARD:
        return f"{record.step} is left to do: resolve finishes the trip forward, resolve --roll-back undoes it"
    return f"{record.step} is stuck: resolve runs the compensations again"


def print_trip(view: TripView, out: TextIO) -> None:
    print(f"{shown(view.trip_id)}: {view.outcome}", file=out)
    bookings = ", ".join(f"{resource} {status.value if status else '-'}" for resource, status in view.bookings.items())
    print(f"  bookings    {bookings}", file=out)
    for record in view.attention:
        closed = f" by {record.resolved_by} at {record.resolved_at}" if record.resolved_by else ""
        what = "left to do, forward" if record.kind is AttentionKind.UNFINISHED_FORWARD else "stuck"
        print(
            f"  attention   {record.step}: {record.attention.value}{closed} ({what}; error {shown(str(record.error))})",
            file=out,
        )
    if view.attention and not any(execution.name == view.trip_id for execution in view.executions):
        print(
            f"  note        no saga ran under this trip id, so resolve has no request to run: close its records with"
            f" ./attention.sh close {shown(view.trip_id)} --reason TEXT",
            file=out,
        )
    for execution in view.executions:
        page = f", report {execution.report}" if execution.report else ""
        outcome = execution.outcome.value if execution.outcome else "UNFINISHED"
        print(f"  execution   {execution.name}: {outcome} ({execution.status}){page}", file=out)
    for entry in view.saga_log:
        detail = f" ({shown(entry.detail)})" if entry.detail else ""
        print(
            f"  log         {entry.at}  {entry.step:<14} {entry.event.value:<7} attempt {entry.attempt}{detail}",
            file=out,
        )


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="attention.sh", allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("list", "show", "resolve", "close"):
        command = commands.add_parser(name, allow_abbrev=False)
        if name == "show":
            command.add_argument("trips", nargs=1, metavar="TRIP_ID")
        elif name == "close":
            command.add_argument("trips", nargs=1, metavar="TRIP_ID")
            command.add_argument("--reason", required=True, help="why the records are closed without a resolution")
        elif name == "resolve":
            command.add_argument("trips", nargs="+", metavar="TRIP_ID")
            command.add_argument("--keep-faults", action="store_true", help="keep the request's simulated faults")
            command.add_argument(
                "--roll-back", action="store_true", help="undo the whole trip, even one left to finish forward"
            )
            command.add_argument("--report", default=str(report_dir()), metavar="DIR", help="where the pages go")
        else:
            command.add_argument("--all", action="store_true", help="resolved records too")
        command.add_argument("--stage", help="the deployed stage (required)")
        command.add_argument("--region")
        command.add_argument("--profile")
        command.add_argument("--json", action="store_true", help="print only JSON on stdout")
    return parser.parse_args(argv)


def main(
    argv: list[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    before_start: Callable[[], object] | None = None,
) -> int:
    """`before_start`: as the runner's (sagatools/entry.py hands Ctrl-C over there)."""
    err = stderr or sys.stderr
    delivery = Delivery(stdout if stdout is not None else sys.stdout)
    try:
        with taking_signals(before_start):
            code = _main(sys.argv[1:] if argv is None else argv, cast("TextIO", delivery), err)
        delivery.flush()
        if delivery.failure is not None:
            print(f"attention: the results could not be written to stdout ({delivery.failure})", file=err)
            return EXIT_NOT_DELIVERED
        return code
    except KeyboardInterrupt:
        print("attention: interrupted", file=err)
        return EXIT_INTERRUPTED
    except Terminated:
        print("attention: terminated", file=err)
        return EXIT_TERMINATED


def _main(argv: list[str], out: TextIO, err: TextIO) -> int:
    try:
        args = _arguments(argv)
    except SystemExit as exit_:
        return EXIT_USAGE if exit_.code else EXIT_OK
    if not args.stage or not args.stage.strip():
        print(
            "attention: --stage is required: the embedded stack keeps nothing after a runtest.sh run, so only a "
            "deployed stage (./build.sh deploy local, for one on this machine) has trips to look after",
            file=err,
        )
        return EXIT_USAGE
    for trip_id in getattr(args, "trips", []):
        if not TRIP_ID_PATTERN.fullmatch(trip_id):
            print(f"attention: trip id '{shown(trip_id)}': {TRIP_ID_RULE}", file=err)
            return EXIT_USAGE
    stage: Stage | None = None
    try:
        stage = Stage.choose(args.stage, args.region, args.profile)
        view = StageView.open(stage)
        start_up_over()
        if args.command == "list":
            records = view.records(include_resolved=args.all)
            if args.json:
                print(json.dumps([record.model_dump(mode="json") for record in records], indent=2), file=out)
            else:
                print_list(records, args.all, out)
            return EXIT_OK
        if args.command == "show":
            trip = view.trip(args.trips[0])
            if args.json:
                print(trip.model_dump_json(indent=2), file=out)
            else:
                print_trip(trip, out)
            return EXIT_OK
        if args.command == "close":
            if not args.reason.strip() or not args.reason.isprintable():
                raise UsageError("--reason: say why, in printable text")
            closed = close_records(view, args.trips[0], args.reason)
            if args.json:
                print(closed.model_dump_json(indent=2, exclude={"saga_log"}), file=out)
            else:
                print_trip(closed.model_copy(update={"saga_log": []}), out)
            return EXIT_OK
        report_dir = Path(args.report)
        prepare_report_directory(report_dir)
        views = Resolver(view, args.keep_faults, report_dir, out, err, args.roll_back).resolve(
            args.trips, human=not args.json
        )
    except UnknownTrip as error:
        print(f"attention: {error}", file=err)
        return EXIT_USAGE
    except StageError as error:
        print(f"attention: {error}", file=err)
        return EXIT_USAGE
    except (BotoCoreError, ClientError) as error:
        print(f"attention: {explain(error, stage) if stage else error}", file=err)
        return EXIT_USAGE
    except UsageError as error:
        print(f"attention: {error}", file=err)
        return EXIT_USAGE
    documents = [view.model_dump(mode="json", exclude={"saga_log"}) for view in views]
    if args.json:
        print(json.dumps(documents if len(views) > 1 else documents[0], indent=2), file=out)
    else:
        for trip in views:
            print_trip(trip.model_copy(update={"saga_log": []}), out)
    still_open = any(v.outcome == Outcome.NEEDS_ATTENTION.value for v in views)
    return EXIT_SAGA_FAILED if still_open else EXIT_OK


if __name__ == "__main__":
    from sagatools.entry import run_guarded

    run_guarded("attention", lambda: main)
