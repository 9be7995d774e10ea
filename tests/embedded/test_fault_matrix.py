"""Every booking fault x every compensation fault, in both recovery modes, through the real ASL on one embedded stack.

Each case asserts the saga's invariant (every booking CONFIRMED, or none CONFIRMED but a stuck one, and
every written booking CANCELLED; in forward recovery, once past the pivot, nothing undone), the expected outcome,
the reverse order of the compensations in the saga log, that the saga log agrees with the booking tables, and that
every provider's own ledger agrees with them (booked at both or at neither, unless an open attention record names
the step).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from saga.catalogue import COMPENSATIONS, RETRIABLES, compensation_of, request_of, simulated_provider
from saga.keys import ID_FIELD
from saga.models import Recovery, parse_request
from saga.saga_log import AttentionKind
from sagatools.asl import load_definition
from sagatools.emulation.embedded import EmbeddedStack
from sagatools.request_files import RequestFile
from sagatools.results import Outcome, SagaReader, SagaResult
from sagatools.runtest.runner import SagaRunner
from tests.helpers import (
    RESOURCES,
    assert_log_agrees_with_tables,
    assert_providers_agree,
    book_step,
    cancel_step,
    is_compensation,
    saga_request,
)

BOOK_FAULTS = ["fail", "crash_after_write", "late", "transient:1", "transient:5"]
CANCEL_FAULTS = ["transient:1", "transient:5", "fail"]
_STATES = load_definition()["States"]
# Attempts each step gets before it counts as failed, as the ASL says (first attempt + retries).
BOOK_ATTEMPTS = {r: 1 + _STATES[request_of(r).state]["Retry"][0]["MaxAttempts"] for r in RESOURCES}
CANCEL_ATTEMPTS = {r: 1 + _STATES[compensation_of(r).state]["Retry"][0]["MaxAttempts"] for r in RESOURCES}
CASES = list(itertools.product(RESOURCES, BOOK_FAULTS, RESOURCES, CANCEL_FAULTS))
# In forward recovery a fault at or before the pivot is every compensation fault's case again; past it nothing is
# undone, so one case per fault there, with every compensation set to fail (none may run).
PAST_PIVOT = [step.resource for step in RETRIABLES]
FORWARD_CASES = (
    [case for case in CASES if case[0] not in PAST_PIVOT]
    + [(book, f, None, None) for book in PAST_PIVOT for f in BOOK_FAULTS]
    if PAST_PIVOT
    else []
)


@pytest.fixture(scope="module")
def runner() -> Iterator[SagaRunner]:
    with EmbeddedStack() as stack:
        yield SagaRunner(
            stack.stepfunctions, stack.state_machine_arn, SagaReader(stack.settings, stack.dynamodb), 0.005, 120
        )


def transient_attempts(fault: str) -> int:
    return int(fault.split(":")[1]) if fault.startswith("transient:") else 0


def unknown_key(book: str, book_fault: str, cancel: str) -> int:
    """1 when the compensation first reaches a provider that cannot cancel a key it has not booked while the late
    booking is still on its way: that attempt is answered "unknown key" (the booking lands), the next cancels it."""
    provider = simulated_provider(cancel)
    return int(book_fault == "late" and cancel == book and provider is not None and not provider.cancels_unknown_keys)


def expected(book: str, book_fault: str, cancel: str, cancel_fault: str) -> tuple[Outcome, dict, list[str]]:
    """(outcome, bookings, compensations in order) for one case."""
    failing = transient_attempts(book_fault)
    if book_fault.startswith("transient:") and failing < BOOK_ATTEMPTS[book]:
        return Outcome.COMMITTED, dict.fromkeys(RESOURCES, "CONFIRMED"), []
    failed_at = RESOURCES.index(book)
    compensated = list(reversed(RESOURCES[: failed_at + 1]))
    stuck = cancel in compensated and (
        cancel_fault == "fail"
        or transient_attempts(cancel_fault) + unknown_key(book, book_fault, cancel) >= CANCEL_ATTEMPTS[cancel]
    )
    bookings: dict[str, str | None] = {}
    for index, resource in enumerate(RESOURCES):
        written = index < failed_at or (index == failed_at and book_fault == "crash_after_write")
        if resource not in compensated:
            bookings[resource] = None
        elif stuck and resource == cancel:
            bookings[resource] = "CONFIRMED" if written else None
        else:
            bookings[resource] = "CANCELLED"
    return (Outcome.NEEDS_ATTENTION if stuck else Outcome.ROLLED_BACK), bookings, compensated


@pytest.mark.parametrize(("book", "book_fault", "cancel", "cancel_fault"), CASES)
def test_fault_case(runner, book, book_fault, cancel, cancel_fault):
    saga_id = f"m-{book}-{book_fault.replace(':', '')}-{cancel}-{cancel_fault.replace(':', '')}"
    request = saga_request(saga_id, simulate={book_step(book): book_fault, cancel_step(cancel): cancel_fault})
    report = run(runner, request)
    assert_rolled_back_as_expected(report, *expected(book, book_fault, cancel, cancel_fault), cancel)


@pytest.mark.skipif(not PAST_PIVOT, reason="the app has no pivot with a step past it: it recovers backward only")
@pytest.mark.parametrize(("book", "book_fault", "cancel", "cancel_fault"), FORWARD_CASES)
def test_fault_case_in_forward_recovery(runner, book, book_fault, cancel, cancel_fault):
    saga_id = f"mf-{book}-{book_fault.replace(':', '')}-{cancel}-{str(cancel_fault).replace(':', '')}"
    faults = {cancel_step(cancel): cancel_fault} if cancel else {step.name: "fail" for step in COMPENSATIONS}
    report = run(runner, forward_request(saga_id, {book_step(book): book_fault, **faults}))
    if book not in PAST_PIVOT:  # a fault at or before the pivot: rolled back exactly as in backward recovery
        assert_rolled_back_as_expected(report, *expected(book, book_fault, cancel, cancel_fault), cancel)
        return
    # Past the pivot: retried (and, with alternatives, taken by another provider) until done, or left unfinished
    # with its record open; never compensated
    assert report.recovery is not None
    assert report.recovery.pivot_passed
    assert not [entry for entry in report.saga_log if is_compensation(entry.step)], "undone past the pivot"
    assert_log_agrees_with_tables(report)
    assert_providers_agree(report)
    failed_at = RESOURCES.index(book)
    if finishes_forward(book, book_fault):
        assert report.outcome is Outcome.COMMITTED
        assert report.records == dict.fromkeys(RESOURCES, "CONFIRMED")
        assert report.needs_attention == []
    else:
        assert report.outcome is Outcome.NEEDS_ATTENTION
        assert report.records == {r: "CONFIRMED" if i < failed_at else None for i, r in enumerate(RESOURCES)}
        assert [(r.step, r.kind) for r in report.needs_attention] == [
            (book_step(book), AttentionKind.UNFINISHED_FORWARD)
        ]


def run(runner: SagaRunner, request: dict) -> SagaResult:
    (report,) = runner.run([RequestFile(f"{request[ID_FIELD]}.json", parse_request(request))])
    return report


def forward_request(saga_id: str, simulate: dict[str, str]) -> dict:
    """The request in forward recovery; a step past the pivot that names its provider offers two alternatives."""
    sections = {}
    for resource in PAST_PIVOT:
        step = request_of(resource)
        if step.spec.alternatives_for:
            sections[resource] = {**saga_request()[resource], "alternatives": ["Second Provider", "Third Provider"]}
    return saga_request(saga_id, simulate=simulate, recovery={"mode": "forward"}, **sections)


def finishes_forward(book: str, book_fault: str) -> bool:
    """Past the pivot: a refusal by every provider leaves the step unfinished; a passing fault, a lost or a late
    answer is retried on the forward schedule, and done unless the next retry would start after the deadline."""
    if book_fault == "fail":
        return False
    policy = request_of(book).spec.forward_retry
    return policy.waited(transient_attempts(book_fault)) <= Recovery().deadline_seconds


def assert_rolled_back_as_expected(
    report: SagaResult, outcome: Outcome, bookings: dict, compensations: list[str], cancel: str
) -> None:
    assert report.outcome is outcome
    assert report.records == bookings
    first_starts = []
    for entry in report.saga_log:
        if is_compensation(entry.step) and entry.step not in first_starts:
            first_starts.append(entry.step)
    assert first_starts == [cancel_step(r) for r in compensations], "compensations out of reverse order"
    assert_log_agrees_with_tables(report)
    assert_providers_agree(report)
    confirmed = [r for r, status in report.records.items() if status == "CONFIRMED"]
    assert len(confirmed) in (0, len(RESOURCES)) or (outcome is Outcome.NEEDS_ATTENTION and confirmed == [cancel])
    if outcome is Outcome.NEEDS_ATTENTION:
        assert [record.step for record in report.needs_attention] == [cancel_step(cancel)]
