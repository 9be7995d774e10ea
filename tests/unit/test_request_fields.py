"""The field types an app's request sections are built from (saga/request_fields.py), on a section of the
test's own: what each refuses, and that alternatives name other providers, each once, however written."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError, ValidationInfo, field_validator

from saga.models import describe_validation_error
from saga.request_fields import (
    MAX_ALTERNATIVES,
    SAGA_ID_PATTERN,
    Alternatives,
    Email,
    IsoDate,
    Strict,
    Text,
    other_providers,
)


class Offer(Strict):
    """A section as an app writes one: a provider, a date, a contact and other providers to try."""

    provider: Text
    on: IsoDate
    contact: Email
    alternatives: Alternatives | None = None

    @field_validator("alternatives")
    @classmethod
    def _other_providers(cls, alternatives: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return None if alternatives is None else other_providers(alternatives, info.data.get("provider"), "provider")


VALID = {"provider": "Drive Inc", "on": "2026-12-01", "contact": "ada@example.com"}


def refusal(**fields: object) -> str:
    """What the section refuses, as a request's refusal says it (one line per rule, `offer.` before each)."""
    with pytest.raises(ValidationError) as refused:
        Offer.model_validate({**VALID, **fields})
    return describe_validation_error(refused.value, prefix="offer.")


def test_a_valid_section_is_read_as_written():
    offer = Offer.model_validate({**VALID, "alternatives": ["Drive Co"]})
    assert (offer.provider, offer.on, offer.alternatives) == ("Drive Inc", date(2026, 12, 1), ["Drive Co"])


CASES = {
    "empty text": ({"provider": ""}, "offer.provider"),
    "only spaces": ({"provider": "   "}, "offer.provider: must not be empty or only spaces"),
    "control characters": ({"provider": "a\x1b[31mb"}, "offer.provider: must not hold control characters"),
    "text over 200": ({"provider": "p" * 201}, "offer.provider"),
    "number as text": ({"provider": 42}, "offer.provider"),
    "date not ISO": ({"on": "01/12/2026"}, "offer.on: must be a date written YYYY-MM-DD"),
    "date as timestamp": ({"on": 1764547200}, "offer.on: must be a date"),
    "date with a time": ({"on": "2026-12-01T10:00:00"}, "offer.on: must be a date"),
    "impossible date": ({"on": "2026-02-30"}, "offer.on: 2026-02-30 is not a calendar date"),
    "bad email": ({"contact": "ada"}, "offer.contact: must be an email address"),
    "email with a space": ({"contact": "ada @example.com"}, "offer.contact: must be an email address"),
    "unknown field": ({"stars": 5}, "offer.stars: Extra inputs"),
    "too many alternatives": (
        {"alternatives": [f"P{n}" for n in range(MAX_ALTERNATIVES + 1)]},
        "offer.alternatives",
    ),
    "alternative is the provider": ({"alternatives": ["Drive Inc"]}, "offer.alternatives"),
    "an alternative twice": ({"alternatives": ["A", "A"]}, "offer.alternatives"),
    "the provider in other case": (
        {"alternatives": ["drive inc"]},
        "offer.alternatives: must not name the provider itself",
    ),
    "the provider with spaces around": (
        {"alternatives": [" Drive Inc "]},
        "offer.alternatives: must not name the provider itself",
    ),
    "the provider spaced otherwise": (
        {"alternatives": ["Drive   Inc"]},
        "offer.alternatives: must not name the provider itself",
    ),
    "the provider in full-width letters": (  # U+FF24 for D and so on: NFKC folds them back to ASCII
        {"alternatives": ["".join(chr(ord(c) + 0xFEE0) if c != " " else c for c in "Drive Inc")]},
        "offer.alternatives: must not name the provider itself",
    ),
    "an alternative twice up to case and spacing": (
        {"alternatives": ["Zoom Co", " zoom  CO"]},
        "offer.alternatives: must name each provider once",
    ),
    "an alternative twice in composed and decomposed forms": (
        {"alternatives": ["Z\u00fcrich Co", "Zu\u0308rich Co"]},
        "offer.alternatives: must name each provider once",
    ),
    "blank alternative": ({"alternatives": [" "]}, "offer.alternatives.0"),
    "alternatives not a list": ({"alternatives": "A"}, "offer.alternatives"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_field_is_refused_naming_it(case):
    fields, expected = CASES[case]
    assert expected in refusal(**fields)


def test_a_near_duplicate_is_refused_in_one_sentence_showing_both_spellings():
    assert refusal(alternatives=["drive inc"]) == (
        "offer.alternatives: must not name the provider itself ('drive inc' is 'Drive Inc' written another way)"
    )
    assert refusal(alternatives=["Zoom Co", "zoom co"]) == (
        "offer.alternatives: must name each provider once ('zoom co' is 'Zoom Co' written another way)"
    )


def test_alternatives_that_name_other_providers_are_accepted():
    offer = Offer.model_validate({**VALID, "alternatives": ["Drive Inc 2", "Drive Co"]})
    assert offer.alternatives == ["Drive Inc 2", "Drive Co"]


@pytest.mark.parametrize(
    ("saga_id", "valid"),
    [("a", True), ("A-z_0-9", True), ("x" * 64, True), ("", False), ("x" * 65, False), ("a b", False)],
)
def test_a_saga_id_is_1_to_64_characters_of_letters_digits_dash_and_underscore(saga_id, valid):
    assert bool(SAGA_ID_PATTERN.fullmatch(saga_id)) is valid
