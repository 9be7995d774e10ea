"""What a saga definition may say about forward recovery: step kinds in order, alternatives, the schedule."""

from __future__ import annotations

import pytest

from saga.spec import FORWARD_DEADLINE_SECONDS, FORWARD_RETRY, SagaSpec, StepKind, StepSpec
from trip.requests import CarRequest, FlightRequest, HotelRequest

C, P, R = StepKind.COMPENSATABLE, StepKind.PIVOT, StepKind.RETRIABLE


def saga(*kinds: StepKind) -> SagaSpec:
    models = [HotelRequest, FlightRequest, CarRequest, HotelRequest]
    steps = tuple(StepSpec(f"step_{n}", models[n], kind=kind) for n, kind in enumerate(kinds))
    return SagaSpec(name="s", steps=steps)


@pytest.mark.parametrize("kinds", [(C, C, C), (C, P, R), (P, R, R), (C, C, P), (P,)])
def test_compensatable_steps_then_at_most_one_pivot_then_retriable_steps(kinds):
    assert [step.kind for step in saga(*kinds).steps] == list(kinds)


@pytest.mark.parametrize("kinds", [(C, R), (C, P, C), (P, P), (R, P), (C, P, R, C)])
def test_any_other_order_of_kinds_is_refused(kinds):
    with pytest.raises(ValueError, match="step kinds"):
        saga(*kinds)


def test_alternatives_need_a_retriable_step_whose_section_lists_them():
    with pytest.raises(ValueError, match="retriable"):
        StepSpec("car", CarRequest, alternatives_for="company")
    with pytest.raises(ValueError, match="alternatives"):
        StepSpec("hotel", HotelRequest, kind=R, alternatives_for="name")
    assert StepSpec("car", CarRequest, kind=R, alternatives_for="company").alternatives_for == "company"


def test_the_forward_schedule_reaches_past_the_longest_deadline_without_jitter():
    assert FORWARD_RETRY.asl()["JitterStrategy"] == "NONE"
    assert FORWARD_RETRY.waited(FORWARD_RETRY.max_attempts) > FORWARD_DEADLINE_SECONDS[2]
    assert FORWARD_RETRY.delay(0) == 30
    assert FORWARD_RETRY.delay(10) == 900


def test_a_step_with_verbs_of_its_own_is_named_by_them_and_the_others_by_the_sagas():
    # Given a step that is charged and refunded, beside one that uses the saga's verbs
    from saga.catalogue import Action, Step
    from saga.spec import Verbs

    charged = StepSpec("payment", HotelRequest, verbs=Verbs("charge", "refund", "refund"))
    plain = StepSpec("hotel", HotelRequest)
    # When the names are computed / Then each step goes by its own verbs, or the saga's
    charge, refund = Step(charged, Action.REQUEST, 1), Step(charged, Action.COMPENSATION, 1)
    assert (charge.name, charge.function, charge.state) == ("charge_payment", "chargePayment", "ChargePayment")
    assert (refund.name, refund.state, refund.stuck_state) == (
        "refund_payment",
        "RefundPayment",
        "FlagPaymentRefundStuck",
    )
    assert Step(plain, Action.COMPENSATION, 2).name == "cancel_hotel"


@pytest.mark.parametrize(
    ("verbs", "refused"),
    [
        (("book", "book", "booking"), "different verbs"),
        (("Book", "cancel", "x"), "lower-case"),
        (("b_1", "c", "x"), "lower-case"),
    ],
)
def test_verbs_that_cannot_make_distinct_names_are_refused(verbs, refused):
    from saga.spec import Verbs

    with pytest.raises(ValueError, match=refused):
        StepSpec("hotel", HotelRequest, verbs=Verbs(*verbs))


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        ({"done_state": "booked"}, "done_state"),
        ({"done_state": "RolledBack"}, "done_state"),
        ({"records": "Orders"}, "records"),
        ({"records": "line-items"}, "records"),
    ],
)
def test_a_done_state_or_records_name_that_cannot_name_a_state_or_a_table_is_refused(fields, refused):
    with pytest.raises(ValueError, match=refused):
        SagaSpec(name="s", steps=(StepSpec("hotel", HotelRequest),), **fields)
