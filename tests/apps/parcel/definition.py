"""The parcel saga: buy the postage, then hire a courier; on a failure, undo them in reverse order."""

from __future__ import annotations

from saga.spec import SagaSpec, StepSpec, Verbs
from tests.apps.parcel import courier, postage
from tests.apps.parcel.requests import CourierRequest, PostageRequest, Recipient

SAGA = SagaSpec(
    name="parcel-saga",
    steps=(
        StepSpec(
            "postage", PostageRequest, verbs=Verbs("buy", "refund", "refund", request_done="bought"), work=postage.WORK
        ),
        StepSpec("courier", CourierRequest, verbs=Verbs("hire", "dismiss", "dismissal"), work=courier.WORK),
    ),
    sections={"recipient": Recipient},
    id_field="parcel_id",
    noun="parcel",
    done_state="Shipped",
    records="shipments",
)
