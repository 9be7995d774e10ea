"""Where a provider's own ledger disagrees with the saga's records, the summary and the page say so (`providers` in
`--json` carries each step's reservation at its provider)."""

from __future__ import annotations

import pytest

from saga.catalogue import simulated_provider
from saga.keys import RECORDS_KEY
from saga.models import RecordStatus
from saga.saga_log import AttentionRecord
from sagatools.asl import load_definition
from sagatools.results import Outcome, SagaResult
from sagatools.view.html_page import page_html
from sagatools.view.terminal import summary
from tests.helpers import RESOURCES, cancel_step

WITH_PROVIDER = [resource for resource in RESOURCES if simulated_provider(resource) is not None]
pytestmark = pytest.mark.skipif(not WITH_PROVIDER, reason="no step of the served app calls a simulated provider")


def result(providers: dict[str, RecordStatus | None], attention: list[AttentionRecord] | None = None) -> SagaResult:
    return SagaResult(
        file="f.json",
        saga_id="t-ledger",
        execution_arn="arn:aws:states:us-east-1:1:execution:m:t-ledger",
        status="FAILED",
        outcome=Outcome.NEEDS_ATTENTION if attention else Outcome.ROLLED_BACK,
        error=None,
        cause=None,
        records=dict.fromkeys(RESOURCES, RecordStatus.CANCELLED),
        providers=providers,
        saga_log=[],
        needs_attention=attention or [],
        states=[],
        transitions=0,
        duration_ms=None,
    )


def test_agreeing_ledgers_add_nothing_to_the_summary_or_the_page():
    agreeing = result(dict.fromkeys(RESOURCES, RecordStatus.CANCELLED))
    assert agreeing.provider_disagreements() == []
    assert "DISAGREEMENT" not in summary(agreeing)
    assert "Disagreement" not in page_html(load_definition(), [], agreeing)


def test_a_reservation_left_at_a_provider_is_named_in_the_summary_and_on_the_page():
    resource = WITH_PROVIDER[-1]
    left = result({**dict.fromkeys(RESOURCES, RecordStatus.CANCELLED), resource: RecordStatus.CONFIRMED})
    assert left.provider_disagreements() == [resource]
    line = f"{resource} CONFIRMED at its provider, CANCELLED in {RECORDS_KEY}"
    assert f"DISAGREEMENT   {line}" in summary(left)
    page = page_html(load_definition(), [], left)
    assert f"<b>Disagreement:</b> {line}" in page
    assert f'<tr class="problem"><td>{resource}</td><td>CANCELLED</td><td>CONFIRMED</td></tr>' in page
    # an open attention record naming the step says so
    record = AttentionRecord(saga_id="t-ledger", step=cancel_step(resource), at="2026-01-01T00:00:00Z")
    assert "(an open attention record names it)" in summary(result(left.providers, attention=[record]))
