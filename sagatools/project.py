"""Where the project is: the checkout this code runs from (a module of its own, so that what must load
first, before the tools' heavy imports, can know it)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
