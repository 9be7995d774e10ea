"""The courier: hired to collect the parcel, and dismissed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from saga.spec import StepWork

if TYPE_CHECKING:
    from saga.spec import StepCall


def hire(call: StepCall) -> str:
    return f"PICKUP-{call.saga_id}-{call.section['company'].upper().replace(' ', '-')}"


def dismiss(call: StepCall) -> None:
    """Nothing to ask of the courier here: the saga's record of the pickup is what is dismissed."""


WORK = StepWork(action=hire, compensation=dismiss)
