"""The app's words for a saga's id and its records, as DynamoDB items, step results and `--json` carry them.

In Python a saga's id is always `saga_id` and its records are `records`; written out they are the app's id
field (SagaSpec.id_field, `order_id`) and its records' name (SagaSpec.records), so its public names stay its own.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from saga.definition import SAGA

ID_FIELD = SAGA.id_field
RECORDS_KEY = SAGA.records


# When a record's request was done and undone, in the saga's verbs: booked_at, cancelled_at.
DONE_AT = f"{SAGA.verbs.requested}_at"
UNDONE_AT = f"{SAGA.verbs.compensated}_at"
_WRITTEN_AS = {
    "saga_id": ID_FIELD,
    "records": RECORDS_KEY,
    "done_at": DONE_AT,
    "undone_at": UNDONE_AT,
    # forward recovery's provider that holds each confirmed record: booked_with
    "done_with": f"{SAGA.verbs.requested}_with",
}


def _written_as(name: str) -> str:
    return _WRITTEN_AS.get(name, name)


class InAppWords(BaseModel):
    """A model whose fields are the engine's names in code and the app's words when read or written."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=_written_as,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class SagaKeyed(InAppWords):
    """A record of one saga, keyed by its id (the app's id field when read or written)."""

    saga_id: str


# What one saga, and many, are called in messages, pages and `attention.sh` (SagaSpec.noun).
NOUN = SAGA.noun
NOUNS = SAGA.nouns
