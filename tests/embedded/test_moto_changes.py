"""Slower at worst, never broken: every change to moto is checked when applied (sagatools/emulation/changes.py).

On the pinned moto every change fits (no line on stderr). A speed-up that does not fit is skipped with one
line; a change the results depend on stops the run in one sentence. And the contract itself, run on the
previous minor release of moto and on the newest: the same outcomes as on the pinned one, or that sentence.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from saga.keys import ID_FIELD, RECORDS_KEY
from sagatools.emulation import changes, lean_moto
from sagatools.emulation.changes import MADE_FOR, Change, Mismatch, MotoUnsupported, checked, installed_moto
from sagatools.emulation.embedded import EmbeddedStack
from tests.helpers import FAIL_FILE, ROOT, SUCCESS_FILE

PREVIOUS_MINOR = "5.1.22"  # the last release of the minor before the pinned one


def test_the_pinned_moto_is_the_one_the_changes_were_made_for():
    assert installed_moto() == MADE_FOR


@pytest.fixture(autouse=True)
def nothing_told_yet(monkeypatch):
    """Each test starts as a new process does: no skipped speed-up reported yet."""
    monkeypatch.setattr(changes, "_told", set())


def test_every_change_fits_the_pinned_moto(capsys):
    # Given the pinned moto / When every change of a stack is checked (as entering it does, before it applies
    # them), and the import-time ones again
    replacements = checked(EmbeddedStack().changes())
    statuses = lean_moto.moto_job_statuses(lean_moto._utils_path() or "")
    # Then none was skipped, and each of them replaced something
    assert capsys.readouterr().err == ""
    assert replacements
    assert statuses == {status.name: status.value for status in lean_moto.JobStatus}
    assert all(lean_moto._uses_only_as_calls(importer) for importer in lean_moto.STAND_INS)


def _does_not_fit() -> list[object]:
    raise Mismatch("Example.method(self, other), not (self,)")


def test_a_speed_up_that_does_not_fit_is_skipped_in_one_line_naming_it(capsys):
    fits = Change("a speed-up that fits", False, lambda: [(object, "x", 1)])
    misfit = Change("a speed-up written for another moto", False, _does_not_fit)
    assert checked([misfit, fits]) == [(object, "x", 1)]
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"speed-up skipped: a speed-up written for another moto (made for moto {MADE_FOR}, found {MADE_FOR})"
    ]


def test_a_needed_change_that_does_not_fit_stops_in_one_sentence_naming_the_moto_it_needs():
    needed = Change("the in-process Lambda", True, _does_not_fit)
    with pytest.raises(MotoUnsupported) as stopped:
        checked([needed])
    sentence = str(stopped.value)
    assert "\n" not in sentence
    assert f"needs moto {MADE_FOR}" in sentence
    assert "the in-process Lambda does not work" in sentence


def test_a_moto_whose_batch_status_moved_keeps_moto_batch(tmp_path):
    moved = tmp_path / "utils.py"
    moved.write_text("from enum import Enum\n\nclass JobStatus(str, Enum):\n    SUBMITTED = 'SUBMITTED'\n")
    assert lean_moto.moto_job_statuses(str(moved)) == {"SUBMITTED": "SUBMITTED"}
    assert lean_moto.moto_job_statuses(str(tmp_path / "absent.py")) is None


def _runtest(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    files = [str(SUCCESS_FILE), str(FAIL_FILE)]
    return subprocess.run(
        [str(ROOT / "runtest.sh"), *files, "--json"], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def _outcomes(run: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, dict[str, str | None]]]:
    return {saga[ID_FIELD]: (saga["outcome"], saga[RECORDS_KEY]) for saga in json.loads(run.stdout)}


def _newest_moto() -> str:
    found = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "moto"], capture_output=True, text=True, check=False
    )
    first = found.stdout.splitlines()[0] if found.returncode == 0 and found.stdout else ""
    if "(" not in first:
        pytest.skip("the package index could not say which moto is the newest (no network?)")
    return first.split("(")[1].rstrip(")")


@pytest.mark.slow
@pytest.mark.parametrize("release", [PREVIOUS_MINOR, "newest"])
def test_the_contract_on_another_moto_is_the_same_or_one_sentence(release, tmp_path):
    # Given the pinned moto's answers to the sample requests
    base_env = {**os.environ, "RUNTEST_DIR": str(tmp_path / "out")}
    pinned = _runtest(base_env)
    assert pinned.returncode == 0, pinned.stderr
    release = _newest_moto() if release == "newest" else release
    # When the same requests run with another moto first on the path (only moto changes)
    if release != installed_moto():
        target = tmp_path / "moto"
        install = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(target),
                f"moto=={release}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if install.returncode != 0:
            pytest.skip(f"moto {release} could not be installed here: {install.stderr.strip()[-200:]}")
        base_env["PYTHONPATH"] = str(target)
    other = _runtest(base_env)
    # Then the same outcomes and bookings, or one sentence and exit 2: never a traceback
    assert "Traceback" not in other.stderr
    if other.returncode == 0:
        assert _outcomes(other) == _outcomes(pinned)
    else:
        assert other.returncode == 2
        refusal = [line for line in other.stderr.splitlines() if line.startswith("runtest: with moto")]
        assert len(refusal) == 1, other.stderr
        assert f"moto {release}" in refusal[0]
        assert other.stdout == ""
