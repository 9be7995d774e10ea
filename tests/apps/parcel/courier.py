"""The courier: hired to collect the parcel, and dismissed."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from saga.errors import StepRefused
from saga.spec import StepWork

if TYPE_CHECKING:
    from saga.spec import StepCall

SUNDAY = 6


def hire(call: StepCall) -> str:
    """A courier collects on working days only: a Sunday is refused (the app's own refusal, by the engine's name)."""
    if date.fromisoformat(call.section["collect_on"]).weekday() == SUNDAY:
        raise StepRefused(f"{call.section['company']} does not collect on Sundays")
    return f"PICKUP-{call.saga_id}-{call.section['company'].upper().replace(' ', '-')}"


def dismiss(call: StepCall) -> None:
    """Nothing to ask of the courier here: the saga's record of the pickup is what is dismissed."""


WORK = StepWork(action=hire, compensation=dismiss)
