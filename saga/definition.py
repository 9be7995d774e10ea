"""The one setting: the app this engine serves.

An app is a package (a folder of this project) whose definition.py declares `SAGA`: its steps, its words,
its request models and each step's own work (trip/ is the example). The generated handlers, the state
machines and the template (`./build.sh generate`), runtest.sh and attention.sh all follow it. To serve
another app, name its package here and run `./build.sh generate`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from saga.spec import SagaSpec

APP = "trip"

SAGA: SagaSpec = import_module(f"{APP}.definition").SAGA

__all__ = ["APP", "SAGA"]
