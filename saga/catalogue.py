"""Every name each of the six steps goes by, written out once.

A step is named in the saga log and `simulate` (book_hotel), under `functions:` in serverless.yml
(bookHotel), by its handler (functions/book_hotel.handler), as a Task state of the ASL (BookHotel),
as a stack output and ASL placeholder (BookHotelFunctionArn) and, for a compensation that stays
stuck, as the key of its attention record (ATTENTION#cancel_hotel). Everything else reads them from
here; tests/test_catalogue.py checks the ASL and serverless.yml against this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Resource(StrEnum):
    HOTEL = "hotel"
    FLIGHT = "flight"
    CAR = "car"


class Action(StrEnum):
    BOOK = "book"
    CANCEL = "cancel"


StepName = Literal["book_hotel", "book_flight", "book_car", "cancel_hotel", "cancel_flight", "cancel_car"]
ATTENTION_PREFIX = "ATTENTION#"


@dataclass(frozen=True)
class Step:
    name: StepName  # saga log, `simulate`, step results
    action: Action
    resource: Resource
    function: str  # key under `functions:` in serverless.yml
    handler: str  # serverless.yml `handler:`
    state: str  # the ASL Task state that first runs it
    arn_output: str  # stack output, and the ASL placeholder of the function's ARN
    attention_key: str | None = None  # sort key of the record written when this compensation stays stuck
    stuck_state: str | None = None  # the ASL state that writes that record
    after_stuck_state: str | None = None  # the ASL state that runs it after a later compensation stayed stuck

    @property
    def is_compensation(self) -> bool:
        return self.action is Action.CANCEL

    @property
    def function_resource(self) -> str:
        """The function's CloudFormation logical id, as the Serverless Framework names it."""
        return f"{self.function[0].upper()}{self.function[1:]}LambdaFunction"

    @property
    def states(self) -> tuple[str, ...]:
        """Every ASL Task state that invokes this step's function."""
        return (self.state,) + ((self.after_stuck_state,) if self.after_stuck_state else ())


BOOK_HOTEL = Step(
    "book_hotel", Action.BOOK, Resource.HOTEL, "bookHotel", "functions/book_hotel.handler", "BookHotel",
    "BookHotelFunctionArn",
)  # fmt: skip
BOOK_FLIGHT = Step(
    "book_flight", Action.BOOK, Resource.FLIGHT, "bookFlight", "functions/book_flight.handler", "BookFlight",
    "BookFlightFunctionArn",
)  # fmt: skip
BOOK_CAR = Step(
    "book_car", Action.BOOK, Resource.CAR, "bookCar", "functions/book_car.handler", "BookCar",
    "BookCarFunctionArn",
)  # fmt: skip
CANCEL_HOTEL = Step(
    "cancel_hotel", Action.CANCEL, Resource.HOTEL, "cancelHotel", "functions/cancel_hotel.handler", "CancelHotel",
    "CancelHotelFunctionArn", "ATTENTION#cancel_hotel", "FlagHotelCancellationStuck", "CancelHotelAfterStuck",
)  # fmt: skip
CANCEL_FLIGHT = Step(
    "cancel_flight", Action.CANCEL, Resource.FLIGHT, "cancelFlight", "functions/cancel_flight.handler",
    "CancelFlight", "CancelFlightFunctionArn", "ATTENTION#cancel_flight", "FlagFlightCancellationStuck",
    "CancelFlightAfterStuck",
)  # fmt: skip
CANCEL_CAR = Step(
    "cancel_car", Action.CANCEL, Resource.CAR, "cancelCar", "functions/cancel_car.handler", "CancelCar",
    "CancelCarFunctionArn", "ATTENTION#cancel_car", "FlagCarCancellationStuck",
)  # fmt: skip

# The requests in the order the saga makes them; compensations run in the reverse order.
BOOKINGS: tuple[Step, ...] = (BOOK_HOTEL, BOOK_FLIGHT, BOOK_CAR)
COMPENSATIONS: tuple[Step, ...] = (CANCEL_CAR, CANCEL_FLIGHT, CANCEL_HOTEL)
STEPS: tuple[Step, ...] = BOOKINGS + COMPENSATIONS


def step(action: Action, resource: Resource) -> Step:
    return next(s for s in STEPS if s.action is action and s.resource is resource)


def by_name(name: str) -> Step | None:
    return next((s for s in STEPS if s.name == name), None)


def by_state(state: str) -> Step | None:
    """The step an ASL Task state invokes (None for the other states)."""
    return next((s for s in STEPS if state in s.states), None)


def compensation_of(booking: Step) -> Step:
    return step(Action.CANCEL, booking.resource)
