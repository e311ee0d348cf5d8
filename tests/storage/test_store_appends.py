"""The storage contract (logsvc/storage/base.py), run against every Store implementation (the
``store`` fixture in conftest.py): appends, dense offsets, and the batches it refuses."""

from __future__ import annotations

import threading

import pytest

from logsvc.storage.base import Store
from logsvc.topic_config import TopicConfig
from logsvc_client.errors import BatchTooLarge, InvalidBatch, InvalidPartition, OutOfOrderSequence, TopicNotFound
from tests.storage.batches import make_batch, offsets_of, with_bad_crc, with_wrong_count


def test_offsets_are_dense_from_zero_across_appends(store: Store) -> None:
    # Given a new topic
    store.create_topic("orders", 1, TopicConfig())
    # When batches of 3, 1 and 5 records are appended one call at a time
    bases = [store.append("orders", [(0, make_batch(n))])[0].base_offset for n in (3, 1, 5)]
    # Then base offsets start at 0 and leave no gaps
    assert bases == [0, 3, 4]
    assert offsets_of(store, "orders", 0) == list(range(9))
    assert store.partition_states("orders")[0].next_offset == 9


def test_one_append_call_writes_all_its_partitions_atomically(store: Store) -> None:
    # Given a topic with three partitions
    store.create_topic("orders", 3, TopicConfig())
    # When one call appends to partitions 0, 2 and 0 again, and a later call carries one bad batch
    appended = store.append("orders", [(0, make_batch(2)), (2, make_batch(4)), (0, make_batch(1))])
    with pytest.raises(InvalidBatch):
        store.append("orders", [(1, make_batch(3)), (2, with_bad_crc(make_batch(2)))])
    # Then the first call's batches landed in request order, and nothing of the second one did
    assert [(a.partition, a.base_offset) for a in appended] == [(0, 0), (2, 0), (0, 2)]
    assert [st.next_offset for st in store.partition_states("orders")] == [3, 0, 4]


def test_an_append_with_no_batches_writes_nothing(store: Store) -> None:
    # Given a topic
    store.create_topic("orders", 1, TopicConfig())
    # When an empty append is made
    # Then it returns no positions
    assert store.append("orders", []) == []


@pytest.mark.parametrize(
    "bad",
    [with_bad_crc(make_batch(3)), with_wrong_count(make_batch(3)), b"\x01\x00\x00"],
    ids=["bad-crc", "wrong-count", "short"],
)
def test_an_invalid_batch_is_refused_and_nothing_is_written(store: Store, bad: bytes) -> None:
    # Given a topic with some data
    store.create_topic("orders", 1, TopicConfig())
    store.append("orders", [(0, make_batch(2))])
    # When an invalid batch is appended
    with pytest.raises(InvalidBatch, match="orders/0"):
        store.append("orders", [(0, bad)])
    # Then the partition is unchanged
    assert store.partition_states("orders")[0].next_offset == 2


def test_a_batch_over_max_batch_bytes_is_refused_naming_size_and_limit(store: Store) -> None:
    # Given a topic whose batches may be at most 2 KiB
    store.create_topic("orders", 1, TopicConfig(max_batch_bytes=2048))
    big = make_batch(10, value_size=300)
    # When a larger batch is appended
    with pytest.raises(BatchTooLarge) as err:
        store.append("orders", [(0, big)])
    # Then the error names both sizes and nothing is stored
    assert f"{len(big)} bytes" in str(err.value) and "2048" in str(err.value)
    assert store.partition_states("orders")[0].next_offset == 0


def test_unknown_topics_and_partitions_are_named_in_the_error(store: Store) -> None:
    # Given a topic with two partitions
    store.create_topic("orders", 2, TopicConfig())
    # When an unknown topic or partition is used
    # Then the errors name it (and the partition count)
    with pytest.raises(TopicNotFound, match="'nope'"):
        store.append("nope", [(0, make_batch())])
    with pytest.raises(TopicNotFound, match="'nope'"):
        store.read("nope", 0, 0, 100)
    with pytest.raises(InvalidPartition, match=r"partition 5 .* 2 partitions"):
        store.append("orders", [(5, make_batch())])
    with pytest.raises(InvalidPartition, match="partition 2"):
        store.read("orders", 2, 0, 100)


def test_an_append_started_without_waiting_calls_back_once_durable_and_answers_as_append_does(store: Store) -> None:
    # Given a topic with two partitions, and one append already made
    store.create_topic("orders", 2, TopicConfig())
    store.append("orders", [(0, make_batch(2))])
    done = threading.Event()
    # When an append is started without waiting, and another one whose topic does not exist
    pending = store.start_append("orders", [(0, make_batch(3)), (1, make_batch(1))], done.set)
    # Then on_done is called, and the result is where each batch went, as append would say
    assert done.wait(10)
    assert [(a.partition, a.base_offset, a.record_count) for a in pending.result()] == [(0, 2, 3), (1, 0, 1)]
    assert offsets_of(store, "orders", 0) == list(range(5))
    with pytest.raises(TopicNotFound):
        store.start_append("missing", [(0, make_batch(1))], lambda: None).result()


def test_a_started_append_that_fails_in_the_writer_raises_from_its_result(store: Store) -> None:
    # Given an idempotent producer that has written sequence 0..1 to a partition
    store.create_topic("orders", 1, TopicConfig())
    producer_id, epoch = store.init_producer()
    store.append("orders", [(0, make_batch(2))], producer_id=producer_id, producer_epoch=epoch, sequences=[0])
    done = threading.Event()
    # When it starts an append that skips sequences
    pending = store.start_append(
        "orders", [(0, make_batch(1))], done.set, producer_id=producer_id, producer_epoch=epoch, sequences=[5]
    )
    # Then on_done is still called, and the result raises the refusal; nothing was written
    assert done.wait(10)
    with pytest.raises(OutOfOrderSequence):
        pending.result()
    assert store.partition_states("orders")[0].next_offset == 2
