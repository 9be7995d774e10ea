"""./build.sh bench, choosing a coordinator: the same sagas coordinated by the state machine and by the durable function
(saga/durable.py) on one embedded stack, each billed its own way on top of the same Lambda and DynamoDB work.

The state machine is billed per state transition (every state entered, and every retry of a task); the durable
function per durable operation (its start, and each attempt of each step, each attention record's write and each
forward-recovery clock it checkpoints) and per invocation (the first, and one per resumption after a retry's wait).
Prices are bench_aws.PRICES, with their source and date.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from saga.catalogue import REQUESTS, RETRIABLES, by_state
from saga.keys import ID_FIELD
from sagatools.bench_aws import PRICES, PRICES_AS_OF, cost_of, lambda_dollars
from sagatools.bench_calls import ApiCalls, StepCalls, Units
from sagatools.bench_scenarios import ROLLBACK_AT_LAST, STUCK_FAULTS, STUCK_SCENARIO, request
from sagatools.durable_history import state_history
from sagatools.runtest.durable import durable_report

if TYPE_CHECKING:
    from sagatools.emulation.durable import DurableRun, DurableStack
    from sagatools.emulation.embedded import EmbeddedStack
    from sagatools.results import SagaReader
    from sagatools.runtest.runner import SagaRunner

FORWARD_FAULT = "transient:6"  # past the pivot: six slow retries (half an hour on the saga's clock), then done
# Each scenario: its simulated faults, and the rest of its request. As bench.py's: a success, a rollback at the last
# step, a stuck compensation; and a forward recovery retried past the pivot.
SCENARIOS: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "success": ({}, {}),
    ROLLBACK_AT_LAST: ({REQUESTS[-1].name: "fail"}, {}),
    STUCK_SCENARIO: (STUCK_FAULTS, {}),
    **(
        {
            f"forward recovery ({RETRIABLES[-1].name} {FORWARD_FAULT})": (
                {RETRIABLES[-1].name: FORWARD_FAULT},
                {"recovery": {"mode": "forward"}},
            )
        }
        if RETRIABLES
        else {}
    ),
}


def durable_cost(run: DurableRun, dynamodb: Units) -> dict[str, Any]:
    """What a durable execution of the saga costs; `dynamodb`: the request units its steps consumed, as observed."""
    invocations = sum(event.event_type == "InvocationCompleted" for event in run.events)
    # The steps' own work: each attempt of a step the state machine runs as a Lambda task.
    attempts = sum(event.event_type == "StepStarted" and by_state(event.name or "") is not None for event in run.events)
    dollars = (
        run.operations * PRICES["durable operation (Lambda durable functions)"]
        + lambda_dollars(invocations, attempts)
        + dynamodb.dollars
    )
    return {"operations": run.operations, "invocations": invocations, "per_million": dollars * 1e6}


def measure_coordinator_costs(
    stack: EmbeddedStack, runner: SagaRunner, durable: DurableStack, reader: SagaReader
) -> list[dict[str, Any]]:
    """Each scenario once on each coordinator, every DynamoDB call observed: what each is billed, and the outcome
    (the same on both). The durable function's steps run on its runner's threads, so the observer counts their calls
    as the coordinator's own (sagatools/bench_calls.py): all of them are the saga's."""
    rows = []
    observed = StepCalls(stack)
    with ApiCalls(observed):
        for number, (name, (simulate, extra)) in enumerate(SCENARIOS.items()):
            observed.reset()
            (machine,) = runner.run([request(f"coordinators-{number}-sf", simulate, **extra)])
            machine_units = sum((calls.total() for calls in observed.by_caller().values()), Units())
            observed.reset()
            by_function = request(f"coordinators-{number}-df", simulate, **extra)
            document = json.loads(by_function.execution_input)
            run = durable.run(document[ID_FIELD], document, 600)
            function_units = sum((calls.total() for calls in observed.by_caller().values()), Units())
            function = durable_report(by_function, run, state_history(run.events), reader)
            if function.outcome is not machine.outcome:
                raise RuntimeError(
                    f"{name}: {machine.outcome} by the state machine, {function.outcome} by the function"
                )
            rows.append(
                {
                    "scenario": name,
                    "outcome": machine.outcome.value if machine.outcome else "UNFINISHED",
                    "machine": cost_of(stack, machine, machine_units),
                    "function": {**durable_cost(run, function_units), "units": function_units},
                    "machine_units": machine_units,
                }
            )
    return rows


def coordinator_markdown(rows: list[dict[str, Any]]) -> list[str]:
    transition = PRICES["state transition (Standard)"] * 1e6
    operation = PRICES["durable operation (Lambda durable functions)"] * 1e6
    lines = [
        "## Cost per coordinator",
        "",
        "The same sagas, each once on each coordinator on one embedded stack (`sagatools/bench_coordinators.py`): the"
        " generated state machine (Step Functions Standard) and the durable function (`saga/durable.py`, Lambda"
        f" durable functions). Prices as above, as of {PRICES_AS_OF} (not fetched): ${transition:g} per million state"
        f" transitions, ${operation:g} per million durable operations; Lambda and DynamoDB as above. The state"
        " machine's transitions are billed ones (every state entered, every task retry); the durable function's"
        " operations are its start and one per attempt of each step (each attention record's write and each"
        " forward-recovery clock included), and its Lambda invocations the first and one per resumption after a"
        " retry's wait (the waits themselves cost nothing); its Lambda time is the steps' work, as the state"
        " machine's tasks. The data a durable execution writes and keeps is billed too (per GB) and not counted here:"
        " a few kilobytes per saga.",
        "",
        "| scenario | outcome | state machine: transitions | Lambda invocations | $ per million sagas "
        "| durable function: operations | Lambda invocations | $ per million sagas |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        machine, function = row["machine"], row["function"]
        lines.append(
            f"| {row['scenario']} | {row['outcome']} | {machine['transitions']} | {machine['invocations']}"
            f" | {machine['per_million']:,.2f} | {function['operations']} | {function['invocations']}"
            f" | {function['per_million']:,.2f} |"
        )
    return lines
