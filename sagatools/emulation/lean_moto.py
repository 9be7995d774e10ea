"""What moto imports and the emulation never uses, left out (none of it changes an API's answer).

moto's Step Functions interpreter imports `moto.batch.utils` for its Batch task integration, only for
the `JobStatus` enum; that module's package imports `moto.batch.models`, then `moto.ec2` with its
instance types and availability zones: 1.6 s of every `./runtest.sh` (a cProfile of one run), for a
task type no saga has. Here `moto.batch.utils` is a module holding only that enum (the same members,
checked against moto's source by seams/), installed before moto's interpreter is imported.
Anything else asked of it (moto.cloudformation imports moto.batch, whose models want the rest of
utils) loads moto's own module then, so what uses Batch for real gets it whole.

Every request moto serves imports its IAM models (to note the account), and they import
`cryptography.x509` (about 40 ms, its Rust bindings) for one call, UploadServerCertificate: that module
is loaded the first time anything uses it (importlib's LazyLoader), not at import. (Only a module
imported as `from package import module` stays unloaded so: `import module` reads its `__spec__`.)

Two modules of moto's Step Functions import what this stack needs only in rare calls (STAND_INS): its
logging imports `moto.logs.models` (with moto.s3, moto.events and CloudWatch: about 25 ms) for CloudWatch
logging, which moto's own backend never starts (only its unused LocalStack-style provider does); its
parser imports the preprocessor (84 modules, about 40 ms), which turns a parse tree into a program, needed
only when a definition is not in the run cache. While each of those two modules is imported, what it
imports is a stand-in whose names import the real module at their first use; everything else imports the
real one.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from enum import StrEnum
from functools import cache
from typing import Any

BATCH_UTILS = "moto.batch.utils"
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
LOADED_WHEN_USED = ("cryptography.x509",)


class JobStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    PENDING = "PENDING"
    RUNNABLE = "RUNNABLE"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@cache
def _real() -> types.ModuleType:
    """moto's own batch/utils.py, loaded (once) the first time something other than JobStatus is asked."""
    package = importlib.util.find_spec("moto")
    assert package is not None
    assert package.submodule_search_locations
    path = f"{next(iter(package.submodule_search_locations))}/batch/utils.py"
    spec = importlib.util.spec_from_file_location(BATCH_UTILS, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rest_of_utils(name: str) -> Any:
    if name.startswith("__"):  # the import system asks for __path__ and the like: not a reason to load
        raise AttributeError(name)
    return getattr(_real(), name)


def _load_when_used(name: str) -> None:
    """`name` in sys.modules as a module whose first attribute read loads it. (Python 3.11's LazyLoader is
    not safe for two threads reading that first attribute at once: nothing here reads x509 at all.)"""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:  # as the import system does: a submodule is an attribute of its package
        setattr(sys.modules[parent], child, module)


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


def install() -> None:
    for name in LOADED_WHEN_USED:
        _load_when_used(name)
    waiting = {finder.importer for finder in sys.meta_path if isinstance(finder, _ImportedWithStandIn)}
    for importer in STAND_INS:
        if importer not in sys.modules and importer not in waiting:
            sys.meta_path.insert(0, _ImportedWithStandIn(importer))
    if BATCH_UTILS in sys.modules or "moto.batch" in sys.modules:
        return  # already the real one
    stub = types.ModuleType(BATCH_UTILS, "moto.batch.utils: JobStatus now, the rest when asked")
    stub.JobStatus = JobStatus  # type: ignore[attr-defined]
    stub.__getattr__ = _rest_of_utils  # type: ignore[method-assign]  # PEP 562: only for the names not set
    sys.modules[BATCH_UTILS] = stub
