"""``logsvc mirror status``: how far a mirror has copied, per partition.

Read from the three places that know: logsvc (the next offset of each partition), the checkpoint
in the state directory, and Kafka (whatever it holds past the checkpoint was copied after it, the
same rule a restarting mirror follows, :meth:`~.offset_map.PartitionMap.resumed`). It works while
the mirror runs or after it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from logsvc_client import Admin
from logsvc_client.errors import LogsvcError

from . import checkpoint
from .target import KafkaTarget


@dataclass(frozen=True)
class PartitionStatus:
    topic: str
    partition: int
    #: logsvc's next offset (one past its last record)
    source_next: int
    #: the next source offset to copy: every record before it is on Kafka
    copied_to: int
    #: Kafka's next offset (its high watermark)
    kafka_next: int
    #: source records not on Kafka yet (trimmed ones not counted)
    behind: int


def status(source: str, target_address: str, state_dir: Path, topics: Sequence[str] = ()) -> list[PartitionStatus]:
    """One row per mirrored partition (of ``topics``, default all in the checkpoint), sorted.

    Raises:
      LogsvcError: no checkpoint in ``state_dir``, one for another Kafka cluster, a topic not
        mirrored there, or logsvc or Kafka unreachable.
    """
    saved = checkpoint.load(state_dir)
    if saved is None:
        raise LogsvcError(f"no mirror checkpoint in {state_dir}: has `logsvc mirror` run with this --state-dir?")
    target = KafkaTarget(target_address)
    checkpoint.check_target(saved, target.bootstrap_servers, state_dir)
    maps = {tp: pmap for tp, pmap in saved.partitions.items() if not topics or tp.topic in topics}
    missing = sorted(set(topics) - {tp.topic for tp in maps})
    if missing:
        raise LogsvcError(f"topic {', '.join(missing)} is not mirrored with the state in {state_dir}")
    ends = target.ends({tp: pmap.kafka_next for tp, pmap in maps.items()})
    with Admin(source) as admin:
        described = {topic: admin.describe_topic(topic) for topic in sorted({tp.topic for tp in maps})}
    rows = []
    for tp, pmap in sorted(maps.items()):
        info = described[tp.topic].partition(tp.partition)
        try:
            now = pmap.resumed(ends[tp].high_watermark)
        except ValueError as e:
            raise LogsvcError(f"Kafka topic {tp.topic!r} partition {tp.partition}: {e}") from None
        behind = max(0, info.next_offset - max(now.source_next, info.log_start_offset))
        rows.append(PartitionStatus(tp.topic, tp.partition, info.next_offset, now.source_next, now.kafka_next, behind))
    return rows
