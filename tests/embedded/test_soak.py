"""Concurrency soak: many sagas with seeded random faults at once on one embedded stack.

SOAK_SAGAS sets the size (default 200, what CI runs); SOAK_SEED the faults.
"""

from __future__ import annotations

import collections
import os
import random
import resource
import time

import pytest

from saga.keys import ID_FIELD, NOUNS
from saga.models import parse_request
from sagatools.executions import execution_history
from sagatools.request_files import RequestFile
from sagatools.results import Outcome, SagaReader
from sagatools.runtest.runner import SagaRunner
from tests.helpers import (
    RESOURCES,
    assert_log_agrees_with_tables,
    assert_providers_agree,
    book_step,
    cancel_step,
    is_booking,
    resource_of,
    saga_request,
    step_of_state,
)

pytestmark = pytest.mark.slow


SOAK_SAGAS = int(os.environ.get("SOAK_SAGAS", "200"))
SOAK_SEED = int(os.environ.get("SOAK_SEED", "20261126"))
DUPLICATES = 10
BOOK_FAULTS = ["fail", "crash_after_write", "late", "transient:1", "transient:2", "transient:5"]
CANCEL_FAULTS = ["transient:1", "transient:3", "transient:5", "fail"]


def random_requests(count: int, rng: random.Random) -> list[dict]:
    requests = []
    for n in range(count):
        simulate = {}
        for resource_name in RESOURCES:
            if rng.random() < 0.15:
                simulate[book_step(resource_name)] = rng.choice(BOOK_FAULTS)
            if rng.random() < 0.15:
                simulate[cancel_step(resource_name)] = rng.choice(CANCEL_FAULTS)
        requests.append(saga_request(f"soak-{n:04d}", simulate=simulate))
    return requests


def test_soak_concurrent_sagas_stay_consistent(stack, capsys):
    rng = random.Random(SOAK_SEED)
    requests = random_requests(SOAK_SAGAS - DUPLICATES, rng)
    requests += [rng.choice(requests) for _ in range(DUPLICATES)]  # the same saga started twice
    rng.shuffle(requests)
    runner = SagaRunner(
        stack.stepfunctions, stack.state_machine_arn, SagaReader(stack.settings, stack.dynamodb), 0.02, 600
    )
    started = time.perf_counter()
    reports = runner.run([RequestFile(f"{r[ID_FIELD]}.json", parse_request(r)) for r in requests])
    elapsed = time.perf_counter() - started

    assert len(reports) == SOAK_SAGAS
    executions = collections.defaultdict(set)
    for report in reports:
        executions[report.saga_id].add(report.execution_arn)
        assert report.outcome is not None, report.saga_id
        assert_log_agrees_with_tables(report)
        assert_providers_agree(report)
        confirmed = {r for r, status in report.records.items() if status == "CONFIRMED"}
        stuck = {resource_of(record.step) for record in report.needs_attention}
        assert confirmed == set(RESOURCES) if report.outcome is Outcome.COMMITTED else confirmed <= stuck
        # no duplicated log entry, no double booking
        keys = [(e.step, e.attempt, e.event) for e in report.saga_log]
        assert len(keys) == len(set(keys)), report.saga_id
        fresh_bookings = collections.Counter(
            e.step
            for e in report.saga_log
            if is_booking(e.step) and e.event == "END" and not (e.detail or "").startswith("already ")
        )
        assert max(fresh_bookings.values(), default=0) <= 1, report.saga_id
    # each saga id ran as exactly one execution, duplicates included
    assert all(len(arns) == 1 for arns in executions.values())

    # no lost log entry: every Lambda attempt in the history has its START in the saga log
    for report in {r.saga_id: r for r in reports}.values():
        attempts = collections.Counter()
        state = ""
        for event in execution_history(stack.stepfunctions, report.execution_arn):
            if event["type"].endswith("StateEntered"):
                state = event["stateEnteredEventDetails"]["name"]
            elif event["type"] == "LambdaFunctionScheduled":
                attempts[step_of_state(state)] += 1
        starts = collections.Counter(e.step for e in report.saga_log if e.event == "START")
        assert attempts == starts, report.saga_id

    outcomes = collections.Counter(r.outcome.value for r in reports)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with capsys.disabled():
        print(
            f"\nsoak: {SOAK_SAGAS} {NOUNS} ({DUPLICATES} duplicates) in {elapsed:.1f} s = "
            f"{SOAK_SAGAS / elapsed:.1f} {NOUNS}/s; {dict(outcomes)}; peak RSS {peak_mb:.0f} MB"
        )
