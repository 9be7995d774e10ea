"""Each handler called twice and out of order, for each resource: the end state is the intended one."""

from __future__ import annotations

import pytest

from saga.errors import BookingAlreadyCancelled
from tests.helpers import RESOURCES, saga_request

# (calls in order, final booking status). A cancel always wins over a booking, whenever it arrives.
SEQUENCES = {
    "book twice": (["book", "book"], "CONFIRMED"),
    "cancel twice": (["cancel", "cancel"], "CANCELLED"),
    "cancel before book": (["cancel", "book"], "CANCELLED"),
    "book after cancel": (["book", "cancel", "book"], "CANCELLED"),
    "cancel twice after book": (["book", "cancel", "cancel"], "CANCELLED"),
    "book twice then cancel": (["book", "book", "cancel"], "CANCELLED"),
    "cancel, book, cancel": (["cancel", "book", "cancel"], "CANCELLED"),
}


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("sequence", sorted(SEQUENCES))
def test_replayed_and_reordered_calls_end_in_the_intended_state(sequence, resource, invoke_step, reader):
    calls, final = SEQUENCES[sequence]
    saga_id = f"r-{resource}-{sequence.replace(' ', '-').replace(',', '')}"
    for attempt, action in enumerate(calls):
        try:
            invoke_step(f"{action}_{resource}", saga_request(saga_id), retry_count=attempt)
        except BookingAlreadyCancelled:
            assert action == "book", "only a late booking may be refused"
    assert reader.bookings(saga_id)[resource] == final
    # the log has one START and one END/FAILED per call, in call order
    log = reader.log(saga_id)
    assert [e.step for e in log if e.event.value == "START"] == [f"{a}_{resource}" for a in calls]
    assert len(log) == 2 * len(calls)
    # the other resources were never touched
    assert all(reader.bookings(saga_id)[r] is None for r in RESOURCES if r != resource)
