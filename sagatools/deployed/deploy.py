"""deploy-stepfunc.sh: create or update a stage's two state machines (the saga's and the resolution of a
stuck saga, sagatools/asl.py: MACHINES) from statemachine/*.asl.json and the stack's outputs.

    python -m sagatools.deployed.deploy stepfunctions [STAGE [REGION [PROFILE]]] [--dry-run]
    python -m sagatools.deployed.deploy remove-stepfunctions [STAGE [REGION [PROFILE]]]
    python -m sagatools.deployed.deploy prepare-remove [STAGE [REGION [PROFILE]]] [--force]
    python -m sagatools.deployed.deploy describe [STAGE [REGION [PROFILE]]]

Each ASL's `${…}` placeholders are named like the stack's outputs (each step's function ARN,
SagaLogTableName; saga/catalogue.py), so nothing is edited by hand and a second run updates what
the first created.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from saga.catalogue import SAGA_LOG_TABLE_OUTPUT, SAGA_LOG_TABLE_VARIABLE, TABLE_OUTPUTS
from saga.keys import RECORDS_KEY
from sagatools.asl import (
    MACHINES,
    RESOLVE_MACHINE,
    MachineSpec,
    fill_placeholders,
    placeholders,
    reachable_states,
    successors,
)
from sagatools.cli import parsed_arguments
from sagatools.deployed.stage import Stage, StageError, explain, state_machine_arn
from sagatools.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from sagatools.generate.template import DURABLE_FUNCTION_OUTPUT
from sagatools.serverless_config import load_service_config

if TYPE_CHECKING:
    from botocore.client import BaseClient

T = TypeVar("T")


def check_definition(definition: str) -> list[str]:
    """Problems in a rendered definition: leftover placeholders, dangling Next, unreachable states."""
    problems = [f"placeholder ${{{name}}} has no value" for name in sorted(placeholders(definition))]
    try:
        parsed = json.loads(definition)
    except json.JSONDecodeError as error:
        return [*problems, f"not valid JSON: {error}"]
    states = parsed.get("States", {})
    for name, state in states.items():
        problems += [
            f"{name} hands over to {target}, which does not exist"
            for target in successors(state)
            if target not in states
        ]
    problems += [f"{name} can never be entered" for name in sorted(set(states) - reachable_states(parsed))]
    return problems


def _configuration(outputs: dict[str, str], machine: MachineSpec) -> dict[str, Any]:
    return {
        "roleArn": outputs[machine.role_output],
        "loggingConfiguration": {
            "level": "ALL",
            "includeExecutionData": True,
            "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": outputs[machine.log_group_output]}}],
        },
        "tracingConfiguration": {"enabled": True},
    }


# A role created moments before is often not usable yet ("not authorized to access the Log
# Destination", "Neither the global service principal ... is authorized to assume the provided role"):
# IAM is eventually consistent. Try again with backoff for about a minute, then give up with the error.
IAM_RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0)
# UpdateStateMachine is eventually consistent too: wait until a describe returns the new definition.
UPDATE_VISIBLE_WITHIN_SECONDS = 60.0


def _iam_propagating(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    return code in {"AccessDeniedException", "AccessDenied"} or "not authorized" in message


def _while_iam_propagates(call: Callable[[], T], out: TextIO) -> T:
    for delay in (*IAM_RETRY_DELAYS, None):
        try:
            return call()
        except ClientError as error:
            if delay is None or not _iam_propagating(error):
                raise
            reason = error.response.get("Error", {}).get("Message", "access denied")
            print(f"IAM is not ready yet ({reason}); trying again in {delay:g} s", file=out)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _wait_until_visible(client: BaseClient, arn: str, definition: str) -> None:
    deadline = time.monotonic() + UPDATE_VISIBLE_WITHIN_SECONDS
    while client.describe_state_machine(stateMachineArn=arn)["definition"] != definition:
        if time.monotonic() > deadline:
            raise StageError(f"{arn} still shows its old definition after {UPDATE_VISIBLE_WITHIN_SECONDS:g} s.")
        time.sleep(1.0)


def deploy_state_machines(stage: Stage, out: TextIO) -> list[str]:
    """Create each of the stage's state machines, or update it if it exists; returns their ARNs."""
    outputs = stage.outputs()
    return [deploy_state_machine(stage, outputs, machine, out) for machine in MACHINES]


def deploy_state_machine(stage: Stage, outputs: dict[str, str], machine: MachineSpec, out: TextIO) -> str:
    definition = fill_placeholders(outputs, machine.asl_path)
    problems = check_definition(definition)
    if problems:
        raise StageError(f"The rendered definition of the {machine.title} is not deployable: " + "; ".join(problems))
    arn = state_machine_arn(outputs, stage.region, machine)
    client = stage.client("stepfunctions")
    try:
        try:
            client.describe_state_machine(stateMachineArn=arn)
        except ClientError as error:
            if error.response["Error"]["Code"] != "StateMachineDoesNotExist":
                raise
            _while_iam_propagates(
                lambda: client.create_state_machine(
                    name=outputs[machine.name_output],
                    definition=definition,
                    type="STANDARD",
                    tags=[{"key": "stage", "value": stage.name}],
                    **_configuration(outputs, machine),
                ),
                out,
            )
            print(f"Created state machine {arn}", file=out)
        else:
            _while_iam_propagates(
                lambda: client.update_state_machine(
                    stateMachineArn=arn, definition=definition, **_configuration(outputs, machine)
                ),
                out,
            )
            _wait_until_visible(client, arn, definition)
            print(f"Updated state machine {arn}", file=out)
    except (BotoCoreError, ClientError) as error:
        raise StageError(explain(error, stage)) from None
    return arn


def remove_state_machines(stage: Stage, out: TextIO) -> None:
    try:
        outputs = stage.outputs()
    except StageError as error:
        print(f"Nothing to remove: {error}", file=out)
        return
    for machine in MACHINES:
        if machine.name_output not in outputs:
            continue  # a stack deployed before this machine existed
        arn = state_machine_arn(outputs, stage.region, machine)
        try:
            stage.client("stepfunctions").delete_state_machine(stateMachineArn=arn)
        except (BotoCoreError, ClientError) as error:
            raise StageError(explain(error, stage)) from None
        print(f"Deleted state machine {arn}", file=out)


PROTECTED_STAGES = {"prod"}
# Every table of the stack: one per resource of the saga, and the saga log.


def prepare_removal(stage: Stage, force: bool, out: TextIO, err: TextIO, confirm: TextIO | None) -> int:
    """Say what removing the stage deletes; a protected stage needs --force or its name typed, and then
    its tables' deletion protection is turned off so the stack can go. EXIT_OK to go on."""
    try:
        outputs = stage.outputs()
    except StageError as error:
        print(f"Nothing to remove: {error}", file=out)
        return EXIT_OK
    tables = [outputs[key] for key in TABLE_OUTPUTS if key in outputs]
    machines = [outputs[m.name_output] for m in MACHINES if m.name_output in outputs]
    print(f"Removing stage {stage.name} deletes stack {stage.stack_name}: the tables {', '.join(tables)}", file=out)
    # A stage coordinated by the durable function has no state machine (its executions go with the function).
    what = f"and the state machines {', '.join(machines)}" if machines else "and the durable function's executions"
    print(
        f"  (with every one of their {RECORDS_KEY} and the saga log), the functions, roles and log groups, {what}.",
        file=out,
    )
    if stage.name not in PROTECTED_STAGES:
        return EXIT_OK
    if not force:
        if confirm is None or not confirm.isatty():
            print(f"deploy: stage {stage.name} is protected: add --force to remove it.", file=err)
            return EXIT_USAGE
        print(f"Type the stage name ({stage.name}) to delete it: ", end="", file=err, flush=True)
        if confirm.readline().strip() != stage.name:
            print(f"deploy: not confirmed; stage {stage.name} is left as it is.", file=err)
            return EXIT_USAGE
    client = stage.client("dynamodb")
    try:
        for table in tables:
            client.update_table(TableName=table, DeletionProtectionEnabled=False)
            print(f"Deletion protection off for {table}", file=out)
    except (BotoCoreError, ClientError) as error:
        raise StageError(explain(error, stage)) from None
    return EXIT_OK


def dry_run(stage: Stage, out: TextIO, err: TextIO) -> int:
    """Print the rendered definition and check it, deploying nothing (no stack needed)."""
    try:
        outputs = stage.outputs()
        source = f"the outputs of stack {stage.stack_name}"
    except StageError as error:
        outputs = _assumed_outputs(stage)
        source = f"ARNs assumed from serverless.yml and account 000000000000 ({error})"
    definition = fill_placeholders(outputs)
    print(definition, file=out)  # the saga's; the resolution's is checked as well
    problems = check_definition(definition)
    for machine in MACHINES[1:]:
        problems += [f"{machine.title}: {p}" for p in check_definition(fill_placeholders(outputs, machine.asl_path))]
    print(f"Rendered with {source}.", file=err)
    for problem in problems:
        print(f"deploy-stepfunc: {problem}", file=err)
    if not problems:
        print("The definition is complete and every state is reachable; nothing was deployed.", file=err)
    return EXIT_FAILED if problems else EXIT_OK


def _assumed_outputs(stage: Stage) -> dict[str, str]:
    config = load_service_config(stage.name)
    prefix = f"arn:aws:lambda:{stage.region}:000000000000:function:"
    outputs = {spec.step.arn_output: prefix + spec.name for spec in config.functions.values()}
    outputs[SAGA_LOG_TABLE_OUTPUT] = config.environment[SAGA_LOG_TABLE_VARIABLE]
    return outputs


def describe(stage: Stage, out: TextIO) -> None:
    outputs = stage.outputs()
    print(f"Stage {stage.name} in {stage.region}:", file=out)
    if DURABLE_FUNCTION_OUTPUT in outputs:
        # A durable execution is started through a qualified ARN: the alias.
        print(f"  durable function {outputs[DURABLE_FUNCTION_OUTPUT]}", file=out)
    else:
        print(f"  state machine  {state_machine_arn(outputs, stage.region)}", file=out)
    if RESOLVE_MACHINE.name_output in outputs:
        print(f"  resolution     {state_machine_arn(outputs, stage.region, RESOLVE_MACHINE)}", file=out)
    for key in TABLE_OUTPUTS:
        print(f"  {key.removesuffix('Name'):<14} {outputs.get(key)}", file=out)
    print(f"  fault injection {'on' if outputs.get('FaultInjection') == 'true' else 'off'}", file=out)


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    parser = argparse.ArgumentParser(prog="deploy-stepfunc.sh")
    parser.add_argument("command", choices=["stepfunctions", "remove-stepfunctions", "prepare-remove", "describe"])
    parser.add_argument("stage", nargs="?")
    parser.add_argument("region", nargs="?")
    parser.add_argument("profile", nargs="?")
    parser.add_argument("--dry-run", action="store_true", help="print and check the definition, deploy nothing")
    parser.add_argument("--force", action="store_true", help="prepare-remove: remove a protected stage (prod)")
    args = parsed_arguments(parser, argv)
    if isinstance(args, int):
        return args
    try:
        stage = Stage.choose(args.stage, args.region, args.profile)
        print(f"Using {stage.describe()}.", file=err)
        if args.command == "stepfunctions":
            if args.dry_run:
                return dry_run(stage, out, err)
            deploy_state_machines(stage, out)
        elif args.command == "remove-stepfunctions":
            remove_state_machines(stage, out)
        elif args.command == "prepare-remove":
            return prepare_removal(stage, args.force, out, err, sys.stdin if sys.stdin is not None else None)
        else:
            describe(stage, out)
    except StageError as error:
        print(f"deploy-stepfunc: {error}", file=err)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
