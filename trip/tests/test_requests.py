"""The trip's own request rules (trip/requests.py): each refuses with a message naming the field, as the
request writes it. The sections are read from trip/samples/success.json and checked by the trip's own
models, so these hold whatever app the engine serves."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import trip
from saga.models import describe_validation_error
from trip.definition import SAGA as TRIP
from trip.requests import CarRequest, FlightRequest, HotelRequest, Traveller

TRIP_DIR = Path(trip.__file__).resolve().parent  # the trip's, wherever a copy of these tests runs
SUCCESS: dict[str, Any] = json.loads((TRIP_DIR / "samples" / "success.json").read_text())
MODELS: dict[str, type[BaseModel]] = {
    "traveller": Traveller,
    "hotel": HotelRequest,
    "flight": FlightRequest,
    "car": CarRequest,
}

# A change to a request's sections, in place.
Change = Callable[[dict[str, dict[str, Any]]], object]


def sections(change: Change | None = None) -> dict[str, dict[str, Any]]:
    """The success sample's sections, after `change`."""
    request = copy.deepcopy({name: SUCCESS[name] for name in MODELS})
    if change is not None:
        change(request)
    return request


def refusal(change: Change) -> str:
    """What the trip's models refuse in the changed sections, one line per rule, as a request's refusal says it."""
    lines = []
    for name, section in sections(change).items():
        try:
            MODELS[name].model_validate(section)
        except ValidationError as error:
            lines.append(describe_validation_error(error, prefix=f"{name}."))
    assert lines, "nothing was refused"
    return "\n".join(lines)


def test_the_models_are_the_trips_sections() -> None:
    assert {**TRIP.sections, **{step.resource: step.request for step in TRIP.steps}} == MODELS


def test_the_success_sample_is_valid() -> None:
    for name, section in sections().items():
        MODELS[name].model_validate(section)


CASES = {
    "empty traveller name": (lambda r: r["traveller"].update(name=""), "traveller.name"),
    "bad email": (lambda r: r["traveller"].update(email="ada"), "traveller.email: must be an email address"),
    "hotel name over 200": (lambda r: r["hotel"].update(name="h" * 201), "hotel.name"),
    "number as company": (lambda r: r["car"].update(company=42), "car.company"),
    "date not ISO": (lambda r: r["hotel"].update(check_in="01/12/2026"), "hotel.check_in: must be a date"),
    "date as timestamp": (lambda r: r["car"].update(pick_up=1764547200), "car.pick_up: must be a date"),
    "impossible date": (lambda r: r["flight"].update(depart="2026-02-30"), "flight.depart"),
    "check out = check in": (
        lambda r: r["hotel"].update(check_out=r["hotel"]["check_in"]),
        "hotel.check_out: must be after check_in",
    ),
    "check out before check in": (
        lambda r: r["hotel"].update(check_out="2026-11-30"),
        "hotel.check_out: must be after check_in",
    ),
    "drop off before pick up": (
        lambda r: r["car"].update(drop_off="2026-11-30"),
        "car.drop_off: must not be before pick_up",
    ),
    "return before depart": (
        lambda r: r["flight"].update({"return": "2026-11-30"}),
        "flight.return: must not be before depart",
    ),
    "same airports": (lambda r: r["flight"].update(to=r["flight"]["from"]), "flight.to: must differ from 'from'"),
    "airport not 3 letters": (lambda r: r["flight"].update({"from": "SEAT"}), "flight.from: must be a three-letter"),
    "airport in lower case": (lambda r: r["flight"].update(to="jfk"), "flight.to: must be a three-letter"),
    "from by its Python name": (lambda r: r["flight"].update(from_=r["flight"].pop("from")), "flight.from_"),
    "unknown hotel field": (lambda r: r["hotel"].update(stars=5), "hotel.stars: Extra inputs"),
    "four alternatives": (lambda r: r["car"].update(alternatives=["A", "B", "C", "D"]), "car.alternatives"),
    "alternative is the company": (lambda r: r["car"].update(alternatives=[r["car"]["company"]]), "car.alternatives"),
    "an alternative twice": (lambda r: r["car"].update(alternatives=["A", "A"]), "car.alternatives"),
    "the company in other case": (
        lambda r: r["car"].update(alternatives=[r["car"]["company"].lower()]),
        "car.alternatives: must not name the company itself",
    ),
    "the company with spaces around": (
        lambda r: r["car"].update(alternatives=[f" {r['car']['company']} "]),
        "car.alternatives: must not name the company itself",
    ),
    "the company spaced otherwise": (
        lambda r: r["car"].update(alternatives=[r["car"]["company"].replace(" ", "   ")]),
        "car.alternatives: must not name the company itself",
    ),
    "the company in full-width letters": (  # U+FF24 for D and so on: NFKC folds them back to ASCII
        lambda r: r["car"].update(
            alternatives=["".join(chr(ord(c) + 0xFEE0) if c != " " else c for c in r["car"]["company"])]
        ),
        "car.alternatives: must not name the company itself",
    ),
    "an alternative twice up to case and spacing": (
        lambda r: r["car"].update(alternatives=["Zoom Cars", " zoom  CARS"]),
        "car.alternatives: must name each provider once",
    ),
    "an alternative twice in composed and decomposed forms": (
        lambda r: r["car"].update(alternatives=["Z\u00fcrich Cars", "Zu\u0308rich Cars"]),
        "car.alternatives: must name each provider once",
    ),
    "blank alternative": (lambda r: r["car"].update(alternatives=[" "]), "car.alternatives.0"),
    "alternatives not a list": (lambda r: r["car"].update(alternatives="A"), "car.alternatives"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_section_is_refused_naming_the_field(case: str) -> None:
    change, expected = CASES[case]
    assert expected in refusal(change)


def test_a_near_duplicate_alternative_is_refused_in_one_sentence_showing_both_spellings() -> None:
    # Given the company "Drive Inc" and an alternative that is it in lower case
    def near(request: dict[str, Any]) -> None:
        request["car"].update(company="Drive Inc", alternatives=["drive inc"])

    # When the sections are read, then the car is refused in one line naming the field and both spellings
    assert refusal(near) == (
        "car.alternatives: must not name the company itself ('drive inc' is 'Drive Inc' written another way)"
    )


def test_alternatives_that_name_other_companies_are_accepted() -> None:
    car = {**SUCCESS["car"], "company": "Drive Inc", "alternatives": ["Drive Inc 2", "Drive Co"]}
    assert CarRequest.model_validate(car).alternatives == ["Drive Inc 2", "Drive Co"]


def test_return_is_optional_and_same_day_car_is_fine() -> None:
    flight = {name: value for name, value in SUCCESS["flight"].items() if name != "return"}
    assert FlightRequest.model_validate(flight).return_ is None
    car = {**SUCCESS["car"], "drop_off": SUCCESS["car"]["pick_up"]}
    assert CarRequest.model_validate(car).drop_off == CarRequest.model_validate(car).pick_up


def test_the_flight_is_written_with_from_and_return_as_json_names_them() -> None:
    flight = FlightRequest.model_validate(SUCCESS["flight"])
    assert flight.model_dump(mode="json", by_alias=True) == SUCCESS["flight"]


REQUEST_FILES = [
    TRIP_DIR / "samples" / "success.json",
    TRIP_DIR / "samples" / "fail.json",
    *sorted((TRIP_DIR / "examples").glob("*.json")),
]


@pytest.mark.parametrize("path", REQUEST_FILES, ids=[path.name for path in REQUEST_FILES])
def test_the_trips_request_files_hold_valid_sections_and_name_its_steps(path: Path) -> None:
    request = json.loads(path.read_text())
    assert request[TRIP.id_field]
    for name, model in MODELS.items():
        model.model_validate(request[name])
    verbs = (TRIP.verbs.request, TRIP.verbs.compensation)
    steps = {f"{verb}_{step.resource}" for step in TRIP.steps for verb in verbs}
    assert set(request.get("simulate", {})) <= steps


def test_the_trips_request_files_are_valid_requests_when_the_trip_is_served() -> None:
    from saga.definition import APP

    if APP != "trip":
        pytest.skip(f"the request model is composed for the served app ({APP}); the sections are checked above")
    from saga.models import parse_request

    for path in REQUEST_FILES:
        parse_request(json.loads(path.read_text()))
