"""Resolving trips that need attention: a resolution execution per trip, followed to its end with the
runner's watcher, one page each; or, by hand, closing a trip's open records with a reason."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from botocore.exceptions import ClientError

from saga.saga_log import AttentionKind, AttentionRecord
from sagatools.attention.stage_view import StageView, TripView, UnknownTrip, open_records, resolution_name
from sagatools.cli import human_output
from sagatools.deployed.stage import execution_arn
from sagatools.executions import ExecutionWatcher
from sagatools.results import SagaResult, build_report, resolution_outcome_of
from sagatools.view.html_page import write_page

if TYPE_CHECKING:
    from pathlib import Path

RESOLUTION_TIMEOUT_SECONDS = 900.0


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
            if not open_records(view.attention):
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
        still_open = open_records(attention)
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
        definition = json.loads(
            self.view.stepfunctions.describe_state_machine(stateMachineArn=self.view.resolve_machine)["definition"]
        )
        observer = human_output(self.out) if human else None
        watcher = ExecutionWatcher(
            self.view.stepfunctions,
            self.view.resolve_machine,
            poll_seconds=self.view.stage.poll_seconds,
            observer=observer,
            definition=definition,
        )
        trip_of = {arn: trip_id for trip_id, (_, arn) in started.items()}
        try:
            descriptions = watcher.wait(trip_of, time.monotonic() + RESOLUTION_TIMEOUT_SECONDS)
        finally:
            if observer is not None:
                observer.close()
        for trip_id, (name, arn) in started.items():
            events = watcher.history(arn)
            result = build_report(
                name, trip_id, descriptions[arn], events, self.view.reader, False, resolution_outcome_of
            )
            self._page(name, definition, events, result)

    def _page(self, name: str, definition: dict[str, Any], events: list[dict[str, Any]], result: SagaResult) -> None:
        try:
            page = write_page(
                self.report_dir, definition, events, result.model_copy(update={"trip_id": name}), "Resolution"
            )
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
    still_open = open_records(attention)
    if not still_open:
        raise UnknownTrip(f"trip {trip_id} has no open attention record on stage {view.stage.name}")
    now = datetime.now(UTC).isoformat()
    for record in still_open:
        view.reader.saga_log.close_attention(record, now, f"operator (attention.sh close): {reason}")
    return view.trip(trip_id)
