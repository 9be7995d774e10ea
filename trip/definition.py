"""The trip saga, declared once: its steps in the order the requests run, and what differs between them.

Add, remove or reorder a step here (and its section in trip/requests.py), then run
`./build.sh generate`: the state machines, the template's per-step part, the handlers and the
README's diagrams are written from this; every other name is computed from it (saga/catalogue.py).
A step's own work is its `action` and `compensation` (hotel.py, flight.py, car.py); a step without them
is its record alone.
"""

from __future__ import annotations

from saga.spec import SagaSpec, StepKind, StepSpec
from trip import car, flight, hotel
from trip.requests import CarRequest, FlightRequest, HotelRequest, Traveller

SAGA = SagaSpec(
    name="booking-saga",
    steps=(
        StepSpec("hotel", HotelRequest, action=hotel.book_room, compensation=hotel.give_up_room),
        # Once the flight is ticketed, a saga in forward recovery finishes the trip instead of undoing it.
        StepSpec(
            "flight", FlightRequest, kind=StepKind.PIVOT, action=flight.ticket_seats, compensation=flight.refund_seats
        ),
        StepSpec(
            "car",
            CarRequest,
            kind=StepKind.RETRIABLE,
            alternatives_for="company",
            action=car.rent_car,
            compensation=car.return_car,
        ),
    ),
    sections={"traveller": Traveller},
)
