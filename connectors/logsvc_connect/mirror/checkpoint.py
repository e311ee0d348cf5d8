"""The mirror's checkpoint: a JSON file in the state directory, replaced atomically.

It holds, per mirrored partition, the :class:`~.offset_map.PartitionMap` as of the last records
Kafka acknowledged (never more), and per translated group the Kafka offsets the mirror committed
(so a later translation can tell the mirror's own commits from a Kafka consumer's). It is written
as a temporary file, fsync'd, renamed over the old one and the directory fsync'd: after a crash
the file is either the old checkpoint or the new one, whole.

The file names the Kafka cluster it describes; a state directory is for one target only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logsvc_client.errors import InvalidConfig, LogsvcError
from logsvc_client.records import TopicPartition

from .offset_map import PartitionMap

FILE_NAME = "checkpoint.json"
VERSION = 1


@dataclass
class Checkpoint:
    """What a mirror resumes from (see the module docstring)."""

    #: the logsvc broker copied from (informational: a broker may move)
    source: str
    #: the Kafka cluster's bootstrap servers copied to
    target: str
    partitions: dict[TopicPartition, PartitionMap] = field(default_factory=dict)
    #: group -> partition -> the Kafka offset the mirror last committed for it; while a commit is
    #: on its way, the one before it and the new one (a crash may leave either on Kafka)
    groups: dict[str, dict[TopicPartition, tuple[int, ...]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "source": self.source,
            "target": self.target,
            "partitions": [
                {"topic": tp.topic, "partition": tp.partition, **pmap.to_json()}
                for tp, pmap in sorted(self.partitions.items())
            ],
            "groups": {
                group: [[tp.topic, tp.partition, list(written)] for tp, written in sorted(offsets.items())]
                for group, offsets in sorted(self.groups.items())
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        """Raises KeyError, TypeError or ValueError for data that is not a checkpoint."""
        if data.get("version") != VERSION:
            raise ValueError(f"version {data.get('version')!r} is not {VERSION}")
        partitions = {
            TopicPartition(str(p["topic"]), int(p["partition"])): PartitionMap.from_json(p) for p in data["partitions"]
        }
        groups = {
            str(group): {TopicPartition(str(t), int(p)): tuple(int(o) for o in written) for t, p, written in offsets}
            for group, offsets in data["groups"].items()
        }
        return cls(str(data["source"]), str(data["target"]), partitions, groups)


def path_in(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def load(state_dir: Path) -> Checkpoint | None:
    """The checkpoint in ``state_dir``; None when there is none yet.

    Raises:
      LogsvcError: the file cannot be read or is not a checkpoint (the message names it).
    """
    path = path_in(state_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise LogsvcError(f"cannot read the mirror checkpoint {path}: {e.strerror or e}") from None
    try:
        return Checkpoint.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise LogsvcError(f"{path} is not a mirror checkpoint ({type(e).__name__}: {e})") from None


def save(state_dir: Path, checkpoint: Checkpoint) -> None:
    """Replace the checkpoint in ``state_dir`` atomically and durably (see the module docstring).

    Raises:
      LogsvcError: the directory cannot be created or written (the message names it).
    """
    path = path_in(state_dir)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    data = json.dumps(checkpoint.to_json(), separators=(",", ":")).encode()
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(state_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        raise LogsvcError(f"cannot write the mirror checkpoint {path}: {e.strerror or e}") from None


def check_target(checkpoint: Checkpoint, target: str, state_dir: Path) -> None:
    """InvalidConfig when ``checkpoint`` describes another Kafka cluster than ``target``."""
    if checkpoint.target != target:
        raise InvalidConfig(
            f"the state directory {state_dir} holds the mirror to {checkpoint.target}, not {target}: "
            "use another --state-dir for another Kafka cluster",
            key="state_dir",
        )
