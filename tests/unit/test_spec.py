"""What a saga definition may say about forward recovery: step kinds in order, alternatives, the schedule."""

from __future__ import annotations

import pytest

from saga.providers import SimulatedProvider
from saga.request_fields import Alternatives, IsoDate, Strict, Text
from saga.spec import (
    ENGINE_ERRORS,
    FORWARD_DEADLINE_SECONDS,
    FORWARD_RETRY,
    RECORD_ATTRIBUTES,
    ErrorNames,
    SagaSpec,
    StepCall,
    StepKind,
    StepSpec,
    StepWork,
    Verbs,
)

C, P, R = StepKind.COMPENSATABLE, StepKind.PIVOT, StepKind.RETRIABLE


class Section(Strict):
    """A step's section with no alternatives."""

    name: Text
    on: IsoDate


class WithAlternatives(Strict):
    """A step's section naming its provider and other providers to try."""

    provider: Text
    alternatives: Alternatives | None = None


def saga(*kinds: StepKind) -> SagaSpec:
    steps = tuple(StepSpec(f"step_{n}", Section, kind=kind) for n, kind in enumerate(kinds))
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
        StepSpec("offer", WithAlternatives, alternatives_for="provider")
    with pytest.raises(ValueError, match="alternatives"):
        StepSpec("plain", Section, kind=R, alternatives_for="name")
    assert StepSpec("offer", WithAlternatives, kind=R, alternatives_for="provider").alternatives_for == "provider"


def test_a_step_s_work_names_the_simulated_provider_of_its_own_resource():
    # A simulated provider copied from another step's file would read and write that step's ledger
    def act(call: StepCall) -> str:
        return "REF"

    def undo(call: StepCall) -> None:
        return None

    with pytest.raises(ValueError, match="serves 'first'"):
        StepSpec("second", Section, work=StepWork(act, undo, simulated=SimulatedProvider("first")))
    assert StepSpec("second", Section, work=StepWork(act, undo, simulated=SimulatedProvider("second"))).work is not None


def test_the_forward_schedule_reaches_past_the_longest_deadline_without_jitter():
    assert FORWARD_RETRY.asl()["JitterStrategy"] == "NONE"
    assert FORWARD_RETRY.waited(FORWARD_RETRY.max_attempts) > FORWARD_DEADLINE_SECONDS[2]
    assert FORWARD_RETRY.delay(0) == 30
    assert FORWARD_RETRY.delay(10) == 900


def test_a_step_with_verbs_of_its_own_is_named_by_them_and_the_others_by_the_sagas():
    # Given a step that is charged and refunded, beside one that uses the saga's verbs
    from saga.catalogue import Action, Step
    from saga.definition import SAGA
    from saga.spec import Verbs

    charged = StepSpec("payment", Section, verbs=Verbs("charge", "refund", "refund"))
    plain = StepSpec("plain_step", Section)
    # When the names are computed / Then each step goes by its own verbs, or the saga's
    charge, refund = Step(charged, Action.REQUEST, 1), Step(charged, Action.COMPENSATION, 1)
    assert (charge.name, charge.function, charge.state) == ("charge_payment", "chargePayment", "ChargePayment")
    assert (refund.name, refund.state, refund.stuck_state) == (
        "refund_payment",
        "RefundPayment",
        "FlagPaymentRefundStuck",
    )
    assert Step(plain, Action.COMPENSATION, 2).name == f"{SAGA.verbs.compensation}_plain_step"


@pytest.mark.parametrize(
    ("verbs", "refused"),
    [
        (("reserve", "reserve", "reservation"), "different verbs"),
        (("Reserve", "release", "x"), "lower-case"),
        (("b_1", "c", "x"), "lower-case"),
    ],
)
def test_verbs_that_cannot_make_distinct_names_are_refused(verbs, refused):
    from saga.spec import Verbs

    with pytest.raises(ValueError, match=refused):
        StepSpec("plain_step", Section, verbs=Verbs(*verbs))


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        ({"done_state": "done"}, "done_state"),
        ({"done_state": "RolledBack"}, "done_state"),
        ({"records": "Orders"}, "records"),
        ({"records": "line-items"}, "records"),
    ],
)
def test_a_done_state_or_records_name_that_cannot_name_a_state_or_a_table_is_refused(fields, refused):
    with pytest.raises(ValueError, match=refused):
        SagaSpec(name="s", steps=(StepSpec("plain_step", Section),), **fields)


@pytest.mark.parametrize("id_field", ["sk", "status", "step", "recovery", "simulate", "who"])
def test_an_id_field_named_like_an_attribute_stored_beside_it_or_a_section_is_refused(id_field):
    with pytest.raises(ValueError, match="id_field"):
        SagaSpec(name="s", steps=(StepSpec("plain_step", Section),), sections={"who": Section}, id_field=id_field)


def test_the_attributes_an_id_field_cannot_take_are_every_field_stored_beside_it():
    from saga.records import StepRecord
    from saga.saga_log import AttentionRecord, LogEntry
    from sagatools.attention.claim import Claim

    stored = {name for model in (StepRecord, LogEntry, AttentionRecord, Claim) for name in model.model_fields}
    # the id itself, and when the record was done and undone (named after the saga's verbs, never an id field)
    assert stored - {"saga_id", "done_at", "undone_at"} <= RECORD_ATTRIBUTES


@pytest.mark.parametrize("name", sorted(ENGINE_ERRORS))
def test_an_error_name_of_the_engine_s_own_cannot_be_an_app_s(name):
    with pytest.raises(ValueError, match="engine's own errors"):
        ErrorNames(refused=name)


@pytest.mark.parametrize(
    ("verbs", "done", "undone"),
    [
        (Verbs(), "done", "undone"),
        (Verbs("book", "cancel", "cancellation"), "booked", "cancelled"),
        (Verbs("charge", "refund", "refund"), "charged", "refunded"),
        (Verbs("ship", "recall", "recall"), "shipped", "recalled"),
        (Verbs("carry", "drop", "drop"), "carried", "dropped"),
        (Verbs("buy", "refund", "refund"), "bought", "refunded"),
        (Verbs("lend", "reclaim", "reclaim", request_done="lent"), "lent", "reclaimed"),
    ],
)
def test_what_a_request_and_its_compensation_have_done_reads_as_english(verbs, done, undone):
    assert (verbs.requested, verbs.compensated) == (done, undone)
