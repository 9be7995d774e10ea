"""Every moto internal the emulation replaces, wraps or relies on, with why and what breaks if it moves.

moto is pinned exactly (requirements-tools.txt). Each seam carries a check of the assumption it makes
about the installed moto; tests/embedded/test_moto_seams.py runs every check by name, and fails if the
embedded stack replaces anything that is not listed here. Upgrading moto: run those tests first.
"""

from __future__ import annotations

from types import ModuleType

from sagatools.emulation.seams.embedded import EMBEDDED_SEAMS, MOTO_VERSION
from sagatools.emulation.seams.left_out import LEFT_OUT_SEAMS
from sagatools.emulation.seams.local_and_shared import LOCAL_AND_SHARED_SEAMS
from sagatools.emulation.seams.seam import Seam

__all__ = ["MOTO_VERSION", "SEAMS", "Seam", "registered", "seam_name"]

SEAMS: tuple[Seam, ...] = (*EMBEDDED_SEAMS, *LEFT_OUT_SEAMS, *LOCAL_AND_SHARED_SEAMS)


def seam_name(owner: object, attribute: str) -> str:
    """The registry name of `owner.attribute` (a module or a class)."""
    if isinstance(owner, ModuleType):
        return f"{owner.__name__}.{attribute}"
    if isinstance(owner, type):
        return f"{owner.__module__}.{owner.__qualname__}.{attribute}"
    return f"{type(owner).__module__}.{type(owner).__qualname__}.{attribute}"


def registered(owner: object, attribute: str) -> bool:
    return any(seam.name == seam_name(owner, attribute) for seam in SEAMS)
