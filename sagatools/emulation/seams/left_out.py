"""The seams of what lean_moto leaves out of the embedded stack: moto.batch (for one enum), cryptography's
x509 (for one IAM call) and moto.logs (for Step Functions' CloudWatch logging, which moto never starts)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import moto
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_batch

from sagatools.emulation import lean_moto
from sagatools.emulation.seams.seam import Seam, source


def _batch_job_statuses_match() -> bool:
    """lean_moto's JobStatus has the members of moto's own (read from its source, not imported: the
    import is what the stub avoids), and the interpreter imports nothing else from that module."""
    text = (Path(moto.__file__).parent / "batch" / "utils.py").read_text()
    enum = re.search(r"class JobStatus\(str, Enum\):\n((?:    \w+ = \"\w+\"\n)+)", text)
    members = dict(re.findall(r"    (\w+) = \"(\w+)\"", enum.group(1))) if enum else {}
    imports = re.findall(r"from moto\.batch\.utils import (.+)", source(state_task_service_batch))
    return members == {status.name: status.value for status in lean_moto.JobStatus} and imports == ["JobStatus"]


def _logs_models_used_only_when_called_or_indexed() -> bool:
    """Step Functions' logging module imports exactly LOGS_NAMES from moto.logs.models, its annotations are
    not evaluated, and it uses those names only inside functions, called or indexed (what the stand-in's
    placeholders forward), or in annotations."""
    text = (Path(moto.__file__).parent / "stepfunctions/parser/asl/eval/event/logging.py").read_text()
    tree = ast.parse(text)
    names = set(lean_moto.LOGS_NAMES)
    imports = [
        node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == lean_moto.LOGS_MODELS
    ]
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
    return (
        "from __future__ import annotations" in text
        and len(imports) == 1
        and {alias.name for alias in imports[0].names} == names
        and all(id(use) in annotations or (id(use) in in_functions and id(use) in forwarded) for use in uses)
    )


def _used_only_in_functions(source_file: Path, module: str, imported: str) -> bool:
    """`module` is imported at the top of `source_file` and used only in code indented into a function."""
    text = source_file.read_text()
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
    Seam(
        "moto.stepfunctions.parser.asl.eval.event.logging (moto.logs.models)",
        "imported with lean_moto's stand-in for moto.logs.models, whose names import the real module when used",
        "every ./runtest.sh would import moto.logs, moto.s3 and moto.events again (~25 ms); a use the stand-in"
        " does not forward would fail CloudWatch logging of executions, which moto's backend never starts",
        _logs_models_used_only_when_called_or_indexed,
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
