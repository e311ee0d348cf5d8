"""The offset map: progress, sync segments and translation, as pure arithmetic (no broker)."""

from __future__ import annotations

import pytest

from logsvc_connect.mirror.offset_map import PartitionMap, Sync


def copied(pmap: PartitionMap, source_offsets: range) -> PartitionMap:
    """``pmap`` after Kafka acknowledged these source records, one Kafka offset each, in order."""
    for offset in source_offsets:
        if not pmap.syncs or offset != pmap.source_next:
            pmap = pmap.start_segment(offset)
        pmap = pmap.acknowledged(offset, pmap.kafka_next)
    return pmap


def test_an_untrimmed_log_maps_each_offset_to_itself() -> None:
    # Given a partition copied from offset 0 to an empty Kafka partition
    pmap = copied(PartitionMap(0, 0), range(10))
    # Then every offset, the end included, maps to itself, and one sync describes it
    assert pmap.syncs == (Sync(0, 0),)
    assert [pmap.to_kafka(o) for o in range(11)] == list(range(11))
    assert [pmap.to_source(k) for k in range(11)] == list(range(11))
    # And an offset not copied yet has no Kafka offset
    assert pmap.to_kafka(11) is None
    assert pmap.to_source(11) is None


def test_a_log_trimmed_before_the_copy_maps_by_the_first_copied_record() -> None:
    # Given a source whose records before 100 were trimmed before the mirror started
    pmap = copied(PartitionMap(100, 0), range(100, 110))
    # Then source 100 is Kafka 0, and a consumer committed before the log start resumes at Kafka 0
    assert pmap.syncs == (Sync(100, 0),)
    assert pmap.to_kafka(100) == 0
    assert pmap.to_kafka(105) == 5
    assert pmap.to_kafka(40) == 0
    assert pmap.to_kafka(110) == 10
    assert pmap.to_source(3) == 103


def test_a_gap_while_the_mirror_was_down_starts_a_new_segment() -> None:
    # Given 0..9 copied, then 10..19 trimmed away, then 20..24 copied
    pmap = copied(PartitionMap(0, 0), range(10))
    pmap = copied(pmap, range(20, 25))
    # Then two syncs, and an offset inside the gap maps to the first record after it
    assert pmap.syncs == (Sync(0, 0), Sync(20, 10))
    assert pmap.to_kafka(9) == 9
    assert pmap.to_kafka(10) == 10
    assert pmap.to_kafka(15) == 10
    assert pmap.to_kafka(21) == 11
    assert pmap.to_kafka(25) == 15
    assert pmap.to_source(10) == 20
    assert (pmap.source_next, pmap.kafka_next) == (25, 15)


def test_a_segment_no_record_followed_is_replaced_by_the_next() -> None:
    # Given a gap announced (a checkpoint written) and then another before any record was copied
    pmap = PartitionMap(0, 0).start_segment(5).start_segment(8)
    # Then only the second sync remains
    assert pmap.syncs == (Sync(8, 0),)


def test_a_segment_cannot_go_back() -> None:
    pmap = copied(PartitionMap(0, 0), range(5))
    with pytest.raises(ValueError, match="goes back"):
        pmap.start_segment(3)


def test_a_restart_counts_what_kafka_holds_past_the_checkpoint_as_copied() -> None:
    # Given a checkpoint at source 20 / Kafka 10, after a gap at source 20
    checkpointed = copied(PartitionMap(0, 0), range(10)).start_segment(20)
    # When Kafka holds 7 records more than the checkpoint says
    resumed = checkpointed.resumed(17)
    # Then the copy resumes at source 27, and those 7 records map on from the gap's sync
    assert (resumed.source_next, resumed.kafka_next) == (27, 17)
    assert resumed.to_kafka(22) == 12
    # And Kafka holding fewer records than the checkpoint is refused
    with pytest.raises(ValueError, match="before the checkpoint"):
        checkpointed.resumed(9)


def test_an_unexpected_acknowledgement_still_leaves_a_true_map() -> None:
    # Given 0..4 copied to Kafka 0..4
    pmap = copied(PartitionMap(0, 0), range(5))
    # When Kafka acknowledges source 5 at offset 7 (someone else wrote 5 and 6)
    pmap = pmap.acknowledged(5, 7)
    # Then a new sync says so
    assert pmap.syncs == (Sync(0, 0), Sync(5, 7))
    assert pmap.to_kafka(5) == 7
    assert pmap.to_kafka(6) == 8


def test_the_json_form_round_trips_and_rejects_disorder() -> None:
    pmap = copied(copied(PartitionMap(3, 0), range(3, 9)), range(12, 14))
    assert PartitionMap.from_json(pmap.to_json()) == pmap
    with pytest.raises(ValueError):
        PartitionMap.from_json({"source_next": 5, "kafka_next": 5, "syncs": [[4, 2], [1, 0]]})


def test_a_run_of_acknowledgements_counts_as_each_one_did() -> None:
    # Given the same partition acknowledged record by record, and as two runs
    one_by_one = copied(PartitionMap(0, 0), range(10))
    start = PartitionMap(0, 0).start_segment(0)
    as_runs = start.acknowledged(0, 0, 6).acknowledged(6, 6, 4)
    # Then both maps are the same
    assert as_runs == one_by_one
    # And a run that does not follow on starts a sync at its first record
    assert as_runs.acknowledged(12, 10, 3).syncs == (Sync(0, 0), Sync(12, 10))
