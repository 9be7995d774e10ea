"""The state machine definition: loading it, filling its `${…}` placeholders, and walking its graph."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saga.definition import SAGA
from saga.errors import SagaNeedsAttention, SagaRolledBack
from sagatools.project import PROJECT_ROOT

STATE_MACHINE_SUFFIX = SAGA.name
# The Errors of the saga's Fail states: a clean rollback, and a saga left for an operator.
ROLLED_BACK_ERROR = SagaRolledBack.__name__
NEEDS_ATTENTION_ERROR = SagaNeedsAttention.__name__


@dataclass(frozen=True)
class MachineSpec:
    """One state machine of the stage: its ASL file and the stack outputs deploy-stepfunc reads for it."""

    title: str
    suffix: str  # <service>-<stage>-<suffix> is its name; statemachine/<suffix>.asl.json its definition
    name_output: str
    role_output: str
    log_group_output: str

    @property
    def asl_path(self) -> Path:
        return PROJECT_ROOT / "statemachine" / f"{self.suffix}.asl.json"


SAGA_MACHINE = MachineSpec(
    SAGA.name.replace("-", " "),
    STATE_MACHINE_SUFFIX,
    "StateMachineName",
    "StateMachineRoleArn",
    "StateMachineLogGroupArn",
)
RESOLVE_MACHINE = MachineSpec(
    "resolution of stuck sagas",
    "resolve-stuck",
    "ResolveStateMachineName",
    "ResolveStateMachineRoleArn",
    "ResolveStateMachineLogGroupArn",
)
ASL_PATH = SAGA_MACHINE.asl_path
RESOLVE_ASL_PATH = RESOLVE_MACHINE.asl_path
MACHINES = (SAGA_MACHINE, RESOLVE_MACHINE)
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def fill_placeholders(substitutions: dict[str, str], path: Path = ASL_PATH) -> str:
    """The ASL with its placeholders filled in; one without a value is left as it is (and reported
    by `placeholders` on the result)."""
    return _PLACEHOLDER.sub(
        lambda match: substitutions.get(match.group(1), match.group(0)), path.read_text(encoding="utf-8")
    )


def load_definition(path: Path = ASL_PATH) -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return definition


def successors(state: dict[str, Any]) -> list[str]:
    """Every state a state can hand over to: Next, Catch targets, Choice branches and Default."""
    targets = [state["Next"]] if "Next" in state else []
    targets += [catcher["Next"] for catcher in state.get("Catch", [])]
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    if "Default" in state:
        targets.append(state["Default"])
    return targets


def reachable_states(definition: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    pending = [definition["StartAt"]]
    while pending:
        name = pending.pop()
        if name in seen or name not in definition["States"]:
            continue
        seen.add(name)
        pending.extend(successors(definition["States"][name]))
    return seen
