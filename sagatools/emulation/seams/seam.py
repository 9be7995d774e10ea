"""One seam: a moto (or botocore, werkzeug) internal the emulation touches, why, what breaks if it moves,
and a check of the assumption against what is installed."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Seam:
    name: str  # the moto internal, dotted
    why: str  # what the emulation does with it
    breaks: str  # what goes wrong, and how visibly, if moto moves it
    holds: Callable[[], bool]  # checks the assumption against the installed moto


def source(thing: object) -> str:
    return inspect.getsource(thing)  # type: ignore[arg-type]


def parameters(function: Callable[..., object]) -> list[str]:
    return list(inspect.signature(function).parameters)
