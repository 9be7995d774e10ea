"""Each handler called twice and out of order, for each resource: the end state is the intended one."""

from __future__ import annotations

import pytest

from saga.errors import AlreadyCompensated
from tests.helpers import RESOURCES, book_step, cancel_step, saga_request

# (calls in order, final status of the step's record). A compensation always wins over its request,
# whenever it arrives.
SEQUENCES = {
    "request twice": (["request", "request"], "CONFIRMED"),
    "compensate twice": (["compensate", "compensate"], "CANCELLED"),
    "compensate before request": (["compensate", "request"], "CANCELLED"),
    "request after compensate": (["request", "compensate", "request"], "CANCELLED"),
    "compensate twice after request": (["request", "compensate", "compensate"], "CANCELLED"),
    "request twice then compensate": (["request", "request", "compensate"], "CANCELLED"),
    "compensate, request, compensate": (["compensate", "request", "compensate"], "CANCELLED"),
}


def step_name(action: str, resource: str) -> str:
    return book_step(resource) if action == "request" else cancel_step(resource)


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("sequence", sorted(SEQUENCES))
def test_replayed_and_reordered_calls_end_in_the_intended_state(sequence, resource, invoke_step, reader):
    calls, final = SEQUENCES[sequence]
    saga_id = f"r-{resource}-{sequence.replace(' ', '-').replace(',', '')}"[:64]
    for attempt, action in enumerate(calls):
        try:
            invoke_step(step_name(action, resource), saga_request(saga_id), retry_count=attempt)
        except AlreadyCompensated:
            assert action == "request", "only a late request may be refused"
    assert reader.records(saga_id)[resource] == final
    # the log has one START and one END/FAILED per call, in call order
    log = reader.log(saga_id)
    assert [e.step for e in log if e.event.value == "START"] == [step_name(a, resource) for a in calls]
    assert len(log) == 2 * len(calls)
    # the other resources were never touched
    assert all(reader.records(saga_id)[r] is None for r in RESOURCES if r != resource)
