"""A cache that survives between runs, for what the embedded stack would otherwise compute on every start.

Lives in `.runtest/cache/` of the project (or `$RUNTEST_CACHE_DIR`); `rm -rf .runtest/cache` clears it,
and nothing is lost by doing so. An entry's file name is the SHA-256 of everything its value depends on
(the caller's key, this Python, this format), so a changed input is a different file: a stale entry is
never found, let alone used. Entries are written whole (a temporary file, then a rename) and one that
cannot be read is made again; a cache that cannot be written (a read-only checkout) is simply not kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from sagatools.project import PROJECT_ROOT

T = TypeVar("T")
FORMAT = "1"
# What reading a damaged or foreign entry raises (pickle's own list: unpickling can raise almost anything).
_UNREADABLE = (
    OSError,
    pickle.UnpicklingError,
    EOFError,
    AttributeError,
    ImportError,
    IndexError,
    TypeError,
    ValueError,
)


def cache_dir() -> Path:
    configured = os.environ.get("RUNTEST_CACHE_DIR")
    return Path(configured) if configured else PROJECT_ROOT / ".runtest" / "cache"


def code_fingerprint(package_dir: Path) -> str:
    """What a value computed by a package's code depends on: each of its .py files' path, size and mtime."""
    parts = []
    for directory, subdirectories, files in os.walk(package_dir):
        subdirectories[:] = sorted(name for name in subdirectories if name != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                stat = os.stat(os.path.join(directory, name))
                parts.append(f"{directory}/{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class DiskCache:
    """Pickled values under `cache_dir()/<namespace>/`, one file per key."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def path_for(self, key: Iterable[str]) -> Path:
        digest = hashlib.sha256()
        for part in (FORMAT, sys.version, str(pickle.HIGHEST_PROTOCOL), *key):
            digest.update(part.encode())
            digest.update(b"\0")
        return cache_dir() / self.namespace / f"{digest.hexdigest()}.pickle"

    def get(self, key: Iterable[str]) -> object | None:
        """The value stored under `key`, or None when there is none or it cannot be read."""
        try:
            # Read only from the project's own folder, where only this code writes.
            value: object = pickle.loads(self.path_for(key).read_bytes())  # noqa: S301
            return value
        except _UNREADABLE:
            return None

    def put(self, key: Iterable[str], value: object) -> None:
        self._write(self.path_for(key), value)

    def get_or_make(self, key: Iterable[str], make: Callable[[], T]) -> T:
        key = tuple(key)
        stored = self.get(key)
        if stored is not None:
            return stored  # type: ignore[return-value]  # what make() returned for this key, pickled
        value = make()  # none yet, or one that cannot be read: made (again), and replaced
        self.put(key, value)
        return value

    @staticmethod
    def _write(path: Path, value: object) -> None:
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        except (OSError, pickle.PicklingError, RecursionError, TypeError, AttributeError):
            return  # not kept: the next run makes it again
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
