"""The state machine as parsed, kept in the run cache (sagatools/emulation/speedups.py): a damaged entry
makes a run slower, never wrong. A flipped bit in a stored program once rolled a saga back to
NEEDS_ATTENTION with a booking still CONFIRMED, failed it with States.Runtime, or mangled an error name."""

from __future__ import annotations

from typing import Any

from sagatools.emulation.speedups import PARSED_DEFINITIONS
from tests.helpers import LAST, book_step, saga_request


# The bits flipped, one at a time (each costs a parse, ~0.2 s): the top bit of every tenth byte of the
# first 40 (the entry's header; in a bare pickle, its frame's length), then the middle and the last bit.
# tests/unit/test_run_cache.py flips every bit of a header and 64 more, against a value that costs no saga.
def bits_to_flip(size: int) -> list[int]:
    return [byte * 8 + 7 for byte in range(0, 40, 10)] + [size * 4, size * 8 - 1]


def what_it_did(result: Any) -> tuple[Any, ...]:
    """Everything a run reports that does not name the saga or the clock."""
    return (
        result.status,
        result.outcome,
        result.error,
        result.cause,
        result.records,
        [(entry.step, entry.event, entry.attempt) for entry in result.saga_log],
        [(record.step, record.kind, record.error) for record in result.needs_attention],
        result.states,
        result.transitions,
    )


def test_a_stored_program_with_a_bit_flipped_is_parsed_again_and_the_saga_runs_as_uncached(
    stack, run_saga, tmp_path, monkeypatch
):
    # Given a rollback run with a run cache of its own, which keeps the program moto parsed for it
    monkeypatch.setenv("RUNTEST_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(PARSED_DEFINITIONS, "_parsed", {})
    uncached = what_it_did(run_saga(saga_request("t-uncached", simulate={book_step(LAST): "fail"})))
    assert uncached[1] == "ROLLED_BACK"
    [entry] = (tmp_path / "asl-programs").iterdir()
    good = entry.read_bytes()
    for bit in bits_to_flip(len(good)):
        damaged = bytearray(good)
        damaged[bit // 8] ^= 1 << (bit % 8)
        entry.write_bytes(damaged)
        monkeypatch.setattr(PARSED_DEFINITIONS, "_parsed", {})  # a new process: only the disk is left
        # When the same saga runs on the program read from that entry
        result = run_saga(saga_request(f"t-flipped-{bit}", simulate={book_step(LAST): "fail"}))
        # Then it does exactly what the uncached run did
        assert what_it_did(result) == uncached, f"bit {bit}"
