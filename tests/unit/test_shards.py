"""How a big embedded batch is split over processes (sagatools/runtest/shards.py): by the saga's id, evenly."""

from __future__ import annotations

from saga.models import parse_request
from sagatools.request_files import RequestFile
from sagatools.runtest.shards import SAGAS_PER_SHARD, partition, shard_count
from tests.helpers import saga_request


def sagas(*saga_ids: str) -> list[RequestFile]:
    return [RequestFile(f"{n}.json", parse_request(saga_request(saga_id))) for n, saga_id in enumerate(saga_ids)]


def test_every_request_of_one_saga_id_is_in_one_shard_in_the_batch_order():
    batch = sagas("a", "b", "a", "c", "d", "a", "b", "e")
    parts = partition(batch, 3)
    for saga_id in "abcde":
        holding = [part for part in parts if any(batch[i].request.saga_id == saga_id for i in part)]
        assert len(holding) == 1, saga_id
    assert all(part == sorted(part) for part in parts)
    assert sorted(i for part in parts for i in part) == list(range(len(batch)))


def test_the_shards_are_as_even_as_the_saga_ids_allow():
    assert sorted(len(part) for part in partition(sagas(*(f"t{n}" for n in range(25))), 2)) == [12, 13]
    # one id repeated 6 times fills one shard; the other ids balance the rest
    assert sorted(len(part) for part in partition(sagas(*["x"] * 6, "a", "b", "c", "d"), 2)) == [4, 6]
    assert partition(sagas("a", "b"), 4) == [[0], [1]]  # no empty shard


def test_one_process_per_core_with_enough_sagas_for_each():
    assert shard_count(2 * SAGAS_PER_SHARD - 1, cores=2) == 1
    assert shard_count(2 * SAGAS_PER_SHARD, cores=2) == 2
    assert shard_count(1000, cores=2) == 2
    assert shard_count(1000, cores=1) == 1
    assert shard_count(3 * SAGAS_PER_SHARD, cores=16) == 3
