"""Pydantic models at every edge: the trip request, a step's invocation, and what a step returns."""

from __future__ import annotations

import json
import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from aws_lambda_powertools.utilities.parser import parse
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from saga.catalogue import Action, Resource, StepName, by_name
from saga.errors import InvalidTripRequest

_Model = TypeVar("_Model", bound=BaseModel)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> date:
    # pydantic's own date parsing also takes timestamps and datetimes; the contract is YYYY-MM-DD.
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a calendar date") from None


def _matching(pattern: str, rule: str) -> BeforeValidator:
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str) and not compiled.fullmatch(value):
            raise ValueError(rule)
        return value

    return BeforeValidator(check)


def _readable(value: Any) -> Any:
    # A name is shown to people: something to read, and nothing that could steer a terminal.
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("must not be empty or only spaces")
        if any(not character.isprintable() for character in value):
            raise ValueError("must not hold control characters")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200), BeforeValidator(_readable)]
AirportCode = Annotated[str, _matching(r"[A-Z]{3}", "must be a three-letter airport code such as SEA")]
TripId = Annotated[str, _matching(r"[A-Za-z0-9_-]{1,64}", "must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -")]
Email = Annotated[
    str,
    StringConstraints(max_length=200),
    _matching(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+", "must be an email address"),
]


_TRANSIENT = re.compile(r"transient:([1-5])")


class _Strict(BaseModel):
    # Fields with an alias (`from`, `return`) are read by that name only: `from_` is an unknown field.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=False, validate_by_alias=True)


class Traveller(_Strict):
    name: Text
    email: Email


class HotelRequest(_Strict):
    name: Text
    check_in: IsoDate
    check_out: IsoDate

    @field_validator("check_out")
    @classmethod
    def _after_check_in(cls, check_out: date, info: ValidationInfo) -> date:
        check_in = info.data.get("check_in")
        if check_in is not None and check_out <= check_in:
            raise ValueError("must be after check_in")
        return check_out


class FlightRequest(_Strict):
    from_: AirportCode = Field(alias="from")
    to: AirportCode
    depart: IsoDate
    return_: IsoDate | None = Field(default=None, alias="return")

    @field_validator("to")
    @classmethod
    def _differs_from_origin(cls, to: str, info: ValidationInfo) -> str:
        if to == info.data.get("from_"):
            raise ValueError("must differ from 'from'")
        return to

    @field_validator("return_")
    @classmethod
    def _not_before_depart(cls, return_: date | None, info: ValidationInfo) -> date | None:
        depart = info.data.get("depart")
        if return_ is not None and depart is not None and return_ < depart:
            raise ValueError("must not be before depart")
        return return_


class CarRequest(_Strict):
    company: Text
    pick_up: IsoDate
    drop_off: IsoDate

    @field_validator("drop_off")
    @classmethod
    def _not_before_pick_up(cls, drop_off: date, info: ValidationInfo) -> date:
        pick_up = info.data.get("pick_up")
        if pick_up is not None and drop_off < pick_up:
            raise ValueError("must not be before pick_up")
        return drop_off


class Fault(_Strict):
    """One injected fault, parsed from a `simulate` value."""

    mode: Literal["fail", "crash_after_write", "transient"]
    failing_attempts: int = 0  # for transient: the first N attempts fail

    @classmethod
    def parse(cls, step: str, value: str) -> Fault:
        found = by_name(step)
        is_booking = found is not None and found.action is Action.BOOK
        if value == "fail":
            return cls(mode="fail")
        if value == "crash_after_write" and is_booking:
            return cls(mode="crash_after_write")
        if match := _TRANSIENT.fullmatch(value):
            return cls(mode="transient", failing_attempts=int(match.group(1)))
        allowed = "fail, crash_after_write, transient:1..5" if is_booking else "fail, transient:1..5"
        raise ValueError(f"{value!r} is not a fault for {step} (allowed: {allowed})")


class TripRequest(_Strict):
    """The request that starts a saga; the same model validates it in the CLI and in every handler."""

    trip_id: TripId
    traveller: Traveller
    hotel: HotelRequest
    flight: FlightRequest
    car: CarRequest
    simulate: dict[StepName, Annotated[str, StringConstraints(max_length=32)]] | None = None

    @field_validator("simulate")
    @classmethod
    def _known_faults(cls, simulate: dict[str, str] | None) -> dict[str, str] | None:
        for step, value in (simulate or {}).items():
            Fault.parse(step, value)
        return simulate

    def fault_for(self, step: str) -> Fault | None:
        value = next((mode for name, mode in (self.simulate or {}).items() if name == step), None)
        return Fault.parse(step, value) if value is not None else None

    def details_for(self, resource: Resource) -> dict[str, Any]:
        """The section of the request a resource's booking stores, JSON-ready."""
        section: BaseModel = getattr(self, resource.value)
        return section.model_dump(mode="json", by_alias=True, exclude_none=True)


class StepInvocation(_Strict):
    """What the state machine passes to a step (see the Parameters of each Task in the ASL)."""

    request: TripRequest
    retry_count: int = Field(ge=0, le=100)  # $$.State.RetryCount, 0 on the first attempt
    execution_id: str | None = Field(default=None, max_length=2048)

    @property
    def attempt(self) -> int:
        return self.retry_count + 1


class BookingStatus(StrEnum):
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"


class StepResult(_Strict):
    """What a step returns to the state machine."""

    trip_id: str
    step: str
    resource: Resource
    status: BookingStatus
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
        raise InvalidTripRequest(describe_validation_error(error)) from None


def parse_trip_request(data: Any) -> TripRequest:
    """The request, validated; InvalidTripRequest naming every broken rule otherwise."""
    return _parse(data, TripRequest)


def parse_step_invocation(event: Any) -> StepInvocation:
    """A step's event, validated (the request inside it included)."""
    return _parse(event, StepInvocation)
