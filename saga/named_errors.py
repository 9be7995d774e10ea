"""The errors the steps raise under the app's names (saga.spec.ErrorNames): an app's own name for the engine's
InvalidRequest, and so on. Made once, when a handler starts, from the one setting; the app's own code raises
the engine's classes (saga/errors.py), which the step turns into these.
"""

from __future__ import annotations

from typing import TypeVar

from saga.definition import SAGA
from saga.errors import AlreadyCompensated, CompensationFailed, InvalidRequest, StepRefused

_Error = TypeVar("_Error", bound=Exception)


def _named(base: type[_Error], name: str) -> type[_Error]:
    """`base` under the name the app gives it (itself when the app keeps the engine's name)."""
    if name == base.__name__:
        return base
    return type(name, (base,), {"__doc__": base.__doc__, "__module__": __name__})


# The classes the steps raise, named as the app's definition says (SagaSpec.errors).
RequestInvalid = _named(InvalidRequest, SAGA.errors.invalid_request)
Refused = _named(StepRefused, SAGA.errors.refused)
LateAfterCompensation = _named(AlreadyCompensated, SAGA.errors.already_compensated)
CompensationNotDone = _named(CompensationFailed, SAGA.errors.compensation_failed)
