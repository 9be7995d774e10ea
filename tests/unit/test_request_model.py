"""The request model: every rule refuses with a message naming the field."""

from __future__ import annotations

import copy

import pytest

from saga.errors import InvalidRequest
from saga.models import parse_request
from tests.helpers import saga_request


def broken(change) -> dict:
    request = copy.deepcopy(saga_request("t-model"))
    change(request)
    return request


CASES = {
    "missing section": (lambda r: r.pop("car"), "car: Field required"),
    "trip id too long": (lambda r: r.update(saga_id="x" * 65), "saga_id: must be 1 to 64"),
    "trip id with a space": (lambda r: r.update(saga_id="trip 1"), "saga_id: must be 1 to 64"),
    "empty trip id": (lambda r: r.update(saga_id=""), "saga_id"),
    "empty name": (lambda r: r["traveller"].update(name=""), "traveller.name"),
    "name over 200": (lambda r: r["hotel"].update(name="h" * 201), "hotel.name"),
    "number as name": (lambda r: r["car"].update(company=42), "car.company"),
    "bad email": (lambda r: r["traveller"].update(email="ada"), "traveller.email"),
    "date not ISO": (lambda r: r["hotel"].update(check_in="01/12/2026"), "hotel.check_in: must be a date"),
    "date as timestamp": (lambda r: r["car"].update(pick_up=1764547200), "car.pick_up: must be a date"),
    "impossible date": (lambda r: r["flight"].update(depart="2026-02-30"), "flight.depart"),
    "check out = check in": (lambda r: r["hotel"].update(check_out=r["hotel"]["check_in"]), "hotel.check_out"),
    "drop off before pick up": (lambda r: r["car"].update(drop_off="2026-11-30"), "car.drop_off"),
    "return before depart": (lambda r: r["flight"].update({"return": "2026-11-30"}), "flight.return"),
    "same airports": (lambda r: r["flight"].update(to=r["flight"]["from"]), "flight.to"),
    "airport not 3 letters": (lambda r: r["flight"].update({"from": "SEAT"}), "flight.from"),
    "unknown top-level field": (lambda r: r.update(coupon="X"), "coupon: Extra inputs"),
    "unknown nested field": (lambda r: r["hotel"].update(stars=5), "hotel.stars: Extra inputs"),
    "unknown simulate step": (lambda r: r.update(simulate={"book_train": "fail"}), "simulate.book_train"),
    "unknown fault mode": (lambda r: r.update(simulate={"book_car": "explode"}), "simulate"),
    "crash on a cancel": (lambda r: r.update(simulate={"cancel_car": "crash_after_write"}), "cancel_car"),
    "transient out of range": (lambda r: r.update(simulate={"book_car": "transient:6"}), "simulate"),
    "transient zero": (lambda r: r.update(simulate={"cancel_hotel": "transient:0"}), "simulate"),
    "request not an object": (lambda r: r.clear() or r.update(x=1), "saga_id: Field required"),
    "unknown recovery mode": (lambda r: r.update(recovery={"mode": "sideways"}), "recovery.mode"),
    "recovery not an object": (lambda r: r.update(recovery="forward"), "recovery"),
    "unknown recovery field": (lambda r: r.update(recovery={"mode": "forward", "deadline": 60}), "recovery.deadline"),
    "deadline under a minute": (lambda r: r.update(recovery={"mode": "forward", "deadline_seconds": 59}), "deadline"),
    "deadline over a day": (lambda r: r.update(recovery={"mode": "forward", "deadline_seconds": 86401}), "deadline"),
    "deadline as a fraction": (
        lambda r: r.update(recovery={"mode": "forward", "deadline_seconds": 600.0}),
        "recovery.deadline_seconds",
    ),
    "deadline as text": (lambda r: r.update(recovery={"mode": "forward", "deadline_seconds": "600"}), "deadline"),
    "deadline as a boolean": (lambda r: r.update(recovery={"mode": "forward", "deadline_seconds": True}), "deadline"),
    "transient over 20 forward": (
        lambda r: r.update(recovery={"mode": "forward"}, simulate={"book_car": "transient:21"}),
        "simulate",
    ),
    "fail:K without alternatives": (lambda r: r.update(simulate={"book_hotel": "fail:1"}), "simulate"),
    "fail:K past the providers": (lambda r: r.update(simulate={"book_car": "fail:5"}), "simulate"),
    "fail:K on a cancel": (lambda r: r.update(simulate={"cancel_car": "fail:1"}), "simulate"),
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
def test_bad_request_is_refused_naming_the_field(case):
    change, expected = CASES[case]
    with pytest.raises(InvalidRequest) as refused:
        parse_request(broken(change))
    assert expected in str(refused.value)


def test_a_near_duplicate_alternative_is_refused_in_one_sentence_showing_both_spellings():
    # Given the company "Drive Inc" and an alternative that is it in lower case
    request = saga_request(
        "t-near", car={**saga_request()["car"], "company": "Drive Inc", "alternatives": ["drive inc"]}
    )
    # When the request is parsed, then it is refused in one line naming the field and both spellings
    with pytest.raises(InvalidRequest) as refused:
        parse_request(request)
    assert str(refused.value) == (
        "car.alternatives: must not name the company itself ('drive inc' is 'Drive Inc' written another way)"
    )


def test_alternatives_that_name_other_companies_are_accepted():
    car = {**saga_request()["car"], "company": "Drive Inc", "alternatives": ["Drive Inc 2", "Drive Co"]}
    assert parse_request(saga_request("t-distinct", car=car)).car.alternatives == ["Drive Inc 2", "Drive Co"]


def test_return_is_optional_and_same_day_car_is_fine():
    request = saga_request("t-ok")
    request["flight"].pop("return")
    request["car"]["drop_off"] = request["car"]["pick_up"]
    assert parse_request(request).flight.return_ is None


@pytest.mark.parametrize("mode", ["fail", "crash_after_write", "transient:1", "transient:5"])
def test_every_booking_fault_is_accepted(mode):
    assert parse_request(saga_request("t", simulate={"book_flight": mode})).fault_for("book_flight")


def test_recovery_is_backward_unless_the_request_says_forward():
    assert parse_request(saga_request("t")).recovery_mode.mode == "backward"
    forward = parse_request(saga_request("t", recovery={"mode": "forward"})).recovery_mode
    assert (forward.mode, forward.deadline_seconds) == ("forward", 3600)


@pytest.mark.parametrize("deadline", [60, 86400])
def test_the_deadline_bounds_are_accepted(deadline):
    recovery = {"mode": "forward", "deadline_seconds": deadline}
    assert parse_request(saga_request("t", recovery=recovery)).recovery_mode.deadline_seconds == deadline


def test_forward_recovery_accepts_up_to_20_passing_faults_and_backward_up_to_5():
    forward = saga_request("t", recovery={"mode": "forward"}, simulate={"book_car": "transient:20"})
    assert parse_request(forward).fault_for("book_car").failing_attempts == 20
    with pytest.raises(InvalidRequest, match=r"transient:1\.\.20 in forward recovery"):
        parse_request(saga_request("t", simulate={"book_car": "transient:20"}))


@pytest.mark.parametrize("refusing", [1, 2, 3, 4])
def test_fail_k_refuses_the_first_k_providers(refusing):
    request = parse_request(saga_request("t", simulate={"book_car": f"fail:{refusing}"}))
    fault = request.fault_for("book_car")
    assert (fault.mode, fault.refusing_providers) == ("fail", refusing)
    assert request.fault_for("book_hotel") is None


def test_shipped_request_files_are_valid():
    from tests.helpers import ROOT

    for path in [ROOT / "test-booking-success.json", ROOT / "test-booking-fail.json", *ROOT.glob("examples/*.json")]:
        parse_request(__import__("json").loads(path.read_text()))
