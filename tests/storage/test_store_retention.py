"""The storage contract (logsvc/storage/base.py), run against every Store implementation (the
``store`` fixture in conftest.py): trimming and retention by time and by size."""

from __future__ import annotations

import pytest

from logsvc.storage.base import Store
from logsvc.topic_config import TopicConfig
from logsvc_client.errors import OffsetOutOfRange
from tests.storage.batches import FakeClock, make_batch, offsets_of

DAY_MS = 86_400_000


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
