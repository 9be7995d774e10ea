"""What the operator reads of a stage: a saga's executions (by its state machines or its durable function), records,
saga log and attention records."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from saga.keys import ID_FIELD, SagaKeyed
from saga.models import RecordStatus
from saga.saga_log import AttentionRecord, AttentionState, LogEntry
from sagatools.asl import RESOLVE_MACHINE
from sagatools.attention.coordinators import Coordinator, DurableFunction, StateMachines
from sagatools.cli import report_dir
from sagatools.deployed.stage import Stage, StageError, settings_from_outputs, state_machine_arn
from sagatools.generate.template import DURABLE_FUNCTION_OUTPUT
from sagatools.results import Outcome, SagaReader, outcome_of, resolution_outcome_of
from sagatools.view.html_page import page_path

NOTHING_OPEN = "NOTHING_OPEN"  # a saga that never needed attention


class UnknownSaga(Exception):
    """No saga ran under this saga id on the stage."""


class Execution(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    arn: str
    status: str
    outcome: Outcome | None = None  # the saga's (COMMITTED, ...) or a resolution's (RESOLVED, NEEDS_ATTENTION)
    started: str | None = None
    report: str | None = None


class SagaView(SagaKeyed):
    """One saga as `show` and `resolve --json` give it."""

    model_config = ConfigDict(frozen=False)

    outcome: str
    executions: list[Execution]
    attention: list[AttentionRecord]
    records: dict[str, RecordStatus | None]
    saga_log: list[LogEntry] = Field(default_factory=list)


def open_records(records: list[AttentionRecord]) -> list[AttentionRecord]:
    return [record for record in records if record.attention is AttentionState.OPEN]


def resolution_name(saga_id: str, number: int, limit: int = StateMachines.name_limit) -> str:
    """The name of the saga's `number`th resolution: <saga_id>-resolve-<n>, within the coordinator's `limit` of an
    execution's name. Longer (a long saga id on the durable function, whose names are shorter than a state machine's),
    the id is cut and a digest of it keeps the name the saga's own."""
    suffix = f"-resolve-{number}"
    if len(saga_id) + len(suffix) <= limit:
        return f"{saga_id}{suffix}"
    digest = hashlib.sha256(saga_id.encode()).hexdigest()[:12]
    return f"{saga_id[: limit - len(suffix) - len(digest) - 1]}-{digest}{suffix}"


@dataclass
class StageView:
    """What the operator reaches on a stage: its tables, and where its sagas and their resolutions run (its state
    machines, or its durable function)."""

    stage: Stage
    reader: SagaReader
    coordinator: Coordinator

    @classmethod
    def open(cls, stage: Stage) -> StageView:
        outputs = stage.outputs()
        coordinator: Coordinator
        if RESOLVE_MACHINE.name_output in outputs:
            coordinator = StateMachines(
                stage.client("stepfunctions"),
                saga_machine=state_machine_arn(outputs, stage.region),
                resolve_machine=state_machine_arn(outputs, stage.region, RESOLVE_MACHINE),
                poll_seconds=stage.poll_seconds,
            )
        elif DURABLE_FUNCTION_OUTPUT in outputs:
            from sagatools.deployed.durable_executions import DurableExecutions

            coordinator = DurableFunction(DurableExecutions.of_stage(stage, outputs), poll_seconds=stage.poll_seconds)
        else:
            raise StageError(f"Stage {stage.name} has no resolution state machine: redeploy it with ./build.sh deploy.")
        return cls(
            stage=stage,
            reader=SagaReader(settings_from_outputs(outputs), stage.client("dynamodb")),
            coordinator=coordinator,
        )

    def saga_execution(self, saga_id: str) -> dict[str, Any] | None:
        """The saga's own execution (a resolution takes its request)."""
        return self.coordinator.saga(saga_id)

    def records(self, include_resolved: bool) -> list[AttentionRecord]:
        """Every saga's attention records (open ones, and closed ones too if asked), oldest first."""
        states = [AttentionState.OPEN] + ([AttentionState.RESOLVED] if include_resolved else [])
        found = [record for state in states for record in self.reader.saga_log.attention_records(state)]
        return sorted(found, key=lambda record: record.at)

    def executions(self, saga_id: str) -> list[Execution]:
        """The saga's execution, then every resolution of the saga, in order."""
        found = []
        saga = self.saga_execution(saga_id)
        if saga is not None:
            found.append(_execution(saga_id, saga, outcome_of))
        number = 1
        limit = self.coordinator.name_limit
        while (resolution := self.coordinator.resolution(name := resolution_name(saga_id, number, limit))) is not None:
            found.append(_execution(name, resolution, resolution_outcome_of))
            number += 1
        return found

    def saga(self, saga_id: str) -> SagaView:
        executions = self.executions(saga_id)
        log, attention = self.reader.saga_log.read(saga_id)
        if not executions and not log and not attention:
            raise UnknownSaga(f"no saga ran under {ID_FIELD} {saga_id} on stage {self.stage.name}")
        return SagaView(
            saga_id=saga_id,
            outcome=Outcome.NEEDS_ATTENTION.value
            if open_records(attention)
            else (Outcome.RESOLVED.value if attention else NOTHING_OPEN),
            executions=[_with_page(saga_id, execution) for execution in executions],
            attention=attention,
            records=self.reader.records(saga_id),
            saga_log=log,
        )


def _execution(
    name: str, description: dict[str, Any], outcome: Callable[[str, str | None], Outcome | None]
) -> Execution:
    started = description.get("startDate")
    return Execution(
        name=name,
        arn=description["executionArn"],
        status=description["status"],
        outcome=outcome(description["status"], description.get("error")),
        started=started.isoformat() if started is not None else None,
    )


def _with_page(saga_id: str, execution: Execution) -> Execution:
    # The saga's execution is named by the saga id; every other one of the saga is a resolution.
    page = page_path(report_dir(), execution.name, "Saga" if execution.name == saga_id else "Resolution")
    return execution.model_copy(update={"report": str(page)}) if page.exists() else execution
