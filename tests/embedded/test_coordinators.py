"""One saga, two coordinators: each case of the fault matrix (tests/embedded/test_fault_matrix.py), in both recovery
modes, run by the generated state machine and by the durable function (saga/durable.py) on one embedded stack, and
compared: the outcome with its error and cause, the records and the providers' ledgers, the attention records, the
recovery report, the states each ran (the durable function's drawn from its checkpoints), the saga log's sequence of
(step, event, attempt), and one durable operation per task attempt.

The default tier runs a sample: in backward recovery each booking fault with each compensation fault once (15 cases,
the resources taking turns), in forward recovery each fault past the pivot and two cases before it.
`CROSS_CHECK=all ./build.sh test embedded -k coordinators` runs the whole matrix in both modes.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from saga.catalogue import COMPENSATIONS, REQUESTS, RETRIABLES, by_name, by_state
from saga.coordination import resolution_input
from saga.keys import ID_FIELD, RECORDS_KEY
from saga.models import RecordStatus, parse_request
from sagatools.asl import RESOLVE_ASL_PATH, load_definition
from sagatools.attention.coordinators import Coordinator, DurableFunction, StateMachines
from sagatools.durable_history import state_history
from sagatools.emulation.embedded import EmbeddedStack
from sagatools.history import state_runs
from sagatools.request_files import RequestFile
from sagatools.results import Outcome, SagaReader, SagaResult, build_report, resolution_outcome_of
from sagatools.runtest.durable import durable_report
from sagatools.runtest.runner import SagaRunner
from sagatools.view.html_page import page_path
from tests.embedded.test_fault_matrix import (
    BOOK_FAULTS,
    CANCEL_FAULTS,
    CASES,
    FORWARD_CASES,
    PAST_PIVOT,
    forward_request,
)
from tests.helpers import (
    RESOURCES,
    book_step,
    cancel_step,
    embedded_stage_view,
    failing_dynamodb_calls,
    saga_request,
)

if TYPE_CHECKING:
    from sagatools.emulation.durable import DurableStack

# Each booking fault with each compensation fault, on resources that take turns (the first case of each pair on the
# first resources, the next one on the next, ...).
SAMPLE = [
    (RESOURCES[index % len(RESOURCES)], book_fault, RESOURCES[(index // 2) % len(RESOURCES)], cancel_fault)
    for index, (book_fault, cancel_fault) in enumerate(itertools.product(BOOK_FAULTS, CANCEL_FAULTS))
]
# In forward recovery: each fault past the pivot, and two of the sample's cases before it (rolled back as backward).
FORWARD_SAMPLE = [case for case in FORWARD_CASES if case[0] in PAST_PIVOT] + [
    case for case in SAMPLE if case[0] not in PAST_PIVOT
][:2]
EVERY_CASE = os.environ.get("CROSS_CHECK") == "all"
CHECKED = CASES if EVERY_CASE else SAMPLE
CHECKED_FORWARD = FORWARD_CASES if EVERY_CASE else FORWARD_SAMPLE


@dataclass
class Coordinators:
    stack: EmbeddedStack
    state_machine: SagaRunner
    durable: DurableStack
    reader: SagaReader

    def run_both(self, saga_id: str, request: dict[str, Any]) -> tuple[SagaResult, SagaResult]:
        """The request run by the state machine as `saga_id`-sf and by the durable function as `saga_id`-df."""
        by_machine = self._file(request, f"{saga_id}-sf")
        (machine,) = self.state_machine.run([by_machine])
        by_function = self._file(request, f"{saga_id}-df")
        run = self.durable.run(by_function.request.saga_id, {**request, ID_FIELD: f"{saga_id}-df"}, 60)
        return machine, durable_report(by_function, run, state_history(run.events), self.reader)

    def resolve_both(
        self, saga_id: str, request: dict[str, Any], direction: str, keep_faults: bool
    ) -> tuple[SagaResult, SagaResult]:
        """The saga `saga_id`-sf resolved by the resolution state machine and `saga_id`-df by the durable function's
        resolution, each started and followed as attention.sh does (sagatools/attention/coordinators.py): with the
        saga's request (its faults dropped unless kept)."""
        stack = self.stack
        by_suffix: dict[str, Coordinator] = {
            "sf": StateMachines(
                stack.stepfunctions, stack.state_machine_arn, stack.resolution_state_machine_arn, 0.005
            ),
            "df": DurableFunction(self.durable, 0.005),
        }
        reports = []
        for suffix, coordinator in by_suffix.items():
            own = {**request, ID_FIELD: f"{saga_id}-{suffix}"}
            if not keep_faults:
                own.pop("simulate", None)
            name = f"{own[ID_FIELD]}-resolve-1"
            arn = coordinator.start_resolution(name, resolution_input(own, direction, requested_by="test"))
            description = coordinator.follow({arn: own[ID_FIELD]}, time.monotonic() + 120, None)[arn]
            events = coordinator.history(arn)
            reports.append(
                build_report(name, own[ID_FIELD], description, events, self.reader, False, resolution_outcome_of)
            )
        return reports[0], reports[1]

    def attempts(self, machine: SagaResult) -> int:
        """The state machine's task attempts: its steps' Lambda invocations, its attention records' writes."""
        return sum(run.attempts for run in state_runs(self.state_machine.histories[machine.execution_arn]))

    @staticmethod
    def _file(request: dict[str, Any], saga_id: str) -> RequestFile:
        return RequestFile(f"{saga_id}.json", parse_request({**request, ID_FIELD: saga_id}))


@pytest.fixture(scope="module")
def coordinators() -> Iterator[Coordinators]:
    with EmbeddedStack() as stack:
        # Imported inside the stack, as Lambda would: Powertools reads its settings from the environment at import.
        from sagatools.emulation.durable import DurableStack

        with DurableStack(io.StringIO()) as durable:
            reader = SagaReader(stack.settings, stack.dynamodb)
            machine = SagaRunner(stack.stepfunctions, stack.state_machine_arn, reader, 0.005, 120)
            yield Coordinators(stack, machine, durable, reader)


def log_sequence(report: SagaResult) -> list[tuple[str, str, int]]:
    return [(entry.step, entry.event.value, entry.attempt) for entry in report.saga_log]


def attention(report: SagaResult) -> list[tuple[str, str, str | None]]:
    return [(record.step, record.kind.value, record.error) for record in report.needs_attention]


def states_run(report: SagaResult) -> list[str]:
    """The states the saga ran, but the state machine's Choice states (a branch in the durable function's code)."""
    return [state for state in report.states if not state.endswith("Failed")]


def assert_the_same(machine: SagaResult, function: SagaResult, attempts: int) -> None:
    """`function` (the durable function's run) did what `machine` (the state machine's) did, with `attempts` task
    attempts in all."""
    assert function.status == machine.status
    assert (function.outcome, function.error, function.cause) == (machine.outcome, machine.error, machine.cause)
    assert function.records == machine.records
    assert function.providers == machine.providers
    assert attention(function) == attention(machine)
    assert log_sequence(function) == log_sequence(machine)
    assert function.recovery == machine.recovery
    assert states_run(function) == states_run(machine)
    # Each attempt of each task (the steps and the attention records' writes) is one durable operation, and the start
    # (and, in forward recovery, one for each step past the pivot that was entered: its clock).
    forward = function.recovery is not None and function.recovery.mode == "forward"
    clocks = sum(bool((step := by_state(state)) and step.is_retriable) for state in function.states) if forward else 0
    assert function.durable_operations == 1 + attempts + clocks


@pytest.mark.parametrize(("book", "book_fault", "cancel", "cancel_fault"), CHECKED)
def test_both_coordinators_do_the_same(coordinators, book, book_fault, cancel, cancel_fault):
    saga_id = f"c-{book}-{book_fault.replace(':', '')}-{cancel}-{cancel_fault.replace(':', '')}"
    request = saga_request(saga_id, simulate={book_step(book): book_fault, cancel_step(cancel): cancel_fault})
    machine, function = coordinators.run_both(saga_id, request)
    assert_the_same(machine, function, coordinators.attempts(machine))


@pytest.mark.skipif(not PAST_PIVOT, reason="the app has no pivot with a step past it: it recovers backward only")
@pytest.mark.parametrize(("book", "book_fault", "cancel", "cancel_fault"), CHECKED_FORWARD)
def test_both_coordinators_do_the_same_in_forward_recovery(coordinators, book, book_fault, cancel, cancel_fault):
    saga_id = f"cf-{book}-{book_fault.replace(':', '')}-{cancel}-{str(cancel_fault).replace(':', '')}"
    faults = {cancel_step(cancel): cancel_fault} if cancel else {step.name: "fail" for step in COMPENSATIONS}
    machine, function = coordinators.run_both(
        saga_id, forward_request(saga_id, {book_step(book): book_fault, **faults})
    )
    assert_the_same(machine, function, coordinators.attempts(machine))


def test_the_sample_takes_every_fault_and_every_resource():
    assert {case[1] for case in SAMPLE} == set(BOOK_FAULTS)
    assert {case[3] for case in SAMPLE} == set(CANCEL_FAULTS)
    assert {case[0] for case in SAMPLE} == {case[2] for case in SAMPLE} == set(RESOURCES)
    assert set(SAMPLE) <= set(CASES)


# Forward recovery's deadline, counted from when the step past the pivot was first tried (the durable function
# checkpoints that time): retried until a 10-minute deadline passes, then left unfinished.
@pytest.mark.skipif(not RETRIABLES, reason="the served app's saga has no step past a pivot")
def test_a_forward_deadline_passes_at_the_same_retry_on_both(coordinators):
    saga_id = "c-forward-deadline"
    recovery = {"mode": "forward", "deadline_seconds": 600}
    request = saga_request(saga_id, simulate={RETRIABLES[-1].name: "transient:20"}, recovery=recovery)
    machine, function = coordinators.run_both(saga_id, request)
    assert machine.outcome is Outcome.NEEDS_ATTENTION
    assert_the_same(machine, function, coordinators.attempts(machine))


def test_the_bench_bills_each_coordinator_its_own_way(coordinators):
    from sagatools.bench_coordinators import RESOLUTION_SCENARIO, SCENARIOS, measure_coordinator_costs
    from sagatools.bench_scenarios import STUCK_SCENARIO

    rows = measure_coordinator_costs(
        coordinators.stack, coordinators.state_machine, coordinators.durable, coordinators.reader
    )
    resolution = f"its resolution ({RESOLUTION_SCENARIO})"
    scenarios = list(SCENARIOS)
    assert [row["scenario"] for row in rows] == [
        *scenarios[: scenarios.index(STUCK_SCENARIO) + 1],
        resolution,
        *scenarios[scenarios.index(STUCK_SCENARIO) + 1 :],
    ]
    # The stuck saga resolved: every compensation again and every record closed. The resolution machine also enters
    # its direction's Choice (where the saga has a pivot), the check and its end; the function only starts.
    (resolved,) = [row for row in rows if row["scenario"] == resolution]
    closes = len(COMPENSATIONS) + len(RETRIABLES)
    assert resolved["outcome"] == "RESOLVED"
    assert resolved["machine"]["transitions"] == bool(RETRIABLES) + len(COMPENSATIONS) + 1 + closes + 1
    assert resolved["function"]["operations"] == 1 + len(COMPENSATIONS) + closes
    success = rows[0]
    assert success["outcome"] == "COMMITTED"
    # A success: one state per step and the Succeed state; one durable operation per step and the start, in one
    # invocation (nothing waited).
    assert success["machine"]["transitions"] == success["function"]["operations"] == len(REQUESTS) + 1
    assert success["function"]["invocations"] == 1
    assert success["machine_units"] == success["function"]["units"]  # the same DynamoDB calls, whoever coordinates


def test_attention_lists_shows_and_resolves_a_durable_saga(coordinators, tmp_path):
    from sagatools.attention import cli as attention

    # A stage coordinated by the durable function: its sagas and their resolutions are the function's executions.
    view = embedded_stage_view(coordinators.stack, coordinators.durable)
    said = io.StringIO()

    def attention_sh(*argv: str) -> tuple[int, dict[str, Any] | list[Any]]:
        out = io.StringIO()
        reporting = ["--report", str(tmp_path)] if argv[0] == "resolve" else []
        code = attention.main([*argv, *reporting, "--stage", "local", "--json"], out, said, open_view=lambda _: view)
        return code, json.loads(out.getvalue())

    # Given a saga coordinated by the durable function, left with a stuck compensation
    saga_id, stuck = "c-attention", cancel_step(RESOURCES[0])
    request = saga_request(saga_id, simulate={book_step(RESOURCES[-1]): "fail", stuck: "fail"})
    run = coordinators.durable.run(saga_id, request, 60)
    assert run.status == "FAILED"
    # Then attention.sh lists it and shows it with its durable execution
    code, listed = attention_sh("list")
    assert [record["step"] for record in listed if record[ID_FIELD] == saga_id] == [stuck]
    code, shown = attention_sh("show", saga_id)
    assert isinstance(shown, dict)
    assert shown["outcome"] == "NEEDS_ATTENTION"
    assert [(e["arn"], e["outcome"]) for e in shown["executions"]] == [(run.execution_arn, "NEEDS_ATTENTION")]
    # When it is resolved with its faults kept, the function's resolution finds the compensation stuck again
    code, saga = attention_sh("resolve", saga_id, "--keep-faults")
    assert isinstance(saga, dict)
    assert (code, saga["outcome"]) == (1, "NEEDS_ATTENTION")
    first = saga["executions"][1]
    assert first["name"] == f"{saga_id}-resolve-1"
    assert first["arn"] == coordinators.durable.describe(first["name"])["executionArn"]
    (record,) = saga["attention"]
    assert (record["attention"], record["execution_id"]) == ("OPEN", first["arn"])
    assert (record["step"], record["attempts"]) == (stuck, by_name(stuck).retry.attempts)  # its attempts counted
    # Then resolved with the durable execution's request (its faults dropped): every record undone, closed by it
    code, saga = attention_sh("resolve", saga_id)
    assert isinstance(saga, dict)
    assert (code, saga["outcome"]) == (0, "RESOLVED")
    assert set(saga[RECORDS_KEY].values()) == {"CANCELLED"}
    assert [e["outcome"] for e in saga["executions"]] == ["NEEDS_ATTENTION", "NEEDS_ATTENTION", "RESOLVED"]
    (record,) = saga["attention"]
    assert (record["attention"], record["resolved_by"]) == ("RESOLVED", saga["executions"][2]["arn"])
    # Each resolution has its page, drawn from the function's checkpoints against the resolution machine's states
    assert f"resolving {saga_id} (rolling it back): execution {saga_id}-resolve-2" in said.getvalue()
    page = page_path(tmp_path, f"{saga_id}-resolve-2", "Resolution").read_text(encoding="utf-8")
    assert all(compensation.state in page for compensation in COMPENSATIONS)


def attention_records(report: SagaResult) -> list[tuple[Any, ...]]:
    """Each attention record as a resolution left it: step, kind, open or resolved, error, the error its cause names
    (the handler's message and stack trace apart), attempts, and whether the execution that last met it or closed it
    was the resolution."""
    return [
        (
            record.step,
            record.kind.value,
            record.attention.value,
            record.error,
            json.loads(record.cause)["Error"] if record.cause else None,
            record.attempts,
            report.execution_arn in {record.execution_id, record.resolved_by},
        )
        for record in report.needs_attention
    ]


def assert_resolved_the_same(machine: SagaResult, function: SagaResult) -> None:
    """The durable function's resolution left the saga as the resolution state machine's did."""
    assert (function.status, function.outcome) == (machine.status, machine.outcome)
    assert (function.error, function.cause) == (machine.error, machine.cause)
    assert function.records == machine.records
    assert function.providers == machine.providers
    assert attention_records(function) == attention_records(machine)
    assert log_sequence(function) == log_sequence(machine)
    # The states it ran, but the resolution machine's Choice states (a branch in the durable function's code).
    choices = {name for name, state in load_definition(RESOLVE_ASL_PATH)["States"].items() if state["Type"] == "Choice"}
    assert function.states == [state for state in machine.states if state not in choices]


# A stuck compensation of each resource, resolved with the provider back (every record closed) or still failing
# (the records kept open, the resolution's attempts added).
@pytest.mark.parametrize("keep_faults", [False, True], ids=["provider-back", "still-stuck"])
@pytest.mark.parametrize("stuck", RESOURCES)
def test_both_coordinators_resolve_a_stuck_saga_the_same(coordinators, stuck, keep_faults):
    saga_id = f"r-{stuck}-{keep_faults}"
    request = saga_request(saga_id, simulate={book_step(RESOURCES[-1]): "fail", cancel_step(stuck): "fail"})
    sagas = coordinators.run_both(saga_id, request)
    assert [saga.outcome for saga in sagas] == [Outcome.NEEDS_ATTENTION] * 2
    machine, function = coordinators.resolve_both(saga_id, request, "backward", keep_faults)
    assert machine.outcome is (Outcome.NEEDS_ATTENTION if keep_faults else Outcome.RESOLVED)
    assert_resolved_the_same(machine, function)


# A forward saga left unfinished past the pivot: finished forward (or still refused), or rolled back when asked.
@pytest.mark.skipif(not RETRIABLES, reason="the served app's saga has no step past a pivot")
@pytest.mark.parametrize(
    ("direction", "keep_faults"),
    [("forward", False), ("forward", True), ("backward", False)],
    ids=["finished-forward", "still-refused", "rolled-back"],
)
def test_both_coordinators_resolve_an_unfinished_saga_the_same(coordinators, direction, keep_faults):
    saga_id = f"rf-{direction}-{keep_faults}"
    request = saga_request(saga_id, simulate={RETRIABLES[-1].name: "fail"}, recovery={"mode": "forward"})
    sagas = coordinators.run_both(saga_id, request)
    assert [saga.outcome for saga in sagas] == [Outcome.NEEDS_ATTENTION] * 2
    machine, function = coordinators.resolve_both(saga_id, request, direction, keep_faults)
    assert machine.outcome is (Outcome.NEEDS_ATTENTION if keep_faults else Outcome.RESOLVED)
    assert_resolved_the_same(machine, function)


# Closing the records, as the resolution machine's Close states: the table's passing faults are retried; any other
# failure ends the resolution, never reported RESOLVED with its records still open.
@pytest.mark.parametrize(
    ("code", "times", "outcome", "left"),
    [
        ("ThrottlingException", 2, Outcome.RESOLVED, "RESOLVED"),
        ("AccessDeniedException", 99, Outcome.NEEDS_ATTENTION, "OPEN"),
    ],
    ids=["throttled-then-closed", "refused"],
)
def test_the_durable_resolution_closes_the_records_or_fails(coordinators, code, times, outcome, left):
    saga_id = f"r-close-{code}"
    request = saga_request(saga_id, simulate={book_step(RESOURCES[-1]): "fail", cancel_step(RESOURCES[0]): "fail"})
    run = coordinators.durable.run(saga_id, request, 60)
    assert run.error == "SagaNeedsAttention"
    again = {key: value for key, value in request.items() if key != "simulate"}
    document = {"request": again, "direction": "backward", "requested_by": "test"}
    with failing_dynamodb_calls("UpdateItem", times, code, "RESOLVED") as answered:
        resolution = coordinators.durable.run(f"{saga_id}-resolve-1", document, 60)
    assert answered  # the table was asked to close the record
    file = RequestFile(f"{saga_id}.json", parse_request(again))
    report = durable_report(
        file, resolution, state_history(resolution.events, resolution=True), coordinators.reader, resolution_outcome_of
    )
    assert report.outcome is outcome
    assert set(report.records.values()) == {RecordStatus.CANCELLED}  # the compensations themselves succeeded
    assert [record.attention.value for record in report.needs_attention] == [left]
