"""The layout's rules, checked on the imports themselves (ast), so they cannot drift from a picture."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

EMULATION = ROOT / "sagatools" / "emulation"


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def sources(*folders: str) -> list[Path]:
    return [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))]


def test_only_the_emulation_package_imports_moto():
    outside = [
        str(path.relative_to(ROOT))
        for path in sources("saga", "functions", "sagatools")
        if EMULATION not in path.parents and any(m == "moto" or m.startswith("moto.") for m in imported_modules(path))
    ]
    assert outside == []


def test_what_is_deployed_imports_nothing_of_the_tooling():
    deployed = sources("saga", "functions")
    assert deployed
    offending = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] in {"sagatools", "tests", "moto", "yaml", "rich"}
        )
        for path in deployed
    }
    assert {path: modules for path, modules in offending.items() if modules} == {}


def test_the_serverless_package_holds_only_the_deployed_folders():
    text = (ROOT / "serverless.yml").read_text()
    assert '    - "functions/**"\n    - "saga/**"\n' in text
