"""The parcel's request sections: who receives it, the postage bought for it, the courier who takes it."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from saga.request_fields import IsoDate, Strict, Text


class Recipient(Strict):
    name: Text
    postcode: Text


class PostageRequest(Strict):
    service: Text
    grams: Annotated[int, Field(strict=True, gt=0, le=30_000)]


class CourierRequest(Strict):
    company: Text
    collect_on: IsoDate
