"""Human output of the runner: a line per state as it completes, then a summary per trip."""

from __future__ import annotations

from typing import TextIO

from sagatools.history import StateRun, StateStatus
from sagatools.report import Outcome, SagaReport

_MARKS = {StateStatus.SUCCEEDED: "ok", StateStatus.CAUGHT: "FAILED, caught", StateStatus.FAILED: "FAILED"}


def state_line(trip_id: str, run: StateRun) -> str:
    mark = _MARKS.get(run.status, "…")
    if run.state_type == "Succeed":
        mark = "saga committed"
    parts = [f"{trip_id:<20} {run.name:<28} {mark}"]
    if run.retries:
        parts.append(f"after {run.retries} {'retry' if run.retries == 1 else 'retries'}")
    if run.status is not StateStatus.SUCCEEDED and run.error:
        parts.append(run.error)
    if run.duration_ms is not None and run.state_type == "Task":
        parts.append(f"{run.duration_ms} ms")
    return "  ".join(parts)


def summary(report: SagaReport) -> str:
    bookings = ", ".join(f"{resource} {status or '-'}" for resource, status in report.bookings.items())
    compensations = [entry for entry in report.saga_log if entry["step"].startswith("cancel_")]
    done = [f"{entry['step']} (attempt {entry['attempt']})" for entry in compensations if entry["event"] == "END"]
    lines = [
        f"{report.trip_id}: {report.outcome.value if report.outcome else 'UNFINISHED'}"
        f"  (execution {report.status}{': ' + report.error if report.error else ''})",
        f"  bookings       {bookings}",
        f"  compensations  {', '.join(done) if done else 'none'}",
        f"  transitions    {report.transitions}    duration {report.duration_ms} ms",
    ]
    if report.cause and report.outcome is not Outcome.COMMITTED:
        lines.append(f"  cause          {report.cause}")
    for record in report.needs_attention:
        lines.append(
            f"  ATTENTION      {record['step']} stayed stuck ({record.get('error')}); flagged at {record['at']}"
        )
    if report.reused_execution:
        lines.append("  note           this trip had already been started: shown is its existing execution")
    return "\n".join(lines)


class HumanOutput:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def state_completed(self, trip_id: str, run: StateRun) -> None:
        print(state_line(trip_id, run), file=self.stream, flush=True)

    def summaries(self, reports: list[SagaReport]) -> None:
        print(file=self.stream)
        for report in reports:
            print(summary(report), file=self.stream)
        counts = {outcome: sum(r.outcome is outcome for r in reports) for outcome in Outcome}
        if len(reports) > 1:
            print(
                f"\n{len(reports)} sagas: " + ", ".join(f"{n} {o.value}" for o, n in counts.items() if n),
                file=self.stream,
            )
        self.stream.flush()
