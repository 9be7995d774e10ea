"""The flight: seats ticketed for the trip (the pivot: once ticketed, a forward saga finishes the trip)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from saga.spec import StepWork

if TYPE_CHECKING:
    from saga.spec import StepCall


def ticket_seats(call: StepCall) -> str:
    """The airline tickets the seats under a reference of the trip's, the same on every retry."""
    return f"FLIGHT-{call.saga_id}"


def refund_seats(call: StepCall) -> None:
    """Nothing to ask of the airline here: the saga's record of the tickets is what is cancelled."""


WORK = StepWork(action=ticket_seats, compensation=refund_seats)
