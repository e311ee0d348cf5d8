"""The storage contract (logsvc/storage/base.py), run against every Store implementation (the
``store`` fixture in conftest.py): reads, their limits, and waiting for data."""

from __future__ import annotations

import threading

import pytest

from logsvc.storage.base import Store
from logsvc.topic_config import TopicConfig
from logsvc_client.errors import OffsetOutOfRange
from tests.storage.batches import make_batch


def test_reading_from_inside_a_batch_returns_the_batch_holding_that_offset(store: Store) -> None:
    # Given batches at offsets 0-4, 5-9 and 10-14
    store.create_topic("orders", 1, TopicConfig())
    for _ in range(3):
        store.append("orders", [(0, make_batch(5))])
    # When reading from offset 7
    got = store.read("orders", 0, 7, 1 << 20)
    # Then the batch at 5 comes first, then the rest, and the bounds are reported
    assert [base for base, _ in got.batches] == [5, 10]
    assert (got.log_start_offset, got.next_offset) == (0, 15)


def test_reads_return_the_bytes_exactly_as_appended(store: Store) -> None:
    # Given a stored batch
    store.create_topic("orders", 1, TopicConfig())
    batch = make_batch(4, tag="exact")
    store.append("orders", [(0, batch)])
    # When it is read back
    # Then the bytes are identical
    assert store.read("orders", 0, 0, 1 << 20).batches == [(0, batch)]


def test_max_bytes_limits_a_read_but_returns_at_least_one_batch(store: Store) -> None:
    # Given three batches of about 1 KiB each
    store.create_topic("orders", 1, TopicConfig())
    for _ in range(3):
        store.append("orders", [(0, make_batch(4, value_size=250))])
    size = len(store.read("orders", 0, 0, 1).batches[0][1])
    # When reading with a tiny limit, then with room for two batches
    tiny = store.read("orders", 0, 0, 1)
    two = store.read("orders", 0, 0, 2 * size + 10)
    # Then the tiny read still returns one whole batch, the other two
    assert [base for base, _ in tiny.batches] == [0]
    assert [base for base, _ in two.batches] == [0, 4]


def test_max_records_stops_a_read_at_the_batch_that_reaches_it(store: Store) -> None:
    # Given three batches of 4 records
    store.create_topic("orders", 1, TopicConfig())
    for _ in range(3):
        store.append("orders", [(0, make_batch(4))])

    # When reading 8, 5 and 1 records, and 4 from inside the first batch
    def bases(offset: int, max_records: int) -> list[int]:
        return [b for b, _ in store.read("orders", 0, offset, 1 << 20, max_records=max_records).batches]

    # Then whole batches come back until the count is reached (records before the offset not counted)
    assert bases(0, 8) == [0, 4]
    assert bases(0, 5) == [0, 4]
    assert bases(0, 1) == [0]
    assert bases(2, 4) == [0, 4]


def test_reading_at_the_next_offset_returns_no_batches(store: Store) -> None:
    # Given a partition with 3 records
    store.create_topic("orders", 1, TopicConfig())
    store.append("orders", [(0, make_batch(3))])
    # When reading at offset 3
    got = store.read("orders", 0, 3, 1 << 20)
    # Then there is nothing, and the bounds say why
    assert got.batches == [] and got.next_offset == 3


def test_an_offset_out_of_range_error_names_the_valid_range(store: Store) -> None:
    # Given offsets 3 to 10 (after a trim)
    store.create_topic("orders", 1, TopicConfig())
    store.append("orders", [(0, make_batch(3)), (0, make_batch(7))])
    store.trim("orders", 0, 3)
    # When reading below the start or past the end
    # Then the message names the range
    for offset in (2, 11):
        with pytest.raises(OffsetOutOfRange) as err:
            store.read("orders", 0, offset, 100)
        assert str(err.value) == f"offset {offset} is out of range for orders/0: valid offsets are 3 to 10"
        assert err.value.details["log_start_offset"] == 3 and err.value.details["next_offset"] == 10


def test_wait_for_data_wakes_when_another_thread_appends(store: Store) -> None:
    # Given an empty partition and a reader waiting at offset 0
    store.create_topic("orders", 1, TopicConfig())
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(store.wait_for_data([("orders", 0, 0)], 10)))
    waiter.start()
    # When another thread appends
    store.append("orders", [(0, make_batch())])
    waiter.join(5)
    # Then the waiter returns True well before its timeout
    assert result == [True]


def test_wait_for_data_times_out_when_nothing_arrives(store: Store) -> None:
    # Given a partition read up to its end
    store.create_topic("orders", 1, TopicConfig())
    store.append("orders", [(0, make_batch())])
    # When waiting at the next offset for a short time
    # Then it returns False; at an offset with data it returns True at once
    assert store.wait_for_data([("orders", 0, 1)], 0.05) is False
    assert store.wait_for_data([("orders", 0, 1), ("orders", 0, 0)], 5) is True


def test_appends_and_reads_say_how_many_records_they_carry(store: Store) -> None:
    # Given batches of 3, 1 and 5 records (the second one sent twice by an idempotent producer)
    store.create_topic("orders", 1, TopicConfig())
    pid, epoch = store.init_producer()
    first = store.append("orders", [(0, make_batch(3))], producer_id=pid, producer_epoch=epoch, sequences=[0])
    second = store.append("orders", [(0, make_batch(1))], producer_id=pid, producer_epoch=epoch, sequences=[3])
    again = store.append("orders", [(0, make_batch(1))], producer_id=pid, producer_epoch=epoch, sequences=[3])
    store.append("orders", [(0, make_batch(5))])
    # Then each append counts the records it wrote (a duplicate none)
    assert [a.record_count for a in first + second + again] == [3, 1, 0]
    assert again[0].duplicate
    # And a read counts the records from the offset asked on, whole batches returned
    got = store.read("orders", 0, 1, max_bytes=1 << 20)
    assert [base for base, _ in got.batches] == [0, 3, 4]
    assert got.record_count == 2 + 1 + 5
