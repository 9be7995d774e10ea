"""The car: a rental for the trip, from its company or (past the pivot) one of its alternatives."""

from __future__ import annotations

from typing import TYPE_CHECKING

from saga.spec import StepWork

if TYPE_CHECKING:
    from saga.spec import StepCall


def rent_car(call: StepCall) -> str:
    """The company (`call.provider` when an alternative took it) holds the car under the trip's reference."""
    return f"CAR-{call.saga_id}"


def return_car(call: StepCall) -> None:
    """Nothing to ask of the company here: the saga's record of the rental is what is cancelled."""


WORK = StepWork(action=rent_car, compensation=return_car)
