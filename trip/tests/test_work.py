"""Each of the trip's steps does its own work (trip/hotel.py, flight.py, car.py) at a simulated provider of its own:
the action books by the trip's key under a reference of the trip's, the same on every retry; the compensation
cancels by that key. The car's company cannot cancel a rental it has not made yet."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from saga.clients import dynamodb_client
from saga.definition import APP
from saga.errors import ProviderKeyCancelled, ProviderKeyUnknown
from saga.settings import get_settings
from saga.spec import StepCall, StepSpec, StepWork
from trip import car, flight, hotel
from trip.definition import SAGA as TRIP

# The providers' settings are read as the served app's functions read them: they name the trip's tables only when
# the trip is served.
pytestmark = pytest.mark.skipif(APP != "trip", reason=f"the engine serves {APP}, not the trip")

REFERENCES = {"hotel": "HOTEL-trip-7", "flight": "FLIGHT-trip-7", "car": "CAR-trip-7"}


@pytest.fixture(autouse=True)
def ledgers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each provider's ledger, on moto, named as a function's environment names it."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("SAGA_LOG_TABLE", "log")
    monkeypatch.setenv("FAULT_INJECTION", "true")
    for step in TRIP.steps:
        monkeypatch.setenv(f"{step.resource.upper()}_PROVIDER_TABLE", f"{step.resource}-ledger")
    get_settings.cache_clear()
    dynamodb_client.cache_clear()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=os.environ["AWS_DEFAULT_REGION"])
        for step in TRIP.steps:
            client.create_table(
                TableName=f"{step.resource}-ledger",
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
            )
        yield
    get_settings.cache_clear()
    dynamodb_client.cache_clear()


def call(resource: str, **fields: Any) -> StepCall:
    return StepCall(saga_id="trip-7", resource=resource, section={}, **fields)


@pytest.mark.parametrize("step", TRIP.steps, ids=[step.resource for step in TRIP.steps])
def test_each_action_returns_the_same_reference_on_every_retry(step: StepSpec) -> None:
    assert step.work is not None
    booking = call(step.resource)
    assert step.work.action(booking) == step.work.action(booking) == REFERENCES[step.resource]
    step.work.compensation(booking)  # by the trip's key
    step.work.compensation(booking)  # and again: cancelled already


def test_an_alternative_company_keeps_the_trips_reference_for_the_car() -> None:
    booking = StepCall(saga_id="trip-7", resource="car", section={"company": "Drive Inc"}, provider="Zoom Cars")
    assert car.WORK.action(booking) == "CAR-trip-7"


@pytest.mark.parametrize(("resource", "work"), [("hotel", hotel.WORK), ("flight", flight.WORK)])
def test_a_hotel_or_an_airline_refuses_a_key_it_cancelled_before_booking_it(resource: str, work: StepWork) -> None:
    # Given the compensation reached the provider first: a tombstone for the key
    work.compensation(call(resource))
    # When the booking arrives / Then it is refused, for good
    with pytest.raises(ProviderKeyCancelled):
        work.action(call(resource))


def test_the_car_company_cannot_cancel_a_rental_still_on_its_way_and_the_retry_cancels_it() -> None:
    # Given a rental request the company took but has not booked yet (its answer is lost: `late`)
    car.WORK.action(call("car", simulate="late"))
    assert car.COMPANIES.state("trip-7/car") is None
    # When the cancel reaches it / Then it is answered "unknown key", and the rental lands after it
    with pytest.raises(ProviderKeyUnknown):
        car.WORK.compensation(call("car"))
    assert car.COMPANIES.state("trip-7/car") == "CONFIRMED"
    # and the retry cancels it
    car.WORK.compensation(call("car"))
    assert car.COMPANIES.state("trip-7/car") == "CANCELLED"


def test_the_car_company_keeps_no_tombstone_for_a_key_it_never_received() -> None:
    car.WORK.compensation(call("car"))
    assert car.COMPANIES.state("trip-7/car") is None


def test_the_definition_names_each_steps_own_work() -> None:
    assert [step.work for step in TRIP.steps] == [hotel.WORK, flight.WORK, car.WORK]
