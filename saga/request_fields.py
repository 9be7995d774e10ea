"""The field types requests are built from: dates, readable text, ids, and a strict base model.

Shared by every section of a request (the app's requests.py) and the request itself (saga/models.py).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> date:
    # pydantic's own date parsing also takes timestamps and datetimes; the contract is YYYY-MM-DD.
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a calendar date") from None


def matching(pattern: str, rule: str) -> BeforeValidator:
    """A string field that must match `pattern` entirely; `rule` says so to the user."""
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str) and not compiled.fullmatch(value):
            raise ValueError(rule)
        return value

    return BeforeValidator(check)


def _readable(value: Any) -> Any:
    # A name is shown to people: something to read, and nothing that could steer a terminal.
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("must not be empty or only spaces")
        if any(not character.isprintable() for character in value):
            raise ValueError("must not hold control characters")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200), BeforeValidator(_readable)]
SAGA_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")  # also the execution's name, so never more than this
SAGA_ID_RULE = "must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -"
SagaId = Annotated[str, matching(SAGA_ID_PATTERN.pattern, SAGA_ID_RULE)]
# Other providers of a step, tried in order when one refuses (in forward recovery): see `other_providers`.
MAX_ALTERNATIVES = 3
Alternatives = Annotated[list[Text], Field(max_length=MAX_ALTERNATIVES)]


def _provider_key(name: str) -> str:
    """A provider's name as it is compared: Unicode compatibility forms (NFKC), case folded, spacing
    collapsed, so "drive inc" and " Drive  Inc" name the company "Drive Inc"."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return " ".join(folded.split())


def _as_written(name: str, known: str) -> str:
    return f"({known})" if name == known else f"({name!r} is {known!r} written another way)"


def other_providers(alternatives: list[str], provider: str | None, field: str) -> list[str]:
    """Alternatives are other providers: each named once, and none of them the request's own, however
    written (else a record could go to the provider that has just refused it)."""
    own = None if provider is None else _provider_key(provider)
    seen: dict[str, str] = {}
    for name in alternatives:
        key = _provider_key(name)
        if provider is not None and key == own:
            raise ValueError(f"must not name the {field} itself {_as_written(name, provider)}")
        if key in seen:
            raise ValueError(f"must name each provider once {_as_written(name, seen[key])}")
        seen[key] = name
    return alternatives


Email = Annotated[
    str,
    StringConstraints(max_length=200),
    matching(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+", "must be an email address"),
]


class Strict(BaseModel):
    # Fields with an alias (`from`, `return`) are read by that name only: `from_` is an unknown field.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=False, validate_by_alias=True)
