"""The trip saga, declared once: its steps in the order the requests run, and what differs between them.

Add, remove or reorder a step here (and its section in saga/requests.py), then run
`./build.sh generate`: the state machines, the template's per-step part, the handlers and the
README's diagrams are written from this; every other name is computed from it (saga/catalogue.py).
"""

from __future__ import annotations

from saga.requests import CarRequest, FlightRequest, HotelRequest, Traveller
from saga.spec import SagaSpec, StepKind, StepSpec

SAGA = SagaSpec(
    name="booking-saga",
    steps=(
        StepSpec("hotel", HotelRequest),
        # Once the flight is ticketed, a saga in forward recovery finishes the trip instead of undoing it.
        StepSpec("flight", FlightRequest, kind=StepKind.PIVOT),
        StepSpec("car", CarRequest, kind=StepKind.RETRIABLE, alternatives_for="company"),
    ),
    sections={"traveller": Traveller},
)
