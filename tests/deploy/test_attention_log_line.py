"""The durable function's log line and the durable stage's attention metric filter agree: sagas run by the durable
function on the embedded stack (as `./runtest.sh --coordinator durable` runs them), their log read line by line with
the packaged template's filter pattern, as CloudWatch Logs would read the function's log group. Only the saga that
ends needing attention writes a line the filter selects, and one only; a committed or rolled-back saga writes none.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from saga.keys import ID_FIELD
from sagatools.asl import NEEDS_ATTENTION_ERROR, ROLLED_BACK_ERROR
from sagatools.emulation.embedded import EmbeddedStack
from tests.deploy.test_templates import DURABLE_STAGE, attention
from tests.helpers import LAST, book_step, cancel_step, saga_request

# The one form of a CloudWatch Logs JSON filter pattern the durable stage's filter takes: `{ $.a.b = "value" }`.
EQUALS_PATTERN = re.compile(r'\{\s*\$\.(?P<path>\w+(?:\.\w+)*)\s*=\s*"(?P<value>[^"*]*)"\s*\}')


def selects(pattern: str, line: str) -> bool:
    """Whether the filter `pattern` selects the log event `line`: a JSON object whose field at the path is a string
    equal to the value (CloudWatch Logs compares a quoted value as a string; a line that is not JSON never matches)."""
    form = EQUALS_PATTERN.fullmatch(pattern.strip())
    assert form, f"not the one form this reads: {pattern}"
    try:
        node: Any = json.loads(line)
    except ValueError:
        return False
    for key in form["path"].split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return node == form["value"]


def test_the_reader_of_the_pattern_selects_only_the_field_equal_to_the_value():
    pattern = '{ $.saga_end = "SagaNeedsAttention" }'
    assert selects(pattern, '{"level": "WARNING", "saga_end": "SagaNeedsAttention"}')
    assert not selects(pattern, '{"saga_end": "SagaRolledBack"}')
    assert not selects(pattern, '{"message": {"saga_end": "SagaNeedsAttention"}}')
    assert not selects(pattern, 'saga_end = "SagaNeedsAttention"')
    assert selects('{ $.a.b = "c" }', '{"a": {"b": "c"}}')


@pytest.fixture(scope="module")
def durable_logs() -> Iterator[tuple[Any, io.StringIO]]:
    """The durable function on the embedded stack, and where its log goes (the steps' handlers log there too)."""
    sink = io.StringIO()
    with EmbeddedStack(log_sink=sink, create_state_machine=False):
        # Imported inside the stack, as Lambda would: Powertools reads its settings from the environment at import.
        from sagatools.emulation.durable import DurableStack

        with DurableStack(sink) as durable:
            yield durable, sink


@pytest.mark.parametrize(
    ("saga_id", "simulate", "error", "selected"),
    [
        ("alarm-committed", {}, None, 0),
        ("alarm-rolled-back", {book_step(LAST): "fail"}, ROLLED_BACK_ERROR, 0),
        # Its compensation retried and stuck: the execution waits between attempts and resumes in later invocations;
        # only the last one, where the saga ends, writes the line.
        ("alarm-stuck", {book_step(LAST): "fail", cancel_step(LAST): "fail"}, NEEDS_ATTENTION_ERROR, 1),
    ],
)
def test_only_a_saga_needing_attention_writes_a_line_the_durable_stages_filter_counts(
    durable_logs, saga_id, simulate, error, selected
):
    durable, sink = durable_logs
    pattern = attention(DURABLE_STAGE)[0]["FilterPattern"]
    start = sink.tell()
    run = durable.run(saga_id, {**saga_request(saga_id, simulate=simulate), ID_FIELD: saga_id}, 60)
    lines = sink.getvalue()[start:].splitlines()
    assert run.error == error
    assert lines, "the function logged nothing: its log went somewhere else"
    assert sum(selects(pattern, line) for line in lines) == selected
    # The line names the saga, for the operator the alarm wakes (./attention.sh show ID).
    assert all(json.loads(line)[ID_FIELD] == saga_id for line in lines if selects(pattern, line))
    if error == NEEDS_ATTENTION_ERROR:
        # One line although the saga ran (replayed) in several invocations: the alarm counts sagas, not invocations.
        assert sum(event.event_type == "InvocationCompleted" for event in run.events) > 1
