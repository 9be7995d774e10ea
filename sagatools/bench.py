"""./build.sh bench: measure the embedded stack and the cost of a saga (on each coordinator), write docs/BENCHMARKS.md.

A script, not a test: it prints measured figures and asserts nothing.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saga.catalogue import REQUESTS
from saga.keys import ID_FIELD
from sagatools.bench_aws import capacity_markdown, cost_markdown, cost_of, rollback_scenario
from sagatools.bench_calls import ApiCalls, CallerCalls, StepCalls, Units, step_calls_markdown
from sagatools.bench_cold_start import cold_start_markdown, measure_cold_start
from sagatools.bench_coordinators import coordinator_markdown, measure_coordinator_costs
from sagatools.bench_local import local_cloud_markdown, measure_local_cloud
from sagatools.bench_scenarios import BASE_REQUEST, STUCK_FAULTS, STUCK_SCENARIO, request
from sagatools.bench_start_up import measure_start_up, start_up_markdown
from sagatools.emulation.embedded import EmbeddedStack
from sagatools.project import PROJECT_ROOT
from sagatools.results import SagaReader
from sagatools.runtest.runner import SagaRunner
from sagatools.runtest.shards import run_sharded, shard_count

if TYPE_CHECKING:
    from sagatools.view.terminal import ProgressObserver

OUTPUT = PROJECT_ROOT / "docs" / "BENCHMARKS.md"
# A success, a rollback at each step, and a compensation stuck behind a refusal at the last step.
SCENARIOS: dict[str, dict[str, str] | None] = {
    "success": None,
    **{rollback_scenario(step.resource): {step.name: "fail"} for step in REQUESTS},
    STUCK_SCENARIO: STUCK_FAULTS,
}
LATENCY_RUNS = int(os.environ.get("BENCH_RUNS", "30"))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure_latency(stack: EmbeddedStack, runner: SagaRunner) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    runner.run([request("warm-up", None)])
    for name, simulate in SCENARIOS.items():
        walls, executions, handlers = [], [], []
        for n in range(LATENCY_RUNS):
            before = stack.lambdas.handler_seconds
            started = time.perf_counter()
            (report,) = runner.run([request(f"lat-{len(rows)}-{n}", simulate)])
            walls.append((time.perf_counter() - started) * 1000)
            executions.append(float(report.duration_ms or 0))
            handlers.append((stack.lambdas.handler_seconds - before) * 1000)
        rows.append(
            {
                "scenario": name,
                "outcome": report.outcome.value if report.outcome else "-",
                "execution_median": statistics.median(executions),
                "execution_p95": percentile(executions, 0.95),
                "wall_median": statistics.median(walls),
                "handler_median": statistics.median(handlers),
                "ratio": statistics.median(executions) / max(statistics.median(handlers), 0.001),
            }
        )
    return rows


def measure_throughput(runner: SagaRunner, size: int, prefix: str) -> float:
    sagas = [request(f"{prefix}-{n:04d}", None) for n in range(size)]
    started = time.perf_counter()
    reports = runner.run(sagas)
    elapsed = time.perf_counter() - started
    assert all(r.outcome is not None for r in reports)
    return size / elapsed


def measure_sharded_throughput(
    stack: EmbeddedStack, runner: Callable[[float], SagaRunner], poll: float, size: int
) -> tuple[int, float]:
    """What `./runtest.sh` does with a big batch, in process: the stack forked once per shard. (shards, sagas/s)"""
    sagas = [request(f"sh-{n:04d}", None) for n in range(size)]
    shards = shard_count(size)

    def shard_runner(_: ProgressObserver | None) -> SagaRunner:
        return runner(poll)

    started = time.perf_counter()
    sharded = run_sharded(stack, shard_runner, sagas, None, shards, None)
    elapsed = time.perf_counter() - started
    if sharded is None:
        raise RuntimeError("the batch could not be forked: another thread runs in the bench's process")
    assert all(r.outcome is not None for r in sharded[0])
    return shards, size / elapsed


def measure_runtest_batch(size: int) -> tuple[float, float]:
    """The README's command on `size` files at once, process start included: (seconds, sagas/s)."""
    with tempfile.TemporaryDirectory() as directory:
        paths = []
        for n in range(size):
            data = copy.deepcopy(BASE_REQUEST)
            data[ID_FIELD] = f"batch-{n:04d}"
            path = Path(directory) / f"saga-{n:04d}.json"
            path.write_text(json.dumps(data), encoding="utf-8")
            paths.append(str(path))
        started = time.perf_counter()
        done = subprocess.run(
            [str(PROJECT_ROOT / "runtest.sh"), *paths, "--json"], capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - started
    results = json.loads(done.stdout)
    if done.returncode != 0 or len(results) != size:
        raise RuntimeError(f"runtest.sh batch failed: {done.stderr[-2000:]}")
    return elapsed, size / elapsed


def measure_costs(stack: EmbeddedStack, runner: SagaRunner) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each scenario once, every DynamoDB call of its handlers and state machine observed: (its cost, its calls
    step by step)."""
    costs, steps = [], []
    observed = StepCalls(stack)
    step_of = {spec.name: spec.step.name for spec in stack.config.functions.values()}
    with ApiCalls(observed):
        for n, (name, simulate) in enumerate(SCENARIOS.items()):
            observed.reset()
            invoked = stack.lambdas.invocations_of.copy()
            (report,) = runner.run([request(f"cost-{n}", simulate)])
            callers: dict[str, CallerCalls] = observed.by_caller()
            invocations = {
                step_of[function]: count for function, count in (stack.lambdas.invocations_of - invoked).items()
            }
            cost = {"scenario": name, **cost_of(stack, report, sum((c.total() for c in callers.values()), Units()))}
            costs.append(cost)
            steps.append({**cost, "callers": callers, "invocations": invocations})
    return costs, steps


def benchmarks_markdown(
    latency: list[dict[str, Any]],
    throughput: list[tuple[int, float]],
    sharded: list[tuple[int, int, float]],
    batch: tuple[int, float, float],
    cold_start: list[str],
    costs: list[dict[str, Any]],
    step_calls: list[str],
    profile: list[tuple[str, float, float]],
    start_up: list[str],
) -> str:
    today = date.today().isoformat()
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `./build.sh bench` on {today}, {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores; embedded stack (moto). "
        "Regenerate with `./build.sh bench` (BENCH_RUNS sets the runs per scenario).",
        "",
        *start_up,
        "## Per-saga latency on the embedded stack",
        "",
        f"{LATENCY_RUNS} sagas per scenario, one at a time. *Execution* is start to stop as the execution "
        "history records it; *runner* adds starting, polling and reading the tables back; *handlers* is the "
        "time spent inside the handlers (the floor); *ratio* = execution / handlers.",
        "",
        "| scenario | outcome | execution median ms | execution p95 ms | runner median ms | handlers median ms "
        "| ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in latency:
        lines.append(
            f"| {row['scenario']} | {row['outcome']} | {row['execution_median']:.0f} | {row['execution_p95']:.0f} "
            f"| {row['wall_median']:.0f} | {row['handler_median']:.1f} | {row['ratio']:.1f} |"
        )
    lines += [
        "",
        "## Throughput",
        "",
        "| batch | sagas/s |",
        "|---|---|",
        *[f"| {size} concurrent sagas, one stack (runner in process) | {rate:.1f} |" for size, rate in throughput],
        *[
            f"| {size} concurrent sagas, the stack forked into {shards} processes (runner in process) | {rate:.1f} |"
            for size, shards, rate in sharded
        ],
        f"| {batch[0]} sagas through `./runtest.sh` (process start included, {batch[1]:.1f} s) | {batch[2]:.1f} |",
        "",
        "Each batch runs on a new stack, as each `./runtest.sh` run does. A batch of 20 sagas or more runs on every"
        " core, as `./runtest.sh` runs it (`sagatools/runtest/shards.py`): the stack is built once, then forked into"
        " one process per core, each running its share of the saga ids. *One stack* is a single process, which one"
        " interpreter lock holds to one core.",
        "",
        "## Where the time goes",
        "",
        "Every AWS API call of a 50-saga batch (the runner's and the handlers'), counted and timed in "
        "process. Each call crosses botocore and moto's request emulation, and all of them share one "
        "interpreter lock with the executions' threads, so a call's time includes waiting for it.",
        "",
        "| API call | calls per saga | ms per call |",
        "|---|---|---|",
        *[f"| {op} | {per_saga:.1f} | {ms:.1f} |" for op, per_saga, ms in profile],
        "",
        "What holds a process back: one interpreter lock runs the interpreter, the "
        "handlers and the runner, and every call above crosses botocore and moto's request emulation "
        "(signed, serialised, routed through werkzeug, answered, parsed back: a few milliseconds of CPU "
        "each, which a sampling profiler of a 200-saga batch finds spread thin over both libraries). The "
        "Lambda tasks themselves no longer make an API call (`InvokeOnlyClient`), and the embedded stack "
        "removes what else it safely can (`sagatools/emulation/speedups.py`).",
        "",
    ]
    lines += cold_start
    lines += []
    lines += cost_markdown(costs)
    lines += step_calls
    lines += capacity_markdown(costs)
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def new_stack() -> Iterator[tuple[EmbeddedStack, Callable[[float], SagaRunner]]]:
    """A stack of its own and its runners (by poll interval), as every `./runtest.sh` run has: a stack that
    ran earlier batches holds their executions, and ListExecutions (which the runner polls) walks them all."""
    with EmbeddedStack() as stack:

        def runner(poll: float) -> SagaRunner:
            return SagaRunner(
                stack.stepfunctions, stack.state_machine_arn, SagaReader(stack.settings, stack.dynamodb), poll, 600
            )

        yield stack, runner


def main() -> int:
    print("measuring... (a few minutes)", file=sys.stderr)
    with new_stack() as (stack, runner):  # runtest.sh's own poll interval on the embedded stack
        latency = measure_latency(stack, runner(0.01))
        costs, per_step = measure_costs(stack, runner(0.01))
        step_calls = step_calls_markdown(per_step)
        # Imported inside the stack, as Lambda imports the function: Powertools reads its settings at import.
        from sagatools.emulation.durable import DurableStack

        with DurableStack(io.StringIO()) as durable:
            reader = SagaReader(stack.settings, stack.dynamodb)
            coordinators = measure_coordinator_costs(stack, runner(0.01), durable, reader)
    throughput, sharded = [], []
    for size in (50, 200):
        with new_stack() as (_, runner):
            throughput.append((size, measure_throughput(runner(0.02), size, "tp")))
        with new_stack() as (stack, runner):
            sharded.append((size, *measure_sharded_throughput(stack, runner, 0.02, size)))
    profile_size = 50
    with ApiCalls() as calls, new_stack() as (_, runner):
        measure_throughput(runner(0.02), profile_size, "profile")
    profile = [
        (op, calls.count[op] / profile_size, calls.seconds[op] / calls.count[op] * 1000)
        for op, _ in calls.count.most_common()
    ]
    batch_seconds, batch_rate = measure_runtest_batch(200)
    print("measuring start-up...", file=sys.stderr)
    start_up = start_up_markdown(measure_start_up(), [measure_runtest_batch(50)[0] for _ in range(5)])
    print("measuring cold starts...", file=sys.stderr)
    cold_start = cold_start_markdown(measure_cold_start())
    markdown = benchmarks_markdown(
        latency, throughput, sharded, (200, batch_seconds, batch_rate), cold_start, costs, step_calls, profile, start_up
    )
    markdown += "\n".join(coordinator_markdown(coordinators)) + "\n"
    print("measuring the local cloud...", file=sys.stderr)
    embedded_success = next(row["execution_median"] for row in latency if row["scenario"] == "success")
    markdown += "\n".join(local_cloud_markdown(measure_local_cloud(), embedded_success)) + "\n"
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"written to {OUTPUT.relative_to(PROJECT_ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
