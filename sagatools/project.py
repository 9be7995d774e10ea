"""Where the project is: the checkout this code runs from (a module of its own, so that what must load
first, before the tools' heavy imports, can know it)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def app_folder() -> Path:
    """The folder of the app the engine serves (saga/definition.py's APP): its definition, steps and samples."""
    from saga.definition import APP  # here, not above: it imports the app, and this module loads first

    return PROJECT_ROOT.joinpath(*APP.split("."))
