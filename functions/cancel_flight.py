"""Lambda handler: Cancel the flight of a trip (a compensation of the saga; idempotent, and safe before the booking)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from saga.catalogue import Resource
from saga.models import parse_step_invocation
from saga.observability import logger, metrics, tracer
from saga.steps import cancel


@logger.inject_lambda_context(correlation_id_path="request.trip_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return cancel(Resource.FLIGHT, parse_step_invocation(event)).model_dump(mode="json")
