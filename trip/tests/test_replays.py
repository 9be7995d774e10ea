"""The execution report replayed on recorded histories of the trip (trip/tests/record_histories.py): each state
coloured by what happened to it, retries counted, the path taken drawn, and the page in real headless Chromium.

The recordings carry the state machine they ran on (booking-saga.asl.json beside them), and the runner's report
is read in the served app's words, so these hold whatever app the engine serves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sagatools.results import SagaResult
from sagatools.view.browser import rendered_dom, screenshot
from sagatools.view.graph import COLOURS, Shown, state_views
from sagatools.view.html_page import page_html, write_page
from tests.helpers import browser_or_skip
from trip.definition import SAGA as TRIP

HISTORIES = Path(__file__).resolve().parent / "data" / "histories"
DEFINITION: dict[str, Any] = json.loads((HISTORIES / "booking-saga.asl.json").read_text())
OK, RETRIED, CAUGHT, FAILED, NOT = (Shown.SUCCEEDED, Shown.RETRIED, Shown.CAUGHT, Shown.FAILED, Shown.NOT_ENTERED)


def as_served(report: dict[str, Any]) -> dict[str, Any]:
    """The trip's `--json` report with its id field and records key in the served app's words, as the engine
    reads a report (the same report when the trip is served)."""
    from saga.keys import ID_FIELD, RECORDS_KEY

    renamed = {TRIP.id_field: ID_FIELD, TRIP.records: RECORDS_KEY}
    return {renamed.get(key, key): value for key, value in report.items()}


def load_recorded(name: str) -> tuple[list[dict[str, Any]], SagaResult]:
    document = json.loads((HISTORIES / f"{name}.json").read_text())
    return document["events"], SagaResult.model_validate(as_served(document["report"]))


EXPECTED = {
    "success": {"BookHotel": OK, "BookFlight": OK, "BookCar": OK, "Booked": OK, "CancelHotel": NOT, "RolledBack": NOT},
    "rollback-hotel": {
        "BookHotel": CAUGHT,
        "CancelHotel": OK,
        "RolledBack": FAILED,
        "BookFlight": NOT,
        "CancelFlight": NOT,
    },
    "rollback-flight": {
        "BookHotel": OK,
        "BookFlight": CAUGHT,
        "CancelFlight": OK,
        "CancelHotel": OK,
        "RolledBack": FAILED,
        "BookCar": NOT,
        "CancelCar": NOT,
        "Booked": NOT,
    },
    "rollback-car": {
        "BookCar": CAUGHT,
        "CancelCar": OK,
        "CancelFlight": OK,
        "CancelHotel": OK,
        "RolledBack": FAILED,
        "Booked": NOT,
        "NeedsAttention": NOT,
    },
    "retried-compensation": {"BookCar": CAUGHT, "CancelHotel": RETRIED, "RolledBack": FAILED},
    "stuck-compensation": {
        "CancelCar": OK,
        "CancelFlight": CAUGHT,
        "FlagFlightCancellationStuck": OK,
        "CancelHotelAfterStuck": OK,
        "NeedsAttention": FAILED,
        "CancelHotel": NOT,
        "RolledBack": NOT,
        "CancelFlightAfterStuck": NOT,
    },
}


def test_every_recording_is_replayed() -> None:
    assert {path.stem for path in HISTORIES.glob("*.json")} == {*EXPECTED, "booking-saga.asl"}


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_recorded_history_colours_each_state_by_what_happened(scenario: str) -> None:
    events, report = load_recorded(scenario)
    views = state_views(DEFINITION, events)
    assert set(views) == set(DEFINITION["States"])
    assert {name: views[name].shown for name in EXPECTED[scenario]} == EXPECTED[scenario]
    entered = {name for name, view in views.items() if view.shown is not NOT}
    assert entered == set(report.states)


def test_retries_are_counted_per_state() -> None:
    views = state_views(DEFINITION, load_recorded("retried-compensation")[0])
    assert views["CancelHotel"].retries == 2
    stuck = state_views(DEFINITION, load_recorded("stuck-compensation")[0])["CancelFlight"]
    assert (stuck.retries, stuck.error) == (5, TRIP.errors.compensation_failed)


def test_page_draws_every_state_and_highlights_the_path_taken() -> None:
    events, report = load_recorded("rollback-car")
    page = page_html(DEFINITION, events, report)
    assert set(re.findall(r'data-state="(\w+)"', page)) == set(DEFINITION["States"])
    taken = re.findall(r'class="edge [a-z]+ taken" data-from="(\w+)" data-to="(\w+)"', page)
    assert taken == [
        ("BookHotel", "BookFlight"),
        ("BookFlight", "BookCar"),
        ("BookCar", "CancelCar"),
        ("CancelCar", "CancelFlight"),
        ("CancelFlight", "CancelHotel"),
        ("CancelHotel", "RolledBack"),
    ]
    assert "<script" not in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")


@pytest.mark.slow
def test_report_in_headless_chromium_shows_the_failed_and_compensated_states(tmp_path: Path) -> None:
    browser_or_skip()
    events, report = load_recorded("rollback-car")
    page = write_page(tmp_path, DEFINITION, events, report)
    dom = rendered_dom(page)
    # the rendered DOM holds the graph: every state of the ASL, each with its status and colour
    drawn = dict(re.findall(r'<g class="state [a-z-]+" data-state="(\w+)" data-status="([a-z-]+)"', dom))
    assert set(drawn) == set(DEFINITION["States"]), "the page is blank or lost states"
    assert drawn["BookCar"] == "caught"
    assert [drawn[s] for s in ("CancelCar", "CancelFlight", "CancelHotel")] == ["succeeded"] * 3
    assert drawn["RolledBack"] == "failed"
    assert drawn["Booked"] == "not-entered"
    book_car = re.search(r'data-state="BookCar".*?<rect [^>]*fill="(#\w+)" stroke="(#\w+)"', dom, re.DOTALL)
    assert book_car is not None
    assert (book_car.group(2), book_car.group(1)) == COLOURS[Shown.CAUGHT]
    cancel_car = re.search(r'data-state="CancelCar".*?<rect [^>]*fill="(#\w+)" stroke="(#\w+)"', dom, re.DOTALL)
    assert cancel_car is not None
    assert (cancel_car.group(2), cancel_car.group(1)) == COLOURS[Shown.SUCCEEDED]
    assert "ROLLED_BACK" in dom
    assert "SagaRolledBack" in dom
    # and a picture of it, in the test's own folder
    png = screenshot(page, tmp_path / "rolled-back-saga.png", 1300, 900)
    assert png.stat().st_size > 30_000, "the screenshot is (nearly) blank"
