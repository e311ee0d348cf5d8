"""Idempotent appends: the storage contract (logsvc/storage/base.py) run against every Store
(the ``store`` fixture), then what only the LMDB store can show: one group commit, a reopen."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import lmdb
import pytest

from logsvc.storage.base import Appended, Store
from logsvc.storage.lmdb_store import LmdbStore
from logsvc.topic_config import TopicConfig
from logsvc_client.errors import InvalidRequest, OutOfOrderSequence, ProducerFenced, UnknownProducer
from tests.storage.batches import FakeClock, make_batch, offsets_of
from tests.storage.test_lmdb_store import Gate

DAY_MS = 86_400_000


def test_a_retried_batch_is_stored_once_and_answered_with_its_original_offsets(store: Store) -> None:
    # Given a producer id and a topic with two batches of it stored
    store.create_topic("orders", 2, TopicConfig())
    pid, epoch = store.init_producer()
    first = store.append("orders", [(0, make_batch(3)), (1, make_batch(2))], producer_id=pid, sequences=[0, 0])
    store.append("orders", [(0, make_batch(4))], producer_id=pid, producer_epoch=epoch, sequences=[3])
    # When the first request is sent again (its answer was lost)
    again = store.append("orders", [(0, make_batch(3)), (1, make_batch(2))], producer_id=pid, sequences=[0, 0])
    # Then it gets the same offsets, marked duplicate, and nothing more is stored
    assert first == [Appended(0, 0, -1, False, 3), Appended(1, 0, -1, False, 2)]
    assert again == [Appended(0, 0, -1, True), Appended(1, 0, -1, True)]
    assert offsets_of(store, "orders", 0) == list(range(7))
    assert offsets_of(store, "orders", 1) == [0, 1]


def test_a_duplicate_inside_one_append_call_is_stored_once(store: Store) -> None:
    # Given a producer id
    store.create_topic("orders", 1, TopicConfig())
    pid, _ = store.init_producer()
    # When one call carries a batch, the next one, and the first again
    batches = [(0, make_batch(2)), (0, make_batch(3)), (0, make_batch(2))]
    appended = store.append("orders", batches, producer_id=pid, sequences=[0, 2, 0])
    # Then the third is answered as the first
    assert [(a.base_offset, a.duplicate) for a in appended] == [(0, False), (2, False), (0, True)]
    assert store.partition_states("orders")[0].next_offset == 5


def test_a_gap_refuses_the_whole_call_and_writes_nothing(store: Store) -> None:
    # Given five records of a producer on partition 0
    store.create_topic("orders", 2, TopicConfig())
    pid, _ = store.init_producer()
    store.append("orders", [(0, make_batch(5))], producer_id=pid, sequences=[0])
    # When a call carries a good batch for partition 1 and one for partition 0 starting at 6
    with pytest.raises(OutOfOrderSequence, match=f"producer {pid} epoch 0 sent sequence 6 to orders/0; expected 5"):
        store.append("orders", [(1, make_batch(1)), (0, make_batch(1))], producer_id=pid, sequences=[0, 6])
    # Then nothing of it was written, and the producer's next sequence is still 5 on partition 0
    # and 0 on partition 1
    assert [st.next_offset for st in store.partition_states("orders")] == [5, 0]
    store.append("orders", [(1, make_batch(1)), (0, make_batch(1))], producer_id=pid, sequences=[0, 5])


def test_an_old_epoch_is_fenced_and_a_new_epoch_starts_over(store: Store) -> None:
    # Given a producer that moved to its next epoch on partition 0
    store.create_topic("orders", 1, TopicConfig())
    pid, epoch = store.init_producer()
    store.append("orders", [(0, make_batch(2))], producer_id=pid, producer_epoch=epoch, sequences=[0])
    pid2, epoch2 = store.init_producer(pid, epoch)
    assert (pid2, epoch2) == (pid, epoch + 1)
    store.append("orders", [(0, make_batch(2))], producer_id=pid, producer_epoch=epoch2, sequences=[0])
    # When a batch of the old epoch comes, Then it is fenced
    with pytest.raises(ProducerFenced):
        store.append("orders", [(0, make_batch(1))], producer_id=pid, producer_epoch=epoch, sequences=[2])
    assert store.partition_states("orders")[0].next_offset == 4


def test_producer_ids_are_never_handed_out_twice_and_unknown_ids_are_refused(store: Store) -> None:
    # Given two producer ids
    ids = {store.init_producer()[0], store.init_producer()[0]}
    assert len(ids) == 2 and 0 not in ids
    store.create_topic("orders", 1, TopicConfig())
    # Then an id never issued is unknown, to InitProducer and to an append
    with pytest.raises(UnknownProducer, match="never issued"):
        store.init_producer(max(ids) + 1, 0)
    with pytest.raises(UnknownProducer, match="never issued"):
        store.append("orders", [(0, make_batch(1))], producer_id=max(ids) + 1, sequences=[0])
    # And producer fields without a producer id are a bad request
    with pytest.raises(InvalidRequest, match="without a producer_id"):
        store.append("orders", [(0, make_batch(1))], sequences=[3])


def test_producer_state_expires_after_a_day_without_a_write(store: Store, clock: FakeClock) -> None:
    # Given a producer that wrote to a partition, then was silent for a day and a millisecond
    store.create_topic("orders", 1, TopicConfig())
    pid, _ = store.init_producer()
    store.append("orders", [(0, make_batch(2))], producer_id=pid, sequences=[0])
    clock.advance(DAY_MS + 1)
    # When it goes on where it was, or retries its last batch
    # Then the broker has forgotten it, before and after the writer removed the state
    with pytest.raises(UnknownProducer, match="orders/0"):
        store.append("orders", [(0, make_batch(1))], producer_id=pid, sequences=[2])
    store.apply_retention(clock())
    with pytest.raises(UnknownProducer):
        store.append("orders", [(0, make_batch(2))], producer_id=pid, sequences=[2])
    # And it can start the partition again from sequence 0
    assert store.append("orders", [(0, make_batch(1))], producer_id=pid, sequences=[0])[0].base_offset == 2


def test_a_producer_that_keeps_writing_does_not_expire(store: Store, clock: FakeClock) -> None:
    store.create_topic("orders", 1, TopicConfig())
    pid, _ = store.init_producer()
    for i in range(3):
        store.append("orders", [(0, make_batch(1))], producer_id=pid, sequences=[i])
        clock.advance(DAY_MS // 2)
        store.apply_retention(clock())
    assert store.append("orders", [(0, make_batch(1))], producer_id=pid, sequences=[2])[0].duplicate


def test_deleting_a_topic_deletes_its_producer_state(store: Store) -> None:
    # Given a producer with records in a topic that is then deleted and created again
    store.create_topic("orders", 1, TopicConfig())
    pid, _ = store.init_producer()
    store.append("orders", [(0, make_batch(3))], producer_id=pid, sequences=[0])
    store.delete_topic("orders")
    store.create_topic("orders", 1, TopicConfig())
    # Then the producer is unknown there (its sequences went with the topic)
    with pytest.raises(UnknownProducer):
        store.append("orders", [(0, make_batch(1))], producer_id=pid, sequences=[3])
    appended = store.append("orders", [(0, make_batch(1))], producer_id=pid, sequences=[0])
    assert appended == [Appended(0, 0, -1, False, 1)]


def test_a_duplicate_on_a_log_append_time_topic_gets_the_original_append_time(store: Store, clock: FakeClock) -> None:
    store.create_topic("orders", 1, TopicConfig.parse({"timestamp_type": "LogAppendTime"}))
    pid, _ = store.init_producer()
    first = store.append("orders", [(0, make_batch(2))], producer_id=pid, sequences=[0])
    clock.advance(5_000)
    again = store.append("orders", [(0, make_batch(2))], producer_id=pid, sequences=[0])
    assert again[0].log_append_time_ms == first[0].log_append_time_ms == clock() - 5_000


# -- the LMDB store ---------------------------------------------------------------------------


def test_deduplication_and_producer_ids_survive_reopening_the_store(tmp_path: Path) -> None:
    # Given a producer's batch stored, and the store closed
    path = tmp_path / "data"
    with LmdbStore.open(path, retention_check_interval_ms=0) as store:
        store.create_topic("orders", 1, TopicConfig())
        pid, _ = store.init_producer()
        store.append("orders", [(0, make_batch(3))], producer_id=pid, sequences=[0])
    # When it is opened again and the batch comes again (a retry across a broker restart)
    with LmdbStore.open(path, retention_check_interval_ms=0) as store:
        again = store.append("orders", [(0, make_batch(3))], producer_id=pid, sequences=[0])
        # Then it is a duplicate, the producer goes on at 3, and new ids are new
        assert again == [Appended(0, 0, -1, True)]
        assert store.append("orders", [(0, make_batch(1))], producer_id=pid, sequences=[3])[0].base_offset == 3
        assert store.init_producer()[0] > pid


def test_two_requests_in_one_group_commit_see_each_other(tmp_path: Path) -> None:
    # Given a writer held busy while two requests of one producer queue up: a batch, then its retry
    with LmdbStore.open(tmp_path / "data", retention_check_interval_ms=0) as store:
        store.create_topic("orders", 1, TopicConfig())
        pid, _ = store.init_producer()
        writer = store._writer
        assert writer is not None
        gate = Gate()
        threading.Thread(target=writer.submit, args=(gate,)).start()
        assert gate.entered.wait(5)
        outcomes: dict[int, list[Appended]] = {}

        def append(n: int) -> threading.Thread:
            def run() -> None:
                outcomes[n] = store.append("orders", [(0, make_batch(2))], producer_id=pid, sequences=[0])

            thread = threading.Thread(target=run)
            thread.start()
            deadline = time.monotonic() + 5
            while writer._queue.qsize() < n and time.monotonic() < deadline:
                time.sleep(0.001)
            return thread

        threads = [append(1), append(2)]
        commits = store.stats.commits
        # When the writer goes on
        gate.release.set()
        for thread in threads:
            thread.join(5)
        # Then both were in one commit: the first stored, the second answered as its duplicate
        assert store.stats.commits - commits == 2  # the gate's group, then the two together
        assert outcomes == {1: [Appended(0, 0, -1, False, 2)], 2: [Appended(0, 0, -1, True)]}
        assert store.partition_states("orders")[0].next_offset == 2


def test_a_store_written_before_producer_state_existed_opens_read_only(tmp_path: Path) -> None:
    # Given a data directory without the producers database (as an older version left it)
    path = tmp_path / "data"
    LmdbStore.open(path, retention_check_interval_ms=0).close()
    env = lmdb.open(str(path), max_dbs=8)
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(b"producers", txn=txn), delete=True)
    env.close()
    # When an inspect tool opens it read-only, Then it works
    with LmdbStore.open(path, readonly=True) as store:
        assert store.list_topics() == []
