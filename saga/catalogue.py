"""Every name a step of the saga goes by, computed from its definition (saga/definition.py).

A step is named in the saga log and `simulate` (book_x), under `functions:` in the Serverless
template (bookX), by its handler (functions/book_x.handler), as a Task state of the ASL (BookX), as
a stack output and ASL placeholder (BookXFunctionArn) and, for a compensation that stays stuck, as
the key of its attention record (ATTENTION#cancel_x) written by its Flag state. Its resource names
a table (X_TABLE, XTableName), its provider's ledger (X_PROVIDER_TABLE, XProviderTableName) and a role.
The conventions are here and only here; everything else asks this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from saga.definition import SAGA
from saga.spec import StepKind

if TYPE_CHECKING:
    from saga.providers import SimulatedProvider
    from saga.spec import RetryPolicy, StepSpec, Verbs

ATTENTION_PREFIX = "ATTENTION#"
# The saga log table: the environment variable its functions read, and the stack output naming it.
SAGA_LOG_TABLE_VARIABLE = "SAGA_LOG_TABLE"
SAGA_LOG_TABLE_OUTPUT = "SagaLogTableName"


class Action(StrEnum):
    REQUEST = "request"  # books a resource (book_x)
    COMPENSATION = "compensation"  # undoes it (cancel_x)


def pascal(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


@dataclass(frozen=True)
class ResourceNames:
    """What one resource of the saga is called in the template, the environment and the stack."""

    name: str  # as in the request and `records` of a result (snake_case)

    @property
    def title(self) -> str:
        return pascal(self.name)

    @property
    def table_variable(self) -> str:
        """The environment variable that names its table, for its functions."""
        return f"{self.name.upper()}_TABLE"

    @property
    def table_output(self) -> str:
        """The stack output that names its table."""
        return f"{self.title}TableName"

    @property
    def table_resource(self) -> str:
        """The table's CloudFormation logical id."""
        return f"{self.title}{pascal(SAGA.records)}Table"

    @property
    def table_suffix(self) -> str:
        """Its table is <service>-<stage>-<suffix>."""
        return f"{self.name.replace('_', '-')}-{SAGA.records}"

    @property
    def provider_table_variable(self) -> str:
        """The environment variable that names its provider's ledger (a simulated provider: saga/providers.py)."""
        return f"{self.name.upper()}_PROVIDER_TABLE"

    @property
    def provider_table_output(self) -> str:
        """The stack output that names its provider's ledger."""
        return f"{self.title}ProviderTableName"

    @property
    def provider_table_resource(self) -> str:
        """Its provider's ledger's CloudFormation logical id."""
        return f"{self.title}ProviderTable"

    @property
    def provider_table_suffix(self) -> str:
        """Its provider's ledger is <service>-<stage>-<suffix>."""
        return f"{self.name.replace('_', '-')}-provider"

    @property
    def role_resource(self) -> str:
        """The CloudFormation logical id of the role its request and compensation share."""
        return f"{self.title}StepsRole"

    @property
    def role_suffix(self) -> str:
        return f"{self.name.replace('_', '-')}-steps"


@dataclass(frozen=True)
class Step:
    """A request or a compensation of the saga, with every name it goes by."""

    spec: StepSpec
    action: Action
    position: int  # 1-based place of its resource in the saga's order

    @property
    def resource(self) -> str:
        return self.spec.resource

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.spec.resource)

    @property
    def verbs(self) -> Verbs:
        """Its step's own verbs, or the saga's."""
        return self.spec.verbs or SAGA.verbs

    @property
    def verb(self) -> str:
        return self.verbs.request if self.action is Action.REQUEST else self.verbs.compensation

    @property
    def name(self) -> str:
        """Its name in the saga log, `simulate` and step results: book_x."""
        return f"{self.verb}_{self.resource}"

    @property
    def is_compensation(self) -> bool:
        return self.action is Action.COMPENSATION

    @property
    def is_retriable(self) -> bool:
        """A request after the pivot: in forward recovery it is finished, never undone by the saga."""
        return not self.is_compensation and self.spec.kind is StepKind.RETRIABLE

    @property
    def retry(self) -> RetryPolicy:
        return self.spec.compensation_retry if self.is_compensation else self.spec.request_retry

    @property
    def function(self) -> str:
        """Its key under `functions:` in the Serverless template: bookX."""
        return f"{self.verb}{self.names.title}"

    @property
    def module(self) -> str:
        """The Python module of its handler: functions.book_x."""
        return f"functions.{self.name}"

    @property
    def handler(self) -> str:
        """The Serverless template's `handler:`."""
        return f"functions/{self.name}.handler"

    @property
    def handler_file(self) -> str:
        """Its handler module, relative to the project (generated by ./build.sh generate)."""
        return f"functions/{self.name}.py"

    @property
    def state(self) -> str:
        """The ASL Task state that first runs it: BookX."""
        return f"{self.verb.capitalize()}{self.names.title}"

    @property
    def arn_output(self) -> str:
        """The stack output, and the ASL placeholder, of its function's ARN."""
        return f"{self.state}FunctionArn"

    @property
    def function_resource(self) -> str:
        """The function's CloudFormation logical id, as the Serverless Framework names it."""
        return f"{self.function[0].upper()}{self.function[1:]}LambdaFunction"

    @property
    def attention_key(self) -> str | None:
        """The sort key of the record written when this compensation stays stuck, or when this request
        past the pivot cannot be finished."""
        return f"{ATTENTION_PREFIX}{self.name}" if self.is_compensation or self.is_retriable else None

    @property
    def failed_state(self) -> str | None:
        """The ASL Choice after this request past the pivot failed: finish forward, or roll back."""
        return f"{self.state}Failed" if self.is_retriable else None

    @property
    def unfinished_state(self) -> str | None:
        """The ASL state that records that this request past the pivot is left to do."""
        return f"Flag{self.names.title}Unfinished" if self.is_retriable else None

    @property
    def stuck_state(self) -> str | None:
        """The ASL state that writes that record."""
        if not self.is_compensation:
            return None
        return f"Flag{self.names.title}{pascal(self.verbs.compensation_noun)}Stuck"

    @property
    def after_stuck_state(self) -> str | None:
        """The ASL state that runs this compensation after a later one stayed stuck (none for the
        compensation that runs first)."""
        if not self.is_compensation or self.position == len(SAGA.steps):
            return None
        return f"{self.state}AfterStuck"

    @property
    def close_state(self) -> str | None:
        """The resolution's state that closes this step's attention record once the saga is settled."""
        if self.is_compensation:
            return f"Close{self.names.title}Record"
        return f"Close{self.names.title}UnfinishedRecord" if self.is_retriable else None

    @property
    def keep_state(self) -> str | None:
        """The resolution's state that keeps this step's attention record open with the error it met again."""
        if self.is_compensation:
            return f"Keep{self.names.title}RecordOpen"
        return f"Keep{self.names.title}UnfinishedRecordOpen" if self.is_retriable else None

    @property
    def states(self) -> tuple[str, ...]:
        """Every ASL Task state of the saga that invokes this step's function."""
        return (self.state,) + ((self.after_stuck_state,) if self.after_stuck_state else ())


# The requests in the order the saga makes them; compensations run in the reverse order.
REQUESTS: tuple[Step, ...] = tuple(
    Step(spec, Action.REQUEST, position) for position, spec in enumerate(SAGA.steps, start=1)
)
COMPENSATIONS: tuple[Step, ...] = tuple(
    Step(request.spec, Action.COMPENSATION, request.position) for request in reversed(REQUESTS)
)
STEPS: tuple[Step, ...] = REQUESTS + COMPENSATIONS
# The requests after the pivot, in order: what forward recovery finishes.
RETRIABLES: tuple[Step, ...] = tuple(step for step in REQUESTS if step.is_retriable)
RESOURCES: tuple[str, ...] = tuple(spec.resource for spec in SAGA.steps)  # in request order
# As `simulate` lists them: the requests, then their compensations, both in request order.
STEP_NAMES: tuple[str, ...] = tuple(step.name for step in REQUESTS + COMPENSATIONS[::-1])


def step(action: Action, resource: str) -> Step:
    return next(s for s in STEPS if s.action is action and s.resource == resource)


def request_of(resource: str) -> Step:
    return step(Action.REQUEST, resource)


def compensation_of(resource: str) -> Step:
    return step(Action.COMPENSATION, resource)


def simulated_provider(resource: str) -> SimulatedProvider | None:
    """The simulated provider `resource`'s work calls (its StepWork's `simulated`), if it calls one."""
    work = request_of(resource).spec.work
    return work.simulated if work else None


def by_name(name: str) -> Step | None:
    return next((s for s in STEPS if s.name == name), None)


def by_state(state: str) -> Step | None:
    """The step an ASL Task state of the saga invokes (None for the other states)."""
    return next((s for s in STEPS if state in s.states), None)


# Every stack output that names a table: each resource's records, each resource's provider's ledger, then the
# saga log.
TABLE_OUTPUTS = (
    *(ResourceNames(resource).table_output for resource in RESOURCES),
    *(ResourceNames(resource).provider_table_output for resource in RESOURCES),
    SAGA_LOG_TABLE_OUTPUT,
)
