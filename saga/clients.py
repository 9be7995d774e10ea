"""AWS clients, created on first use (never at import time, so moto can start first) and reused."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import boto3

if TYPE_CHECKING:
    from botocore.client import BaseClient


@cache
def dynamodb_client() -> BaseClient:
    return boto3.client("dynamodb")
