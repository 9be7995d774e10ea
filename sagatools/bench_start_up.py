"""Start-up: one saga through `./runtest.sh` against a bare `import boto3`, measured side by side.

The two are run in turn, several times, so a noisy moment of the machine hits both: the ratio of the
medians is the figure, the seconds are this machine's today. A script's measurement, not a test.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from sagatools.bench_local import timed
from sagatools.project import PROJECT_ROOT, app_folder

ONE_SAGA = app_folder() / "samples" / "success.json"
VENV_PYTHON = PROJECT_ROOT / ".venv" / "bin" / "python"


@dataclass(frozen=True)
class StartUp:
    runs: int
    boto3_import: list[float]
    one_saga: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.one_saga) / statistics.median(self.boto3_import)


def measure_start_up(runs: int = 15) -> StartUp:
    python = str(VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable))
    timed(PROJECT_ROOT, str(PROJECT_ROOT / "runtest.sh"), str(ONE_SAGA), "--json")  # the run cache, made once
    boto3_import, one_saga = [], []
    for _ in range(runs):
        boto3_import.append(timed(PROJECT_ROOT, python, "-c", "import boto3"))
        one_saga.append(timed(PROJECT_ROOT, str(PROJECT_ROOT / "runtest.sh"), str(ONE_SAGA), "--json"))
    return StartUp(runs, boto3_import, one_saga)


def start_up_markdown(start_up: StartUp, batch_50: list[float]) -> list[str]:
    median = statistics.median
    return [
        "## Start-up",
        "",
        f'`./runtest.sh <app>/samples/success.json --json` and `.venv/bin/python -c "import boto3"`, run in turn '
        f"{start_up.runs} times (warm venv, the run cache in `.runtest/cache/` made): wall time of each process.",
        "",
        "| command | median s | fastest s |",
        "|---|---|---|",
        f'| `python -c "import boto3"` | {median(start_up.boto3_import):.2f} | {min(start_up.boto3_import):.2f} |',
        f"| one saga through `./runtest.sh` | {median(start_up.one_saga):.2f} | {min(start_up.one_saga):.2f} |",
        f"| 50 sagas through `./runtest.sh` ({len(batch_50)} runs) | {median(batch_50):.2f} | {min(batch_50):.2f} |",
        "",
        f"One saga takes **{start_up.ratio:.1f}x** the bare boto3 import (ratio of the medians).",
        "",
    ]
