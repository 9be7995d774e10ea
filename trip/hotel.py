"""The hotel: a room booked for the trip, and given up again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from saga.spec import StepWork

if TYPE_CHECKING:
    from saga.spec import StepCall


def book_room(call: StepCall) -> str:
    """The hotel holds the room under a reference of the trip's: the same on every retry, so a repeated
    booking names the same room."""
    return f"HOTEL-{call.saga_id}"


def give_up_room(call: StepCall) -> None:
    """Nothing to ask of the hotel here: the saga's record of the room is what is cancelled (or, if the booking
    never arrived, left as a tombstone that refuses it)."""


WORK = StepWork(action=book_room, compensation=give_up_room)
