"""Typed configuration: one model, read from a function's environment or from a stage's stack outputs.

Each field has two names: the environment variable serverless.yml gives every function (HOTEL_TABLE)
and the stack output that carries the same value (HotelTableName). The tooling reads a deployed
stage's settings from its outputs through the same model, so both parse every value the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from saga.catalogue import Resource


class MisconfiguredFunction(RuntimeError):
    """The function's environment lacks a setting; a deployment problem, not a request problem."""


def _names(variable: str, output: str) -> AliasChoices:
    return AliasChoices(variable, output)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    hotel_table: str = Field(min_length=1, validation_alias=_names("HOTEL_TABLE", "HotelTableName"))
    flight_table: str = Field(min_length=1, validation_alias=_names("FLIGHT_TABLE", "FlightTableName"))
    car_table: str = Field(min_length=1, validation_alias=_names("CAR_TABLE", "CarTableName"))
    saga_log_table: str = Field(min_length=1, validation_alias=_names("SAGA_LOG_TABLE", "SagaLogTableName"))
    # "true" or "false" as serverless.yml writes it; pydantic's bool parsing refuses anything unclear.
    fault_injection: bool = Field(validation_alias=_names("FAULT_INJECTION", "FaultInjection"))

    @classmethod
    def read(cls, values: Mapping[str, str]) -> Settings:
        """From an environment or a stack's outputs; MisconfiguredFunction naming what is missing or wrong."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as error:
            problems = "; ".join(f"{item['loc'][0]}: {item['msg']}" for item in error.errors(include_url=False))
            raise MisconfiguredFunction(f"settings incomplete: {problems}") from None

    def bookings_table(self, resource: Resource) -> str:
        tables = {Resource.HOTEL: self.hotel_table, Resource.FLIGHT: self.flight_table, Resource.CAR: self.car_table}
        return tables[resource]


@cache
def get_settings() -> Settings:
    """The function's settings, from its environment, read once per process."""
    return Settings.read(os.environ)
