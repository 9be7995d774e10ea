"""The request model of the served app: every rule refuses with a message naming the field, as the request
writes it. The app's own rules (its sections' validators) are tested in the app's own folder (<app>/tests/)."""

from __future__ import annotations

import copy
import json
from typing import Any, get_args

import pytest

from saga.catalogue import REQUESTS, compensation_of, request_of
from saga.definition import SAGA
from saga.errors import InvalidRequest
from saga.keys import ID_FIELD
from saga.models import MOST_TRANSIENT, parse_request
from saga.request_fields import MAX_ALTERNATIVES, Email, IsoDate, Text
from tests.helpers import FAIL_FILE, LAST, RESOURCES, SUCCESS_FILE, saga_request, simulated_failure

FIRST = SAGA.steps[0].resource
# Every section of the request, as it is written: the shared ones, then one per step.
SECTIONS = {**SAGA.sections, **{step.resource: step.request for step in SAGA.steps}}
# A step that names other providers to try, if the app has one (they come after a pivot).
WITH_ALTERNATIVES = next((step for step in SAGA.steps if step.alternatives_for), None)
# A request that cannot try other providers: the first step never can (alternatives are past a pivot).
WITHOUT_ALTERNATIVES = request_of(FIRST).name
MOST = MOST_TRANSIENT["backward"]


def fields_of(kind: Any) -> list[tuple[str, str]]:
    """(section, field as written) for every field of the app's sections declared as `kind` (Text, IsoDate)."""
    metadata = list(get_args(kind)[1:])
    return [
        (section, field.alias or name)
        for section, model in SECTIONS.items()
        for name, field in model.model_fields.items()
        if field.metadata == metadata
    ]


TEXTS, DATES, EMAILS = fields_of(Text), fields_of(IsoDate), fields_of(Email)


def broken(change) -> dict:
    request = copy.deepcopy(saga_request("t-model"))
    change(request)
    return request


def setting(section: str, field: str, value: Any):
    return lambda r: r[section].update({field: value})


CASES: dict[str, tuple[Any, str]] = {
    **{f"missing section {s}": ((lambda r, s=s: r.pop(s)), f"{s}: Field required") for s in SECTIONS},
    "id too long": (lambda r: r.update({ID_FIELD: "x" * 65}), f"{ID_FIELD}: must be 1 to 64"),
    "id with a space": (lambda r: r.update({ID_FIELD: "saga 1"}), f"{ID_FIELD}: must be 1 to 64"),
    "empty id": (lambda r: r.update({ID_FIELD: ""}), ID_FIELD),
    "id missing": (lambda r: r.pop(ID_FIELD), f"{ID_FIELD}: Field required"),
    "id as a number": (lambda r: r.update({ID_FIELD: 42}), ID_FIELD),
    "request of an unknown field only": (lambda r: r.clear() or r.update(x=1), f"{ID_FIELD}: Field required"),
    **{f"empty {s}.{f}": (setting(s, f, ""), f"{s}.{f}") for s, f in TEXTS},
    **{f"spaces as {s}.{f}": (setting(s, f, "   "), f"{s}.{f}: must not be empty") for s, f in TEXTS},
    **{f"{s}.{f} over 200": (setting(s, f, "h" * 201), f"{s}.{f}") for s, f in TEXTS},
    **{f"number as {s}.{f}": (setting(s, f, 42), f"{s}.{f}") for s, f in TEXTS},
    **{f"control character in {s}.{f}": (setting(s, f, "a\x1bb"), f"{s}.{f}: must not hold") for s, f in TEXTS},
    **{f"{s}.{f} not ISO": (setting(s, f, "01/12/2026"), f"{s}.{f}: must be a date") for s, f in DATES},
    **{f"{s}.{f} as timestamp": (setting(s, f, 1764547200), f"{s}.{f}: must be a date") for s, f in DATES},
    **{f"impossible {s}.{f}": (setting(s, f, "2026-02-30"), f"{s}.{f}") for s, f in DATES},
    **{f"bad {s}.{f}": (setting(s, f, "ada"), f"{s}.{f}: must be an email address") for s, f in EMAILS},
    "unknown top-level field": (lambda r: r.update(coupon="X"), "coupon: Extra inputs"),
    "unknown nested field": (lambda r: r[FIRST].update(unexpected=5), f"{FIRST}.unexpected: Extra inputs"),
    "section not an object": (lambda r: r.update({FIRST: "yes"}), FIRST),
    "unknown simulate step": (
        lambda r: r.update(simulate={f"{REQUESTS[0].verb}_unknown_step": "fail"}),
        f"simulate.{REQUESTS[0].verb}_unknown_step",
    ),
    "simulate not an object": (lambda r: r.update(simulate="fail"), "simulate"),
    "unknown fault mode": (lambda r: r.update(simulate={request_of(LAST).name: "explode"}), "simulate"),
    "crash on a compensation": (
        lambda r: r.update(simulate={compensation_of(LAST).name: "crash_after_write"}),
        compensation_of(LAST).name,
    ),
    "late on a compensation": (
        lambda r: r.update(simulate={compensation_of(FIRST).name: "late"}),
        compensation_of(FIRST).name,
    ),
    "transient out of range": (
        lambda r: r.update(simulate={request_of(LAST).name: f"transient:{MOST + 1}"}),
        "simulate",
    ),
    "transient zero": (lambda r: r.update(simulate={compensation_of(FIRST).name: "transient:0"}), "simulate"),
    "fail:K without alternatives": (lambda r: r.update(simulate={WITHOUT_ALTERNATIVES: "fail:1"}), "simulate"),
    "fail:K on a compensation": (lambda r: r.update(simulate={compensation_of(LAST).name: "fail:1"}), "simulate"),
}
if SAGA.pivot is None:
    # Only a saga with a pivot can recover forward: to any other, `recovery` is an unknown field.
    CASES["recovery without a pivot"] = (lambda r: r.update(recovery={"mode": "forward"}), "recovery: Extra inputs")
else:
    CASES.update(
        {
            "unknown recovery mode": (lambda r: r.update(recovery={"mode": "sideways"}), "recovery.mode"),
            "recovery not an object": (lambda r: r.update(recovery="forward"), "recovery"),
            "unknown recovery field": (
                lambda r: r.update(recovery={"mode": "forward", "deadline": 60}),
                "recovery.deadline",
            ),
            "deadline under a minute": (
                lambda r: r.update(recovery={"mode": "forward", "deadline_seconds": 59}),
                "deadline",
            ),
            "deadline over a day": (
                lambda r: r.update(recovery={"mode": "forward", "deadline_seconds": 86401}),
                "deadline",
            ),
            "deadline as a fraction": (
                lambda r: r.update(recovery={"mode": "forward", "deadline_seconds": 600.0}),
                "recovery.deadline_seconds",
            ),
            "deadline as text": (
                lambda r: r.update(recovery={"mode": "forward", "deadline_seconds": "600"}),
                "deadline",
            ),
            "deadline as a boolean": (
                lambda r: r.update(recovery={"mode": "forward", "deadline_seconds": True}),
                "deadline",
            ),
            "transient over 20 forward": (
                lambda r: r.update(recovery={"mode": "forward"}, simulate={request_of(LAST).name: "transient:21"}),
                "simulate",
            ),
        }
    )
if WITH_ALTERNATIVES is not None:
    CASES["fail:K past the providers"] = (
        lambda r: r.update(simulate={request_of(WITH_ALTERNATIVES.resource).name: f"fail:{MAX_ALTERNATIVES + 2}"}),
        "simulate",
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_request_is_refused_naming_the_field(case):
    change, expected = CASES[case]
    with pytest.raises(InvalidRequest) as refused:
        parse_request(broken(change))
    assert expected in str(refused.value)
    assert type(refused.value).__name__ == SAGA.errors.invalid_request  # in the app's words


def test_a_request_that_is_not_an_object_is_refused():
    for request in ([saga_request("t-list")], "request", 42, None):
        with pytest.raises(InvalidRequest):
            parse_request(request)


def test_every_broken_rule_is_named_on_a_line_of_its_own():
    # Given a request that breaks three rules in three places
    request = saga_request("t many", coupon="X")
    request[LAST] = {**request[LAST], "unexpected": 1}
    # When it is parsed / Then one refusal names each of them, one a line
    with pytest.raises(InvalidRequest) as refused:
        parse_request(request)
    lines = str(refused.value).splitlines()
    assert len(lines) == 3, lines
    assert {line.split(":")[0] for line in lines} == {ID_FIELD, f"{LAST}.unexpected", "coupon"}


@pytest.mark.skipif(ID_FIELD == "saga_id", reason="the app's id field is the engine's own name")
def test_the_id_is_read_by_the_apps_id_field_only():
    # Given the success request with its id under the engine's Python name instead of the app's id field
    request = saga_request("t-python-name")
    request["saga_id"] = request.pop(ID_FIELD)
    # Then it is refused: the Python name is an unknown field, and the id is missing
    with pytest.raises(InvalidRequest) as refused:
        parse_request(request)
    assert "saga_id: Extra inputs" in str(refused.value)
    assert f"{ID_FIELD}: Field required" in str(refused.value)


def test_the_id_is_read_back_as_saga_id_and_written_as_the_id_field():
    request = parse_request(saga_request("t-written"))
    assert request.saga_id == "t-written"
    assert request.model_dump(by_alias=True)[ID_FIELD] == "t-written"


@pytest.mark.parametrize("mode", ["fail", "crash_after_write", "late", "transient:1", f"transient:{MOST}"])
@pytest.mark.parametrize("step", [booking.name for booking in REQUESTS])
def test_every_fault_of_a_request_is_accepted(step, mode):
    assert parse_request(saga_request("t", simulate={step: mode})).fault_for(step)


@pytest.mark.parametrize("mode", ["fail", "transient:1", f"transient:{MOST}"])
@pytest.mark.parametrize("step", [compensation_of(booking.resource).name for booking in REQUESTS])
def test_every_fault_of_a_compensation_is_accepted(step, mode):
    assert parse_request(saga_request("t", simulate={step: mode})).fault_for(step)


def test_a_step_the_request_does_not_simulate_has_no_fault():
    request = parse_request(saga_request("t", simulate={compensation_of(LAST).name: "fail"}))
    assert request.fault_for(request_of(LAST).name) is None
    assert parse_request(saga_request("t")).fault_for(request_of(LAST).name) is None


def test_recovery_is_backward_unless_the_request_says_forward():
    assert parse_request(saga_request("t")).recovery_mode.mode == "backward"


@pytest.mark.skipif(SAGA.pivot is None, reason="the app has no pivot")
def test_forward_recovery_has_an_hour_unless_the_request_says_otherwise():
    forward = parse_request(saga_request("t", recovery={"mode": "forward"})).recovery_mode
    assert (forward.mode, forward.deadline_seconds) == ("forward", 3600)


@pytest.mark.skipif(SAGA.pivot is None, reason="the app has no pivot")
@pytest.mark.parametrize("deadline", [60, 86400])
def test_the_deadline_bounds_are_accepted(deadline):
    recovery = {"mode": "forward", "deadline_seconds": deadline}
    assert parse_request(saga_request("t", recovery=recovery)).recovery_mode.deadline_seconds == deadline


def test_backward_recovery_accepts_up_to_5_passing_faults():
    step = request_of(LAST).name
    assert (
        parse_request(saga_request("t", simulate={step: f"transient:{MOST}"})).fault_for(step).failing_attempts == MOST
    )
    with pytest.raises(InvalidRequest, match=rf"simulate.*transient:1\.\.{MOST}"):
        parse_request(saga_request("t", simulate={step: f"transient:{MOST + 1}"}))


@pytest.mark.skipif(SAGA.pivot is None, reason="the app has no pivot")
def test_forward_recovery_accepts_up_to_20_passing_faults_and_backward_up_to_5():
    step = request_of(LAST).name
    forward = saga_request("t", recovery={"mode": "forward"}, simulate={step: "transient:20"})
    assert parse_request(forward).fault_for(step).failing_attempts == 20
    with pytest.raises(InvalidRequest, match=r"transient:1\.\.20 in forward recovery"):
        parse_request(saga_request("t", simulate={step: "transient:20"}))


@pytest.mark.skipif(WITH_ALTERNATIVES is None, reason="the app has no step with alternatives")
@pytest.mark.parametrize("refusing", range(1, MAX_ALTERNATIVES + 2))
def test_fail_k_refuses_the_first_k_providers(refusing):
    assert WITH_ALTERNATIVES is not None
    step = request_of(WITH_ALTERNATIVES.resource).name
    request = parse_request(saga_request("t", simulate={step: f"fail:{refusing}"}))
    fault = request.fault_for(step)
    assert (fault.mode, fault.refusing_providers) == ("fail", refusing)
    assert request.fault_for(WITHOUT_ALTERNATIVES) is None


def test_the_apps_request_files_are_valid():
    # Its samples (README "Make it yours": every app has both; its examples are its own tests' to check).
    paths = [SUCCESS_FILE, FAIL_FILE]
    for path in paths:
        parse_request(json.loads(path.read_text()))
    # The failing sample makes one request refuse; the successful one makes none refuse.
    assert simulated_failure(FAIL_FILE) in RESOURCES
    succeeding = parse_request(json.loads(SUCCESS_FILE.read_text()))
    assert not any((fault := succeeding.fault_for(booking.name)) and fault.mode == "fail" for booking in REQUESTS)
