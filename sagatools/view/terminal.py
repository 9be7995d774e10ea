"""Human output of the runner: progress while sagas run, then a summary per saga.

On a terminal (and without NO_COLOR) a live table shows each running saga's current state, retries
and elapsed time, with a progress bar for batches (rich). Elsewhere, plain lines: one per state as
it completes. `--json` uses neither.
"""

from __future__ import annotations

import os
import time
from typing import Protocol, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from saga.catalogue import COMPENSATIONS
from saga.keys import ID_FIELD, NOUN, NOUNS, RECORDS_KEY
from saga.saga_log import AttentionKind, LogEvent
from sagatools.asl import ROLLED_BACK_ERROR
from sagatools.history import StateRun, StateStatus
from sagatools.results import Outcome, SagaResult
from sagatools.terminal_text import shown
from sagatools.view.recovery import attention_line, disagreement_line, forward_summary

_MARKS = {StateStatus.SUCCEEDED: "ok", StateStatus.CAUGHT: "FAILED, caught", StateStatus.FAILED: "FAILED"}
LIVE_ROWS = 12  # running sagas shown in the live table; a batch beyond that shows the progress bar only
COMPACT_ABOVE = 10  # a batch of more sagas gets the compact summary: counts, then the sagas that need a look


class ProgressObserver(Protocol):
    def started(self, saga_ids: list[str]) -> None: ...

    def progress(self, saga_id: str, runs: list[StateRun], ended: bool) -> None: ...

    def close(self) -> None: ...

    def summaries(self, reports: list[SagaResult]) -> None: ...


def state_line(saga_id: str, run: StateRun) -> str:
    mark = _MARKS.get(run.status, "...")
    if run.state_type == "Succeed":
        mark = "succeeded: the execution ended here"
    parts = [f"{saga_id:<20} {run.name:<28} {mark}"]
    if run.retries:
        parts.append(f"after {run.retries} {'retry' if run.retries == 1 else 'retries'}")
    if run.status is not StateStatus.SUCCEEDED and run.error:
        parts.append(run.error)
    if run.duration_ms is not None and run.state_type == "Task":
        parts.append(f"{run.duration_ms} ms")
    return "  ".join(parts)


def summary(report: SagaResult) -> str:
    records = ", ".join(f"{resource} {status.value if status else '-'}" for resource, status in report.records.items())
    compensations = {step.name for step in COMPENSATIONS}
    done = [
        f"{entry.step} (attempt {entry.attempt})"
        for entry in report.saga_log
        if entry.step in compensations and entry.event is LogEvent.END
    ]
    duration = f"{report.duration_ms} ms" if report.duration_ms is not None else "- (still running)"
    if report.status == "NOT_STARTED":
        duration = "- (not started)"
    lines = [
        f"{report.saga_id}: {outcome_name(report)}"
        f"  (execution {report.status}{': ' + shown(report.error) if report.error else ''})",
        f"  {RECORDS_KEY:<{max(15, len(RECORDS_KEY) + 1)}}{records}",
        *([f"  DISAGREEMENT   {disagreement}"] if (disagreement := disagreement_line(report)) else []),
        f"  compensations  {', '.join(done) if done else 'none'}",
        f"  transitions    {report.transitions} ({report.billed_transitions} billed)    duration {duration}"
        if report.durable_operations is None
        else f"  operations     {report.durable_operations} durable operations    duration {duration}",
    ]
    if report.cause and report.outcome is not Outcome.COMMITTED:
        lines.append(f"  cause          {shown(report.cause)}")
    if (recovery := forward_summary(report)) is not None:
        lines.append(f"  recovery       {recovery}")
    for record in report.needs_attention:
        lines.append(f"  ATTENTION      {attention_line(record)}; flagged at {record.at}")
    if report.reused_execution:
        lines.append(f"  note           this {NOUN} had already been started: shown is its existing execution")
    return "\n".join(lines)


def outcome_name(report: SagaResult) -> str:
    return report.outcome.value if report.outcome else "UNFINISHED"


def needs_a_look(report: SagaResult) -> str:
    """One line for a saga an operator should look at (stuck or unfinished), naming where."""
    if report.outcome is Outcome.NEEDS_ATTENTION:
        stuck = ", ".join(
            f"{record.step} ({shown(str(record.error))})"
            for record in report.needs_attention
            if record.kind is AttentionKind.STUCK_COMPENSATION
        )
        left = ", ".join(
            attention_line(record)
            for record in report.needs_attention
            if record.kind is AttentionKind.UNFINISHED_FORWARD
        )
        where = (
            "; ".join([*([f"stuck: {stuck}"] if stuck else []), *([left] if left else [])])
            or f"ended {shown(report.error or report.status)}"
        )
    elif report.outcome is Outcome.CONFLICT:
        where = f"not started: its {ID_FIELD} names an execution of a different request; give it a new {ID_FIELD}"
    elif report.status == "NOT_STARTED":
        where = "not started: the --timeout ended first"
    else:
        where = f"still {report.status} in {report.states[-1] if report.states else 'its first state'}"
    return f"{report.saga_id:<24} {outcome_name(report):<16} {where}"


def compact_summary(reports: list[SagaResult]) -> list[str]:
    """For a big batch: the counts, then one line per saga that needs a look (stuck first, then conflicts,
    then unfinished)."""
    look = [
        *(r for r in reports if r.outcome is Outcome.NEEDS_ATTENTION),
        *(r for r in reports if r.outcome is Outcome.CONFLICT),
        *(r for r in reports if r.outcome is None),
    ]
    lines = [_totals(reports)]
    if look:
        lines += ["", f"{len(look)} {NOUNS} need a look:"]
        lines += [needs_a_look(report) for report in look]
    lines += ["", f"every {NOUN} in detail: --json, and the report pages"]
    return lines


def _totals(reports: list[SagaResult]) -> str:
    counts = {outcome: sum(r.outcome is outcome for r in reports) for outcome in Outcome}
    unfinished = sum(r.outcome is None for r in reports)
    parts = [f"{n} {o.value}" for o, n in counts.items() if n] + ([f"{unfinished} UNFINISHED"] if unfinished else [])
    return f"{len(reports)} {NOUNS}: " + ", ".join(parts)


class PlainOutput:
    """A line per state as it completes; nothing but text, for pipes, files and NO_COLOR."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._shown: dict[str, int] = {}
        self._total = 0
        self._ended: set[str] = set()

    def started(self, saga_ids: list[str]) -> None:
        self._total = len(saga_ids)
        if len(saga_ids) > 1:
            print(f"running {len(saga_ids)} {NOUNS}", file=self.stream, flush=True)

    def progress(self, saga_id: str, runs: list[StateRun], ended: bool) -> None:
        if self._total > COMPACT_ABOVE:
            self._batch_progress(saga_id, runs, ended)
            return
        printed = self._shown.get(saga_id, 0)
        for run in runs[printed:]:
            if run.status is StateStatus.RUNNING:
                break
            print(state_line(saga_id, run), file=self.stream, flush=True)
            printed += 1
        self._shown[saga_id] = printed

    def _batch_progress(self, saga_id: str, runs: list[StateRun], ended: bool) -> None:
        """A big batch: a line at every tenth of it, and one for each saga that ends needing attention."""
        if not ended or saga_id in self._ended:
            return
        self._ended.add(saga_id)
        last = runs[-1] if runs else None
        if last is not None and last.error and last.error != ROLLED_BACK_ERROR:
            print(f"{saga_id:<20} ended in {last.name}: {shown(last.error)}", file=self.stream, flush=True)
        step = max(1, self._total // 10)
        if len(self._ended) % step == 0 or len(self._ended) == self._total:
            print(f"{len(self._ended)} of {self._total} {NOUNS} ended", file=self.stream, flush=True)

    def close(self) -> None:
        pass

    def summaries(self, reports: list[SagaResult]) -> None:
        print(file=self.stream)
        if len(reports) > COMPACT_ABOVE:
            print("\n".join(compact_summary(reports)), file=self.stream)
        else:
            for report in reports:
                print(summary(report), file=self.stream)
            if len(reports) > 1:
                print(f"\n{_totals(reports)}", file=self.stream)
        self.stream.flush()


def _style(ended: bool, mark: str) -> str:
    if not ended:
        return "red" if mark else ""
    if not mark:
        return "green"
    return "yellow" if mark == ROLLED_BACK_ERROR else "red"


class LiveOutput:
    """A live table of running sagas (current state, retries, elapsed) and a progress bar (rich)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._rows: dict[str, tuple[str, int, bool, str]] = {}  # saga -> (state, retries, ended, mark)
        self._started = time.monotonic()
        self._bar = Progress(TextColumn(NOUNS), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        self._task = self._bar.add_task(NOUNS, total=0)
        # No stdout redirection: the embedded dispatcher points stdout at the handler log meanwhile.
        self._live = Live(
            console=console, refresh_per_second=8, transient=False, redirect_stdout=False, redirect_stderr=False
        )

    def started(self, saga_ids: list[str]) -> None:
        self._rows = dict.fromkeys(saga_ids, ("starting", 0, False, ""))
        self._bar.update(self._task, total=len(saga_ids), completed=0)
        self._live.start()
        self._refresh()

    def progress(self, saga_id: str, runs: list[StateRun], ended: bool) -> None:
        current = runs[-1] if runs else None
        retries = sum(run.retries for run in runs)
        mark = ""
        if current is not None and current.status is not StateStatus.SUCCEEDED:
            mark = current.error or ""
        self._rows[saga_id] = (current.name if current else "starting", retries, ended, mark)
        self._bar.update(self._task, completed=sum(row[2] for row in self._rows.values()))
        self._refresh()

    def _refresh(self) -> None:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in (NOUN, "state", "retries", "elapsed", ""):
            table.add_column(column)
        elapsed = f"{time.monotonic() - self._started:.1f}s"
        running = [(saga, row) for saga, row in self._rows.items() if not row[2]]
        finished = [(saga, row) for saga, row in self._rows.items() if row[2]]
        for saga_id, (state, retries, ended, mark) in (running + finished)[:LIVE_ROWS]:
            style = _style(ended, mark)
            cells = (saga_id, state, str(retries) if retries else "", "done" if ended else elapsed, mark)
            table.add_row(*(Text(cell) for cell in cells), style=style)
        # A big batch: the bar, and the sagas that ended badly so far (a table of hundreds helps nobody).
        if len(self._rows) > LIVE_ROWS:
            table = Table(box=None, pad_edge=False, show_header=False)
            for column in (NOUN, "state", "error"):
                table.add_column(column)
            # Stuck ones first (red), then clean rollbacks (yellow): the ones to look at stay in view.
            ended_badly = [(t, r) for t, r in finished if r[3] and r[3] != ROLLED_BACK_ERROR]
            rolled_back = [(t, r) for t, r in finished if r[3] == ROLLED_BACK_ERROR]
            for saga_id, (state, _, ended, mark) in (ended_badly + rolled_back[::-1])[:LIVE_ROWS]:
                table.add_row(Text(saga_id), Text(state), Text(mark), style=_style(ended, mark))
            self._live.update(Group(self._bar, table))
            return
        self._live.update(table)

    def close(self) -> None:
        self._bar.update(self._task, completed=sum(row[2] for row in self._rows.values()))
        self._refresh()
        self._live.stop()

    def summaries(self, reports: list[SagaResult]) -> None:
        self.console.print()
        if len(reports) > COMPACT_ABOVE:
            needing_a_look = {r.saga_id for r in reports if r.outcome is not Outcome.COMMITTED}
            for line in compact_summary(reports):
                red = line.split(" ", 1)[0] in needing_a_look
                self.console.print(line, highlight=False, markup=False, style="red" if red else None)
            return
        styles = {
            Outcome.COMMITTED: "bold green",
            Outcome.ROLLED_BACK: "bold yellow",
            Outcome.NEEDS_ATTENTION: "bold red",
            Outcome.CONFLICT: "bold red",
        }
        for report in reports:
            first, *rest = summary(report).splitlines()
            self.console.print(
                first,
                style=styles.get(report.outcome, "bold") if report.outcome else "bold",
                highlight=False,
                markup=False,
            )
            for line in rest:
                self.console.print(line, highlight=False, markup=False, style="red" if "ATTENTION" in line else None)
        if len(reports) > 1:
            self.console.print(f"\n{_totals(reports)}", highlight=False, markup=False)


def human_output(stream: TextIO) -> ProgressObserver:
    """Live output on a terminal, plain lines otherwise or when NO_COLOR is set."""
    console = Console(file=stream)
    if console.is_terminal and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb":
        return LiveOutput(console)
    return PlainOutput(stream)
