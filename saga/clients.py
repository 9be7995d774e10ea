"""AWS clients, created on first use (never at import time, so moto can start first) and reused."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

if TYPE_CHECKING:
    from botocore.client import BaseClient


@cache
def dynamodb_client() -> BaseClient:
    return boto3.client("dynamodb")


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_attributes(item: dict[str, Any]) -> dict[str, Any]:
    """A plain dict as DynamoDB attribute values."""
    return {key: _serializer.serialize(value) for key, value in item.items() if value is not None}


def from_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in attributes.items()}
