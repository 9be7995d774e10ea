"""The Powertools logger, tracer and metrics shared by the handlers and the steps.

Configured by the POWERTOOLS_* variables set in serverless.yml (service name, metrics namespace).
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
# Only botocore is patched: its subsegments are the DynamoDB calls we want to see. The default
# (patch_all) also imports and patches sqlite3, http.client and whatever else is installed, which
# costs cold-start time and adds nothing here (docs/BENCHMARKS.md, cold start).
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()
