"""Resolving sagas that need attention: a resolution execution per saga, followed to its end with the
runner's watcher, one page each; or, by hand, closing a saga's open records with a reason."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from saga.coordination import BACKWARD, FORWARD, RESOLUTION_DIRECTION, resolution_input
from saga.keys import NOUN
from saga.saga_log import AttentionKind, AttentionRecord
from sagatools.attention.claim import Claim, Claims
from sagatools.attention.coordinators import ResolutionExists
from sagatools.attention.stage_view import Execution, SagaView, StageView, UnknownSaga, open_records, resolution_name
from sagatools.cli import human_output
from sagatools.results import Outcome, SagaResult, build_report, resolution_outcome_of
from sagatools.view.html_page import write_page

if TYPE_CHECKING:
    from pathlib import Path

RESOLUTION_TIMEOUT_SECONDS = 900.0
# How long a claim's resolution may take to start after its claim (its caller writes one, then starts the
# other): a claim whose execution has not started by then was left by a call that stopped in between.
START_GRACE_SECONDS = 30.0
DONE = {FORWARD: "finished forward", BACKWARD: "rolled back"}


class SagaBusy(Exception):
    """The saga or a resolution of it is still running: the operator waits for it to end."""


@dataclass(frozen=True)
class Followed:
    """The resolution a call follows to its end: the one it started, or another call's (`ours` False)."""

    name: str
    arn: str
    direction: str
    ours: bool


@dataclass(frozen=True)
class Meanwhile:
    """Another call acted on the saga and was done before this one could: its claim says which."""

    claim: Claim | None


class Resolver:
    """Starts and follows the resolutions of sagas; one execution per saga, never two at once."""

    def __init__(
        self, view: StageView, keep_faults: bool, report_dir: Path, out: TextIO, err: TextIO, roll_back: bool = False
    ) -> None:
        self.view = view
        self.keep_faults = keep_faults
        self.roll_back = roll_back
        self.report_dir = report_dir
        self.out, self.err = out, err
        self.claims = Claims(view.reader.saga_log.table, view.reader.dynamodb)
        self.not_as_asked: set[str] = set()  # sagas another call resolved the other way, or closed by hand

    def resolve(self, saga_ids: list[str], human: bool) -> list[SagaView]:
        # Every saga read (and known: UnknownSaga otherwise) before anything starts, and none whose saga still
        # runs: it may flag more after a resolution has ended. A saga that has ended never runs again.
        views = {saga_id: self.view.saga(saga_id) for saga_id in saga_ids}
        for saga_id, view in views.items():
            saga = next((e for e in view.executions if e.name == saga_id), None)
            if saga is not None and saga.status == "RUNNING":
                raise SagaBusy(
                    f"{NOUN} {saga_id}'s saga is still running and may yet flag more: resolve it once the saga has"
                    f" ended (./attention.sh show {saga_id} --stage {self.view.stage.name})"
                )
        asked: dict[str, str] = {}
        followed: dict[str, Followed] = {}
        meanwhile: dict[str, Meanwhile] = {}
        for saga_id, view in views.items():
            if not open_records(view.attention):
                print(f"attention: {saga_id} has nothing open: nothing to resolve", file=self.err)
                continue
            asked[saga_id] = self.direction(open_records(view.attention))
            taken = self._start(saga_id)
            if isinstance(taken, Meanwhile):
                meanwhile[saga_id] = taken
            else:
                followed[saga_id] = taken
        if followed:
            self._follow(followed, human)
        for saga_id in [*followed, *meanwhile]:
            views[saga_id] = self.view.saga(saga_id)
        for saga_id, direction in asked.items():
            self._say_what_another_call_did(views[saga_id], direction, followed.get(saga_id), meanwhile.get(saga_id))
        return [views[saga_id] for saga_id in saga_ids]

    def _start(self, saga_id: str) -> Followed | Meanwhile:
        saga = self.view.saga_execution(saga_id)
        if saga is None:
            raise UnknownSaga(
                f"{NOUN} {saga_id} has open attention records but no saga execution to take its request from (a"
                f" resolution started by hand with another request?): close them with ./attention.sh close {saga_id}"
                f" --reason TEXT --stage {self.view.stage.name}"
            )
        request = json.loads(saga["input"])
        if not self.keep_faults:
            request.pop("simulate", None)  # the provider is back
        # The claim first: whatever another call does from here on changes it, and ours is then refused.
        claim = self.claims.read(saga_id)
        holder = holder_of(self.view, claim)
        executions = self.view.executions(saga_id)
        running = [e.name for e in executions[1:] if e.status == "RUNNING"]  # one started from the console too
        if holder is not None and holder["status"] == "RUNNING" and claim is not None and claim.execution:
            running.append(claim.execution)
        if running:  # another call's resolution is under way: follow it, never start a second
            print(f"attention: {saga_id} is already being resolved: execution {running[-1]}", file=self.err)
            return self._other(running[-1])
        _, attention = self.view.reader.saga_log.read(saga_id)
        still_open = open_records(attention)
        if not still_open:
            return Meanwhile(self.claims.read(saga_id))  # another call's resolution ended and closed them
        number = len(executions)  # the saga is number 0: resolutions count from 1
        name = resolution_name(saga_id, number, self.view.coordinator.name_limit)
        direction = self.direction(still_open)
        if not self.claims.take(saga_id, claim, name):
            now = self.claims.read(saga_id)
            if now is None or now.execution is None or holder_of(self.view, now) is None:
                return Meanwhile(now)
            print(
                f"attention: {saga_id} is already being resolved by another call: execution {now.execution}",
                file=self.err,
            )
            return self._other(now.execution)
        # A token of this call makes the input differ from any other call's: a second start under the
        # same name (one started from the console) is refused, not joined.
        document = resolution_input(request, direction, requested_by=str(uuid.uuid4()))
        try:
            arn = self.view.coordinator.start_resolution(name, document)
        except ResolutionExists:
            print(f"attention: {saga_id} is already being resolved by another call: execution {name}", file=self.err)
            return self._other(name)
        how = "finishing it forward" if direction == FORWARD else "rolling it back"
        print(f"attention: resolving {saga_id} ({how}): execution {name}", file=self.err)
        return Followed(name, arn, direction, ours=True)

    def _other(self, name: str) -> Followed:
        description = self.view.coordinator.resolution(name)
        if description is None:  # started by another call a moment ago: it is there once it answers
            raise SagaBusy(f"resolution {name} was started by another call and is not found yet: try again")
        return Followed(name, description["executionArn"], direction_of(description), ours=False)

    def _say_what_another_call_did(
        self, saga: SagaView, asked: str, followed: Followed | None, meanwhile: Meanwhile | None
    ) -> None:
        """Never RESOLVED, exit 0, for a direction that did not happen: the saga's outcome still decides
        exit 1 (it needs attention); otherwise a saga another call took the other way is refused (exit 2)."""
        saga_id, resolved = saga.saga_id, saga.outcome != Outcome.NEEDS_ATTENTION.value
        if followed is not None:
            if followed.ours or followed.direction == asked:
                return
            done = (
                DONE[followed.direction]
                if resolved
                else f"left needing attention by an attempt to be {DONE[followed.direction]}"
            )
            print(
                f"attention: {saga_id} was {done} by another call's resolution {followed.name}, not {DONE[asked]}",
                file=self.err,
            )
        elif meanwhile is not None:
            claim = meanwhile.claim
            description = holder_of(self.view, claim)
            if claim is not None and claim.execution is None:
                print(
                    f"attention: {saga_id} was closed by hand meanwhile by another call, not {DONE[asked]}",
                    file=self.err,
                )
            elif claim is not None and description is None:
                print(
                    f"attention: {saga_id} was claimed by another call whose resolution {claim.execution} never"
                    " started: resolve it again",
                    file=self.err,
                )
            elif description is not None and direction_of(description) != asked:
                print(
                    f"attention: {saga_id} was {DONE[direction_of(description)]} meanwhile by another call's"
                    f" resolution {claim.execution if claim else ''}, not {DONE[asked]}",
                    file=self.err,
                )
            else:
                print(f"attention: {saga_id} was resolved meanwhile by another call", file=self.err)
                return
        else:
            return
        if resolved:
            self.not_as_asked.add(saga_id)

    def direction(self, still_open: list[AttentionRecord]) -> str:
        """Forward when every open record is a step past the pivot left to do, unless the operator asked
        for a roll-back; a stuck compensation means a roll-back is under way, and it is finished."""
        unfinished = all(record.kind is AttentionKind.UNFINISHED_FORWARD for record in still_open)
        return FORWARD if unfinished and not self.roll_back else BACKWARD

    def _follow(self, started: dict[str, Followed], human: bool) -> None:
        coordinator = self.view.coordinator
        definition = coordinator.resolution_definition()
        observer = human_output(self.out) if human else None
        saga_of = {execution.arn: saga_id for saga_id, execution in started.items()}
        try:
            descriptions = coordinator.follow(saga_of, time.monotonic() + RESOLUTION_TIMEOUT_SECONDS, observer)
        finally:
            if observer is not None:
                observer.close()
        for saga_id, execution in started.items():
            events = coordinator.history(execution.arn)
            result = build_report(
                execution.name,
                saga_id,
                descriptions[execution.arn],
                events,
                self.view.reader,
                False,
                resolution_outcome_of,
            )
            self._page(execution.name, definition, events, result)

    def _page(self, name: str, definition: dict[str, Any], events: list[dict[str, Any]], result: SagaResult) -> None:
        try:
            page = write_page(
                self.report_dir, definition, events, result.model_copy(update={"saga_id": name}), "Resolution"
            )
        except OSError as error:
            print(f"attention: warning: the page of {name} was not written ({error.strerror or error})", file=self.err)
            return
        print(
            f"attention: {name}: {result.outcome.value if result.outcome else 'UNFINISHED'}, report {page}",
            file=self.err,
        )


def close_records(view: StageView, saga_id: str, reason: str) -> SagaView:
    """Close every open attention record of the saga by hand: RESOLVED, when, and by whom and why (kept);
    SagaBusy while its saga or a resolution of it runs, or when another call claims the saga meanwhile."""
    claims = Claims(view.reader.saga_log.table, view.reader.dynamodb)
    claim = claims.read(saga_id)  # first: a resolution claimed after this read makes our claim fail
    holder = holder_of(view, claim)  # (waits for a resolution claimed but not yet started)
    running = [e for e in view.executions(saga_id) if e.status == "RUNNING"]
    if holder is not None and holder["status"] == "RUNNING" and claim is not None and claim.execution:
        running.append(Execution(name=claim.execution, arn=holder["executionArn"], status="RUNNING"))
    if running:
        raise SagaBusy(_busy(view, saga_id, running[-1].name))
    _, attention = view.reader.saga_log.read(saga_id)
    still_open = open_records(attention)
    if not still_open:
        raise UnknownSaga(f"{NOUN} {saga_id} has no open attention record on stage {view.stage.name}")
    if not claims.take(saga_id, claim, None):
        now = claims.read(saga_id)
        raise SagaBusy(
            _busy(view, saga_id, now.execution)
            if now is not None and now.execution
            else f"{NOUN} {saga_id} was closed meanwhile by another call: see ./attention.sh show {saga_id} --stage"
            f" {view.stage.name}"
        )
    now_at = datetime.now(UTC).isoformat()
    for record in still_open:
        view.reader.saga_log.close_attention(record, now_at, f"operator (attention.sh close): {reason}")
    return view.saga(saga_id)


def _busy(view: StageView, saga_id: str, execution: str) -> str:
    what = "saga" if execution == saga_id else f"resolution {execution}"
    return (
        f"{NOUN} {saga_id}'s {what} is still running: close its records, if still needed, once it has ended"
        f" (./attention.sh show {saga_id} --stage {view.stage.name})"
    )


def holder_of(view: StageView, claim: Claim | None) -> dict[str, Any] | None:
    """The description of the resolution that holds the claim; None for a close by hand or no claim. Its
    caller writes the claim, then starts it: one not started yet is waited for, up to START_GRACE_SECONDS."""
    if claim is None or claim.execution is None:
        return None
    deadline = time.monotonic() + START_GRACE_SECONDS
    while (found := view.coordinator.resolution(claim.execution)) is None and time.monotonic() < deadline:
        time.sleep(view.stage.poll_seconds)
    return found


def direction_of(description: dict[str, Any]) -> str:
    """The direction a resolution took: forward when its input asks for it, as the state machine's Choice."""
    asked = json.loads(description.get("input") or "{}").get(RESOLUTION_DIRECTION)
    return FORWARD if asked == FORWARD else BACKWARD
