"""The hotel: a room booked for the trip, and given up again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from saga.providers import SimulatedProvider
from saga.spec import StepWork

if TYPE_CHECKING:
    from saga.spec import StepCall

# The hotel chain's reservation system, simulated: it knows a room by the step's key only.
HOTELS = SimulatedProvider("hotel", name="the hotel chain")


def book_room(call: StepCall) -> str:
    """The hotel holds the room under a reference of the trip's: the same on every retry, so a repeated
    booking names the same room (the chain answers a repeated key with its first reservation)."""
    return HOTELS.book(call, f"HOTEL-{call.saga_id}")


def give_up_room(call: StepCall) -> None:
    """The room is given up by the trip's key (never by a reference that may not have arrived); if the booking never
    arrived, the chain keeps the key cancelled, so a late one is refused."""
    HOTELS.cancel(call)


WORK = StepWork(action=book_room, compensation=give_up_room, simulated=HOTELS)
