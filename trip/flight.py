"""The flight: seats ticketed for the trip (the pivot: once ticketed, a forward saga finishes the trip)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from saga.providers import SimulatedProvider
from saga.spec import StepWork

if TYPE_CHECKING:
    from saga.spec import StepCall

# The airline's reservation system, simulated: it knows the seats by the step's key only.
AIRLINE = SimulatedProvider("flight", name="the airline")


def ticket_seats(call: StepCall) -> str:
    """The airline tickets the seats under a reference of the trip's, the same on every retry."""
    return AIRLINE.book(call, f"FLIGHT-{call.saga_id}")


def refund_seats(call: StepCall) -> None:
    """The seats are refunded by the trip's key; a key the airline never ticketed stays refused from now on."""
    AIRLINE.cancel(call)


WORK = StepWork(action=ticket_seats, compensation=refund_seats, simulated=AIRLINE)
