"""On Lambda the handlers trace their DynamoDB calls, and only those: the Tracer patches botocore and
nothing else (patch_all would also import and patch sqlite3, http.client and more at cold start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from saga.catalogue import STEPS
from tests.helpers import ROOT

PROBE = """
import json, sys
import {module}
import botocore.client
from aws_xray_sdk.core import patcher
print(json.dumps({{
    "patched": sorted(patcher._PATCHED_MODULES),
    "botocore_wrapped": hasattr(botocore.client.BaseClient._make_api_call, "__wrapped__"),
    "loaded": [m for m in ("sqlite3", "aws_xray_sdk.ext.httplib", "aws_xray_sdk.ext.requests") if m in sys.modules],
}}))
"""


def probed(probe: str, module: str, environment: dict[str, str]) -> dict[str, object]:
    """What `probe` prints (JSON) after importing the handler `module` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", probe.format(module=module)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=60,
        check=True,
    )
    seen: dict[str, object] = json.loads(done.stdout)
    return seen


@pytest.mark.parametrize("step", [STEPS[0], STEPS[-1]], ids=lambda step: step.name)
def test_a_handler_in_lambda_patches_botocore_and_only_botocore(step):
    module = step.handler.rpartition(".")[0].replace("/", ".")
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("POWERTOOLS_", "AWS_XRAY"))}
    # What Lambda sets for a function with active tracing; no daemon is needed to import.
    environment |= {"LAMBDA_TASK_ROOT": str(ROOT), "PYTHONPATH": str(ROOT), "AWS_REGION": "us-east-1"}
    assert probed(PROBE, module, environment) == {"patched": ["botocore"], "botocore_wrapped": True, "loaded": []}


OFF_PROBE = """
import json, sys
import {module}
from saga.observability import tracer
print(json.dumps({{
    "provider": type(tracer.provider).__name__,
    "disabled": tracer.disabled,
    "xray_sdk_loaded": "aws_xray_sdk.core" in sys.modules,
}}))
"""


@pytest.mark.parametrize(
    "where",
    [{"LAMBDA_TASK_ROOT": str(ROOT), "POWERTOOLS_TRACE_DISABLED": "true"}, {}],
    ids=["tracing-disabled-on-lambda", "outside-lambda"],
)
def test_where_tracing_is_off_the_xray_sdk_is_never_loaded(where):
    # Powertools builds the X-Ray recorder even for a disabled tracer; the SDK makes two clients on import.
    module = STEPS[0].handler.rpartition(".")[0].replace("/", ".")
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POWERTOOLS_", "AWS_XRAY", "LAMBDA_TASK_ROOT", "AWS_SAM", "AWS_CHALICE"))
    }
    environment |= {"PYTHONPATH": str(ROOT), "AWS_REGION": "us-east-1", **where}
    assert probed(OFF_PROBE, module, environment) == {
        "provider": "UntracedProvider",
        "disabled": True,
        "xray_sdk_loaded": False,
    }
