"""The durable function retries each step as the ASL's Retry rules do (saga/durable_retries.py): the errors
they name, as often, after the same backoff (at least the SDK's one second)."""

from __future__ import annotations

import pytest
from aws_durable_execution_sdk_python.config import StepSemantics
from aws_durable_execution_sdk_python.exceptions import StepInterruptedError

from saga.catalogue import RETRIABLES, STEPS
from saga.coordination import ATTENTION_RECORD_RETRY, retried_errors, retry_policies
from saga.durable_retries import INTERRUPTED, record_retry, retry_strategy, step_config
from saga.errors import ForwardRetryableError
from sagatools.asl import load_definition

_STATES = load_definition()["States"]


def named(name: str) -> Exception:
    """An error of the class `name`, as a step raises it (the SDK sees the exception, the ASL its class's name)."""
    return type(name, (Exception,), {})("a failure")


@pytest.mark.parametrize("step", STEPS, ids=[step.name for step in STEPS])
def test_each_step_retries_what_its_task_retries_as_often(step):
    rules = _STATES[step.state]["Retry"]
    decide = retry_strategy(retry_policies(step))
    assert [retried_errors(policy) for policy in retry_policies(step)] == [rule["ErrorEquals"] for rule in rules]
    for rule, policy in zip(rules, retry_policies(step), strict=True):
        error = named(rule["ErrorEquals"][0])
        decisions = [decide(error, attempts) for attempts in range(1, rule["MaxAttempts"] + 2)]
        assert [decision.should_retry for decision in decisions] == [True] * rule["MaxAttempts"] + [False]
        for retry, decision in enumerate(decisions[:-1]):
            assert 1 <= decision.delay_seconds <= max(1, policy.delay(retry))
            if rule["JitterStrategy"] == "NONE":
                assert decision.delay_seconds == policy.delay(retry)
    assert not decide(named("SomethingElse"), 1).should_retry


@pytest.mark.skipif(not RETRIABLES, reason="the served app's saga has no step past a pivot")
def test_forward_retries_wait_the_schedule_exactly():
    step = RETRIABLES[-1]
    decide = retry_strategy(retry_policies(step))
    waits = [decide(ForwardRetryableError("again"), attempts).delay_seconds for attempts in range(1, 8)]
    assert waits == [step.spec.forward_retry.delay(retry) for retry in range(7)]


def test_attention_records_are_retried_as_the_flag_states_retry_them():
    flags = [step.stuck_state for step in STEPS if step.stuck_state] + [s.unfinished_state for s in RETRIABLES]
    for flag in flags:
        (rule,) = _STATES[flag]["Retry"]
        assert rule == ATTENTION_RECORD_RETRY.asl()
    decisions = [record_retry(named("ThrottlingException"), attempts) for attempts in range(1, 8)]
    assert [decision.should_retry for decision in decisions] == [True] * ATTENTION_RECORD_RETRY.max_attempts + [
        False
    ] * 2


@pytest.mark.parametrize("step", STEPS, ids=[step.name for step in STEPS])
def test_a_step_its_invocation_ended_under_is_retried_as_a_lambda_timeout_then_given_up(step):
    # Given a step whose START is checkpointed before it runs (never run again unasked, as the SDK's default would,
    # on every new invocation without bound)
    config = step_config(retry_strategy(retry_policies(step)))
    assert config.step_semantics is StepSemantics.AT_MOST_ONCE_PER_RETRY
    # When its invocation ends under it, attempt after attempt / Then it is retried as the Task retries its Lambda's
    # timeout, and given up when the Task would give up
    (policy,) = [policy for policy in retry_policies(step) if INTERRUPTED in retried_errors(policy)]
    decide = config.retry_strategy
    assert decide is not None
    interrupted = StepInterruptedError("the invocation ended while the step ran")
    decisions = [decide(interrupted, attempts).should_retry for attempts in range(1, policy.max_attempts + 2)]
    assert decisions == [True] * policy.max_attempts + [False]
