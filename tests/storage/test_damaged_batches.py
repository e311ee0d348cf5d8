"""The store over stored batches that break the specification (data from an older version, or
damaged on disk): it opens, counts their offsets as consumers do, reads them out as they are,
finds times and trims past them. Readers report them (CorruptBatch); nothing wedges."""

from __future__ import annotations

from pathlib import Path

import pytest

from logsvc.storage import rules
from logsvc.storage.lmdb_store import LmdbStore
from logsvc.topic_config import TopicConfig
from logsvc_client.errors import CorruptBatch
from logsvc_wire.batch import decode_records, stored_span
from tests.fixtures.corrupt import TIMESTAMP_MS, good_batch, plant, raw_batch


def _store_with(path: Path, planted: list[bytes]) -> list[int]:
    store = LmdbStore.open(path)
    try:
        store.create_topic("t", 1, TopicConfig())
        store.append("t", [(0, good_batch([b"a", b"b"]))])
    finally:
        store.close()
    return plant(path, "t", 0, planted)


def test_a_batch_too_short_for_its_header_at_the_end_of_a_partition_does_not_stop_the_store_opening(
    tmp_path: Path,
) -> None:
    # Given a partition whose last stored batch is three bytes long (a torn or truncated value)
    path = tmp_path / "data"
    bases = _store_with(path, [good_batch([b"c"]), b"\x01\x00\x00"])
    assert bases == [2, 3]

    # When the store opens it again
    store = LmdbStore.open(path)
    try:
        # Then the short batch covers one offset, as a consumer counts it, and the log goes on after it
        (state,) = store.partition_states("t")
        assert state.next_offset == 4 == 3 + stored_span(b"\x01\x00\x00").record_count
        store.append("t", [(0, good_batch([b"d"]))])
        got = store.read("t", 0, 0, max_bytes=1 << 20)
        assert [base for base, _ in got.batches] == [0, 2, 3, 4]

        # And decoding it raises CorruptBatch naming its one offset, while the batches around it decode
        with pytest.raises(CorruptBatch, match=r"offsets 3-3 of t/0"):
            decode_records("t", 0, 3, got.batches[2][1])
        assert [r.value for r in decode_records("t", 0, 4, got.batches[3][1])] == [b"d"]

        # And a time lookup and a trim go past it
        assert store.offset_for_time("t", 0, TIMESTAMP_MS).offset == 0
        assert store.trim("t", 0, 4) == 4
    finally:
        store.close()


def test_a_time_lookup_lands_on_a_batch_that_does_not_decode_instead_of_failing() -> None:
    # Given a stored batch whose payload is not msgpack, its header timestamps intact
    bad = raw_batch(b"\x92\xc1\xc1", 2, timestamp_ms=TIMESTAMP_MS + 1000)

    # When a time lookup needs to look inside it
    found = rules.first_record_at(bad, 10, 10, TIMESTAMP_MS + 500)

    # Then it answers with the batch's first offset (the reader sent there reports the batch)
    assert found == (10, TIMESTAMP_MS + 1000)
    # And a time after the header's max timestamp passes it by
    assert rules.first_record_at(bad, 10, 10, TIMESTAMP_MS + 1001) is None
