"""Every dependency is pinned once, in requirements*.txt, and locked with hashes in requirements*.lock
(`./build.sh lock`); what both README commands install is the lock. These fail as soon as a pin and its
lock disagree, a package is pinned twice, or a lock leaves a dependency unhashed."""

from __future__ import annotations

import re

import pytest

from tests.helpers import ROOT

SETS = ["requirements", "requirements-durable", "requirements-tools", "requirements-local", "requirements-dev"]
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;#]+)")
_LOCKED = re.compile(r"^([a-z0-9_.-]+)==(\S+) \\$")


def _name(package: str) -> str:
    return re.sub(r"[-_.]+", "-", package).lower()


def pins(requirements: str) -> dict[str, str]:
    """The exact pins a set's own file writes (not those of the files it includes)."""
    lines = (ROOT / f"{requirements}.txt").read_text().splitlines()
    return {_name(m[1]): m[2] for line in lines if (m := _PIN.match(line.strip()))}


def included(requirements: str) -> list[str]:
    """The set and every set it includes (-r), in order."""
    lines = (ROOT / f"{requirements}.txt").read_text().splitlines()
    inner = [line.split(maxsplit=1)[1].removesuffix(".txt") for line in lines if line.startswith("-r ")]
    return [requirements, *(found for name in inner for found in included(name))]


def locked(requirements: str) -> dict[str, str]:
    text = (ROOT / f"{requirements}.lock").read_text()
    return {_name(m[1]): m[2] for line in text.splitlines() if (m := _LOCKED.match(line))}


@pytest.mark.parametrize("requirements", SETS)
def test_a_lock_holds_every_pin_of_its_set_and_of_the_sets_it_includes(requirements):
    lock = locked(requirements)
    for name in included(requirements):
        for package, version in pins(name).items():
            assert lock.get(package) == version, f"{requirements}.lock: {package} (pinned {version} in {name}.txt)"


@pytest.mark.parametrize("requirements", SETS)
def test_every_locked_package_has_hashes_and_the_lock_names_no_machine(requirements):
    text = (ROOT / f"{requirements}.lock").read_text()
    entries = re.split(r"\n(?=[a-z0-9])", text.strip())
    packages = [entry for entry in entries if _LOCKED.match(entry.splitlines()[0])]
    assert packages
    for entry in packages:
        assert "--hash=sha256:" in entry, entry.splitlines()[0]
    assert "file://" not in text
    assert "--find-links" not in text
    assert "--index-url" not in text


def test_the_smaller_sets_lock_the_versions_of_the_whole_set():
    whole = locked("requirements-dev")
    for requirements in SETS[:-1]:
        for package, version in locked(requirements).items():
            assert whole.get(package) == version, f"{requirements}.lock: {package}"


def test_each_package_is_pinned_in_exactly_one_file():
    where: dict[str, list[str]] = {}
    for requirements in SETS:
        for package in pins(requirements):
            where.setdefault(package, []).append(requirements)
    assert {package: files for package, files in where.items() if len(files) > 1} == {}
    assert where["moto"] == ["requirements-tools"]


def test_the_scripts_install_the_locks_with_hashes():
    venv = (ROOT / "scripts/venv.sh").read_text()
    assert "--require-hashes" in venv
    assert '"${requirements%.txt}.lock"' in venv
