"""Where runtest.sh runs the sagas: the embedded stack (moto, in this process) or a deployed stage. The
same runner either way; only the clients, the poll interval and the state machine's definition differ."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from sagatools.asl import SAGA_MACHINE, load_definition
from sagatools.cli import UsageError, output_dir
from sagatools.deployed.stage import Stage, StageError, explain, settings_from_outputs, state_machine_arn
from sagatools.exit_codes import EXIT_USAGE
from sagatools.results import SagaReader, SagaResult
from sagatools.runtest.runner import SagaRunner
from sagatools.runtest.shards import run_sharded, shard_count
from sagatools.serverless_config import DURABLE, STEPFUNCTIONS
from sagatools.terminal_text import shown

if TYPE_CHECKING:
    from sagatools.request_files import RequestFile
    from sagatools.view.terminal import ProgressObserver

# A stage that stops answering mid-run (an endpoint stopped or killed, a stack removed) may hold a call
# past the --timeout: this long after it, the run ends anyway, in one sentence.
STAGE_GRACE_SECONDS = 5.0
COORDINATOR_WORDS = {STEPFUNCTIONS: "the state machine", DURABLE: "the durable function"}


@dataclass
class RunResult:
    reports: list[SagaResult]
    histories: dict[str, list[dict[str, Any]]]  # by execution ARN
    definition: dict[str, Any]  # the ASL the executions ran


def handler_log(resources: contextlib.ExitStack, show_logs: bool, err: TextIO) -> TextIO:
    """Where the handlers' logs go: stderr with --logs, else .runtest/handlers.log (open while `resources` are)."""
    if show_logs:
        return err
    output_dir().mkdir(parents=True, exist_ok=True)
    return resources.enter_context((output_dir() / "handlers.log").open("w", encoding="utf-8"))


def run_embedded(
    sagas: list[RequestFile], human: ProgressObserver | None, show_logs: bool, timeout: float, err: TextIO
) -> RunResult:
    from sagatools.emulation.embedded import EmbeddedStack  # moto is heavy: import it only when it is needed

    with contextlib.ExitStack() as resources:
        log_sink = handler_log(resources, show_logs, err)
        stack = resources.enter_context(EmbeddedStack(log_sink=log_sink))
        began = time.monotonic()

        def runner(observer: ProgressObserver | None) -> SagaRunner:
            return SagaRunner(
                stack.stepfunctions,
                stack.state_machine_arn,
                SagaReader(stack.settings, stack.dynamodb),
                poll_seconds=0.01,
                timeout_seconds=timeout - (time.monotonic() - began),
                observer=observer,
                on_deadline=stack.lambdas.freeze,
            )

        if (shards := shard_count(len(sagas))) > 1:
            sharded = run_sharded(stack, runner, sagas, human, shards, log_sink)
            if sharded is not None:
                return RunResult(*sharded, load_definition())
        unsharded = runner(human)
        reports = unsharded.run(sagas)
        return RunResult(reports, unsharded.histories, load_definition())


def run_on_stage(
    sagas: list[RequestFile],
    stage: Stage,
    human: ProgressObserver | None,
    timeout: float,
    coordinator: str | None = None,
) -> RunResult:
    """The same runner against a deployed stage: its coordinator (the state machine or the durable function; if
    `coordinator` names one, the stage must have it) and its tables, from the stack outputs."""
    watchdog = threading.Timer(timeout + STAGE_GRACE_SECONDS, _stage_did_not_answer, (stage, timeout))
    watchdog.daemon = True
    watchdog.start()
    try:
        return _run_on_stage(sagas, stage, human, timeout, coordinator)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in {"StateMachineDoesNotExist", "ExecutionDoesNotExist", "ResourceNotFoundException"}:
            raise StageError(
                f"Stage {stage.name} lost its coordinator or tables during the run ({code}): was it removed?"
                f" Deploy it again with {stage.deploy_command}."
            ) from None
        raise StageError(explain(error, stage)) from None
    except BotoCoreError as error:
        raise StageError(explain(error, stage)) from None
    finally:
        watchdog.cancel()


def _stage_did_not_answer(stage: Stage, timeout: float) -> None:
    os.write(
        2,
        f"runtest: stage {stage.name} ({stage.region}) did not answer within the --timeout of {timeout:g} s and"
        f" {STAGE_GRACE_SECONDS:g} s more; the sagas started there go on, and running the same files again"
        " reports them\n".encode(),
    )
    os._exit(EXIT_USAGE)


def stage_coordinator(outputs: dict[str, str], stage: Stage, asked: str | None) -> str:
    """What coordinates the stage's sagas, as its stack outputs say; UsageError if `asked` (--coordinator) names
    another."""
    from sagatools.generate.template import DURABLE_FUNCTION_OUTPUT

    present = [
        coordinator
        for coordinator, output in ((STEPFUNCTIONS, SAGA_MACHINE.name_output), (DURABLE, DURABLE_FUNCTION_OUTPUT))
        if output in outputs
    ]
    chosen = asked or (present[0] if present else STEPFUNCTIONS)  # none: the state machine's path says what is missing
    if present and chosen not in present:
        named = " and ".join(f"{COORDINATOR_WORDS[name]} (--coordinator {name})" for name in present)
        raise UsageError(f"Stage {stage.name} is coordinated by {named}, not {chosen}: leave --coordinator out.")
    return chosen


def _run_on_stage(
    sagas: list[RequestFile], stage: Stage, human: ProgressObserver | None, timeout: float, coordinator: str | None
) -> RunResult:
    outputs = stage.outputs()
    settings = settings_from_outputs(outputs)
    chosen = stage_coordinator(outputs, stage, coordinator)
    if not settings.fault_injection and (refused := [saga.path for saga in sagas if saga.request.simulate]):
        raise UsageError(
            f"fault injection is off on stage {stage.name}; remove `simulate` from {', '.join(map(shown, refused))}"
        )
    if chosen == DURABLE:
        # Imported only for a durable stage: the state machine's runs start as they did (docs/BENCHMARKS.md).
        from sagatools.deployed.durable_executions import DurableExecutions
        from sagatools.runtest.durable_stage import run_durable_on_stage

        executions = DurableExecutions.of_stage(stage, outputs)
        reader = SagaReader(settings, stage.client("dynamodb"))
        return run_durable_on_stage(sagas, stage, executions, reader, human, timeout)
    arn = state_machine_arn(outputs, stage.region)
    stepfunctions = stage.client("stepfunctions")
    try:
        deployed = stepfunctions.describe_state_machine(stateMachineArn=arn)
    except ClientError as error:
        if error.response["Error"]["Code"] == "StateMachineDoesNotExist":
            raise StageError(
                f"The state machine of stage {stage.name} is not deployed: run ./deploy-stepfunc.sh "
                f"{stage.name} {stage.region}."
            ) from None
        raise StageError(explain(error, stage)) from None
    runner = SagaRunner(
        stepfunctions,
        arn,
        SagaReader(settings, stage.client("dynamodb")),
        poll_seconds=stage.poll_seconds,
        timeout_seconds=timeout,
        observer=human,
    )
    runner.refuse_conflicts(sagas)
    reports = runner.run(sagas)
    return RunResult(reports, runner.histories, json.loads(deployed["definition"]))
