"""The request models of the trip saga: one section per step of trip/definition.py, and the traveller.

Each section is what its step's booking stores; its validators are the rules of that provider.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

from saga.request_fields import Alternatives, Email, IsoDate, Strict, Text, matching, other_providers

AirportCode = Annotated[str, matching(r"[A-Z]{3}", "must be a three-letter airport code such as SEA")]


class Traveller(Strict):
    name: Text
    email: Email


class HotelRequest(Strict):
    name: Text
    check_in: IsoDate
    check_out: IsoDate

    @field_validator("check_out")
    @classmethod
    def _after_check_in(cls, check_out: date, info: ValidationInfo) -> date:
        check_in = info.data.get("check_in")
        if check_in is not None and check_out <= check_in:
            raise ValueError("must be after check_in")
        return check_out


class FlightRequest(Strict):
    from_: AirportCode = Field(alias="from")
    to: AirportCode
    depart: IsoDate
    return_: IsoDate | None = Field(default=None, alias="return")

    @field_validator("to")
    @classmethod
    def _differs_from_origin(cls, to: str, info: ValidationInfo) -> str:
        if to == info.data.get("from_"):
            raise ValueError("must differ from 'from'")
        return to

    @field_validator("return_")
    @classmethod
    def _not_before_depart(cls, return_: date | None, info: ValidationInfo) -> date | None:
        depart = info.data.get("depart")
        if return_ is not None and depart is not None and return_ < depart:
            raise ValueError("must not be before depart")
        return return_


class CarRequest(Strict):
    company: Text
    pick_up: IsoDate
    drop_off: IsoDate
    alternatives: Alternatives | None = None  # other companies, tried in order in forward recovery

    @field_validator("alternatives")
    @classmethod
    def _other_companies(cls, alternatives: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return None if alternatives is None else other_providers(alternatives, info.data.get("company"), "company")

    @field_validator("drop_off")
    @classmethod
    def _not_before_pick_up(cls, drop_off: date, info: ValidationInfo) -> date:
        pick_up = info.data.get("pick_up")
        if pick_up is not None and drop_off < pick_up:
            raise ValueError("must not be before pick_up")
        return drop_off
