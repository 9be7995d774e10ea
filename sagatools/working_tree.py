"""A copy of this checkout to run the real commands in (deploys, an endpoint, a new step) without touching the
user's own: the local cloud's tests and ./build.sh bench use it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from sagatools.project import PROJECT_ROOT

# Not copied when the checkout is no git repository: what .gitignore keeps out of one.
_UNTRACKED = {".git", ".venv", "node_modules", "build", ".runtest", ".serverless", "__pycache__", ".pytest_cache"}


def copy_working_tree(destination: Path) -> Path:
    """The files of this checkout, committed or not (but not those git ignores), in `destination`, with
    .venv and node_modules linked, not copied."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    if listed.returncode == 0:
        names = listed.stdout.splitlines()
    else:
        names = [
            str(path.relative_to(PROJECT_ROOT))
            for path in PROJECT_ROOT.rglob("*")
            if not _UNTRACKED & set(path.relative_to(PROJECT_ROOT).parts)
        ]
    for name in names:
        if (PROJECT_ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, destination / name)
    for shared in (".venv", "node_modules"):
        (destination / shared).symlink_to(PROJECT_ROOT / shared)
    return destination
