"""The courier: hired to collect the parcel, and dismissed. Its dispatch cannot dismiss a pickup it has not
booked yet (no tombstones): the engine retries the dismissal until it has."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from saga.errors import StepRefused
from saga.providers import SimulatedProvider
from saga.spec import StepWork

if TYPE_CHECKING:
    from saga.spec import StepCall

SUNDAY = 6
DISPATCH = SimulatedProvider("courier", name="the courier's dispatch", cancels_unknown_keys=False)


def hire(call: StepCall) -> str:
    """A courier collects on working days only: a Sunday is refused (the app's own refusal, by the engine's name)."""
    if date.fromisoformat(call.section["collect_on"]).weekday() == SUNDAY:
        raise StepRefused(f"{call.section['company']} does not collect on Sundays")
    return DISPATCH.book(call, f"PICKUP-{call.saga_id}-{call.section['company'].upper().replace(' ', '-')}")


def dismiss(call: StepCall) -> None:
    """Dismissed by key."""
    DISPATCH.cancel(call)


WORK = StepWork(action=hire, compensation=dismiss, simulated=DISPATCH)
