"""The durable function's package: the engine and the app, as every function has them, and the durable execution SDK
release requirements-durable.txt pins.

    python -m sagatools.deployed.durable_package [STAGE]    writes build/durable/<saga>.zip for a durable stage

Lambda's python3.13 runtime carries some release of the SDK, but AWS advises packaging the one the function was
tested with. osls cannot add an installed package to a zip (its patterns take the project's files where they are),
and its layers ask CloudFormation for the last one even when only packaging; so the package is written here, and
serverless.steps.yml (durable) names it as the function's artifact. The SDK's files are the ones pip installed into
.venv from requirements-durable.lock (hash-checked there), each checked against the install's RECORD; it is pure
Python (py3-none-any), so what .venv's Python installed runs on python3.13. The zip is the same bytes for the same
files (sorted, fixed times), so osls publishes a new version only when something in it changed.
A stage on the Step Functions coordinator needs none: nothing is written for it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import sys
import tempfile
import zipfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from sagatools.deployed.stage import DEFAULT_STAGE
from sagatools.exit_codes import EXIT_FAILED, EXIT_OK
from sagatools.generate.template import DURABLE_PACKAGE, durable_package_folders
from sagatools.project import PROJECT_ROOT
from sagatools.serverless_config import DURABLE, load_service_config

SDK = "aws-durable-execution-sdk-python"
REQUIREMENTS = PROJECT_ROOT / "requirements-durable.txt"
_PIN = re.compile(rf"^{re.escape(SDK)}==([0-9][0-9A-Za-z.]*)\s*(?:#.*)?$", re.MULTILINE)
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say: no build's clock gets in


class PackageError(Exception):
    """Why the package cannot be made, in one sentence."""


def pinned_version() -> str:
    found = _PIN.findall(REQUIREMENTS.read_text(encoding="utf-8"))
    if len(found) != 1:
        raise PackageError(f"requirements-durable.txt must pin {SDK} exactly once, with ==.")
    version: str = found[0]
    return version


def _digest(path: Path) -> str:
    """A file's sha256 as a wheel's RECORD writes it (urlsafe base64, unpadded)."""
    return base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()


def sdk_files() -> dict[str, Path]:
    """The SDK's installed files (its package and its metadata, no bytecode), by their path in the package."""
    try:
        installed = distribution(SDK)
    except PackageNotFoundError:
        raise PackageError(f"{SDK} is not installed in .venv: reinstall it from requirements-durable.lock.") from None
    if installed.version != pinned_version():
        raise PackageError(f".venv has {SDK} {installed.version}, not the {pinned_version()} requirements pin.")
    if "Tag: py3-none-any" not in (installed.read_text("WHEEL") or ""):
        raise PackageError(f"{SDK} {installed.version} is not pure Python: its files cannot be packaged from .venv.")
    recorded = {}
    for line in (installed.read_text("RECORD") or "").splitlines():
        name, _, rest = line.partition(",")
        recorded[name] = rest.partition(",")[0].removeprefix("sha256=")
    files = {}
    for entry in installed.files or []:
        name = str(entry)
        if "__pycache__" in entry.parts or name.endswith(".pyc") or name.startswith(".."):
            continue
        path = Path(str(entry.locate()))
        if recorded.get(name) and _digest(path) != recorded[name]:
            raise PackageError(f"{name} in .venv differs from what pip installed: reinstall .venv.")
        files[name] = path
    return files


def project_files() -> dict[str, Path]:
    """The engine and the app (their Python, not the app's tests), as the steps' package holds them."""
    files = {}
    for folder, leave_out in durable_package_folders():
        root = PROJECT_ROOT / folder
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            name = path.relative_to(PROJECT_ROOT).as_posix()
            if "__pycache__" in path.parts or name.endswith(".pyc") or any(name.startswith(f"{o}/") for o in leave_out):
                continue
            files[name] = path
    return files


def write_package(destination: Path = PROJECT_ROOT / DURABLE_PACKAGE) -> int:
    """The zip, written beside its place and renamed over it: never half a package."""
    files = {**project_files(), **sdk_files()}
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=".durable-", suffix=".zip", dir=destination.parent)
    os.close(handle)
    os.chmod(staging, 0o644)  # as any other package of the project, not mkstemp's owner-only
    try:
        with zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(files):
                entry = zipfile.ZipInfo(name, _FIXED_TIME)
                entry.external_attr = 0o644 << 16
                entry.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(entry, files[name].read_bytes())
        os.replace(staging, destination)
    finally:
        Path(staging).unlink(missing_ok=True)
    return len(files)


def main(argv: list[str]) -> int:
    stage = argv[0] if argv else DEFAULT_STAGE
    if load_service_config(stage).coordinator != DURABLE:
        return EXIT_OK
    try:
        count = write_package()
    except PackageError as error:
        print(f"build.sh: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"the durable function's package, with {SDK} {pinned_version()}: {count} files -> {DURABLE_PACKAGE}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
