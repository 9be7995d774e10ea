"""Typed configuration, read from a function's environment or from a stage's stack outputs.

Each setting has two names: the environment variable the Serverless template gives a function
(SAGA_LOG_TABLE, X_TABLE for the table of the resource x its steps book, X_PROVIDER_TABLE for the ledger of
its simulated provider) and the stack output that carries the same value (SagaLogTableName, XTableName,
XProviderTableName; saga/catalogue.py computes the names).
The tooling reads a deployed stage's settings from its outputs through the same model, so both
parse every value the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from saga.catalogue import RESOURCES, SAGA_LOG_TABLE_OUTPUT, SAGA_LOG_TABLE_VARIABLE, ResourceNames


class MisconfiguredFunction(RuntimeError):
    """The function's environment lacks a setting; a deployment problem, not a request problem."""


def _names(variable: str, output: str) -> AliasChoices:
    return AliasChoices(variable, output)


def _set(tables: dict[str, str], resource: str, variable: str, output: str) -> str:
    """The table of `resource`; MisconfiguredFunction naming its variable and output when it is not set."""
    if not (table := tables.get(resource)):
        raise MisconfiguredFunction(f"settings incomplete: {variable} (or the output {output}) is not set")
    return table


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    saga_log_table: str = Field(min_length=1, validation_alias=_names(SAGA_LOG_TABLE_VARIABLE, SAGA_LOG_TABLE_OUTPUT))
    # "true" or "false" as the template writes it; pydantic's bool parsing refuses anything unclear.
    fault_injection: bool = Field(validation_alias=_names("FAULT_INJECTION", "FaultInjection"))
    # Resource -> its records table: a function is given only its own; a stack outputs them all.
    tables: dict[str, str] = Field(default_factory=dict)
    # Resource -> the ledger of its simulated provider (saga/providers.py), given and output alike.
    provider_tables: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _tables_by_resource(cls, values: Any) -> Any:
        if not isinstance(values, Mapping):
            return values
        tables, provider_tables = {}, {}
        for resource in RESOURCES:
            names = ResourceNames(resource)
            table = values.get(names.table_variable, values.get(names.table_output))
            if table is not None:
                tables[resource] = table
            ledger = values.get(names.provider_table_variable, values.get(names.provider_table_output))
            if ledger is not None:
                provider_tables[resource] = ledger
        return {**values, "tables": tables, "provider_tables": provider_tables}

    @classmethod
    def read(cls, values: Mapping[str, str], *, outputs: bool = False) -> Settings:
        """From an environment or (`outputs`) a stack's outputs; MisconfiguredFunction naming what is missing or
        wrong by the name it has there (an environment variable, or a stack output)."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as error:
            problems = "; ".join(
                f"{cls._named(str(item['loc'][0]), outputs)}: {item['msg']}" for item in error.errors(include_url=False)
            )
            raise MisconfiguredFunction(f"settings incomplete: {problems}") from None

    @classmethod
    def _named(cls, variable: str, outputs: bool) -> str:
        if not outputs:
            return variable
        for field in cls.model_fields.values():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices) and variable in alias.choices:
                return f"the output {alias.choices[1]}"
        return variable

    def records_table(self, resource: str) -> str:
        names = ResourceNames(resource)
        return _set(self.tables, resource, names.table_variable, names.table_output)

    def provider_table(self, resource: str) -> str:
        names = ResourceNames(resource)
        return _set(self.provider_tables, resource, names.provider_table_variable, names.provider_table_output)

    def missing_tables(self) -> list[str]:
        """The stack outputs of the tables that are not set (a stack's outputs must name them all)."""
        missing = []
        for resource in RESOURCES:
            names = ResourceNames(resource)
            missing += [names.table_output] if not self.tables.get(resource) else []
            missing += [names.provider_table_output] if not self.provider_tables.get(resource) else []
        return missing


@cache
def get_settings() -> Settings:
    """The function's settings, from its environment, read once per process."""
    return Settings.read(os.environ)
