"""The trip saga, declared once: its steps in the order the requests run, and what differs between them.

Add, remove or reorder a step here (and its section in trip/requests.py), then run
`./build.sh generate`: the state machines, the template's per-step part, the handlers and the
README's diagrams are written from this; every other name is computed from it (saga/catalogue.py).
A step's own work (`work`: its action and compensation) is in hotel.py, flight.py and car.py; a step without
it is its record alone.
"""

from __future__ import annotations

from saga.spec import ErrorNames, SagaSpec, StepKind, StepSpec, Verbs
from trip import car, flight, hotel
from trip.requests import CarRequest, FlightRequest, HotelRequest, Traveller

SAGA = SagaSpec(
    name="booking-saga",
    steps=(
        StepSpec("hotel", HotelRequest, work=hotel.WORK),
        # Once the flight is ticketed, a saga in forward recovery finishes the trip instead of undoing it.
        StepSpec("flight", FlightRequest, kind=StepKind.PIVOT, work=flight.WORK),
        StepSpec("car", CarRequest, kind=StepKind.RETRIABLE, alternatives_for="company", work=car.WORK),
    ),
    sections={"traveller": Traveller},
    # The trip's own words: a trip is booked and cancelled, its id is trip_id, its records are bookings.
    id_field="trip_id",
    noun="trip",
    verbs=Verbs(request="book", compensation="cancel", compensation_noun="cancellation"),
    done_state="Booked",
    records="bookings",
    errors=ErrorNames(
        invalid_request="InvalidTripRequest",
        refused="BookingRefused",
        already_compensated="BookingAlreadyCancelled",
        compensation_failed="CancellationFailed",
    ),
)
