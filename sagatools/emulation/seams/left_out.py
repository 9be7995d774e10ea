"""The seams of what lean_moto leaves out of the embedded stack: moto.batch (for one enum), cryptography's
x509 (for one IAM call), and what two Step Functions modules import for rare calls (lean_moto.STAND_INS)."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import moto
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_batch

from sagatools.emulation import lean_moto
from sagatools.emulation.seams.seam import Seam, source


def _batch_job_statuses_match() -> bool:
    """lean_moto's JobStatus has the members of moto's own (read from its source, not imported: the
    import is what the stub avoids), and the interpreter imports nothing else from that module."""
    text = (Path(moto.__file__).parent / "batch" / "utils.py").read_text(encoding="utf-8")
    enum = re.search(r"class JobStatus\(str, Enum\):\n((?:    \w+ = \"\w+\"\n)+)", text)
    members = dict(re.findall(r"    (\w+) = \"(\w+)\"", enum.group(1))) if enum else {}
    imports = re.findall(r"from moto\.batch\.utils import (.+)", source(state_task_service_batch))
    return members == {status.name: status.value for status in lean_moto.JobStatus} and imports == ["JobStatus"]


def _stand_in_names_used_only_when_called_or_indexed(importer: str) -> bool:
    """`importer` (a key of lean_moto.STAND_INS) imports exactly the stand-in's names from its module and
    uses them only inside functions, called or indexed (what the stand-in's placeholders forward), or in
    annotations that are never evaluated (`from __future__ import annotations`)."""
    module, imported = lean_moto.STAND_INS[importer]
    text = (Path(moto.__file__).parent.parent / (importer.replace(".", "/") + ".py")).read_text(encoding="utf-8")
    tree = ast.parse(text)
    names = set(imported)
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == module]
    annotations = {
        id(inner)
        for node in ast.walk(tree)
        for part in (getattr(node, "annotation", None), getattr(node, "returns", None))
        if part is not None
        for inner in ast.walk(part)
    }
    in_functions = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(node)
    }
    forwarded = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)} | {
        id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Subscript)
    }
    uses = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id in names]
    unevaluated = "from __future__ import annotations" in text
    return (
        len(imports) == 1
        and {alias.name for alias in imports[0].names} == names
        and all(
            (id(use) in annotations and unevaluated) or (id(use) in in_functions and id(use) in forwarded)
            for use in uses
        )
    )


def _used_only_in_functions(source_file: Path, module: str, imported: str) -> bool:
    """`module` is imported at the top of `source_file` and used only in code indented into a function."""
    text = source_file.read_text(encoding="utf-8")
    uses = [line for line in text.splitlines() if f"{module}." in line and "import" not in line]
    return imported in text.splitlines() and all(line.startswith("        ") for line in uses)


LEFT_OUT_SEAMS: tuple[Seam, ...] = (
    Seam(
        "moto.batch.utils",
        "replaced in sys.modules by lean_moto's module holding only JobStatus (the interpreter's only use of it)",
        "every ./runtest.sh would import moto.batch and moto.ec2 again (1.6 s); a moved enum breaks Batch tasks,"
        " which no saga has",
        _batch_job_statuses_match,
    ),
    *(
        Seam(
            f"{importer} ({module})",
            f"imported with lean_moto's stand-in for {module}, whose names import the real module when used",
            f"every ./runtest.sh would import {module} and what it imports again; a use the stand-in does not"
            " forward would fail where it is used (CloudWatch logging, which moto's backend never starts; a"
            " definition's first parse)",
            functools.partial(_stand_in_names_used_only_when_called_or_indexed, importer),
        )
        for importer, (module, _) in lean_moto.STAND_INS.items()
    ),
    Seam(
        "moto.iam.models.x509",
        "relied on: cryptography.x509 is only used inside IAM's functions, so lean_moto loads it when first used",
        "every ./runtest.sh would load cryptography's x509 again (~40 ms); a use at import would just load it",
        lambda: _used_only_in_functions(
            Path(moto.__file__).parent / "iam" / "models.py", "x509", "from cryptography import x509"
        ),
    ),
)
