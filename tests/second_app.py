"""The engine's tests on a second app: a copy of the project whose one setting names tests/apps/parcel.

`./build.sh test` runs it after the suite: in the copy, `./build.sh generate` writes the parcel's state
machines, template and handlers, then pytest runs the unit tier and a representative part of the embedded
tier there, unchanged. A test that names the trip, or assumes its steps, fails here.

    python -m tests.second_app [PYTEST_ARGS]
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from sagatools.working_tree import copy_working_tree

SECOND_APP = "tests.apps.parcel"
# Engine tests of the embedded tier run on the second app too (the whole tier would double its time): the
# saga's outcomes, every fault, a step's own work, the runner's output, hostile input, and the durable coordinator
# against the state machine (it is derived from the definition, so it must hold for any app).
REPRESENTATIVE = (
    "tests/unit",
    "tests/embedded/test_saga.py",
    "tests/embedded/test_fault_matrix.py",
    "tests/embedded/test_step_work.py",
    "tests/embedded/test_runtest_cli.py",
    "tests/embedded/test_hostile_input.py",
    "tests/embedded/test_execution_view.py",
    "tests/embedded/test_transient_faults.py",
    "tests/embedded/test_coordinators.py",
)


def serve(project: Path, app: str) -> None:
    """Name `app` in the project's one setting (saga/definition.py)."""
    setting = project / "saga" / "definition.py"
    text, count = re.subn(r'^APP = "[^"]*"$', f'APP = "{app}"', setting.read_text(), flags=re.MULTILINE)
    if count != 1:
        raise SystemExit(f'{setting}: no line APP = "..." to name the app in')
    setting.write_text(text)


def main(pytest_args: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="second-app-") as folder:
        project = copy_working_tree(Path(folder))
        serve(project, SECOND_APP)
        python = str(project / ".venv" / "bin" / "python")
        subprocess.run([python, "-m", "sagatools.generate"], cwd=project, check=True, stdout=subprocess.DEVNULL)
        print(f"second app: {SECOND_APP}, in a copy of the project", flush=True)
        # Paths given: those tests only (while working); otherwise the representative set.
        named = any((project / arg.split("::")[0]).exists() for arg in pytest_args if not arg.startswith("-"))
        paths = [] if named else list(REPRESENTATIVE)
        command = [python, "-m", "pytest", "-n", "2", "--dist", "loadfile", *paths, *pytest_args]
        return subprocess.run(command, cwd=project).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
