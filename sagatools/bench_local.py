"""The local cloud's figures for ./build.sh bench: endpoint and deploy times, a saga beside the embedded
stack's, and what a warm or cold Lambda invocation costs on top of the handler.

Measured in a copy of the working tree (sharing .venv and node_modules), so a running endpoint of the
user's is left alone. A script's helper, not a test: it prints what it measured and asserts nothing.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import statistics
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from saga.catalogue import REQUESTS
from saga.keys import ID_FIELD
from sagatools.deployed.lambda_runtime import runtime_environment, runtime_python
from sagatools.emulation.execution_environment import FunctionVersion
from sagatools.emulation.warm_lambda import WarmLambda
from sagatools.project import PROJECT_ROOT, app_folder
from sagatools.serverless_config import load_service_config
from sagatools.working_tree import copy_working_tree

SAGAS = int(os.environ.get("BENCH_LOCAL_SAGAS", "10"))
INVOCATIONS = 50


def timed(project: Path, *command: str) -> float:
    """Wall seconds of `command` run in `project` (without this process's AWS settings); raises if it fails."""
    started = time.perf_counter()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    subprocess.run(command, cwd=project, env=environment, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - started


def _saga_walls(project: Path, count: int) -> list[float]:
    """Wall time of `count` success sagas, one at a time, each a runtest.sh call on the local stage."""
    walls = []
    sample = project / app_folder().relative_to(PROJECT_ROOT) / "samples" / "success.json"
    base = json.loads(sample.read_text(encoding="utf-8"))
    for n in range(count):
        path = project / f"bench-local-{n}.json"
        path.write_text(json.dumps({**base, ID_FIELD: f"bench-local-{n}"}), encoding="utf-8")
        done = subprocess.run(
            ["./runtest.sh", path.name, "--stage", "local", "--json"],
            cwd=project,
            capture_output=True,
            text=True,
            check=True,
        )
        walls.append(float(json.loads(done.stdout)["duration_ms"]))
    return walls


def _invocation_overhead(python: str) -> dict[str, float]:
    """ms per invocation of a handler that does nothing: everything measured is overhead."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("noop.py", "def handler(event, context):\n    return event\n")
    version = FunctionVersion("noop", "arn:aws:lambda:us-east-1:1:function:noop", "noop.handler", {}, 10, 128, "noop")
    with tempfile.TemporaryDirectory() as directory:
        pool = WarmLambda(python, Path(directory), {"PATH": os.environ.get("PATH", "")})
        try:
            started = time.perf_counter()
            pool.invoke(version, buffer.getvalue(), "{}")
            first = (time.perf_counter() - started) * 1000
            # A second function's cold start: forked from the fork server, which the first one started.
            other = dataclasses.replace(version, name="noop-2", code_sha="noop-2")
            started = time.perf_counter()
            pool.invoke(other, buffer.getvalue(), "{}")
            cold = (time.perf_counter() - started) * 1000
            warm = []
            for _ in range(INVOCATIONS):
                started = time.perf_counter()
                pool.invoke(version, buffer.getvalue(), "{}")
                warm.append((time.perf_counter() - started) * 1000)
        finally:
            pool.close()
    return {"first_ms": first, "cold_ms": cold, "warm_median_ms": statistics.median(warm), "warm_max_ms": max(warm)}


def measure_local_cloud() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        project = copy_working_tree(Path(directory) / "project")
        figures: dict[str, Any] = {"start_s": timed(project, "./build.sh", "local", "start")}
        try:
            figures["deploy_s"] = timed(project, "./build.sh", "deploy", "local")
            walls = _saga_walls(project, SAGAS + 1)
            figures["saga_first_ms"] = walls[0]  # a cold start per request
            figures["saga_warm_median_ms"] = statistics.median(walls[1:])
            handler = project / REQUESTS[0].handler_file
            handler.write_text(handler.read_text(encoding="utf-8") + "\n# changed for the redeploy measurement\n")
            figures["redeploy_s"] = timed(project, "./build.sh", "deploy", "local")
            figures["remove_s"] = timed(project, "./build.sh", "remove", "local")
        finally:
            figures["stop_s"] = timed(project, "./build.sh", "local", "stop")
    python = runtime_environment(runtime_python(load_service_config("local").runtime, io.StringIO()), io.StringIO())
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True, check=True
    )
    figures["python"] = f"Python {version.stdout.strip()}"
    figures["invocation"] = _invocation_overhead(python)
    return figures


def local_cloud_markdown(figures: dict[str, Any], embedded_success_ms: float) -> list[str]:
    invocation = figures["invocation"]
    ratio = figures["saga_warm_median_ms"] / max(embedded_success_ms, 0.001)
    return [
        "",
        "## The local cloud",
        "",
        "`./build.sh local start`, `deploy local`, sagas through `./runtest.sh --stage local`, a redeploy after "
        "a handler change, `remove local`, `local stop`, in a copy of the working tree. A saga's time is its "
        "execution's, start to stop, as the history records it (the embedded figure is the same measure).",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| endpoint start (`./build.sh local start`) | {figures['start_s']:.1f} |",
        f"| first deploy (`./build.sh deploy local`: osls, CloudFormation, deploy-stepfunc) "
        f"| {figures['deploy_s']:.1f} |",
        f"| redeploy after a handler change | {figures['redeploy_s']:.1f} |",
        f"| remove (`./build.sh remove local`) | {figures['remove_s']:.1f} |",
        f"| stop (`./build.sh local stop`) | {figures['stop_s']:.1f} |",
        "",
        "| success saga | ms |",
        "|---|---|",
        f"| local stage, first ({len(REQUESTS)} cold starts) | {figures['saga_first_ms']:.0f} |",
        f"| local stage, warm, median of {SAGAS} | {figures['saga_warm_median_ms']:.0f} |",
        f"| embedded stack, median | {embedded_success_ms:.0f} |",
        f"| ratio local / embedded (target: within 3x) | {ratio:.1f} |",
        "",
        f"Lambda overhead on the endpoint, for a handler that does nothing ({figures['python']}): the "
        f"endpoint's first cold invocation (the fork server starts and imports the runtime's and the layer's "
        f"libraries, then forks) {invocation['first_ms']:.0f} ms; a cold one after it (a fork, the handler's "
        f"import) {invocation['cold_ms']:.0f} ms; a warm one {invocation['warm_median_ms']:.2f} ms median, "
        f"{invocation['warm_max_ms']:.2f} ms at most over {INVOCATIONS} (target: warm at most 10 ms). A real "
        "handler's cold start adds the imports of its own code and of what the server does not import "
        "(the Tracer's X-Ray SDK): the first saga's extra time above.",
    ]
