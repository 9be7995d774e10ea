"""Pydantic models at every edge: the saga's request, a step's invocation, and what a step returns.

The request is composed from the saga's definition: its id, one section per step (the models of
the app's requests.py) and the optional `simulate` faults, keyed by the steps' names.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from aws_lambda_powertools.utilities.parser import parse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
)

from saga.catalogue import STEP_NAMES, by_name
from saga.definition import SAGA
from saga.keys import ID_FIELD, SagaKeyed
from saga.named_errors import RequestInvalid
from saga.request_fields import MAX_ALTERNATIVES, SagaId, Strict
from saga.spec import FORWARD_DEADLINE_SECONDS

_Model = TypeVar("_Model", bound=BaseModel)
_TRANSIENT = re.compile(r"transient:([1-9][0-9]?)")
_FAIL_FIRST = re.compile(r"fail:([1-9][0-9]?)")
# transient:N, by recovery: backward recovery's steps give up after a few attempts; forward recovery
# retries past the pivot until its deadline.
MOST_TRANSIENT = {"backward": 5, "forward": 20}


class Recovery(Strict):
    """How the saga recovers from a failure past its pivot: undo everything (backward, the default) or
    finish the saga (forward: retry, or try the alternatives, until the deadline)."""

    mode: Literal["backward", "forward"] = "backward"
    # A whole number of seconds, as JSON writes it: 600.0, "600" and true are refused.
    deadline_seconds: Annotated[
        int, Field(strict=True, ge=FORWARD_DEADLINE_SECONDS[0], le=FORWARD_DEADLINE_SECONDS[2])
    ] = FORWARD_DEADLINE_SECONDS[1]

    @property
    def forward(self) -> bool:
        return self.mode == "forward"


class Fault(Strict):
    """One injected fault, parsed from a `simulate` value."""

    # late: the provider takes the request and books it only after the compensation for its key reached it
    # (saga/providers.py); the step never hears its answer.
    mode: Literal["fail", "crash_after_write", "late", "transient"]
    failing_attempts: int = 0  # for transient: the first N attempts fail
    refusing_providers: int | None = None  # for fail:K, the first K providers refuse (fail: all of them)

    @classmethod
    def parse(cls, step: str, value: str, recovery: str = "backward") -> Fault:
        found = by_name(step)
        is_request = found is not None and not found.is_compensation
        has_alternatives = is_request and found is not None and found.spec.alternatives_for is not None
        most = MOST_TRANSIENT[recovery]
        if value == "fail":
            return cls(mode="fail")
        if value == "crash_after_write" and is_request:
            return cls(mode="crash_after_write")
        if value == "late" and is_request:
            return cls(mode="late")
        if (match := _TRANSIENT.fullmatch(value)) and int(match.group(1)) <= most:
            return cls(mode="transient", failing_attempts=int(match.group(1)))
        if (match := _FAIL_FIRST.fullmatch(value)) and has_alternatives and int(match.group(1)) <= MAX_ALTERNATIVES + 1:
            return cls(mode="fail", refusing_providers=int(match.group(1)))
        allowed = ["fail", *([f"fail:1..{MAX_ALTERNATIVES + 1}"] if has_alternatives else [])]
        allowed += [*(["crash_after_write", "late"] if is_request else []), f"transient:1..{most}"]
        forward_possible = SAGA.pivot is not None and recovery != "forward"
        hint = f"; transient:1..{MOST_TRANSIENT['forward']} in forward recovery" if forward_possible else ""
        raise ValueError(f"{value!r} is not a fault for {step} (allowed: {', '.join(allowed)}{hint})")


class SagaRequest(Strict):
    """The request that starts a saga; the same model validates it in the CLI and in every handler.

    Its fields are composed from the saga's definition (`RequestModel`): the id, the shared
    sections, one section per step, `simulate`."""

    if TYPE_CHECKING:  # declared by `RequestModel`, in the order a request is written
        saga_id: str
        simulate: dict[str, str] | None

    @field_validator("simulate", check_fields=False)
    @classmethod
    def _known_faults(cls, simulate: dict[str, str] | None, info: ValidationInfo) -> dict[str, str] | None:
        recovery = info.data.get("recovery")
        mode = recovery.mode if isinstance(recovery, Recovery) else "backward"
        for step, value in (simulate or {}).items():
            Fault.parse(step, value, mode)
        return simulate

    @property
    def recovery_mode(self) -> Recovery:
        """The request's recovery (backward when it says none, or when the saga has no pivot)."""
        recovery = getattr(self, "recovery", None)
        return recovery if isinstance(recovery, Recovery) else Recovery()

    def fault_for(self, step: str) -> Fault | None:
        value = next((mode for name, mode in (self.simulate or {}).items() if name == step), None)
        return Fault.parse(step, value, self.recovery_mode.mode) if value is not None else None

    def details_for(self, resource: str) -> dict[str, Any]:
        """The section of the request a resource's record stores, JSON-ready."""
        section: BaseModel = getattr(self, resource)
        return section.model_dump(mode="json", by_alias=True, exclude_none=True)


# `simulate` takes only the saga's step names (book_x, cancel_x).
_StepName = Literal[STEP_NAMES]  # type: ignore[valid-type]
_SECTIONS: dict[str, Any] = {
    name: (model, ...) for name, model in {**SAGA.sections, **{s.resource: s.request for s in SAGA.steps}}.items()
}
# Only a saga with a pivot can recover forward; `recovery` is an unknown field of any other.
_RECOVERY: dict[str, Any] = {"recovery": (Recovery, Recovery())} if SAGA.pivot is not None else {}
RequestModel: type[SagaRequest] = create_model(
    "SagaRequest",
    __base__=SagaRequest,
    saga_id=(SagaId, Field(alias=ID_FIELD)),  # written as the app's id field
    **_SECTIONS,
    **_RECOVERY,
    simulate=(dict[_StepName, Annotated[str, StringConstraints(max_length=32)]] | None, None),
)


class StepInvocation(Strict):
    """What the state machine passes to a step (see the Parameters of each Task in the ASL)."""

    if TYPE_CHECKING:
        request: SagaRequest
    else:
        request: RequestModel
    retry_count: int = Field(ge=0, le=10_000)  # $$.State.RetryCount, 0 on the first attempt
    execution_id: str | None = Field(default=None, max_length=2048)
    # $$.State.EnteredTime, for a step past the pivot: forward recovery's deadline runs from there.
    entered_at: str | None = Field(default=None, max_length=64)

    @property
    def attempt(self) -> int:
        return self.retry_count + 1


class RecordStatus(StrEnum):
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"


class StepResult(SagaKeyed):
    """What a step returns to the state machine."""

    model_config = ConfigDict(extra="forbid")

    step: str
    resource: str
    status: RecordStatus
    reference: str
    attempt: int
    already_done: bool = False  # a retry or replay found its work done


def _field_name(part: str | int) -> str:
    """A field name as it can be shown on one line: quoted if odd, cut if long."""
    name = str(part)
    if len(name) > 40:
        name = name[:37] + "..."
    return name if name.isprintable() and name.strip() == name and name else json.dumps(name)


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One line per broken rule, each naming the field (dotted, as written in the JSON)."""
    lines = []
    for item in error.errors(include_url=False):
        field = ".".join(_field_name(part) for part in item["loc"] if part != "[key]") or "request"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{prefix}{field}: {message}")
    return "\n".join(lines)


def _parse(data: Any, model: type[_Model]) -> _Model:
    try:
        return parse(event=data, model=model)
    except ValidationError as error:
        raise RequestInvalid(describe_validation_error(error)) from None


def parse_request(data: Any) -> SagaRequest:
    """The request, validated; the app's RequestInvalid naming every broken rule otherwise."""
    return _parse(data, RequestModel)


def parse_step_invocation(event: Any) -> StepInvocation:
    """A step's event, validated (the request inside it included)."""
    return _parse(event, StepInvocation)
