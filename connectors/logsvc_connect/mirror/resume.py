"""Where a (re)starting mirror resumes: the checkpoint, corrected by what Kafka holds past it.

The mirror is the only writer of its Kafka partitions, and a checkpoint covers only records Kafka
acknowledged, so Kafka holds at least what the checkpoint says, and whatever it holds past the
checkpoint's Kafka offset was copied after it: in order, without a gap, from the checkpoint's
source offset on (:meth:`~.offset_map.PartitionMap.resumed`). The end of each partition is read
by fetching from there (:meth:`~.target.KafkaTarget.ends`), and the last record found there is
compared with the logsvc record it must be a copy of (timestamp, key, value), so a Kafka partition
someone else wrote to, or one that lost records, stops the mirror with a clear error instead of a
silent gap or duplicate.

A partition new to the checkpoint starts at logsvc's log start, and on Kafka after whatever the
partition already holds (records the mirror did not write): at a (re)start, and for partitions
added on logsvc while the mirror runs (:func:`added_partitions`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from logsvc_client import Admin, Consumer
from logsvc_client.errors import FailedPrecondition, LogsvcError
from logsvc_client.records import TopicPartition

from . import checkpoint, topics
from .offset_map import PartitionMap
from .target import KafkaTarget, RecordFields

log = logging.getLogger("logsvc_connect.mirror")


def recover(
    source_address: str, state_dir: Path, names: Sequence[str], source: Admin, target: KafkaTarget
) -> tuple[checkpoint.Checkpoint, dict[TopicPartition, PartitionMap]]:
    """The checkpoint to resume from and the maps of every partition of ``names``, moved past what
    Kafka holds, with Kafka's topics made ready (:func:`.topics.prepare`). The checkpoint keeps
    the partitions of topics not mirrored this time as they were (mirrored again later, they
    resume where they stopped).

    Raises:
      LogsvcError: the state is for another cluster, a Kafka partition holds fewer records than
        the checkpoint says, or its last record is not the copy of the logsvc record it must be.
    """
    saved = checkpoint.load(state_dir) or checkpoint.Checkpoint(source_address, target.bootstrap_servers)
    checkpoint.check_target(saved, target.bootstrap_servers, state_dir)
    saved.source = source_address
    described = topics.describe(source, names)
    topics.prepare(target, described)
    maps: dict[TopicPartition, PartitionMap] = {}
    for topic, description in described.items():
        for info in description.partitions:
            tp = TopicPartition(topic, info.partition)
            maps[tp] = saved.partitions.get(tp) or PartitionMap(info.log_start_offset, 0)
    ends = target.ends({tp: pmap.kafka_next if tp in saved.partitions else None for tp, pmap in maps.items()})
    resumed: dict[TopicPartition, PartitionMap] = {}
    to_check: dict[TopicPartition, tuple[int, RecordFields]] = {}
    source_ends = {TopicPartition(t, p.partition): p.next_offset for t, d in described.items() for p in d.partitions}
    for tp, pmap in maps.items():
        end = ends[tp]
        if tp not in saved.partitions:  # Kafka's records before ours are not the mirror's
            resumed[tp] = PartitionMap(pmap.source_next, end.high_watermark)
            continue
        try:
            resumed[tp] = pmap.resumed(end.high_watermark)
        except ValueError as e:
            raise LogsvcError(
                f"Kafka topic {tp.topic!r} partition {tp.partition} lost records the checkpoint in "
                f"{state_dir} says were copied ({e}): mirror it afresh with a new --state-dir",
                topic=tp.topic,
                partition=tp.partition,
            ) from None
        extra = end.high_watermark - pmap.kafka_next
        if extra and end.last is not None:
            last_copied = resumed[tp].source_next - 1
            if last_copied >= source_ends[tp]:
                raise _foreign(tp, f"holds {last_copied + 1 - source_ends[tp]} more records than logsvc has")
            to_check[tp] = (last_copied, end.last)
            log.info(
                "%s[%d]: Kafka holds %d records copied after the last checkpoint; not copied again",
                tp.topic,
                tp.partition,
                extra,
            )
    check_tails(source_address, to_check)
    saved.partitions.update(resumed)
    return saved, resumed


def added_partitions(
    target: KafkaTarget, log_starts: Mapping[TopicPartition, int]
) -> dict[TopicPartition, PartitionMap]:
    """The maps of partitions new to a running mirror (``log_starts``: each one's log start on
    logsvc): copied from there, and on Kafka after whatever the partition already holds."""
    ends = target.ends(dict.fromkeys(log_starts))
    return {tp: PartitionMap(start, ends[tp].high_watermark) for tp, start in log_starts.items()}


def _foreign(tp: TopicPartition, what: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"Kafka topic {tp.topic!r} partition {tp.partition} {what}: someone else writes to it, or it lost "
        "records; mirror it afresh (a new --state-dir and a new Kafka topic)",
        topic=tp.topic,
        partition=tp.partition,
    )


def check_tails(source_address: str, tails: Mapping[TopicPartition, tuple[int, RecordFields]]) -> None:
    """Each Kafka partition's last record (``(source offset, fields)``) against the logsvc record
    at that offset; FailedPrecondition when one differs. A record logsvc no longer has (trimmed
    since) cannot be compared and is taken as it is."""
    if not tails:
        return
    waiting = dict(tails)
    with Consumer(source_address, max_poll_records=500, fetch_max_bytes=1 << 20) as consumer:
        consumer.assign(list(waiting))
        for tp, (offset, _) in waiting.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + 30
        while waiting and time.monotonic() < deadline:
            for r in consumer.poll(timeout_ms=500):
                tp = TopicPartition(r.topic, r.partition)
                if tp not in waiting or r.offset < waiting[tp][0]:
                    continue
                offset, fields = waiting.pop(tp)
                consumer.assign(list(waiting))
                timestamp, key, value = fields
                if r.offset == offset and ((key, value) != (r.key, r.value) or timestamp not in (None, r.timestamp_ms)):
                    raise _foreign(tp, f"ends with a record that is not the copy of logsvc's record at offset {offset}")
                if not waiting:
                    break
    for tp in waiting:
        log.info("%s[%d]: could not read logsvc's record to compare Kafka's last one with", tp.topic, tp.partition)
