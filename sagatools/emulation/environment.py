"""What the process's environment holds while the embedded stack runs (and the unit tier's moto):
fake credentials, the stack's region and stage, and the settings only a local run has. No moto here, so
the unit tier reads it without importing the emulation."""

from __future__ import annotations

from sagatools.fake_credentials import FAKE_CREDENTIALS

REGION = "us-east-1"
# The stage name the embedded stack gives serverless.yml (table and function names): not a deployed stage.
EMBEDDED_STAGE = "embedded"
FAKE_ENVIRONMENT = {**FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
# Local-only settings on top of serverless.yml's: fault injection is always on here, and there is no
# X-Ray daemon to send traces to.
LOCAL_ENVIRONMENT = {"FAULT_INJECTION": "true", "POWERTOOLS_TRACE_DISABLED": "true"}
