"""The trip's public names, as its definition declares them: what its users and its deployed stacks know it
by (request files, `--json`, the execution history, the tables) stays as it was before the engine was
generic."""

from __future__ import annotations

from saga.spec import StepKind
from trip.definition import SAGA as TRIP


def test_the_trip_books_a_hotel_then_a_flight_then_a_car() -> None:
    assert [(step.resource, step.kind) for step in TRIP.steps] == [
        ("hotel", StepKind.COMPENSATABLE),
        ("flight", StepKind.PIVOT),
        ("car", StepKind.RETRIABLE),
    ]
    assert TRIP.pivot is not None
    assert TRIP.pivot.resource == "flight"
    assert [step.alternatives_for for step in TRIP.steps] == [None, None, "company"]


def test_the_trips_words_are_its_own() -> None:
    assert (TRIP.name, TRIP.id_field, TRIP.noun, TRIP.nouns) == ("booking-saga", "trip_id", "trip", "trips")
    assert (TRIP.done_state, TRIP.records) == ("Booked", "bookings")
    assert (TRIP.verbs.request, TRIP.verbs.compensation, TRIP.verbs.compensation_noun) == (
        "book",
        "cancel",
        "cancellation",
    )
    assert all(step.verbs is None for step in TRIP.steps)  # one pair of verbs for the whole trip
    assert set(TRIP.sections) == {"traveller"}


def test_the_trips_error_names_are_those_its_state_machine_has_always_caught() -> None:
    errors = TRIP.errors
    assert (errors.invalid_request, errors.refused, errors.already_compensated, errors.compensation_failed) == (
        "InvalidTripRequest",
        "BookingRefused",
        "BookingAlreadyCancelled",
        "CancellationFailed",
    )
