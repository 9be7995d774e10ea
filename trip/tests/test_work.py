"""Each of the trip's steps does its own work (trip/hotel.py, flight.py, car.py): the action names the booking
by a reference of the trip's, the same on every retry; the compensation asks nothing back of the provider."""

from __future__ import annotations

import pytest

from saga.spec import StepCall, StepSpec
from trip import car, flight, hotel
from trip.definition import SAGA as TRIP

REFERENCES = {"hotel": "HOTEL-trip-7", "flight": "FLIGHT-trip-7", "car": "CAR-trip-7"}


@pytest.mark.parametrize("step", TRIP.steps, ids=[step.resource for step in TRIP.steps])
def test_each_action_returns_the_same_reference_on_every_retry(step: StepSpec) -> None:
    assert step.work is not None
    call = StepCall(saga_id="trip-7", resource=step.resource, section={})
    assert step.work.action(call) == step.work.action(call) == REFERENCES[step.resource]
    step.work.compensation(call)  # undoing it needs nothing of the provider, and raises nothing


def test_an_alternative_company_keeps_the_trips_reference_for_the_car() -> None:
    call = StepCall(saga_id="trip-7", resource="car", section={"company": "Drive Inc"}, provider="Zoom Cars")
    assert car.WORK.action(call) == "CAR-trip-7"


def test_the_definition_names_each_steps_own_work() -> None:
    assert [step.work for step in TRIP.steps] == [hotel.WORK, flight.WORK, car.WORK]
