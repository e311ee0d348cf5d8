"""The mirror's checkpoint file: round trip, atomic replacement, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from logsvc_client.errors import InvalidConfig, LogsvcError
from logsvc_client.records import TopicPartition
from logsvc_connect.mirror import checkpoint
from logsvc_connect.mirror.offset_map import PartitionMap, Sync


def sample() -> checkpoint.Checkpoint:
    return checkpoint.Checkpoint(
        "127.0.0.1:50051",
        "k1:9092,k2:9092",
        {
            TopicPartition("orders", 0): PartitionMap(12, 10, (Sync(2, 0),)),
            TopicPartition("orders", 1): PartitionMap(0, 0),
        },
        {"audit": {TopicPartition("orders", 0): (7, 9)}},
    )


def test_a_saved_checkpoint_loads_as_it_was(tmp_path: Path) -> None:
    # Given a checkpoint saved into a state directory that does not exist yet
    state = tmp_path / "state"
    checkpoint.save(state, sample())
    # Then it loads equal, and no temporary file is left behind
    assert checkpoint.load(state) == sample()
    assert os.listdir(state) == ["checkpoint.json"]


def test_saving_again_replaces_the_file_whole(tmp_path: Path) -> None:
    # Given a saved checkpoint
    checkpoint.save(tmp_path, sample())
    # When a newer one is saved
    newer = sample()
    newer.partitions[TopicPartition("orders", 1)] = PartitionMap(5, 5, (Sync(0, 0),))
    checkpoint.save(tmp_path, newer)
    # Then the newer one is what loads
    assert checkpoint.load(tmp_path) == newer


def test_no_checkpoint_yet_is_none(tmp_path: Path) -> None:
    assert checkpoint.load(tmp_path / "nothing") is None


def test_a_damaged_checkpoint_is_an_error_naming_the_file(tmp_path: Path) -> None:
    # Given a checkpoint file that is not one
    (tmp_path / "checkpoint.json").write_text('{"version": 1, "partitions": [')
    # Then loading it names the file
    with pytest.raises(LogsvcError, match=r"checkpoint\.json is not a mirror checkpoint"):
        checkpoint.load(tmp_path)


def test_a_checkpoint_of_another_kafka_cluster_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="holds the mirror to k1:9092,k2:9092, not other:9092"):
        checkpoint.check_target(sample(), "other:9092", tmp_path)


def test_an_unwritable_state_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    # Given a state directory path that is a file
    blocker = tmp_path / "file"
    blocker.write_text("")
    # Then saving says which checkpoint could not be written
    with pytest.raises(LogsvcError, match="cannot write the mirror checkpoint"):
        checkpoint.save(blocker, sample())
