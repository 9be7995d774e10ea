"""The Powertools logger, tracer and metrics shared by the handlers and the steps.

Configured by the POWERTOOLS_* variables set in serverless.yml (service name, metrics namespace).
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
