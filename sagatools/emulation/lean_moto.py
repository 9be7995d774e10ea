"""What moto imports and the embedded stack never uses, left out of its start (none of it changes an answer).

- moto.batch, for Batch tasks no saga has (below);
- cryptography.x509, loaded when first used (`load_x509_when_used`);
- while moto's Step Functions logging and parser modules are imported, the CloudWatch Logs models and the
  ASL preprocessor they import only for rare calls are stand-ins that import the real module at their
  first use (`STAND_INS`).
Each is checked before it is installed (the module it stands for is read, not imported, to confirm what
it assumes) and skipped with one line on stderr when that does not hold.

moto.batch:
moto's Step Functions interpreter imports `moto.batch.utils` for its Batch task integration, only for the
`JobStatus` enum; that module's package imports `moto.batch.models`, then `moto.ec2` with its instance types
and availability zones: more than half a second of every `./runtest.sh` (a profile of one run). Here
`moto.batch.utils` is a module holding that enum, with the same members, whose other names load moto's own
module when first asked for: what uses Batch for real (moto.cloudformation) gets it whole.

A speed-up in the sense of changes.py: before it is installed, moto's own batch/utils.py is read (not
imported) to check that JobStatus is there with these members; if not, it is skipped with one line on
stderr and moto imports Batch as it always does.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from enum import StrEnum
from functools import cache
from typing import Any

from sagatools.emulation.changes import MADE_FOR, installed_moto

BATCH_UTILS = "moto.batch.utils"


class JobStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    PENDING = "PENDING"
    RUNNABLE = "RUNNABLE"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


def _utils_path() -> str | None:
    package = importlib.util.find_spec("moto")
    if package is None or not package.submodule_search_locations:
        return None
    return f"{next(iter(package.submodule_search_locations))}/batch/utils.py"


def moto_job_statuses(path: str) -> dict[str, str] | None:
    """JobStatus's members as moto's batch/utils.py defines them (read, not imported), or None."""
    try:
        with open(path, encoding="utf-8") as source:
            tree = ast.parse(source.read())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "JobStatus":
            members: dict[str, str] = {}
            for statement in node.body:
                if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant):
                    if not isinstance(statement.value.value, str):
                        continue
                    for target in statement.targets:
                        if isinstance(target, ast.Name):
                            members[target.id] = statement.value.value
            return members
    return None


@cache
def _real() -> types.ModuleType:
    """moto's own batch/utils.py, loaded (once) the first time something other than JobStatus is asked."""
    path = _utils_path()
    spec = importlib.util.spec_from_file_location(BATCH_UTILS, path) if path else None
    if spec is None or spec.loader is None:
        raise ImportError(BATCH_UTILS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rest_of_utils(name: str) -> Any:
    if name.startswith("__"):  # the import system asks for __path__ and the like: not a reason to load
        raise AttributeError(name)
    return getattr(_real(), name)


def _skipped(what: str) -> None:
    print(f"speed-up skipped: {what} (made for moto {MADE_FOR}, found {installed_moto()})", file=sys.stderr)


def install() -> None:
    """Before anything imports moto's Step Functions interpreter."""
    load_x509_when_used()
    waiting = {finder.importer for finder in sys.meta_path if isinstance(finder, _ImportedWithStandIn)}
    for importer in STAND_INS:
        if importer in sys.modules or importer in waiting:
            continue
        if _uses_only_as_calls(importer):
            sys.meta_path.insert(0, _ImportedWithStandIn(importer))
        else:
            _skipped(f"{STAND_INS[importer][0]} imported when first used")
    _leave_out_batch()


def _leave_out_batch() -> None:
    if BATCH_UTILS in sys.modules or "moto.batch" in sys.modules:
        return  # already the real one
    path = _utils_path()
    if path is None or moto_job_statuses(path) != {status.name: status.value for status in JobStatus}:
        _skipped("moto.batch left out")
        return
    stub = types.ModuleType(BATCH_UTILS, "moto.batch.utils: JobStatus now, the rest when asked")
    stub.JobStatus = JobStatus  # type: ignore[attr-defined]
    stub.__getattr__ = _rest_of_utils  # type: ignore[method-assign]  # PEP 562: only for the names not set
    sys.modules[BATCH_UTILS] = stub


X509 = "cryptography.x509"


def load_x509_when_used() -> None:
    """moto's IAM models, which every request imports, import cryptography.x509 (~40 ms, its Rust bindings)
    for one call, UploadServerCertificate: it is loaded when first used, by the standard library's own
    lazy loader (importlib.util.LazyLoader), not at import. Nothing here reads it, so the loader's one
    weakness (two threads reading the first attribute at once, Python 3.11) never arises."""
    if X509 in sys.modules:
        return
    spec = importlib.util.find_spec(X509)
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[X509] = module
    spec.loader.exec_module(module)
    parent, _, child = X509.rpartition(".")
    setattr(sys.modules[parent], child, module)  # as the import system does: a submodule is its package's


# importer: (module, the names it imports of it). While the importer's code runs, `module` is a stand-in
# whose names import the real module when first called or indexed; everyone else imports the real one.
STAND_INS: dict[str, tuple[str, tuple[str, ...]]] = {
    # CloudWatch logging of executions, which moto's backend never starts: moto.logs, moto.s3, moto.events
    "moto.stepfunctions.parser.asl.eval.event.logging": (
        "moto.logs.models",
        ("LogEvent", "LogsBackend", "logs_backends"),
    ),
    # what turns a parse tree into a program, needed only when a definition is not in the run cache
    "moto.stepfunctions.parser.asl.parse.asl_parser": (
        "moto.stepfunctions.parser.asl.parse.preprocessor",
        ("Preprocessor",),
    ),
}


def _uses_only_as_calls(importer: str) -> bool:
    """The importer's source (read, not imported) imports exactly STAND_INS's names of its module, and uses
    them only where a stand-in serves: called, indexed, or in an annotation (never read at import)."""
    module, names = STAND_INS[importer]
    try:
        spec = importlib.util.find_spec(importer)
        if spec is None or spec.origin is None:
            return False
        with open(spec.origin, encoding="utf-8") as source:
            tree = ast.parse(source.read())
    except (ImportError, OSError, SyntaxError, ValueError):
        return False
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == module
        for alias in node.names
    ]
    if sorted(imported) != sorted(names):
        return False
    served: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            served.add(id(node.func))
        elif isinstance(node, ast.Subscript):
            served.add(id(node.value))
        elif isinstance(node, (ast.AnnAssign, ast.arg)) and node.annotation is not None:
            served.update(id(inner) for inner in ast.walk(node.annotation))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            served.update(id(inner) for inner in ast.walk(node.returns))
    uses = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id in names]
    return all(id(node) in served for node in uses)


class ImportedOnFirstUse:
    """Stands for `name` of `module` where it is only called or indexed: imports `module` then."""

    def __init__(self, module: str, name: str) -> None:
        self._module, self._name = module, name

    def target(self) -> Any:
        return getattr(importlib.import_module(self._module), self._name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.target()(*args, **kwargs)

    def __getitem__(self, key: Any) -> Any:
        return self.target()[key]


class _ImportedWithStandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds one importer of STAND_INS (once) and runs its code with its module a stand-in in sys.modules."""

    def __init__(self, importer: str) -> None:
        self.importer = importer
        self.module, self.names = STAND_INS[importer]

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.importer:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        self.loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__loader__ = self.loader  # as if found the usual way (inspect reads the source through it)
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        if self.module in sys.modules:  # already loaded for real: nothing to leave out
            self.loader.exec_module(module)
            return
        stand_in = types.ModuleType(self.module, f"{self.module}, imported when {self.importer} uses it")
        for name in self.names:
            setattr(stand_in, name, ImportedOnFirstUse(self.module, name))
        sys.modules[self.module] = stand_in
        try:
            self.loader.exec_module(module)
        finally:
            if sys.modules.get(self.module) is stand_in:
                del sys.modules[self.module]
