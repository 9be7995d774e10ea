"""The postage: a label bought for the parcel, and refunded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from saga.spec import StepWork

if TYPE_CHECKING:
    from saga.spec import StepCall


def buy_label(call: StepCall) -> str:
    """The postal service sells one label per key: a repeat names the same label."""
    return f"LABEL-{call.key}"


def refund_label(call: StepCall) -> None:
    """Nothing to ask of the postal service here: the saga's record of the label is what is refunded."""


WORK = StepWork(action=buy_label, compensation=refund_label)
