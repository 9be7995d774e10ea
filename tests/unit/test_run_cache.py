"""The run cache: an entry is found only under everything it depends on, and one that fails any check (a
flipped bit, another key's entry, a FIFO, a link, an entry past the bound) is made again: slower, never
wrong, never stuck."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sagatools import serverless_config
from sagatools.run_cache import DiskCache, code_fingerprint
from tests.helpers import ROOT

# A process that would wait forever on a FIFO, or read /dev/zero until memory ran out, is stopped here.
_STUCK_SECONDS = 20
_MOST_MEMORY = 1024 * 1024 * 1024


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


TEMPLATE = """service: flipped
provider: {name: aws, runtime: python3.12}
resources:
  Resources:
    Table: {Type: "AWS::DynamoDB::Table", Properties: {TableName: !Sub "${AWS::StackName}-table"}}
  Outputs:
    Arn: {Value: !GetAtt [Table, Arn]}
"""


def flipped_bits(size: int) -> list[int]:
    """Every bit of an entry's first 64 bytes (its header, and the pickle's own header after it), then 64
    spread evenly over the rest, the last bit among them: each flipped in turn (every bit takes seconds)."""
    header = min(size, 64) * 8
    rest = size * 8 - header
    return list(range(header)) + sorted({header + (rest - 1) * i // 63 for i in range(64)})


def test_a_real_entry_with_any_bit_flipped_is_made_again_and_reads_as_the_uncached_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the entry a run keeps for a template, and what parsing the template without a cache gives
    monkeypatch.setenv("RUNTEST_CACHE_DIR", str(tmp_path / "cache"))
    template = tmp_path / "serverless.yml"
    template.write_text(TEMPLATE)
    uncached = serverless_config.parse_yaml(TEMPLATE)
    assert serverless_config._read_yaml(template) == uncached
    [entry] = (tmp_path / "cache" / "templates").iterdir()
    good = entry.read_bytes()
    for bit in flipped_bits(len(good)):
        damaged = bytearray(good)
        damaged[bit // 8] ^= 1 << (bit % 8)
        entry.write_bytes(damaged)
        # When the template is read with that one bit of its entry flipped
        read = serverless_config._read_yaml(template)
        # Then it reads as the uncached parse, and the entry is made again as it was
        assert read == uncached, f"bit {bit}"
        assert entry.read_bytes() == good, f"bit {bit}"


def test_an_entry_under_another_keys_name_is_not_used(cache: DiskCache) -> None:
    # Given an entry copied to where another key's entry goes
    cache.get_or_make(("machine one",), lambda: "program one")
    cache.path_for(("machine two",)).write_bytes(cache.path_for(("machine one",)).read_bytes())
    # When that key is asked for, Then its own value is made
    assert cache.get_or_make(("machine two",), lambda: "program two") == "program two"


def test_an_entry_larger_than_the_bound_is_neither_read_nor_written(cache: DiskCache) -> None:
    # Given an entry of about 10 kB, written by a cache with the usual bound
    value = "x" * 10_000
    cache.get_or_make(("k",), lambda: value)
    small = DiskCache("things", most_bytes=1_000)
    # When a cache bounded below its size reads it, Then it makes the value instead, and does not write it
    assert small.get(("k",)) is None
    assert small.get_or_make(("k",), lambda: value) == value
    assert cache.get(("k",)) == value
    small.put(("big",), value)
    assert not small.path_for(("big",)).exists()


def run_cache_in_a_process(cache_dir: Path) -> subprocess.CompletedProcess[str]:
    """A process that reads key k of the cache under `cache_dir` (with memory bounded), and says what it got."""
    script = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({_MOST_MEMORY}, {_MOST_MEMORY}))\n"
        "from sagatools.run_cache import DiskCache\n"
        "print(DiskCache('things').get_or_make(('k',), lambda: 'made'))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "RUNTEST_CACHE_DIR": str(cache_dir)},
        capture_output=True,
        text=True,
        timeout=_STUCK_SECONDS,
        check=False,
    )


@pytest.mark.parametrize("kind", ["a FIFO", "a link to /dev/zero"])
def test_an_entry_path_that_is_not_a_regular_file_is_not_read_and_the_run_is_not_stuck(
    kind: str, cache: DiskCache, tmp_path: Path
) -> None:
    # Given a FIFO (no writer: opening it to read would wait) or a link to an endless device at the entry's path
    path = cache.path_for(("k",))
    path.parent.mkdir(parents=True)
    if kind == "a FIFO":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    # When a process asks the cache for that key
    done = run_cache_in_a_process(tmp_path / "cache")
    # Then it makes the value, at once and without a traceback, and a regular entry now stands in the way
    assert (done.returncode, done.stdout, done.stderr) == (0, "made\n", "")
    assert path.is_file()
    assert not path.is_symlink()
    assert cache.get(("k",)) == "made"


def test_a_link_to_a_good_entry_elsewhere_is_not_followed(cache: DiskCache, tmp_path: Path) -> None:
    # Given, at the entry's path, a link to a whole entry for that very key kept outside the cache
    cache.get_or_make(("k",), lambda: "from outside")
    outside = tmp_path / "outside.pickle"
    cache.path_for(("k",)).rename(outside)
    cache.path_for(("k",)).symlink_to(outside)
    # When the key is asked for, Then the link is not read: the value is made, and the link replaced
    assert cache.get_or_make(("k",), lambda: "made here") == "made here"
    assert not cache.path_for(("k",)).is_symlink()
    assert outside.exists()


def test_entries_written_and_read_at_once_are_each_whole(cache: DiskCache) -> None:
    # Given writers that keep replacing one entry with values of their own, and a reader
    values = [str(number) * 50_000 for number in range(4)]
    read: list[object] = []
    stop = threading.Event()

    def write(value: str) -> None:
        while not stop.is_set():
            cache.put(("k",), value)

    writers = [threading.Thread(target=write, args=(value,)) for value in values]
    for writer in writers:
        writer.start()
    # When the entry is read while they write
    try:
        read.extend(cache.get(("k",)) for _ in range(300))
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    # Then every read is one writer's whole value (or none yet), never a mix or a part
    assert set(read) <= {None, *values}
    assert set(read) & set(values)
    assert [path.name for path in cache.path_for(("k",)).parent.iterdir()] == [cache.path_for(("k",)).name]


def test_a_cache_that_cannot_be_written_still_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("in the way")
    monkeypatch.setenv("RUNTEST_CACHE_DIR", str(blocked / "cache"))  # under a file: cannot be made
    calls: list[int] = []
    cache = DiskCache("things")
    assert cache.get_or_make(("k",), lambda: calls.append(1) or "v") == "v"
    assert cache.get_or_make(("k",), lambda: calls.append(1) or "v") == "v"
    assert calls == [1, 1]


def test_the_code_fingerprint_follows_the_content_of_the_code_not_its_times(tmp_path: Path) -> None:
    # Given a package of two files
    package = tmp_path / "package"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("A = 1\n")
    (package / "sub" / "b.py").write_text("B = 1\n")
    before = code_fingerprint(package)
    assert code_fingerprint(package) == before
    # When a file is only touched, Then the fingerprint stands
    stat = (package / "a.py").stat()
    os.utime(package / "a.py", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert code_fingerprint(package) == before
    # When a file gets other content of the same size, restored with its old time, Then it changes
    stat = (package / "sub" / "b.py").stat()
    (package / "sub" / "b.py").write_text("B = 2\n")
    os.utime(package / "sub" / "b.py", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert code_fingerprint(package) != before
