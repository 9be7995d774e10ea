"""The postage: a label bought for the parcel, and refunded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from saga.providers import SimulatedProvider
from saga.spec import StepWork

if TYPE_CHECKING:
    from saga.spec import StepCall

POSTAL_SERVICE = SimulatedProvider("postage", name="the postal service")


def buy_label(call: StepCall) -> str:
    """The postal service sells one label per key: a repeat names the same label."""
    return POSTAL_SERVICE.book(call, f"LABEL-{call.key}")


def refund_label(call: StepCall) -> None:
    """Refunded by key; a key it never sold stays refused from now on."""
    POSTAL_SERVICE.cancel(call)


WORK = StepWork(action=buy_label, compensation=refund_label, simulated=POSTAL_SERVICE)
