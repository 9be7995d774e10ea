"""Typed configuration, read once from the function's environment (set by serverless.yml)."""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from saga.catalogue import Resource


class MisconfiguredFunction(RuntimeError):
    """The function's environment lacks a setting; a deployment problem, not a request problem."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    hotel_table: str = Field(min_length=1)
    flight_table: str = Field(min_length=1)
    car_table: str = Field(min_length=1)
    saga_log_table: str = Field(min_length=1)
    fault_injection: bool

    def bookings_table(self, resource: Resource) -> str:
        tables = {Resource.HOTEL: self.hotel_table, Resource.FLIGHT: self.flight_table, Resource.CAR: self.car_table}
        return tables[resource]


_VARIABLES = {
    "hotel_table": "HOTEL_TABLE",
    "flight_table": "FLIGHT_TABLE",
    "car_table": "CAR_TABLE",
    "saga_log_table": "SAGA_LOG_TABLE",
    "fault_injection": "FAULT_INJECTION",
}


@cache
def get_settings() -> Settings:
    missing = [name for name in _VARIABLES.values() if not os.environ.get(name)]
    if missing:
        raise MisconfiguredFunction(f"environment variables not set: {', '.join(missing)}")
    try:
        return Settings.model_validate({field: os.environ[name] for field, name in _VARIABLES.items()})
    except ValidationError as error:
        raise MisconfiguredFunction(str(error)) from None
