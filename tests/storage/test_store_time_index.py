"""The storage contract (logsvc/storage/base.py), run against every Store implementation (the
``store`` fixture in conftest.py): finding offsets by time, and log-append-time topics."""

from __future__ import annotations

from logsvc.storage.base import OffsetForTime, Store
from logsvc.topic_config import TopicConfig
from logsvc_wire.batch import decode_records, read_header
from tests.storage.batches import FakeClock, make_batch, make_batch_at


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
