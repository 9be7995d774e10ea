"""The cold-start part of ./build.sh bench: what a handler's import costs, layer by layer.

Measured the way Lambda starts a function: a fresh interpreter of serverless.yml's runtime (the local
stage's python3.12 environment, which holds requirements.txt), LAMBDA_TASK_ROOT and the function's
environment set, tracing on. Inside Lambda the X-Ray SDK takes the Lambda path: it builds no sampling
client. Outside Lambda it builds two botocore clients at import, so a measurement taken there
overstates the Tracer by about 100 ms (the last row shows it).

Run alone with `python -m sagatools.bench_cold_start`: prints the section, writes nothing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from functools import cache

from saga.catalogue import STEPS
from sagatools.deployed.lambda_runtime import runtime_environment, runtime_python
from sagatools.project import PROJECT_ROOT
from sagatools.serverless_config import load_service_config

RUNS = int(os.environ.get("BENCH_COLD_RUNS", "11"))
_LOGGER_METRICS = "from aws_lambda_powertools import Logger, Metrics; Logger(); Metrics()"
_PARSER = "from aws_lambda_powertools.utilities.parser import parse"
_TRACER = "from aws_lambda_powertools import Tracer; Tracer(patch_modules=('botocore',))"


@dataclass(frozen=True)
class Layer:
    name: str
    code: str
    inside_lambda: bool = True


LIBRARY_LAYERS = [
    Layer("`import boto3` (the baseline)", "import boto3"),
    Layer("+ Powertools Logger and Metrics", f"import boto3; {_LOGGER_METRICS}"),
    Layer("+ pydantic and the Powertools Parser (no Tracer)", f"import boto3; {_LOGGER_METRICS}; {_PARSER}"),
    Layer(
        "+ Tracer: the X-Ray SDK, botocore patched (what a handler imports)",
        f"import boto3; {_LOGGER_METRICS}; {_PARSER}; {_TRACER}",
    ),
    Layer("boto3, Logger, Metrics and Tracer, no pydantic", f"import boto3; {_LOGGER_METRICS}; {_TRACER}"),
    Layer(
        "boto3, Logger, Metrics, Parser and a default Tracer (patch_all)",
        f"import boto3; {_LOGGER_METRICS}; {_PARSER}; from aws_lambda_powertools import Tracer; Tracer()",
    ),
]


def handler_layers() -> list[Layer]:
    modules = [step.handler.rpartition(".")[0].replace("/", ".") for step in STEPS]
    layers = [Layer(f"`{module}`", f"import boto3; import {module}") for module in modules]
    layers.append(Layer(f"`{modules[0]}` outside Lambda (no LAMBDA_TASK_ROOT)", f"import {modules[0]}", False))
    return layers


@cache  # read serverless.yml once, not once per measured interpreter
def lambda_environment(inside_lambda: bool) -> dict[str, str]:
    """What Lambda gives a function's process, less credentials: none is needed to import."""
    config = load_service_config("dev")
    function = next(iter(config.functions.values()))
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(PROJECT_ROOT),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        **function.environment,
    }
    if inside_lambda:
        environment["LAMBDA_TASK_ROOT"] = str(PROJECT_ROOT)
    return environment


def import_ms(python: str, layer: Layer) -> float:
    """Wall time of the layer's code in a fresh interpreter (the interpreter's own start not included)."""
    program = f"import time as _t\n_s = _t.perf_counter()\n{layer.code}\nprint((_t.perf_counter() - _s) * 1000)"
    done = subprocess.run(
        [python, "-c", program],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=lambda_environment(layer.inside_lambda),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{layer.name} failed to import: {done.stderr[-1500:]}")
    return float(done.stdout.strip().splitlines()[-1])


def medians(python: str, layers: list[Layer], runs: int = RUNS) -> list[float]:
    """Each layer's median over `runs`, the layers taken in turn so that a noisy moment hits them all."""
    for layer in layers:
        import_ms(python, layer)  # compiles the project's bytecode for this Python: not counted
    samples: list[list[float]] = [[] for _ in layers]
    for _ in range(runs):
        for index, layer in enumerate(layers):
            samples[index].append(import_ms(python, layer))
    return [statistics.median(taken) for taken in samples]


@dataclass(frozen=True)
class ColdStart:
    python: str
    libraries: list[tuple[str, float]]
    handlers: list[tuple[str, float]]


def measure_cold_start() -> ColdStart:
    python = runtime_environment(runtime_python(load_service_config("dev").runtime, sys.stderr), sys.stderr)
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    layers = [*LIBRARY_LAYERS, *handler_layers()]
    measured = list(zip((layer.name for layer in layers), medians(python, layers), strict=True))
    return ColdStart(
        python=version, libraries=measured[: len(LIBRARY_LAYERS)], handlers=measured[len(LIBRARY_LAYERS) :]
    )


def _part(ms: float) -> str:
    """One part of the handler's import: each is a difference of two medians, so a part that costs next to
    nothing can come out below zero on a noisy run; that is said as such, not printed as a negative cost."""
    return f"{ms:.0f} ms" if ms >= 1 else "under 1 ms (within the noise)"


def cold_start_markdown(measured: ColdStart) -> list[str]:
    # In LIBRARY_LAYERS' order.
    baseline, logger_metrics, parser, with_tracer, no_pydantic, _ = (ms for _, ms in measured.libraries)
    handler = statistics.median(ms for name, ms in measured.handlers if "outside" not in name)
    # Each layer's cost is its step along the chain above, so the parts add up to the handler's import.
    pydantic_cost = parser - logger_metrics
    tracer_cost = with_tracer - parser
    own_code = handler - with_tracer
    lines = [
        "## Cold start: handler import time",
        "",
        f"Median of {RUNS} fresh Python {measured.python} interpreters with Lambda's environment "
        "(LAMBDA_TASK_ROOT, the function's variables, tracing on), the local stage's runtime environment "
        "(requirements.txt: what the layer and the runtime provide). Wall time of the imports and of "
        "creating the Powertools objects; the interpreter's own start is not included. Rows build on the "
        "row above unless they say otherwise.",
        "",
        "| what is imported | ms | ratio to `import boto3` |",
        "|---|---|---|",
    ]
    for name, ms in [*measured.libraries, *measured.handlers]:
        lines.append(f"| {name} | {ms:.0f} | {ms / baseline:.2f} |")
    lines += [
        "",
        f"A handler imports in {handler:.0f} ms (median of all {len(STEPS)}), {handler / baseline:.2f}x a bare "
        f"`import boto3`; the target was 1.5x. Of the {handler - baseline:.0f} ms above boto3: Logger and "
        f"Metrics {_part(logger_metrics - baseline)}, pydantic with the Parser {_part(pydantic_cost)}, the "
        f"Tracer {_part(tracer_cost)}, our own modules {_part(own_code)}. What each way to 1.5x costs:",
        "",
        f"- Drop the Tracer (Lambda's active tracing still draws each invocation): about "
        f"{(handler - tracer_cost) / baseline:.2f}x; no DynamoDB subsegments, so a slow or throttled "
        "write no longer shows in the trace.",
        f"- Drop pydantic (hand-written validation of the request and the step contract): about "
        f"{(handler - pydantic_cost) / baseline:.2f}x (the libraries alone, measured without it: "
        f"{no_pydantic / baseline:.2f}x); the models, their error messages and the JSON "
        "schema the Parser gives us would be ours to keep correct.",
        "- Lambda SnapStart for Python (3.12 and later) restores an initialised snapshot instead of "
        "importing: the imports leave the cold path, but each function must be invoked through a "
        "published version or alias, SnapStart bills caching and each restore, and code that must run "
        "per environment (random seeds, connections) needs runtime hooks. Not measurable offline.",
        "",
        "We keep both the Tracer and pydantic: the subsegments are how a throttled or slow DynamoDB call "
        "is found on AWS, and the models are the saga's contract. The one free saving is taken: the "
        "Tracer patches only botocore (the default also patches sqlite3, http.client and anything else "
        "installed). Earlier figures of about 2.5x were measured outside Lambda, where the X-Ray SDK "
        "builds two botocore clients for centralized sampling at import (the last row); Lambda never "
        "takes that path.",
        "",
    ]
    return lines


def main() -> int:
    print("\n".join(cold_start_markdown(measure_cold_start())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
