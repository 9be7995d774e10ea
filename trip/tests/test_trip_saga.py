"""The trip's saga on the embedded stack, in the trip's own figures and names: what its users and its bills
have always seen (issue 31: "billed transitions: 4 on success, 7 for a rollback at the car").

The engine's tests (tests/embedded) compute these from whichever definition is served; these pin the trip's.
They run the served state machine, so they need the trip served (saga/definition.py: APP = "trip").
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from saga.definition import APP

pytestmark = pytest.mark.skipif(APP != "trip", reason=f"the engine serves {APP}, not the trip")

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SUCCESS: dict[str, Any] = json.loads((SAMPLES / "success.json").read_text())


# The states a rollback at the car enters, as the trip's contract has them.
ROLLED_BACK_AT_THE_CAR = [
    "BookHotel",
    "BookFlight",
    "BookCar",
    "CancelCar",
    "CancelFlight",
    "CancelHotel",
    "RolledBack",
]


def trip(trip_id: str, simulate: dict[str, str] | None = None) -> dict[str, Any]:
    """The trip's success sample under `trip_id`, with its faults."""
    request = {**json.loads(json.dumps(SUCCESS)), "trip_id": trip_id}
    if simulate is not None:
        request["simulate"] = simulate
    return request


@pytest.fixture
def stack() -> Iterator[Any]:
    from sagatools.emulation.embedded import EmbeddedStack

    with EmbeddedStack() as embedded:
        yield embedded


@pytest.fixture
def run(stack: Any) -> Any:
    from saga.models import parse_request
    from sagatools.request_files import RequestFile
    from sagatools.results import SagaReader
    from sagatools.runtest.runner import SagaRunner

    runner = SagaRunner(
        stack.stepfunctions, stack.state_machine_arn, SagaReader(stack.settings, stack.dynamodb), 0.005, 120
    )
    return lambda request: runner.run([RequestFile(f"{request['trip_id']}.json", parse_request(request))])[0]


def test_a_booked_trip_is_four_states_and_four_billed_transitions(run: Any) -> None:
    report = run(trip("trip-four"))
    assert report.states == ["BookHotel", "BookFlight", "BookCar", "Booked"]
    assert (report.transitions, report.billed_transitions) == (4, 4)
    assert report.model_dump(mode="json")["bookings"] == {
        "hotel": "CONFIRMED",
        "flight": "CONFIRMED",
        "car": "CONFIRMED",
    }


def test_a_refused_car_rolls_the_trip_back_in_seven_billed_transitions(run: Any) -> None:
    report = run(trip("trip-seven", {"book_car": "fail"}))
    assert report.states == ROLLED_BACK_AT_THE_CAR
    assert (report.transitions, report.billed_transitions) == (7, 7)
    assert report.model_dump(mode="json")["bookings"] == {
        "hotel": "CANCELLED",
        "flight": "CANCELLED",
        "car": "CANCELLED",
    }
    failed = [entry for entry in report.saga_log if entry.step == "book_car" and entry.event == "FAILED"]
    assert [entry.detail.split(":")[0] for entry in failed] == ["BookingRefused"]


def test_a_late_car_is_cancelled_by_the_retry_of_its_cancellation_and_nothing_is_left_booked(run: Any) -> None:
    # The car company takes the rental but books it only after the cancellation reached it; it cannot cancel a
    # key it has not booked, so it answers the first cancel "unknown key", the rental lands, and the retry cancels it.
    report = run(trip("trip-late-car", {"book_car": "late"}))
    assert report.states == ROLLED_BACK_AT_THE_CAR
    assert (report.transitions, report.billed_transitions) == (7, 8)
    dumped = report.model_dump(mode="json")
    assert dumped["bookings"] == dumped["providers"] == dict.fromkeys(["hotel", "flight", "car"], "CANCELLED")
    failed = [entry.detail.split(":")[0] for entry in report.saga_log if entry.event == "FAILED"]
    assert failed == ["CrashAfterWrite", "CancellationFailed"]


def test_a_late_hotel_is_refused_by_the_hotel_chain_after_its_cancellation(run: Any) -> None:
    report = run(trip("trip-late-hotel", {"book_hotel": "late"}))
    assert (report.states, report.billed_transitions) == (["BookHotel", "CancelHotel", "RolledBack"], 3)
    assert report.model_dump(mode="json")["providers"] == {"hotel": "CANCELLED", "flight": None, "car": None}


def test_a_stuck_flight_cancellation_is_eight_states_and_thirteen_billed(run: Any) -> None:
    # the rollback's 7 and its Flag state, plus the stuck cancellation's 5 retries
    report = run(trip("trip-thirteen", {"book_car": "fail", "cancel_flight": "fail"}))
    assert (report.transitions, report.billed_transitions) == (8, 13)
    assert "FlagFlightCancellationStuck" in report.states
    assert [(record.step, record.error) for record in report.needs_attention] == [
        ("cancel_flight", "CancellationFailed")
    ]


def test_a_trip_flying_nowhere_is_refused_at_the_hotel_as_an_invalid_trip_request(stack: Any) -> None:
    from sagatools.executions import execution_history
    from sagatools.results import states_entered

    request = trip("trip-nowhere")
    request["flight"]["to"] = request["flight"]["from"]
    arn = stack.stepfunctions.start_execution(
        stateMachineArn=stack.state_machine_arn, name="trip-nowhere", input=json.dumps(request)
    )["executionArn"]
    while (description := stack.stepfunctions.describe_execution(executionArn=arn))["status"] == "RUNNING":
        pass
    assert (description["status"], description["error"]) == ("FAILED", "InvalidTripRequest")
    assert "flight.to: must differ from 'from'" in description["cause"]
    assert states_entered(execution_history(stack.stepfunctions, arn)) == ["BookHotel", "RequestRefused"]


def test_runtest_says_trip_id_and_bookings_as_it_always_has(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sagatools.runtest.cli import main

    # its run cache, pages and logs in the test's folder, not the checkout's .runtest/
    monkeypatch.setenv("RUNTEST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RUNTEST_DIR", str(tmp_path / "output"))

    path = tmp_path / "trip.json"
    path.write_text(json.dumps(trip("trip-words")))
    out, err = io.StringIO(), io.StringIO()
    assert main([str(path), "--json"], stdout=out, stderr=err) == 0, err.getvalue()
    result = json.loads(out.getvalue())
    assert (result["trip_id"], result["outcome"], result["transitions"]) == ("trip-words", "COMMITTED", 4)
    assert result["bookings"] == {"hotel": "CONFIRMED", "flight": "CONFIRMED", "car": "CONFIRMED"}
    out = io.StringIO()
    assert main([str(path)], stdout=out, stderr=io.StringIO()) == 0
    assert "bookings       hotel CONFIRMED, flight CONFIRMED, car CONFIRMED" in out.getvalue()
