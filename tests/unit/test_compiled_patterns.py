"""Patterns compiled from the store are the patterns `re` compiles (Pattern equality compares the code)."""

from __future__ import annotations

import re
from re import _compiler  # type: ignore[attr-defined]

import pytest

from sagatools import compiled_patterns
from sagatools.run_cache import DiskCache

PATTERNS = [
    (r"https?://dynamodb\.(.+)\.amazonaws\.com", 0),
    (r"(?P<year>\d{4})-(?P<month>\d\d)(?:-(?P<day>\d\d))?", 0),
    (r"(?<=<RequestId>).*(?=<\/RequestId>)", re.DOTALL),
    (r"straße|ǅ", re.IGNORECASE),
    (r"(a)?(?(1)b|c)", 0),
    (r" [a-z]+  # a word \n (?:\s+ \d+)*", re.VERBOSE | re.MULTILINE),
    (rb"^[ \t\f]*(?:[#\r\n]|$)", 0),
    (r"[^\x00-\x7f]+", re.ASCII),
    (r"", 0),
]
SAMPLES = ["https://dynamodb.eu-west-1.amazonaws.com", "2026-12-01", "<RequestId>x</RequestId>", "STRASSE", "ab", "c"]


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """The module's state as a new process has it, with its own run cache."""
    monkeypatch.setenv("RUNTEST_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(compiled_patterns, "_stored", {})
    monkeypatch.setattr(compiled_patterns, "_new", {})
    monkeypatch.setattr(compiled_patterns, "_recording", True)
    monkeypatch.setattr(_compiler, "compile", _compiler.compile)  # undone after the test, whatever install did
    return compiled_patterns


@pytest.mark.parametrize(("pattern", "flags"), PATTERNS)
def test_a_pattern_from_the_store_is_the_one_re_compiles(fresh, pattern, flags):
    compiled = compiled_patterns._ORIGINAL_COMPILE(pattern, flags)
    first = fresh.compile_pattern(pattern, flags)
    fresh.keep_new()
    fresh._stored.clear()
    fresh.install()  # the next process: read from the store
    assert (pattern, int(flags)) in fresh._stored
    again = fresh.compile_pattern(pattern, flags)
    for made in (first, again):
        assert made == compiled
        assert (made.flags, made.groups, made.groupindex) == (compiled.flags, compiled.groups, compiled.groupindex)
        if isinstance(pattern, str):
            assert [m and m.group(0) for m in map(made.search, SAMPLES)] == [
                m and m.group(0) for m in map(compiled.search, SAMPLES)
            ]


def test_every_pattern_this_process_compiled_comes_back_equal():
    # re's own cache holds what pytest, moto, botocore and the rest compiled here: hundreds of real patterns
    cached = [(key[1], key[2]) for key in list(re._cache) if isinstance(key[1], str | bytes)]  # type: ignore[attr-defined]
    assert len(cached) > 50
    for pattern, flags in cached:
        if flags & _compiler.SRE_FLAG_DEBUG:
            continue
        made = compiled_patterns._made(pattern, flags)
        assert compiled_patterns._sre.compile(pattern, *made) == compiled_patterns._ORIGINAL_COMPILE(pattern, flags)


def test_what_is_compiled_after_the_start_is_not_kept(fresh):
    fresh.compile_pattern(r"start-up \d+", 0)
    fresh.stop_recording()
    fresh.compile_pattern(r"trip-0001|trip-0002", 0)
    fresh.keep_new()
    stored = DiskCache("compiled-patterns").get(fresh.KEY)
    assert isinstance(stored, dict)
    assert set(stored) == {(r"start-up \d+", 0)}


def test_a_stored_entry_sre_refuses_is_compiled_again(fresh):
    fresh._stored[("x+", 0)] = ("not", "what", "sre", "takes", "at all")
    assert fresh.compile_pattern("x+", 0) == compiled_patterns._ORIGINAL_COMPILE("x+", 0)
    assert ("x+", 0) not in fresh._stored


def test_a_bad_pattern_is_refused_as_re_refuses_it(fresh):
    with pytest.raises(re.error, match="missing \\)"):
        fresh.compile_pattern("(unclosed", 0)
    assert not fresh._new
