"""The bench's pricing of a DynamoDB call (sagatools/bench_calls.py): request units as DynamoDB bills them on demand."""

from __future__ import annotations

from typing import Any

import pytest

from sagatools.bench_aws import PRICES, item_bytes
from sagatools.bench_calls import Pricing, Units, read_units, request_units, write_units

LOG, LEDGER = "log", "ledger"


def _pricing(stored: dict[tuple[str, str], dict[str, Any]] | None = None) -> Pricing:
    """The log table has an index on `attention`; `stored`: (table, key value) -> the item as stored."""
    items = stored or {}
    return Pricing({LOG: ["attention"]}, lambda table, key: items.get((table, key["id"]["S"])), item_bytes)


def _item(size_of_value: int, **extra: str) -> dict[str, Any]:
    return {"id": {"S": "saga"}, "body": {"S": "x" * size_of_value}, **{k: {"S": v} for k, v in extra.items()}}


def test_a_write_is_billed_per_started_kilobyte_and_twice_in_a_transaction():
    assert [write_units(size) for size in (1, 1024, 1025, 2049)] == [1, 1, 2, 3]
    assert write_units(1025, transactional=True) == 4


def test_a_read_is_billed_per_started_4_kilobytes_half_when_eventually_consistent():
    assert read_units(4096, consistent=True) == 1
    assert read_units(4097, consistent=True) == 2
    assert read_units(10, consistent=False) == 0.5
    assert read_units(10, consistent=True, transactional=True) == 2


def test_a_put_is_sized_by_its_item_and_written_again_to_the_index_it_lands_in():
    small, large = _item(10), _item(1800, attention="OPEN")  # 1,800 bytes and the overhead: 2 units
    assert request_units("PutItem", {"TableName": LOG, "Item": small}, {}, _pricing()) == Units(write=1)
    assert request_units("PutItem", {"TableName": LOG, "Item": large}, {}, _pricing()) == Units(write=2 + 2)


def test_an_update_is_sized_by_the_item_it_left_and_a_transaction_counts_each_of_its_items():
    pricing = _pricing({(LEDGER, "saga"): _item(1500)})
    update = {"TableName": LEDGER, "Key": {"id": {"S": "saga"}}}
    assert request_units("UpdateItem", update, None, pricing) == Units(write=2)  # None: it raised, and is billed
    transaction = {"TransactItems": [{"Update": update}, {"Put": {"TableName": LOG, "Item": _item(10)}}]}
    assert request_units("TransactWriteItems", transaction, {}, pricing) == Units(write=4 + 2)


def test_a_batch_read_counts_each_key_found_or_not():
    ask = {"Keys": [{"id": {"S": "saga"}}, {"id": {"S": "none"}}], "ConsistentRead": True}
    pricing = _pricing({(LEDGER, "saga"): _item(5000)})
    assert request_units("BatchGetItem", {"RequestItems": {LEDGER: ask}}, {}, pricing) == Units(read=2 + 1)


def test_a_call_the_bench_cannot_price_is_refused_not_guessed():
    with pytest.raises(ValueError, match="cannot price a DynamoDB ExecuteStatement"):
        request_units("ExecuteStatement", {}, {}, _pricing())


def test_units_cost_the_on_demand_prices():
    units = Units(read=4, write=2)
    expected = (
        4 * PRICES["DynamoDB read request unit (on-demand)"] + 2 * PRICES["DynamoDB write request unit (on-demand)"]
    )
    assert units.dollars == pytest.approx(expected)
    assert Units(write=1_000_000).dollars == pytest.approx(0.625)
    assert (units + Units(read=1)).read == 5
