"""Every change the emulation makes to moto (or botocore, werkzeug), checked when a run applies it.

A change is made for one moto (MADE_FOR, the release requirements-tools.txt pins). Before it is applied it
checks, cheaply, that what it replaces is what it was written against (the attribute is there, the
signature is the same). When that check fails on another moto:
- a **speed-up** is skipped, with one line on stderr naming it: the run is slower, never different;
- a change the **results depend on** (the in-process Lambda, the virtual retry clock, the transaction
  emulation) stops the run in one sentence naming the moto it needs (`MotoUnsupported`).

Taking a new moto: pin it in requirements-tools.txt, `./build.sh lock`, run `./build.sh test`; a change
that no longer fits says so on stderr (tests/embedded/test_moto_changes.py fails on any such line), and
is fixed or deleted before MADE_FOR moves.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

MADE_FOR = "5.2.6"

# (owner, attribute, replacement): what the stack sets, and undoes when it exits.
Replacement = tuple[object, str, object]


class MotoUnsupported(Exception):
    """A change the results depend on does not fit the installed moto: the run stops, in one sentence."""


class Mismatch(Exception):
    """What a change replaces is not what it was written against."""


@dataclass(frozen=True)
class Change:
    name: str  # what it changes, in a few words (the stderr line names it)
    needed: bool  # True: the results depend on it (stop if it does not fit); False: a speed-up (skip it)
    # Imports what it changes, checks it (raising Mismatch, ImportError or AttributeError when it does not
    # fit) and returns the replacements.
    make: Callable[[], list[Replacement]]


def installed_moto() -> str:
    try:
        return version("moto")
    except PackageNotFoundError:
        return "none"


def moto_at_least(release: str) -> bool:
    """The installed moto is `release` or newer (the leading numbers of each part compared)."""

    def parts(text: str) -> tuple[int, ...]:
        return tuple(int(match.group()) if (match := re.match(r"\d+", part)) else 0 for part in text.split(".")[:3])

    return parts(installed_moto()) >= parts(release)


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Mismatch(what)


def parameters(function: Callable[..., object]) -> list[str]:
    return list(inspect.signature(function).parameters)


def expect_parameters(function: Callable[..., object], names: list[str]) -> None:
    """`function` takes exactly these parameters, in this order (a cheap stand-in for 'is the same code')."""
    found = parameters(function)
    expect(found == names, f"{getattr(function, '__qualname__', function)}{tuple(found)}, not {tuple(names)}")


_told: set[str] = set()


def checked(changes: Iterable[Change]) -> list[Replacement]:
    """The replacements of every change that fits the installed moto; a speed-up that does not is skipped
    (one line on stderr, once per process); a needed change that does not raises MotoUnsupported."""
    replacements: list[Replacement] = []
    for change in changes:
        try:
            replacements.extend(change.make())
        except (Mismatch, ImportError, AttributeError, TypeError, ValueError) as error:
            found = installed_moto()
            if change.needed:
                raise MotoUnsupported(
                    f"with moto {found}, {change.name} does not work ({error}): the embedded stack needs moto"
                    f" {MADE_FOR}, as requirements-tools.txt pins it"
                ) from None
            if change.name not in _told:
                _told.add(change.name)
                print(f"speed-up skipped: {change.name} (made for moto {MADE_FOR}, found {found})", file=sys.stderr)
    return replacements
