"""The car: a rental for the trip, from its company or (past the pivot) one of its alternatives.

The car companies' system cannot cancel a rental it has not made yet: a cancel that reaches it while the booking
is still in its queue is answered "unknown key" (it keeps no tombstone to refuse the booking with). The saga must
not take that for "never booked": the engine raises the trip's CancellationFailed and retries the cancel, which
finds the booking that landed meanwhile and cancels it (README "Calling your own provider").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from saga.providers import SimulatedProvider
from saga.spec import StepWork

if TYPE_CHECKING:
    from saga.spec import StepCall

COMPANIES = SimulatedProvider("car", name="the car company", cancels_unknown_keys=False)


def rent_car(call: StepCall) -> str:
    """The company (`call.provider` when an alternative took it) holds the car under the trip's reference."""
    return COMPANIES.book(call, f"CAR-{call.saga_id}")


def return_car(call: StepCall) -> None:
    """The rental is cancelled by the trip's key; "unknown key" while it is in flight makes the engine retry."""
    COMPANIES.cancel(call)


WORK = StepWork(action=rent_car, compensation=return_car, simulated=COMPANIES)
