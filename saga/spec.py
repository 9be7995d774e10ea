"""What a saga definition is made of: its steps, in order, and only what really differs between them.

A definition (saga/definition.py) names the resources and their request sections; every other name
(book_x, BookX, bookX, X_TABLE, ATTENTION#cancel_x …) follows from it by the conventions in
saga/catalogue.py. Nothing here names a step of any particular saga.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pydantic import BaseModel

# A task of the state machine can fail like this whatever the step does: Lambda's own faults and
# timeouts. Every step is idempotent, so retrying any of them is safe.
LAMBDA_FAULTS: tuple[str, ...] = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
LAMBDA_TIMEOUTS: tuple[str, ...] = ("Sandbox.Timedout", "Lambda.ClientExecutionTimeoutException")


@dataclass(frozen=True)
class RetryPolicy:
    """One ASL Retry rule: which errors are retried, how often and how far apart."""

    errors: tuple[str, ...]
    max_attempts: int  # retries after the first attempt
    interval_seconds: int = 1
    backoff_rate: float = 2.0
    max_delay_seconds: int = 8

    @property
    def attempts(self) -> int:
        """Attempts in all: the first and every retry."""
        return self.max_attempts + 1

    def asl(self) -> dict[str, object]:
        return {
            "ErrorEquals": list(self.errors),
            "IntervalSeconds": self.interval_seconds,
            "MaxAttempts": self.max_attempts,
            "BackoffRate": self.backoff_rate,
            "MaxDelaySeconds": self.max_delay_seconds,
            "JitterStrategy": "FULL",
        }


# A request retries passing faults only: anything else is a refusal, and the saga rolls back.
REQUEST_RETRY = RetryPolicy(
    errors=("TransientProviderError", *LAMBDA_FAULTS, "TransientDataAccessError", *LAMBDA_TIMEOUTS),
    max_attempts=3,
)
# A compensation must end up done: it retries whatever fails, until the retries run out and the
# trip is flagged for an operator.
COMPENSATION_RETRY = RetryPolicy(
    errors=(
        "CancellationFailed",
        "TransientProviderError",
        "DataAccessError",
        "States.Timeout",
        *LAMBDA_FAULTS,
        "Lambda.Unknown",
        "TransientDataAccessError",
        *LAMBDA_TIMEOUTS,
    ),
    max_attempts=5,
)

_RESOURCE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


@dataclass(frozen=True)
class StepSpec:
    """One step of a saga: a resource, booked by a request and undone by its compensation."""

    resource: str  # snake_case: names the step, its table, its request section
    request: type[BaseModel]  # the request's section for this resource, stored with the booking
    request_retry: RetryPolicy = REQUEST_RETRY
    compensation_retry: RetryPolicy = COMPENSATION_RETRY

    def __post_init__(self) -> None:
        if not _RESOURCE.fullmatch(self.resource):
            raise ValueError(f"resource {self.resource!r}: use snake_case (letters, digits and _)")


@dataclass(frozen=True)
class Verbs:
    """The words a saga's step names are made of: book_x, cancel_x, FlagXCancellationStuck."""

    request: str = "book"
    compensation: str = "cancel"
    compensation_noun: str = "cancellation"


@dataclass(frozen=True)
class SagaSpec:
    """A saga: its name, its steps in the order the requests run (compensations run in reverse)."""

    name: str  # the state machine is <service>-<stage>-<name>
    steps: tuple[StepSpec, ...]
    # Sections of the request that belong to no step (who travels), required like the steps' own.
    sections: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    verbs: Verbs = field(default_factory=Verbs)

    def __post_init__(self) -> None:
        resources = [step.resource for step in self.steps]
        if not resources:
            raise ValueError("a saga needs at least one step")
        if len(set(resources)) != len(resources):
            raise ValueError(f"every step needs its own resource: {resources}")
        if clash := set(resources) & {*self.sections, "trip_id", "simulate"}:
            raise ValueError(f"a request section cannot be named like a step or a field: {sorted(clash)}")
