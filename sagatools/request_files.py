"""Saga request files, read without trusting them: regular files only, a hard cap on the bytes actually
read, strict JSON (no duplicate keys, bounded depth and numbers), then the request model.

Every problem is a RequestFileError whose lines name the file; a batch reports every bad file at once.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from typing import Any

from saga.errors import InvalidRequest
from saga.keys import ID_FIELD, NOUN
from saga.models import SagaRequest, parse_request
from sagatools.terminal_text import shown

MAX_FILE_BYTES = 1024 * 1024  # a saga request is about 1 KB
MAX_DEPTH = 32  # a request nests 3 levels deep
MAX_NUMBER_DIGITS = 32
MAX_PROBLEMS_SHOWN = 20  # per file
_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a named pipe",
    stat.S_IFSOCK: "a socket",
}


class RequestFileError(Exception):
    """One or more request files cannot be used; one line per problem, each naming its file."""


@dataclass(frozen=True)
class RequestFile:
    path: str
    request: SagaRequest

    @property
    def execution_input(self) -> str:
        # Canonical, so the same request always makes the same input (StartExecution idempotency).
        return self.request.model_dump_json(by_alias=True, exclude_none=True)


def read_capped(path: str) -> bytes:
    """The file's bytes, if it is a regular file of at most MAX_FILE_BYTES; read through the cap, never past it."""
    try:
        # O_NONBLOCK: opening a named pipe must not wait for a writer (it is refused just below).
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as error:
        raise RequestFileError(f"{shown(path)}: cannot read: {error.strerror or error}") from None
    try:
        kind = stat.S_IFMT(os.fstat(descriptor).st_mode)
        if kind != stat.S_IFREG:
            raise RequestFileError(
                f"{shown(path)}: {_KINDS.get(kind, 'not a regular file')}, not a {NOUN} request file"
            )
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(descriptor, min(65536, MAX_FILE_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise RequestFileError(f"{shown(path)}: larger than {MAX_FILE_BYTES // 1024} KB, not a {NOUN} request")
        return b"".join(chunks)
    except OSError as error:
        raise RequestFileError(f"{shown(path)}: cannot read: {error.strerror or error}") from None
    finally:
        os.close(descriptor)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # One pass: a hostile file may hold an object of many thousands of keys.
    found: dict[str, Any] = {}
    duplicates: set[str] = set()
    for key, value in pairs:
        if key in found:
            duplicates.add(key)
        found[key] = value
    if duplicates:
        raise ValueError(f"duplicate key {', '.join(json.dumps(key) for key in sorted(duplicates))}")
    return found


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise ValueError(f"a number of {len(text)} digits")
    return int(text)


def _depth(value: Any) -> int:
    """How deeply a parsed JSON value nests (iteratively: the value may be deep)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            pending.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_json(path: str, data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestFileError(f"{shown(path)}: not UTF-8 text (byte {error.start})") from None
    try:
        parsed = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_int=_bounded_int)
    except json.JSONDecodeError as error:
        raise RequestFileError(
            f"{shown(path)}: not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:
        raise RequestFileError(
            f"{shown(path)}: not a {NOUN} request: JSON nested deeper than {MAX_DEPTH} levels"
        ) from None
    except ValueError as error:
        raise RequestFileError(f"{shown(path)}: not a {NOUN} request: {error}") from None
    if _depth(parsed) > MAX_DEPTH:
        raise RequestFileError(f"{shown(path)}: not a {NOUN} request: JSON nested deeper than {MAX_DEPTH} levels")
    return parsed


def load_request_file(path: str) -> RequestFile:
    data = parse_json(path, read_capped(path))
    try:
        return RequestFile(path, parse_request(data))
    except InvalidRequest as error:
        lines = [f"{shown(path)}: invalid request: {shown(line)}" for line in str(error).splitlines()]
        if len(lines) > MAX_PROBLEMS_SHOWN:  # a file of thousands of unknown fields: a screenful, then a count
            hidden = len(lines) - MAX_PROBLEMS_SHOWN
            lines = [*lines[:MAX_PROBLEMS_SHOWN], f"{shown(path)}: invalid request: and {hidden} more problems"]
        raise RequestFileError("\n".join(lines)) from None
    except RecursionError:
        raise RequestFileError(f"{shown(path)}: not a {NOUN} request: nested too deeply") from None


def load_request_files(paths: list[str]) -> list[RequestFile]:
    """Every file, or RequestFileError naming every bad one; a saga id given two different requests is one."""
    loaded, problems = [], []
    for path in paths:
        try:
            loaded.append(load_request_file(path))
        except RequestFileError as error:
            problems.append(str(error))
    first_of: dict[str, RequestFile] = {}
    for saga in loaded:
        earlier = first_of.setdefault(saga.request.saga_id, saga)
        if earlier is not saga and earlier.execution_input != saga.execution_input:
            problems.append(
                f"{shown(saga.path)}: {ID_FIELD} {saga.request.saga_id} is also in {shown(earlier.path)}"
                f" with a different request (one {ID_FIELD}, one saga: Step Functions refuses a second input"
                " under the same name)"
            )
    if problems:
        raise RequestFileError("\n".join(problems))
    return loaded
