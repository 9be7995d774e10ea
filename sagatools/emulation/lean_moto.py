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
"""

from __future__ import annotations

import importlib.util
import sys
import types
from enum import StrEnum
from functools import cache
from typing import Any

BATCH_UTILS = "moto.batch.utils"
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


def install() -> None:
    for name in LOADED_WHEN_USED:
        _load_when_used(name)
    if BATCH_UTILS in sys.modules or "moto.batch" in sys.modules:
        return  # already the real one
    stub = types.ModuleType(BATCH_UTILS, "moto.batch.utils: JobStatus now, the rest when asked")
    stub.JobStatus = JobStatus  # type: ignore[attr-defined]
    stub.__getattr__ = _rest_of_utils  # type: ignore[method-assign]  # PEP 562: only for the names not set
    sys.modules[BATCH_UTILS] = stub
