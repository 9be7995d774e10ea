"""A simulated provider outside the saga (saga/providers.py), on plain moto DynamoDB: its own ledger, reached by the
step's key only; and the step around it, which turns its answers into the app's errors."""

from __future__ import annotations

import dataclasses

import pytest

from saga import catalogue
from saga.definition import SAGA
from saga.errors import AlreadyCompensated, CompensationFailed, ProviderKeyCancelled, ProviderKeyUnknown
from saga.providers import LATE, SimulatedProvider, ledger_states, step_key
from saga.spec import StepCall, StepWork
from tests.helpers import RESOURCES, book_step, cancel_step, saga_request

FIRST = RESOURCES[0]


def call(saga_id: str, simulate: str | None = None) -> StepCall:
    return StepCall(saga_id, FIRST, {}, simulate=simulate)


@pytest.fixture(params=[True, False], ids=["keeps-tombstones", "cannot-cancel-unknown-keys"])
def provider(request, dynamodb) -> SimulatedProvider:
    return SimulatedProvider(FIRST, name="a provider", cancels_unknown_keys=request.param)


def test_a_booking_is_one_reservation_per_key_whatever_reference_a_repeat_brings(provider, dynamodb):
    assert provider.book(call("p-once"), "REF-1") == "REF-1"
    assert provider.book(call("p-once"), "REF-2") == "REF-1"  # a repeat: the same reservation
    assert provider.state(step_key("p-once", FIRST)) == "CONFIRMED"
    item = dynamodb.get_item(TableName=provider.table, Key={"key": {"S": f"p-once/{FIRST}"}})["Item"]
    assert {name: value["S"] for name, value in item.items() if name in {"key", "status", "reference", "provider"}} == {
        "key": f"p-once/{FIRST}",
        "status": "CONFIRMED",
        "reference": "REF-1",
        "provider": "a provider",
    }
    assert {"booked_at"} <= item.keys()


def test_a_cancel_goes_by_key_and_a_cancelled_key_is_refused_from_now_on(provider):
    provider.book(call("p-cancel"), "REF")
    provider.cancel(call("p-cancel"))
    provider.cancel(call("p-cancel"))  # again: cancelled already
    assert provider.state(step_key("p-cancel", FIRST)) == "CANCELLED"
    with pytest.raises(ProviderKeyCancelled):
        provider.book(call("p-cancel"), "REF")


def test_a_cancel_of_a_key_never_received_leaves_a_tombstone_unless_the_provider_keeps_none(provider):
    provider.cancel(call("p-unknown"))
    if provider.cancels_unknown_keys:
        assert provider.state(step_key("p-unknown", FIRST)) == "CANCELLED"
        with pytest.raises(ProviderKeyCancelled):
            provider.book(call("p-unknown"), "REF")
    else:
        assert provider.state(step_key("p-unknown", FIRST)) is None


def test_a_late_request_is_booked_only_once_its_compensation_reached_the_provider(provider):
    # Given a request the provider took and has not booked (its answer lost)
    assert provider.book(call("p-late", simulate=LATE), "REF") == "REF"
    key = step_key("p-late", FIRST)
    assert provider.state(key) is None
    # When the compensation reaches it
    if provider.cancels_unknown_keys:
        # Then the key is cancelled, and the booking that follows is refused
        provider.cancel(call("p-late"))
    else:
        # Then the cancel is answered "unknown key" and the booking lands after it; the retry cancels it
        with pytest.raises(ProviderKeyUnknown):
            provider.cancel(call("p-late"))
        assert provider.state(key) == "CONFIRMED"
        provider.cancel(call("p-late"))
    assert provider.state(key) == "CANCELLED"
    with pytest.raises(ProviderKeyCancelled):
        provider.book(call("p-late"), "REF")


def test_a_late_request_asked_again_is_booked_then(provider):
    provider.book(call("p-again", simulate=LATE), "REF-1")
    assert provider.book(call("p-again"), "REF-2") == "REF-1"
    assert provider.state(step_key("p-again", FIRST)) == "CONFIRMED"


def test_a_provider_serves_its_own_step_only(provider):
    other = dataclasses.replace(call("p-other"), resource=f"{FIRST}_other")
    with pytest.raises(ValueError, match="called for"):
        provider.book(other, "REF")


def test_the_ledgers_are_read_for_a_saga_in_one_call(settings, dynamodb):
    SimulatedProvider(FIRST).book(call("p-read"), "REF")
    assert ledger_states(dynamodb, settings.provider_tables, "p-read", {}) == {
        resource: "CONFIRMED" if resource == FIRST else None for resource in RESOURCES
    }


def test_each_provider_asked_has_a_key_of_its_own_and_a_reservation_at_any_of_them_is_read(settings, dynamodb):
    # Given a step that asked its own provider, which refused, then an alternative, which took it
    provider = SimulatedProvider(FIRST)
    own, alternative = (dataclasses.replace(call("p-alt"), provider=name) for name in ("Own", "Alternative"))
    assert own.key != alternative.key != call("p-alt").key
    provider.book(alternative, "REF")
    assert (provider.state(own.key), provider.state(alternative.key)) == (None, "CONFIRMED")
    # Then the ledgers read under the keys of the providers asked find it; under the step's own key alone, not
    asked = {FIRST: ["Own", "Alternative"]}
    assert ledger_states(dynamodb, settings.provider_tables, "p-alt", asked)[FIRST] == "CONFIRMED"
    assert ledger_states(dynamodb, settings.provider_tables, "p-alt", {})[FIRST] is None
    # and once it is cancelled by its key, CANCELLED
    provider.cancel(alternative)
    assert ledger_states(dynamodb, settings.provider_tables, "p-alt", asked)[FIRST] == "CANCELLED"


def with_work(monkeypatch, work: StepWork) -> None:
    """The first step's work replaced by `work`, for its request and its compensation."""
    real = catalogue.step

    def step(action: catalogue.Action, resource: str) -> catalogue.Step:
        found = real(action, resource)
        if resource != FIRST:
            return found
        return dataclasses.replace(found, spec=dataclasses.replace(found.spec, work=work))

    monkeypatch.setattr(catalogue, "step", step)


def test_a_compensation_the_provider_cannot_make_yet_is_the_apps_compensation_failed_and_retried(
    monkeypatch, invoke_step, reader
):
    # Given a provider that cannot cancel a key it has not booked, holding a late request for the first step
    provider = SimulatedProvider(FIRST, cancels_unknown_keys=False)
    with_work(monkeypatch, StepWork(lambda c: provider.book(c, "REF"), provider.cancel))
    provider.book(call("p-retry", simulate=LATE), "REF")
    # When the compensation runs / Then it fails in the app's words, logged, and nothing is assumed
    with pytest.raises(CompensationFailed) as failed:
        invoke_step(cancel_step(FIRST), saga_request("p-retry"))
    assert type(failed.value).__name__ == SAGA.errors.compensation_failed
    assert reader.records("p-retry")[FIRST] is None
    # and its retry cancels the booking that landed meanwhile
    assert invoke_step(cancel_step(FIRST), saga_request("p-retry"), retry_count=1)["status"] == "CANCELLED"
    assert provider.state(step_key("p-retry", FIRST)) == "CANCELLED"
    assert [(e.event.value, e.attempt) for e in reader.log("p-retry")] == [
        ("START", 1),
        ("FAILED", 1),
        ("START", 2),
        ("END", 2),
    ]


def test_a_request_reaching_a_provider_without_tombstones_after_its_compensation_is_undone_there(
    monkeypatch, invoke_step, reader
):
    # Given a compensation that ran first, at a provider that keeps no tombstone
    provider = SimulatedProvider(FIRST, cancels_unknown_keys=False)
    with_work(monkeypatch, StepWork(lambda c: provider.book(c, "REF"), provider.cancel))
    invoke_step(cancel_step(FIRST), saga_request("p-after"))
    # When the request arrives: the provider books it, the saga's tombstone refuses it
    with pytest.raises(AlreadyCompensated):
        invoke_step(book_step(FIRST), saga_request("p-after"))
    # Then it is cancelled again at the provider: nothing is left booked anywhere
    assert provider.state(step_key("p-after", FIRST)) == "CANCELLED"
    assert reader.records("p-after")[FIRST] == "CANCELLED"
