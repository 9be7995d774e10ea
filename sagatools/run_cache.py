"""A cache that survives between runs, for what the embedded stack would otherwise compute on every start.

Lives in `.runtest/cache/` of the project (or `$RUNTEST_CACHE_DIR`); `rm -rf .runtest/cache` clears it,
and nothing is lost by doing so. A cache may make a run slower, never wrong, never stuck:

- An entry's file name is the SHA-256 of everything its value depends on (the caller's key, this Python,
  this format), and callers key by the content a value was made from (`digest_of`, `code_fingerprint`),
  never by a file's time, which `cp -p`, `rsync -a` and `tar` restore along with older content.
- An entry starts with a SHA-256 of its key and its payload, checked before the payload is unpickled: a
  changed bit, a cut-short write or an entry under another key's name is made again, not used.
- Only a regular file of bounded size is read: a FIFO, a device or a symbolic link at an entry's path is
  never opened for reading (O_NOFOLLOW | O_NONBLOCK, then fstat), and no more than the bound is read.
- Entries are written whole (a temporary file, then a rename), so concurrent runs each see an old entry or
  a new one; a cache that cannot be written (a read-only checkout) is simply not kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from sagatools.project import PROJECT_ROOT

T = TypeVar("T")
FORMAT = "2"
MAGIC = b"saga-run-cache 2\n"  # what an entry starts with, then the digest, then the pickle
_DIGEST_SIZE = hashlib.sha256().digest_size
MOST_BYTES = 64 * 1024 * 1024  # the largest entry read or written; the largest made is about 0.5 MB
_CHUNK = 1024 * 1024


def cache_dir() -> Path:
    configured = os.environ.get("RUNTEST_CACHE_DIR")
    return Path(configured) if configured else PROJECT_ROOT / ".runtest" / "cache"


def digest_of(data: bytes) -> str:
    """The key part for a value made from `data`: its content, whatever the file's name or time."""
    return hashlib.sha256(data).hexdigest()


def code_fingerprint(package_dir: Path) -> str:
    """What a value computed by a package's code depends on: each of its .py files' name and content."""
    digest = hashlib.sha256()
    for directory, subdirectories, files in os.walk(package_dir):
        subdirectories[:] = sorted(name for name in subdirectories if name != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                with open(path, "rb") as file:
                    content = hashlib.sha256(file.read()).digest()
                digest.update(os.path.relpath(path, package_dir).encode() + b"\0" + content)
    return digest.hexdigest()


class DiskCache:
    """Pickled values under `cache_dir()/<namespace>/`, one verified file per key."""

    def __init__(self, namespace: str, most_bytes: int = MOST_BYTES) -> None:
        self.namespace = namespace
        self.most_bytes = most_bytes

    def path_for(self, key: Iterable[str]) -> Path:
        return self._path(_key_digest(key))

    def _path(self, key_digest: bytes) -> Path:
        return cache_dir() / self.namespace / f"{key_digest.hex()}.pickle"

    def get(self, key: Iterable[str]) -> object | None:
        """The value stored under `key`, or None when there is none or it fails any check."""
        key_digest = _key_digest(key)
        payload = _verified(_read_bounded(self._path(key_digest), self.most_bytes), key_digest)
        if payload is None:
            return None
        try:
            # Its digest matched: this code pickled it. Anything unpickling raises all the same is a miss.
            value: object = pickle.loads(payload)  # noqa: S301
        except Exception:  # noqa: BLE001 - pickle can raise almost anything; the entry is made again
            return None
        return value

    def put(self, key: Iterable[str], value: object) -> None:
        key_digest = _key_digest(key)
        try:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - not picklable, however pickle says so: not kept
            return
        if len(MAGIC) + _DIGEST_SIZE + len(payload) > self.most_bytes:
            return  # it would never be read back
        _write(self._path(key_digest), MAGIC + _payload_digest(key_digest, payload) + payload)

    def get_or_make(self, key: Iterable[str], make: Callable[[], T]) -> T:
        key = tuple(key)
        stored = self.get(key)
        if stored is not None:
            return stored  # type: ignore[return-value]  # what make() returned for this key, pickled
        value = make()  # none yet, or one that failed a check: made (again), and replaced
        self.put(key, value)
        return value


def _key_digest(key: Iterable[str]) -> bytes:
    digest = hashlib.sha256()
    for part in (FORMAT, sys.version, str(pickle.HIGHEST_PROTOCOL), *key):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.digest()


def _payload_digest(key_digest: bytes, payload: bytes) -> bytes:
    # The key is in it too, so an entry copied under another key's name fails the check.
    return hashlib.sha256(key_digest + payload).digest()


def _read_bounded(path: Path, most_bytes: int) -> bytes | None:
    """The file's bytes if it is a regular file of at most `most_bytes`, else None; never blocks."""
    try:
        # O_NONBLOCK: opening a FIFO would otherwise wait for a writer. O_NOFOLLOW: a link is refused.
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or status.st_size > most_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        while size <= most_bytes:  # a file that grows while read is still read only to the bound
            chunk = os.read(descriptor, min(_CHUNK, most_bytes + 1 - size))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
        return None
    except OSError:
        return None
    finally:
        os.close(descriptor)


def _verified(data: bytes | None, key_digest: bytes) -> bytes | None:
    """The payload of an entry whose header holds the digest of its key and payload, else None."""
    header = len(MAGIC) + _DIGEST_SIZE
    if data is None or len(data) < header or not data.startswith(MAGIC):
        return None
    payload = data[header:]
    return payload if data[len(MAGIC) : header] == _payload_digest(key_digest, payload) else None


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    except OSError:
        return  # not kept: the next run makes it again
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, path)  # replaces a link or FIFO at the path itself, never what it points to
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
