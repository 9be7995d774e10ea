"""./build.sh generate [--check]: write (or check) every file that follows from saga/definition.py.

Written: both state machines (statemachine/*.asl.json), the template's per-step part
(serverless.steps.yml), one handler module per function (functions/*.py) and the README's
diagrams. A generated file that no longer follows from the definition is deleted: the handler of a
step it no longer has, the state machine of a saga renamed since. Only a file that says it is
generated is ever deleted. With --check nothing is written: exit 1 naming every file that differs
from what the definition gives, and every such leftover.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from saga.catalogue import RETRIABLES
from sagatools.asl import RESOLVE_MACHINE, SAGA_MACHINE
from sagatools.generate.asl_parts import GENERATED
from sagatools.generate.handlers import MARKER, handler_modules
from sagatools.generate.resolution_machine import resolve_stuck
from sagatools.generate.saga_machine import saga_machine
from sagatools.generate.template import render
from sagatools.project import PROJECT_ROOT
from sagatools.serverless_config import STEPS_YML
from sagatools.view.diagram import README, diagram_in_readme, forward_block, forward_in_readme, readme_block


def generated_files() -> dict[Path, str]:
    """Every generated file's path and the text the definition gives it (the README included)."""
    machines = {SAGA_MACHINE: saga_machine(), RESOLVE_MACHINE: resolve_stuck()}
    files = {machine.asl_path: json.dumps(asl, indent=2) + "\n" for machine, asl in machines.items()}
    files[STEPS_YML] = render()
    files.update({PROJECT_ROOT / path: text for path, text in handler_modules().items()})
    readme = README.read_text(encoding="utf-8")
    for machine, asl in machines.items():
        current = diagram_in_readme(readme, machine)
        if current is None:
            raise SystemExit(f"generate: README.md has lost the markers of the {machine.title}'s diagram")
        readme = readme.replace(current, readme_block(asl, machine))
    if RETRIABLES:
        current = forward_in_readme(readme)
        if current is None:
            raise SystemExit("generate: README.md has lost the markers of the forward path's diagram")
        readme = readme.replace(current, forward_block(machines[SAGA_MACHINE]))
    files[README] = readme
    return files


def is_generated_asl(path: Path) -> bool:
    """Whether an ASL file says it is generated: JSON has no comments, so its top-level Comment says so."""
    try:
        asl = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # not even JSON: nothing this tool writes
    return isinstance(asl, dict) and isinstance(asl.get("Comment"), str) and GENERATED in asl["Comment"]


def stale_files(expected: dict[Path, str]) -> dict[Path, str]:
    """Generated files that no longer follow from the definition, and what each was generated as: a handler
    module whose step left the definition, a state machine it no longer has (a renamed saga's old ASL)."""
    handlers = {
        path: "step"
        for path in sorted((PROJECT_ROOT / "functions").glob("*.py"))
        if path not in expected and path.read_text(encoding="utf-8").startswith(MARKER)
    }
    # build.sh validates every ASL file there, and a reader takes each for a machine of the saga.
    machines = {
        path: "state machine"
        for path in sorted((PROJECT_ROOT / "statemachine").glob("*.asl.json"))
        if path not in expected and is_generated_asl(path)
    }
    return handlers | machines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./build.sh generate", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming each stale file")
    args = parser.parse_args(argv)
    expected = generated_files()
    root = PROJECT_ROOT
    differing = [
        path for path, text in expected.items() if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]
    stale = stale_files(expected)
    if args.check:
        for path in differing:
            print(f"generate --check: {path.relative_to(root)} differs from saga/definition.py", file=sys.stderr)
        for path, kind in stale.items():
            print(f"generate --check: {path.relative_to(root)} is not a {kind} of saga/definition.py", file=sys.stderr)
        if differing or stale:
            print(
                "generate --check: run ./build.sh generate (and do not edit generated files by hand)", file=sys.stderr
            )
            return 1
        print(f"generate --check: all {len(expected)} generated files agree with saga/definition.py")
        return 0
    for path in differing:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(expected[path], encoding="utf-8")
        print(f"wrote {path.relative_to(root)}")
    for path, kind in stale.items():
        path.unlink()
        print(f"deleted {path.relative_to(root)} (no longer a {kind})")
    if not differing and not stale:
        print(f"all {len(expected)} generated files were up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
