"""Cheap, thread-safe rollback for moto's TransactWriteItems (used by the embedded stack only).

moto snapshots every table a transaction names with `copy.deepcopy` and, when the transaction
is cancelled, puts the snapshots back. That costs time and memory proportional to the whole table on
every transaction (a cancelled or not), and a write from another thread between snapshot and restore
is lost. Here the snapshot is the table itself (no copy), and the transaction keeps its own undo
record of just the items it names.

Every write to the backend goes through one lock: put_item, update_item, delete_item (BatchWriteItem
writes through these), transact_write_items, and execute_statement (PartiQL; its transactions and
batches run through it). The change checks, when applied, that moto still has each of them; the results
depend on it (a lost write), so a moto it does not fit stops the run (changes.py).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sagatools.emulation.changes import Change, Replacement, expect, parameters

if TYPE_CHECKING:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table

WRITE_LOCKED = ("put_item", "update_item", "delete_item", "transact_write_items", "execute_statement")


class _CopyWithoutTables:
    """Stands in for the `copy` module inside moto.dynamodb.models: a Table 'copies' to itself."""

    def __init__(self, table_class: type) -> None:
        self._table_class = table_class

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, self._table_class) else copy.deepcopy(value, memo)


def _key(table: Table, operation: dict[str, Any]) -> tuple[DynamoType, DynamoType | None] | None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    attributes = operation.get("Item") or operation.get("Key") or {}
    if table.hash_key_attr not in attributes:
        return None
    range_attribute = table.range_key_attr
    if range_attribute is not None and range_attribute not in attributes:
        return None
    range_key = DynamoType(attributes[range_attribute]) if range_attribute else None
    return DynamoType(attributes[table.hash_key_attr]), range_key


def _restore(table: Table, hash_key: DynamoType, range_key: DynamoType | None, saved: Item | None) -> None:
    if saved is None:
        table.delete_item(hash_key, range_key)
    elif range_key is not None:
        table.items[hash_key][range_key] = saved
    else:
        table.items[hash_key] = saved  # type: ignore[assignment]


def _with_item_undo(transact: Callable[..., Any]) -> Callable[..., Any]:
    def transact_write_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> Any:
        undo = []
        for entry in transact_items:
            operation = next(iter(entry.values()))
            table = backend.tables.get(operation.get("TableName"))
            key = _key(table, operation) if table is not None else None
            if table is not None and key is not None:
                undo.append((table, *key, copy.deepcopy(table.get_item(*key))))
        try:
            return transact(backend, transact_items)
        except Exception:
            for table, hash_key, range_key, saved in reversed(undo):
                _restore(table, hash_key, range_key, saved)
            raise

    return transact_write_items


def _locked(write: Callable[..., Any], lock: threading.RLock) -> Callable[..., Any]:
    def locked_write(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return write(*args, **kwargs)

    return locked_write


def _make() -> list[Replacement]:
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    expect(dynamodb_models.copy is copy, "moto.dynamodb.models imports the copy module")  # type: ignore[attr-defined]
    expect(parameters(DynamoDBBackend.transact_write_items)[:2] == ["self", "transact_items"], "transact_write_items")
    lock = threading.RLock()
    replacements: list[Replacement] = [(dynamodb_models, "copy", _CopyWithoutTables(Table))]
    for name in WRITE_LOCKED:
        write = getattr(DynamoDBBackend, name)
        if name == "transact_write_items":
            write = _with_item_undo(write)
        replacements.append((DynamoDBBackend, name, _locked(write, lock)))
    return replacements


# The results depend on it: without the lock, a write between a cancelled transaction's snapshot and its
# restore is lost.
TRANSACTIONS = Change("DynamoDB transactions with an item-level undo, under one write lock", True, _make)
