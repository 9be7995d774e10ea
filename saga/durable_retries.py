"""How the durable function retries its steps: each as the state machine's Task retries it (its Retry rules, from the
same RetryPolicy), as the durable execution SDK's retry strategy. Apart from saga/durable.py so that it can be
read without the function's Powertools (which read their settings when first imported)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, StepConfig, StepSemantics
from aws_durable_execution_sdk_python.exceptions import StepInterruptedError
from aws_durable_execution_sdk_python.retries import RetryDecision

from saga.coordination import ATTENTION_RECORD_RETRY, CLOSE_RECORD_RETRY, retried_errors
from saga.spec import LAMBDA_TIMEOUTS

if TYPE_CHECKING:
    from collections.abc import Callable

    from saga.spec import RetryPolicy

# A step whose invocation ended under it (the function timed out or died mid-step) is what the state machine's Task
# sees as its Lambda timing out: retried by the same rules, and named so when the retries run out.
INTERRUPTED = LAMBDA_TIMEOUTS[0]


def error_name(error: Exception) -> str:
    """The name the ASL's Retry and Catch rules would know the error by."""
    return INTERRUPTED if isinstance(error, StepInterruptedError) else type(error).__name__


def retry_strategy(policies: tuple[RetryPolicy, ...]) -> Callable[[Exception, int], RetryDecision]:
    """A Task's Retry rules as the SDK's retry strategy: the first rule that names the error retries it while the
    step's retries are fewer than its MaxAttempts, after its backoff (with full jitter, or exactly). The ASL counts
    retries per rule and the step's RetryCount across them; one step only ever meets one of its rules in a run
    (backward recovery never raises ForwardRetryableError, forward recovery past the pivot raises nothing else)."""
    rules = [(set(retried_errors(policy)), policy) for policy in policies]

    def decide(error: Exception, attempts_made: int) -> RetryDecision:
        name = error_name(error)
        policy = next((policy for names, policy in rules if name in names or "States.ALL" in names), None)
        retries = attempts_made - 1
        if policy is None or retries >= policy.max_attempts:
            return RetryDecision.no_retry()
        jitter = JitterStrategy.FULL if policy.jitter else JitterStrategy.NONE
        return RetryDecision.retry(Duration(seconds=jitter.finalize_delay(policy.delay(retries))))

    return decide


# An attention record's write, retried as the ASL's Flag (and Keep) states retry it; its closing by a resolution,
# as the Close states: only the table's passing faults.
record_retry = retry_strategy((ATTENTION_RECORD_RETRY,))
close_retry = retry_strategy((CLOSE_RECORD_RETRY,))


def step_config(strategy: Callable[[Exception, int], RetryDecision]) -> StepConfig:
    """A step of the durable function: retried by `strategy`, and never run again unasked. Its START is checkpointed
    before it runs, so a step whose invocation ended under it is retried through `strategy` (as an interrupted
    attempt, INTERRUPTED) rather than run again and again on every new invocation with no bound."""
    return StepConfig(retry_strategy=strategy, step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY)
