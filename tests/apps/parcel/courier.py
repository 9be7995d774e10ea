"""The courier: hired to collect the parcel, and dismissed. Its dispatch cannot dismiss a pickup it has not
booked yet (no tombstones): the engine retries the dismissal until it has."""

from __future__ import annotations

from typing import TYPE_CHECKING

from saga.providers import SimulatedProvider
from saga.spec import StepWork

if TYPE_CHECKING:
    from saga.spec import StepCall

DISPATCH = SimulatedProvider("courier", name="the courier's dispatch", cancels_unknown_keys=False)


def hire(call: StepCall) -> str:
    return DISPATCH.book(call, f"PICKUP-{call.saga_id}-{call.section['company'].upper().replace(' ', '-')}")


def dismiss(call: StepCall) -> None:
    """Dismissed by key."""
    DISPATCH.cancel(call)


WORK = StepWork(action=hire, compensation=dismiss)
