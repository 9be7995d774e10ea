"""Regular expressions compiled once, not on every start of a tool.

The libraries the tools import compile about 450 patterns as they load (moto's table of service URLs,
urllib3, PyYAML, werkzeug, botocore): about 0.1 s of every `./runtest.sh`, and Python keeps no compiled
pattern between processes. Here what `re`'s compiler makes of a pattern (its SRE code, groups and flags)
is kept in the run cache (sagatools/run_cache.py) under this Python's version and SRE's magic number, and
a later start hands it to `_sre.compile` as the compiler itself would: the Pattern is equal (`==`
compares the code) to a fresh compile. A pattern's compile-time warnings are given on its first compile
only. Only what is compiled while a tool starts is kept (`stop_recording`), so what a run compiles from
its own input never accumulates.
"""

from __future__ import annotations

import _sre  # type: ignore[import-not-found]  # CPython's regex engine, what re._compiler hands its code
import sys
from re import _compiler, _parser  # type: ignore[attr-defined]
from typing import Any

from sagatools.run_cache import DiskCache  # light: the run cache imports nothing of the tools' libraries

_ORIGINAL_COMPILE = _compiler.compile
_MOST_KEPT = 5000  # patterns; past this the stored set starts again from this start's
_stored: dict[tuple[str | bytes, int], tuple[Any, ...]] = {}
_new: dict[tuple[str | bytes, int], tuple[Any, ...]] = {}
_recording = False


# The store's key: what SRE's code depends on beyond the pattern (DiskCache adds this Python's version).
KEY = ("sre", str(_sre.MAGIC), str(_sre.CODESIZE), sys.implementation.cache_tag or "")
_DISK = DiskCache("compiled-patterns")


def compile_pattern(pattern: Any, flags: int = 0) -> Any:
    """re._compiler.compile, from what was stored when this pattern was compiled before."""
    if not isinstance(pattern, str | bytes) or flags & _compiler.SRE_FLAG_DEBUG:
        return _ORIGINAL_COMPILE(pattern, flags)
    key = (pattern, int(flags))
    made = _stored.get(key) or _new.get(key)
    if made is not None:
        try:
            return _sre.compile(pattern, *made)
        except (TypeError, ValueError, RuntimeError, OverflowError):  # not SRE's: made again below
            _stored.pop(key, None)
    made = _made(pattern, flags)
    if _recording:
        _new[key] = made
    return _sre.compile(pattern, *made)


def _made(pattern: str | bytes, flags: int) -> tuple[Any, ...]:
    """What re._compiler.compile hands _sre.compile after the pattern: its own steps, in its order."""
    parsed = _parser.parse(pattern, flags)
    code = [int(op) for op in _compiler._code(parsed, flags)]  # the opcodes are int constants with names
    group_index = dict(parsed.state.groupdict)
    index_group: list[str | None] = [None] * parsed.state.groups
    for name, index in group_index.items():
        index_group[index] = name
    return (int(flags | parsed.state.flags), code, parsed.state.groups - 1, group_index, tuple(index_group))


def install() -> None:
    """For the tools' process, first thing: patterns are compiled from the store, and new ones recorded."""
    global _recording
    stored = _DISK.get(KEY)
    if isinstance(stored, dict):
        _stored.update(stored)
    _compiler.compile = compile_pattern
    _recording = True


def stop_recording() -> None:
    """The tool has started: what it compiles from here (from its input) is not kept."""
    global _recording
    _recording = False


def keep_new() -> None:
    """Store what this start compiled for the first time, with what another process stored meanwhile."""
    if not _new:
        return
    stored = _DISK.get(KEY)
    merged = {**(stored if isinstance(stored, dict) else {}), **_new}
    _DISK.put(KEY, merged if len(merged) <= _MOST_KEPT else dict(_new))
    _stored.update(_new)
    _new.clear()
