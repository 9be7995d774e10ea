"""./build.sh bench, choosing a coordinator: the same sagas coordinated by the state machine and by the durable function
(saga/durable.py) on one embedded stack, each billed its own way on top of the same Lambda and DynamoDB work.

The state machine is billed per state transition (every state entered, and every retry of a task); the durable
function per durable operation (its start, and each attempt of each step, each attention record's write and each
forward-recovery clock it checkpoints) and per invocation (the first, and one per resumption after a retry's wait).
Prices are bench_aws.PRICES, with their source and date.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from saga.catalogue import REQUESTS, RETRIABLES, by_state
from saga.coordination import BACKWARD, RESOLUTION_REQUEST, resolution_input
from saga.keys import ID_FIELD
from saga.models import parse_request
from sagatools.attention.coordinators import StateMachines
from sagatools.bench_aws import PRICES, PRICES_AS_OF, cost_of, lambda_dollars
from sagatools.bench_calls import ApiCalls, StepCalls, Units
from sagatools.bench_scenarios import ROLLBACK_AT_LAST, STUCK_FAULTS, STUCK_SCENARIO, request
from sagatools.durable_history import state_history
from sagatools.request_files import RequestFile
from sagatools.results import Outcome, build_report, resolution_outcome_of
from sagatools.runtest.durable import durable_report

if TYPE_CHECKING:
    from sagatools.emulation.durable import DurableRun, DurableStack
    from sagatools.emulation.embedded import EmbeddedStack
    from sagatools.results import SagaReader, SagaResult
    from sagatools.runtest.runner import SagaRunner

RESOLUTION_SCENARIO = "attention.sh resolve, the provider back"
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
            if name == STUCK_SCENARIO:
                rows.append(_resolution_row(stack, durable, reader, observed, machine, by_function))
    return rows


def _resolution_row(
    stack: EmbeddedStack,
    durable: DurableStack,
    reader: SagaReader,
    observed: StepCalls,
    machine: SagaResult,
    by_function: RequestFile,
) -> dict[str, Any]:
    """The stuck sagas resolved as attention.sh resolves them, the provider back: the state machine's by the
    resolution state machine, the function's by the function started with its request and a direction."""

    def document(saga_id: str) -> dict[str, Any]:
        request = json.loads(by_function.execution_input) | {ID_FIELD: saga_id}
        request.pop("simulate", None)
        return resolution_input(request, BACKWARD, requested_by="bench")

    observed.reset()
    name = f"{machine.saga_id}-resolve-1"
    machines = StateMachines(stack.stepfunctions, stack.state_machine_arn, stack.resolution_state_machine_arn, 0.01)
    arn = machines.start_resolution(name, document(machine.saga_id))
    description = machines.follow({arn: machine.saga_id}, time.monotonic() + 600, None)[arn]
    by_machine = build_report(
        name, machine.saga_id, description, machines.history(arn), reader, False, resolution_outcome_of
    )
    machine_units = sum((calls.total() for calls in observed.by_caller().values()), Units())

    observed.reset()
    saga_id = by_function.request.saga_id
    resolving = document(saga_id)
    run = durable.run(f"{saga_id}-resolve-1", resolving, 600)
    function_units = sum((calls.total() for calls in observed.by_caller().values()), Units())
    file = RequestFile(f"{saga_id}-resolve-1.json", parse_request(resolving[RESOLUTION_REQUEST]))
    history = state_history(run.events, resolution=True)
    by_durable = durable_report(file, run, history, reader, resolution_outcome_of)

    if not by_machine.outcome is by_durable.outcome is Outcome.RESOLVED:
        raise RuntimeError(f"resolution: {by_machine.outcome} by the machine, {by_durable.outcome} by the function")
    return {
        "scenario": f"its resolution ({RESOLUTION_SCENARIO})",
        "outcome": Outcome.RESOLVED.value,
        "machine": cost_of(stack, by_machine, machine_units),
        "function": {**durable_cost(run, function_units), "units": function_units},
        "machine_units": machine_units,
    }


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
        " a few kilobytes per saga. The stuck saga's resolution (`attention.sh resolve`) is the resolution state"
        " machine's execution on the one, and an execution of the same function on the other; its dollars are per"
        " million resolutions.",
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
