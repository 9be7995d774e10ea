"""The run cache: an entry is found only under everything it depends on, and a bad one is made again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sagatools.run_cache import DiskCache, code_fingerprint


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DiskCache:
    monkeypatch.setenv("RUNTEST_CACHE_DIR", str(tmp_path / "cache"))
    return DiskCache("things")


def test_a_value_is_made_once_and_then_read_back(cache: DiskCache) -> None:
    made: list[str] = []

    def make() -> dict[str, list[int]]:
        made.append("once")
        return {"a": [1, 2]}

    first = cache.get_or_make(("k",), make)
    second = cache.get_or_make(("k",), make)
    assert first == second == {"a": [1, 2]}
    assert made == ["once"]
    assert second is not first  # a fresh copy each run: nobody shares a mutable value by accident


def test_another_key_is_another_entry(cache: DiskCache) -> None:
    assert cache.get_or_make(("definition one",), lambda: 1) == 1
    assert cache.get_or_make(("definition two",), lambda: 2) == 2
    assert cache.path_for(("definition one",)) != cache.path_for(("definition two",))


def test_a_damaged_entry_is_made_again(cache: DiskCache) -> None:
    cache.get_or_make(("k",), lambda: "good")
    cache.path_for(("k",)).write_bytes(b"\x80\x05 not a pickle")
    assert cache.get_or_make(("k",), lambda: "made again") == "made again"
    assert cache.get_or_make(("k",), lambda: "not this") == "made again"


def test_a_cache_that_cannot_be_written_still_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("in the way")
    monkeypatch.setenv("RUNTEST_CACHE_DIR", str(blocked / "cache"))  # under a file: cannot be made
    calls: list[int] = []
    cache = DiskCache("things")
    assert cache.get_or_make(("k",), lambda: calls.append(1) or "v") == "v"
    assert cache.get_or_make(("k",), lambda: calls.append(1) or "v") == "v"
    assert calls == [1, 1]


def test_the_code_fingerprint_changes_with_any_file_of_the_code(tmp_path: Path) -> None:
    package = tmp_path / "package"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("A = 1\n")
    (package / "sub" / "b.py").write_text("B = 1\n")
    before = code_fingerprint(package)
    assert code_fingerprint(package) == before
    (package / "sub" / "b.py").write_text("B = 22\n")  # another size
    assert code_fingerprint(package) != before
    edited = code_fingerprint(package)
    stat = (package / "a.py").stat()
    os.utime(package / "a.py", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # same size, touched
    assert code_fingerprint(package) != edited
