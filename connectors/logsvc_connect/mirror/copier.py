"""The copy itself: logsvc partitions read in order, produced to the same Kafka partitions.

:class:`Mirror` reads the source with the logsvc :class:`~logsvc_client.Consumer` in assign mode
and writes with ``confluent_kafka.Producer`` (idempotent, no delivery timeout, an explicit partition per
record, key, value, headers and timestamp kept). Each delivery report gives the Kafka offset of a
record, and moves that partition's :class:`~.offset_map.PartitionMap`; every
``checkpoint_interval_ms`` the maps are written to the checkpoint, so a checkpoint never claims a
record Kafka has not acknowledged.

Started before logsvc or Kafka can be reached, it waits for them (a WARNING per try); once
running, it waits out a logsvc restart the same way. Restart after any crash (kill -9 included)
loses and repeats nothing (:mod:`.resume`): whatever Kafka holds past a partition's checkpointed
Kafka offset was copied after that checkpoint, in order, from the checkpointed source offset on
(a gap in the source always writes a checkpoint before its first record is sent), so the copy
resumes that many records further on.

It tails the source until :meth:`Mirror.stop` (SIGTERM/SIGINT in the CLI): then the records in
flight are delivered, the checkpoint written and the groups translated once more. Partitions added
to a mirrored topic on logsvc meanwhile are found within ``refresh_interval_ms`` (or when the copy
catches up): the Kafka topic is grown to match (:func:`.topics.prepare`), the checkpoint gets them,
and they are copied from their log start, with no restart.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from logsvc_client import Admin, Consumer
from logsvc_client.errors import LogsvcError, Timeout, Unavailable
from logsvc_client.kafka.errors import translate
from logsvc_client.records import Record, TopicPartition
from logsvc_client.transport.retry import Backoff

from . import checkpoint, resume, topics
from .groups import GroupTranslator
from .offset_map import PartitionMap
from .options import MirrorOptions
from .target import KafkaTarget

log = logging.getLogger("logsvc_connect.mirror")
_START_BACKOFF = Backoff(base_ms=200, max_ms=5_000)  # between tries to reach both ends at start
T = TypeVar("T")

Key = tuple[str, int]  # (topic, partition); equal to, and hashed like, a TopicPartition


class Mirror:
    """Copies ``options.topics`` from logsvc to Kafka until stopped (see the module docstring)."""

    def __init__(self, options: MirrorOptions) -> None:
        options.check()
        self.options = options
        self._stop = threading.Event()
        self._maps: dict[Key, PartitionMap] = {}  # acknowledged by Kafka (but for self._runs)
        # the latest run of consecutive acknowledgements per partition, not yet in self._maps:
        # [first source offset, first Kafka offset, count] (a PartitionMap per record costs)
        self._runs: dict[Key, list[int]] = {}
        self._pending: dict[Key, collections.deque[int]] = {}  # source offsets in flight, in order
        self._next: dict[Key, int | None] = {}  # the source offset expected next (None: a first record)
        self._failure: LogsvcError | None = None
        self._checkpoint: checkpoint.Checkpoint | None = None
        self._unreachable = False  # logsvc did not answer the last read
        self._refresh_due = False  # logsvc has a partition the mirror does not copy yet
        self.copied = 0

    def stop(self) -> None:
        """Finish the records in flight, checkpoint and return from :meth:`run` (signal-safe)."""
        self._stop.set()

    # -- start ----------------------------------------------------------------------------------

    def _recover(self, source: Admin, target: KafkaTarget) -> checkpoint.Checkpoint:
        saved, maps = resume.recover(self.options.source, self.options.state_dir, self.options.topics, source, target)
        for tp, pmap in maps.items():
            self._maps[tp] = pmap
            self._pending[tp] = collections.deque()
            self._next[tp] = pmap.source_next if pmap.syncs else None
        return saved

    def _recover_when_reachable(self, source: Admin, target: KafkaTarget) -> checkpoint.Checkpoint | None:
        """:meth:`_recover`, waiting while logsvc or Kafka cannot be reached (a mirror started
        before them waits for them, as a connector does); None when stopped first."""
        attempt = 0
        while not self._stop.is_set():
            try:
                return self._recover(source, target)
            except Unavailable as e:
                delay = _START_BACKOFF.delay_s(attempt)
                attempt += 1
                log.warning("cannot reach logsvc or Kafka yet (%s); retrying in %.1f s", e.message, delay)
                self._stop.wait(delay)
        return None

    def _acknowledged(self) -> dict[Key, PartitionMap]:
        """Every partition's map as of the last delivery report."""
        for tp, (source_offset, kafka_offset, count) in self._runs.items():
            self._maps[tp] = self._maps[tp].acknowledged(source_offset, kafka_offset, count)
        self._runs.clear()
        return self._maps

    def _save(self) -> None:
        assert self._checkpoint is not None
        self._checkpoint.partitions.update((TopicPartition(*tp), pmap) for tp, pmap in self._acknowledged().items())
        checkpoint.save(self.options.state_dir, self._checkpoint)

    # -- the copy -------------------------------------------------------------------------------

    def _on_delivery(self, error: KafkaError | None, msg: Message) -> None:
        tp: Key = (msg.topic(), msg.partition())  # type: ignore[assignment]  # set on a delivered message
        source_offset = self._pending[tp].popleft()
        if error is not None:
            if self._failure is None:
                what = f"copy {tp[0]}[{tp[1]}] offset {source_offset} to Kafka"
                self._failure = translate(error, what, topic=tp[0], partition=tp[1])
            return
        kafka_offset: int = msg.offset()  # type: ignore[assignment]  # set on a delivered message
        run = self._runs.get(tp)
        if run is not None and source_offset == run[0] + run[2] and kafka_offset == run[1] + run[2]:
            run[2] += 1
            return
        if run is not None:
            self._maps[tp] = self._maps[tp].acknowledged(*run)
        self._runs[tp] = [source_offset, kafka_offset, 1]

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _flush(self, producer: Producer) -> None:
        """Wait until Kafka acknowledged every record sent (Timeout when it does not)."""
        left = producer.flush(self.options.flush_timeout_ms / 1000)
        self._raise_failure()
        if left:
            raise Timeout(f"Kafka did not acknowledge {left} records within {self.options.flush_timeout_ms} ms")

    def _drain(self, producer: Producer, tp: Key) -> None:
        """Wait until Kafka acknowledged every record of ``tp`` sent (Timeout when it does not)."""
        deadline = time.monotonic() + self.options.flush_timeout_ms / 1000
        while self._pending[tp]:
            producer.poll(0.01)
            self._raise_failure()
            if time.monotonic() > deadline:
                raise Timeout(
                    f"Kafka did not acknowledge {len(self._pending[tp])} records of {tp[0]}[{tp[1]}] "
                    f"within {self.options.flush_timeout_ms} ms"
                )

    def _gap(self, producer: Producer, tp: Key, offset: int) -> None:
        """The next source record of ``tp`` is ``offset``, not the one expected: once the
        partition's records before it are acknowledged, the checkpoint gets a sync for it before
        it is sent."""
        expected = self._next[tp]
        if expected is not None and offset < expected:
            raise LogsvcError(
                f"logsvc topic {tp[0]!r} partition {tp[1]} went back from offset {expected} to {offset}: "
                "it is not the log this mirror copied",
                topic=tp[0],
                partition=tp[1],
            )
        self._drain(producer, tp)
        if expected is not None:
            log.info("%s[%d]: source offsets %d to %d are gone (trimmed); skipped", tp[0], tp[1], expected, offset - 1)
        self._maps[tp] = self._acknowledged()[tp].start_segment(offset)
        self._save()

    def _copy(self, producer: Producer, records: list[Record]) -> None:
        produce = producer.produce
        expected = self._next
        pending = self._pending
        for r in records:
            tp = (r.topic, r.partition)
            if r.offset != expected[tp]:
                self._gap(producer, tp, r.offset)
            headers: Any = list(r.headers) if r.headers else None
            while True:
                try:
                    produce(r.topic, r.value, r.key, partition=r.partition, timestamp=r.timestamp_ms, headers=headers)
                    break
                except BufferError:  # librdkafka's queue is full: serve delivery reports, retry
                    producer.poll(0.05)
                    self._raise_failure()
                except KafkaException as e:  # refused before sending (too large, ...)
                    what = f"copy {r.topic}[{r.partition}] offset {r.offset} to Kafka"
                    raise translate(e, what, topic=r.topic, partition=r.partition) from None
            pending[tp].append(r.offset)
            expected[tp] = r.offset + 1
        self.copied += len(records)

    def run(self) -> None:
        """Copy until stopped (see the module docstring).

        Raises:
          LogsvcError: a topic is missing on logsvc, a Kafka topic has fewer partitions, Kafka
            refused records, the checkpoint cannot be written... (the message says which).
        """
        opts = self.options
        target = KafkaTarget(opts.target)
        with Admin(opts.source) as source:
            saved = self._recover_when_reachable(source, target)
            if saved is None:  # stopped while waiting
                return
            self._checkpoint = saved
            self._save()
            producer = Producer(
                target.client_config(
                    **{
                        "enable.idempotence": True,
                        # never give up on a record (a timed-out one would leave a gap behind the
                        # records after it); every other delivery error stops the mirror
                        "message.timeout.ms": 0,
                        "linger.ms": 20,
                        "batch.num.messages": 10_000,
                        "queue.buffering.max.messages": 500_000,
                        # a logsvc record may be as large as its topic's max_batch_bytes (8 MiB by
                        # default), which the created Kafka topic allows (max.message.bytes)
                        "message.max.bytes": 10 * 1024 * 1024,
                        "on_delivery": self._on_delivery,
                    }
                )
            )
            translator = None
            if opts.groups:
                translator = GroupTranslator(opts.groups, source, target, self._checkpoint.groups, self._save)
            # (a shorter request timeout than a consumer's default: a logsvc restart is reported
            # within seconds, and the copy waits it out)
            consumer = Consumer(
                opts.source, fetch_max_wait_ms=200, auto_offset_reset="earliest", request_timeout_ms=10_000
            )
            try:
                consumer.assign([TopicPartition(*tp) for tp in sorted(self._maps)])
                for tp, pmap in self._maps.items():
                    consumer.seek(TopicPartition(*tp), pmap.source_next)
                log.info(
                    "mirroring %s from %s to %s (%d partitions)",
                    ", ".join(opts.topics),
                    opts.source,
                    opts.target,
                    len(self._maps),
                )
                self._loop(source, target, consumer, producer, translator)
                self._flush(producer)
                self._save()
                if translator is not None:
                    translator.run_once(self._acknowledged())
                log.info("stopped after copying %d records; checkpoint written", self.copied)
            finally:
                consumer.close()

    def _from_source(self, producer: Producer, call: Callable[[], T]) -> T | None:
        """``call()`` (a read of logsvc); None, after a second of waiting, while logsvc is
        unavailable (one WARNING when it goes, one INFO when it is back)."""
        try:
            result = call()
        except Unavailable as e:
            if not self._unreachable:
                self._unreachable = True
                log.warning("logsvc at %s is unavailable (%s); retrying", self.options.source, e.message)
            self._throttle(producer, time.monotonic() + 1)
            return None
        if self._unreachable:
            self._unreachable = False
            log.info("logsvc at %s is back", self.options.source)
        return result

    def _caught_up(self, source: Admin, producer: Producer) -> bool:
        """True when every record logsvc holds now is copied and acknowledged."""
        for topic in self.options.topics:
            ends = self._from_source(producer, lambda: source.list_offsets(topic, "latest"))  # noqa: B023
            if ends is None:
                return False
            for partition, end in ends.items():
                if (topic, partition) not in self._next:  # added since the last refresh
                    self._refresh_due = True
                    return False
                expected = self._next[(topic, partition)]
                if end > (self._maps[(topic, partition)].source_next if expected is None else expected):
                    return False
        self._flush(producer)
        return True

    def _throttle(self, producer: Producer, until: float) -> None:
        """Serve delivery reports until ``until`` (monotonic), or until stopped."""
        while not self._stop.is_set() and (left := until - time.monotonic()) > 0:
            producer.poll(min(left, 0.05))
            self._raise_failure()

    def _add_partitions(self, source: Admin, target: KafkaTarget, consumer: Consumer, producer: Producer) -> bool:
        """Copy the partitions added to the mirrored topics on logsvc since the last look: the Kafka
        topic grown to match, the checkpoint holding them before their first record is sent, each
        read from its log start (FailedPrecondition when Kafka cannot be grown). True when there
        were any."""
        described = self._from_source(producer, lambda: topics.describe(source, self.options.topics))
        if described is None:
            return False
        self._refresh_due = False
        added = {
            TopicPartition(topic, info.partition): info.log_start_offset
            for topic, description in described.items()
            for info in description.partitions
            if (topic, info.partition) not in self._maps
        }
        if not added:
            return False
        topics.prepare(target, {tp.topic: described[tp.topic] for tp in added})
        for tp, pmap in resume.added_partitions(target, added).items():
            self._maps[tp] = pmap
            self._pending[tp] = collections.deque()
            self._next[tp] = None
        self._save()
        consumer.assign([TopicPartition(*tp) for tp in sorted(self._maps)])  # kept ones keep their positions
        for tp in added:
            consumer.seek(tp, self._maps[tp].source_next)
        shown = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(added))
        log.info("partitions added on logsvc: copying %s from their log start (%d partitions)", shown, len(self._maps))
        return True

    def _loop(
        self,
        source: Admin,
        target: KafkaTarget,
        consumer: Consumer,
        producer: Producer,
        translator: GroupTranslator | None,
    ) -> None:
        opts = self.options
        now = time.monotonic()
        saved_at = groups_at = progress_at = refreshed_at = now
        progress_count = 0
        behind = True
        limit = opts.max_records_per_second
        chunk = max(1, limit // 20) if limit else None  # a throttled copy reads in 50 ms steps
        started = now
        while not self._stop.is_set():
            records = self._from_source(producer, lambda: consumer.poll(timeout_ms=200, max_records=chunk))
            if records:
                self._copy(producer, records)
                behind = True
                if limit:
                    self._throttle(producer, started + self.copied / limit)
            elif behind and records is not None and self._caught_up(source, producer):
                behind = False
                log.info("caught up with logsvc: %d records copied since start", self.copied)
            producer.poll(0)
            self._raise_failure()
            now = time.monotonic()
            if now - saved_at >= opts.checkpoint_interval_ms / 1000:
                saved_at = now
                self._save()
            if self._refresh_due or now - refreshed_at >= opts.refresh_interval_ms / 1000:
                refreshed_at = now
                if self._add_partitions(source, target, consumer, producer):
                    behind = True  # until the new partitions are copied too
            if translator is not None and now - groups_at >= opts.group_interval_ms / 1000:
                groups_at = now
                translator.run_once(self._acknowledged())
            if now - progress_at >= opts.progress_interval_ms / 1000:
                if self.copied > progress_count:  # quiet while there is nothing to copy
                    rate = (self.copied - progress_count) / (now - progress_at)
                    log.info("copied %d records (%.0f records/s)", self.copied, rate)
                progress_at, progress_count = now, self.copied
