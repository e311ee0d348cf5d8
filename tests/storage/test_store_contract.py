"""The storage contract (logsvc/storage/base.py), run against every Store implementation."""

from __future__ import annotations

import threading

import pytest

from logsvc.storage.base import CommittedOffset, OffsetForTime, Store
from logsvc.topic_config import TopicConfig
from logsvc_client.batch import decode_records, read_header
from logsvc_client.errors import (
    BatchTooLarge,
    InvalidBatch,
    InvalidPartition,
    InvalidRequest,
    InvalidTopicName,
    OffsetOutOfRange,
    TopicAlreadyExists,
    TopicNotFound,
    Unavailable,
)
from tests.storage.batches import FakeClock, make_batch, make_batch_at, with_bad_crc, with_wrong_count

DAY_MS = 86_400_000


def offsets_of(store: Store, topic: str, partition: int, offset: int = 0) -> list[int]:
    got = store.read(topic, partition, offset, 1 << 30)
    return [r.offset for base, data in got.batches for r in decode_records(topic, partition, base, data)]


# -- appends and offsets ---------------------------------------------------------------------------


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


# -- reads ------------------------------------------------------------------------------------------


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


# -- topics -----------------------------------------------------------------------------------------


def test_topics_are_created_listed_and_refused_twice(store: Store) -> None:
    # Given two topics
    a = store.create_topic("b-topic", 2, TopicConfig(retention_ms=DAY_MS))
    store.create_topic("a-topic", 1, TopicConfig())
    # When one is created again, or with a bad name or count
    with pytest.raises(TopicAlreadyExists, match="'b-topic'"):
        store.create_topic("b-topic", 2, TopicConfig())
    with pytest.raises(InvalidTopicName):
        store.create_topic("bad/name", 1, TopicConfig())
    with pytest.raises(InvalidPartition):
        store.create_topic("zero", 0, TopicConfig())
    # Then the listing is sorted and the metadata kept
    assert [t.name for t in store.list_topics()] == ["a-topic", "b-topic"]
    assert store.topic("b-topic") == a and a.config.retention_ms == DAY_MS and a.partitions == 2


def test_deleting_a_topic_removes_its_data_and_committed_offsets(store: Store) -> None:
    # Given a topic with data and committed offsets next to another topic's
    store.create_topic("orders", 1, TopicConfig())
    store.create_topic("other", 1, TopicConfig())
    store.append("orders", [(0, make_batch(5))])
    store.commit_offsets("g", [("orders", 0, 3, ""), ("other", 0, 0, "")], 1)
    # When it is deleted, and one of the same name created
    store.delete_topic("orders")
    with pytest.raises(TopicNotFound):
        store.delete_topic("orders")
    with pytest.raises(TopicNotFound):
        store.read("orders", 0, 0, 100)
    store.create_topic("orders", 1, TopicConfig())
    # Then the new topic starts empty and only the other topic's offset remains
    assert store.partition_states("orders")[0].next_offset == 0
    assert [c.topic for c in store.committed_offsets("g")] == ["other"]


def test_partition_states_report_offsets_bytes_and_timestamps(store: Store) -> None:
    # Given two batches in partition 0 and none in partition 1
    store.create_topic("orders", 2, TopicConfig())
    a, b = make_batch(2, ts=100, step=5), make_batch(3, ts=200, step=10)
    store.append("orders", [(0, a), (0, b)])
    # When the states are asked for
    p0, p1 = store.partition_states("orders")
    # Then they describe what is stored
    assert (p0.log_start_offset, p0.next_offset, p0.bytes) == (0, 5, len(a) + len(b))
    assert (p0.first_timestamp_ms, p0.last_timestamp_ms, p0.record_count) == (100, 220, 5)
    assert (p1.next_offset, p1.bytes, p1.first_timestamp_ms, p1.last_timestamp_ms) == (0, 0, -1, -1)


# -- trim and retention -----------------------------------------------------------------------------


def test_trim_inside_a_batch_keeps_it_and_moves_the_log_start_exactly(store: Store) -> None:
    # Given batches 0-4 and 5-9
    store.create_topic("orders", 1, TopicConfig())
    store.append("orders", [(0, make_batch(5)), (0, make_batch(5))])
    # When trimming before offset 7
    start = store.trim("orders", 0, 7)
    # Then the first batch is gone, the second stays, and the log starts at exactly 7
    st = store.partition_states("orders")[0]
    assert start == 7 and st.log_start_offset == 7
    assert [b for b, _ in store.read("orders", 0, 7, 1 << 20).batches] == [5]
    assert st.bytes == len(make_batch(5))


def test_trim_never_moves_the_log_start_backwards_nor_past_the_end(store: Store) -> None:
    # Given a partition trimmed to 4 of 6
    store.create_topic("orders", 1, TopicConfig())
    store.append("orders", [(0, make_batch(6))])
    store.trim("orders", 0, 4)
    # When trimming to an earlier offset, then past the end
    # Then the start stays at 4, and past the end is out of range
    assert store.trim("orders", 0, 2) == 4
    with pytest.raises(OffsetOutOfRange, match="valid offsets are 4 to 6"):
        store.trim("orders", 0, 7)
    # And trimming to the end empties it while the offsets carry on
    assert store.trim("orders", 0, 6) == 6
    assert store.append("orders", [(0, make_batch())])[0].base_offset == 6
    assert store.partition_states("orders")[0].log_start_offset == 6


def test_retention_by_time_deletes_only_expired_head_batches(store: Store, clock: FakeClock) -> None:
    # Given batches from two days ago, one hour ago and now, kept for one day
    store.create_topic("orders", 1, TopicConfig(retention_ms=DAY_MS))
    now = clock()
    for ts in (now - 2 * DAY_MS, now - 3_600_000, now):
        store.append("orders", [(0, make_batch(2, ts=ts))])
    # When retention runs now
    deleted = store.apply_retention(now)
    # Then only the old batch is gone and the log starts after it
    assert deleted == 1
    assert store.partition_states("orders")[0].log_start_offset == 2
    assert offsets_of(store, "orders", 0, 2) == [2, 3, 4, 5]
    # And a day later everything is gone but the offsets are kept
    assert store.apply_retention(now + 2 * DAY_MS) == 2
    st = store.partition_states("orders")[0]
    assert (st.log_start_offset, st.next_offset, st.bytes, st.first_timestamp_ms) == (6, 6, 0, -1)


def test_retention_by_bytes_deletes_head_batches_until_under_the_limit(store: Store) -> None:
    # Given four batches of equal size, and a limit of about two and a half of them
    batch = make_batch(3, value_size=100)
    store.create_topic("orders", 1, TopicConfig(retention_bytes=len(batch) * 5 // 2))
    store.create_topic("unlimited", 1, TopicConfig())
    store.append("orders", [(0, batch)] * 4)
    store.append("unlimited", [(0, batch)] * 4)
    # When retention runs
    deleted = store.apply_retention(0)
    # Then the two oldest batches are deleted and the other topic is untouched
    assert deleted == 2
    st = store.partition_states("orders")[0]
    assert (st.log_start_offset, st.bytes) == (6, 2 * len(batch))
    assert store.partition_states("unlimited")[0].log_start_offset == 0


# -- time index -------------------------------------------------------------------------------------


def test_offset_for_time_finds_the_exact_first_record_at_or_after_the_time(store: Store) -> None:
    # Given records at 100,110,...,190 in two batches, the second one out of order inside
    store.create_topic("orders", 1, TopicConfig())
    store.append("orders", [(0, make_batch_at([100, 110, 120, 130, 140]))])
    store.append("orders", [(0, make_batch_at([150, 180, 160, 190, 170]))])
    # When asking for several times
    # Then the first record whose timestamp is >= the time is found, not just its batch
    assert store.offset_for_time("orders", 0, 0) == OffsetForTime(0, 100)
    assert store.offset_for_time("orders", 0, 125) == OffsetForTime(3, 130)
    assert store.offset_for_time("orders", 0, 141) == OffsetForTime(5, 150)
    assert store.offset_for_time("orders", 0, 175) == OffsetForTime(6, 180)
    assert store.offset_for_time("orders", 0, 185) == OffsetForTime(8, 190)
    assert store.offset_for_time("orders", 0, 191) == OffsetForTime(10, -1)


def test_offset_for_time_skips_records_before_the_log_start(store: Store) -> None:
    # Given one batch at 100..140, trimmed to offset 3
    store.create_topic("orders", 1, TopicConfig())
    store.append("orders", [(0, make_batch_at([100, 110, 120, 130, 140]))])
    store.trim("orders", 0, 3)
    # When asking for a time before the start
    # Then the answer is the first record still in the log
    assert store.offset_for_time("orders", 0, 0) == OffsetForTime(3, 130)


def test_offset_for_time_still_finds_batches_after_a_later_stamped_batch_expired(store: Store) -> None:
    # Given a far-future batch followed by ordinary ones, and a partition trimmed past the first
    store.create_topic("orders", 1, TopicConfig())
    store.append("orders", [(0, make_batch_at([9_000]))])
    store.append("orders", [(0, make_batch_at([100, 200]))])
    store.append("orders", [(0, make_batch_at([300, 400]))])
    store.trim("orders", 0, 1)
    # When asking for a time the remaining batches hold
    # Then they are found although the deleted batch had the greater timestamp
    assert store.offset_for_time("orders", 0, 150) == OffsetForTime(2, 200)
    assert store.offset_for_time("orders", 0, 350) == OffsetForTime(4, 400)
    # And a new batch with a smaller timestamp than the deleted one is indexed too
    store.append("orders", [(0, make_batch_at([500]))])
    assert store.offset_for_time("orders", 0, 450) == OffsetForTime(5, 500)


def test_log_append_time_topics_stamp_batches_with_the_broker_clock(store: Store, clock: FakeClock) -> None:
    # Given a LogAppendTime topic
    store.create_topic("events", 1, TopicConfig(timestamp_type="LogAppendTime"))
    # When a batch with producer timestamps is appended
    appended = store.append("events", [(0, make_batch(3, ts=5, step=1))])
    # Then the broker time is returned and written into the header of the stored batch
    assert appended[0].log_append_time_ms == clock()
    base, data = store.read("events", 0, 0, 1 << 20).batches[0]
    header = read_header(data)
    assert header.log_append_time and header.first_timestamp_ms == header.max_timestamp_ms == clock()
    assert [r.timestamp_ms for r in decode_records("events", 0, base, data)] == [clock()] * 3
    assert store.offset_for_time("events", 0, clock()) == OffsetForTime(0, clock())


def test_create_time_topics_report_no_log_append_time(store: Store) -> None:
    # Given a CreateTime topic
    store.create_topic("orders", 1, TopicConfig())
    # When a batch is appended
    # Then no append time is reported
    assert store.append("orders", [(0, make_batch())])[0].log_append_time_ms == -1


# -- consumer-group offsets -------------------------------------------------------------------------


def test_group_offsets_are_committed_fetched_listed_and_deleted(store: Store) -> None:
    # Given two topics
    store.create_topic("orders", 2, TopicConfig())
    store.create_topic("audit", 1, TopicConfig())
    # When two groups commit, one of them twice
    store.commit_offsets("billing", [("orders", 1, 7, "m1"), ("audit", 0, 2, "")], 100)
    store.commit_offsets("billing", [("orders", 1, 9, "m2"), ("orders", 0, 4, "")], 200)
    store.commit_offsets("alerts", [("orders", 0, 1, "")], 300)
    # Then the latest commit wins, sorted by topic and partition
    assert store.committed_offsets("billing") == [
        CommittedOffset("audit", 0, 2, "", 100),
        CommittedOffset("orders", 0, 4, "", 200),
        CommittedOffset("orders", 1, 9, "m2", 200),
    ]
    assert store.list_groups() == ["alerts", "billing"]
    # And deleting a group removes only its offsets
    assert store.delete_group_offsets("billing") == 3
    assert store.committed_offsets("billing") == [] and store.list_groups() == ["alerts"]
    assert store.delete_group_offsets("nobody") == 0


def test_committing_offsets_checks_every_target_and_writes_nothing_when_one_is_wrong(store: Store) -> None:
    # Given a topic
    store.create_topic("orders", 1, TopicConfig())
    # When a commit names an unknown topic, partition, a negative offset or an empty group
    with pytest.raises(TopicNotFound):
        store.commit_offsets("g", [("orders", 0, 1, ""), ("nope", 0, 1, "")], 1)
    with pytest.raises(InvalidPartition):
        store.commit_offsets("g", [("orders", 3, 1, "")], 1)
    with pytest.raises(InvalidRequest, match="-1"):
        store.commit_offsets("g", [("orders", 0, -1, "")], 1)
    with pytest.raises(InvalidRequest, match="group"):
        store.commit_offsets("", [("orders", 0, 1, "")], 1)
    # Then nothing was committed
    assert store.committed_offsets("g") == [] and store.list_groups() == []


def test_group_names_that_prefix_each_other_stay_apart(store: Store) -> None:
    # Given groups "a", "ab" and a non-ASCII name
    store.create_topic("orders", 1, TopicConfig())
    for i, group in enumerate(["ab", "a", "grüppe"]):
        store.commit_offsets(group, [("orders", 0, i, "")], 1)
    # When one is deleted
    store.delete_group_offsets("a")
    # Then the others are intact
    assert store.list_groups() == ["ab", "grüppe"]
    assert [c.offset for c in store.committed_offsets("ab")] == [0]


# -- lifecycle --------------------------------------------------------------------------------------


def test_calls_after_close_raise_unavailable(store: Store) -> None:
    # Given a closed store
    store.create_topic("orders", 1, TopicConfig())
    store.close()
    # When it is used
    # Then every call says the store is unavailable
    with pytest.raises(Unavailable):
        store.read("orders", 0, 0, 100)
    with pytest.raises(Unavailable):
        store.append("orders", [(0, make_batch())])
    with pytest.raises(Unavailable):
        store.list_topics()
