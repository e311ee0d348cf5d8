"""The Broker gRPC servicer: protobuf in, store calls, protobuf out.

Each method is a thin adapter over :class:`logsvc.storage.base.Store`; validation lives in the
store and in :mod:`logsvc.topic_config`. Methods raise :class:`~logsvc.errors.LogsvcError`; the
door (:mod:`logsvc.server.calls`, the server's one handler) turns it into a status, runs plain methods on the
worker pool and the coroutines ``Produce`` and ``Fetch`` on the event loop. Record batches pass
through as bytes: the broker reads their headers (for counts and metrics) and never decodes records on Produce or Fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

from logsvc.errors import InvalidConfig, InvalidRequest, TopicAlreadyExists, TopicNotFound
from logsvc.groups import Coordinator
from logsvc.server.access_rpcs import AccessRpcs
from logsvc.server.calls import Call
from logsvc.server.fetch_answer import FetchAnswer
from logsvc.server.group_rpcs import GroupRpcs, monotonic_ms
from logsvc.server.limits import check_config
from logsvc.server.long_polls import LongPolls
from logsvc.server.metrics import BrokerMetrics
from logsvc.settings import Settings
from logsvc.storage.base import Appended, PendingAppend, Store, TopicMeta
from logsvc.topic_config import (
    TopicConfig,
    canonical_config,
    canonical_key,
    check_partition,
    check_partition_count,
    check_topic_name,
)
from logsvc_wire import batch as codec
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from logsvc_wire.partitioner import choose_partition
from logsvc_wire.produce_request import ProduceRequest
from logsvc_wire.record_check import MAX_TIMESTAMP_MS

#: A Produce request of one uncompressed batch this large or smaller is checked on the event loop
#: (a few records: checking them costs less than the hop to a worker thread and back); any other
#: on the worker pool (a small compressed batch may inflate to the topic's limit)
INLINE_PRODUCE_BYTES = 16 * 1024

#: Fetch size when a request asks for 0: fits gRPC's default 4 MiB message limit of any client
DEFAULT_FETCH_BYTES = 3 * 1024 * 1024


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # a cancelled call's future stays cancelled
        future.set_result(None)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def describe(store: Store, meta: TopicMeta) -> pb.TopicDescription:
    return pb.TopicDescription(
        name=meta.name,
        topic_id=meta.topic_id,
        config=meta.config.as_strings(),
        created_ms=meta.created_ms,
        partitions=[
            pb.PartitionInfo(
                partition=st.partition,
                log_start_offset=st.log_start_offset,
                next_offset=st.next_offset,
                record_count=st.record_count,
                bytes=st.bytes,
                first_timestamp_ms=st.first_timestamp_ms,
                last_timestamp_ms=st.last_timestamp_ms,
            )
            for st in store.partition_states(meta.name)
        ],
    )


class BrokerService(GroupRpcs, AccessRpcs, pb_grpc.BrokerServicer):
    def __init__(
        self,
        store: Store,
        settings: Settings,
        metrics: BrokerMetrics,
        clock_ms: Callable[[], int] = now_ms,
        mono_ms: Callable[[], int] = monotonic_ms,
    ) -> None:
        self.store = store
        self.mono_ms = mono_ms
        self.coordinator = Coordinator(
            self._partition_count,
            max_members_per_group=settings.max_members_per_group,
            initial_rebalance_delay_ms=settings.initial_rebalance_delay_ms,
        )
        self.settings = settings
        self.metrics = metrics
        self.clock_ms = clock_ms
        self.stopping = threading.Event()
        self.executor: Executor | None = None  # the worker pool blocking work runs on (None: the loop's default)
        self.long_polls: LongPolls | None = None  # set by the server; None: a Fetch never waits
        self._rng = random.Random()
        self.init_access()  # self.authorizer, self.quota_overrides, self.on_access_change

    def _partition_count(self, topic: str) -> int | None:
        try:
            return self.store.topic(topic).partitions
        except TopicNotFound:
            return None

    # -- topics ---------------------------------------------------------------------------------

    def _check_batch_fits(self, config: TopicConfig) -> TopicConfig:
        """A topic's batches must fit in a request the broker accepts (max_message_bytes)."""
        if config.max_batch_bytes > self.settings.max_batch_bytes:
            raise InvalidConfig(
                f"topic config max_batch_bytes={config.max_batch_bytes} is above {self.settings.max_batch_bytes}, "
                f"the largest batch a request of this broker's max_message_bytes="
                f"{self.settings.max_message_bytes} can carry",
                key="max_batch_bytes",
            )
        return config

    def CreateTopic(self, request: pb.CreateTopicRequest, call: Call) -> pb.TopicDescription:
        name = check_topic_name(request.name)
        partitions = check_partition_count(request.partitions, self.settings.max_partitions)
        config = self._check_batch_fits(TopicConfig.parse(check_config(dict(request.config))))
        meta = self.store.create_topic(name, partitions, config)
        self.coordinator.topics_changed(self.mono_ms())
        return describe(self.store, meta)

    def AlterTopic(self, request: pb.AlterTopicRequest, call: Call) -> pb.TopicDescription:
        name = check_topic_name(request.name)
        meta = self.store.topic(name)
        config = None
        if request.set_config or request.reset_config:
            set_config = canonical_config(check_config(request.set_config))
            both = sorted(set(set_config) & {canonical_key(k) for k in request.reset_config})
            if both:
                raise InvalidConfig(f"topic config {both[0]!r} is both set and reset", key=both[0])
            values = meta.config.as_strings()
            for key in request.reset_config:
                values[canonical_key(key)] = TopicConfig.default(key)
            config = self._check_batch_fits(TopicConfig.parse({**values, **set_config}))
        partitions = request.partitions or None
        altered = self.store.alter_topic(name, partitions=partitions, config=config)
        if altered.partitions != meta.partitions:
            self.coordinator.topics_changed(self.mono_ms())
        return describe(self.store, altered)

    def DeleteTopic(self, request: pb.DeleteTopicRequest, call: Call) -> pb.DeleteTopicResponse:
        self.store.delete_topic(check_topic_name(request.name))
        self.metrics.forget_topic(request.name)
        self.coordinator.topics_changed(self.mono_ms())
        return pb.DeleteTopicResponse()

    def ListTopics(self, request: pb.ListTopicsRequest, call: Call) -> pb.ListTopicsResponse:
        return pb.ListTopicsResponse(
            topics=[pb.TopicSummary(name=m.name, partitions=m.partitions) for m in self.store.list_topics()]
        )

    def DescribeTopic(self, request: pb.DescribeTopicRequest, call: Call) -> pb.TopicDescription:
        name = check_topic_name(request.name)
        meta = self._topic_for_produce(name) if request.allow_auto_create else self.store.topic(name)
        return describe(self.store, meta)

    def WhoAmI(self, request: pb.WhoAmIRequest, call: Call) -> pb.WhoAmIResponse:
        return pb.WhoAmIResponse(principal=call.principal)

    # -- produce --------------------------------------------------------------------------------

    def _topic_for_produce(self, name: str) -> TopicMeta:
        try:
            return self.store.topic(check_topic_name(name))
        except TopicNotFound:
            if not self.settings.auto_create_topics:
                raise
        try:
            meta = self.store.create_topic(name, self.settings.default_partitions, TopicConfig())
        except TopicAlreadyExists:  # another producer created it first
            return self.store.topic(name)
        self.coordinator.topics_changed(self.mono_ms())
        return meta

    def _append(self, meta: TopicMeta, batches: Sequence[tuple[int, bytes | memoryview]]) -> list[Appended]:
        appended = self.store.append(meta.name, batches)
        self._count(meta.name, batches, appended)
        return appended

    def _count(
        self, topic: str, batches: Sequence[tuple[int, bytes | memoryview]], appended: Sequence[Appended]
    ) -> None:
        """Count what was stored (duplicates are not) in the produce metrics."""
        records = size = 0
        for (_, data), a in zip(batches, appended, strict=True):
            if not a.duplicate:
                records += a.record_count
                size += len(data)
        produced_records, produced_bytes = self.metrics.produced(topic)
        produced_records.inc(records)
        produced_bytes.inc(size)

    def InitProducer(self, request: pb.InitProducerRequest, call: Call) -> pb.InitProducerResponse:
        producer_id, epoch = self.store.init_producer(request.producer_id, request.producer_epoch)
        return pb.InitProducerResponse(
            producer_id=producer_id,
            producer_epoch=epoch,
            producer_id_expiration_ms=self.settings.producer_id_expiration_ms,
        )

    async def Produce(self, request: ProduceRequest, call: Call) -> pb.ProduceResponse:
        """On the event loop: the batches are checked and queued to the storage writer (on the loop
        itself for one uncompressed batch of at most :data:`INLINE_PRODUCE_BYTES` to a known topic,
        else on the worker pool), and the call waits for the commit without holding a thread."""
        loop = asyncio.get_running_loop()
        committed = loop.create_future()

        def on_done() -> None:  # on the storage writer's thread
            with contextlib.suppress(RuntimeError):  # the loop closed: the call is long gone
                loop.call_soon_threadsafe(_resolve, committed)

        # One small uncompressed batch to a known topic (a single record) is checked here; else on
        # the pool. Never request.ByteSize(): protobuf serializes the whole request to tell it.
        batches: list[tuple[int, bytes | memoryview]] | None = None
        inline = False
        if len(request.batches) == 1:
            first = request.batches[0]
            batches = [(first.partition, first.batch)]  # a view into the request's bytes
            data = batches[0][1]
            inline = (
                len(data) <= INLINE_PRODUCE_BYTES
                and data[1:2] == b"\x00"  # attributes: not compressed (no inflating on the loop)
                and self._partition_count(request.topic) is not None
            )
        if inline:
            name, sent, pending = self._start_produce(request, on_done, batches)
        else:  # large batches to check, several of them, or a topic to create: off the loop
            name, sent, pending = await loop.run_in_executor(
                self.executor, self._start_produce, request, on_done, batches
            )
        await committed
        appended = pending.result()
        self._count(name, sent, appended)
        return pb.ProduceResponse(
            appends=[
                pb.PartitionAppend(
                    partition=a.partition, base_offset=a.base_offset, log_append_time_ms=a.log_append_time_ms
                )
                for a in appended
            ]
        )

    def _start_produce(
        self,
        request: ProduceRequest,
        on_done: Callable[[], None],
        batches: list[tuple[int, bytes | memoryview]] | None = None,
    ) -> tuple[str, list[tuple[int, bytes | memoryview]], PendingAppend]:
        """Check a Produce request's batches (``batches``: its ``(partition, batch)`` pairs when
        already read out of it) and queue them; ``on_done`` once they are committed."""
        meta = self._topic_for_produce(request.topic)
        if not request.batches:
            raise InvalidRequest(f"produce to {meta.name} carries no batches")
        if batches is None:
            batches = [(b.partition, b.batch) for b in request.batches]
        pending = self.store.start_append(
            meta.name,
            batches,
            on_done,
            producer_id=request.producer_id,
            producer_epoch=request.producer_epoch,
            sequences=[b.base_sequence for b in request.batches],
        )
        return meta.name, batches, pending

    def ProduceRecords(self, request: pb.ProduceRecordsRequest, call: Call) -> pb.ProduceRecordsResponse:
        meta = self._topic_for_produce(request.topic)
        if not request.records:
            raise InvalidRequest(f"produce to {meta.name} carries no records")
        n = meta.partitions
        sticky = self._rng.randrange(n)
        now = self.clock_ms()
        per_partition: dict[int, list[list[Any]]] = {}
        placed: list[tuple[int, int]] = []  # (partition, index in that partition's batch)
        for i, r in enumerate(request.records):
            explicit = check_partition(meta.name, r.partition, n) if r.HasField("partition") else None
            p = choose_partition(explicit, r.key if r.HasField("key") else None, n, sticky)
            if not 0 <= r.timestamp_ms <= MAX_TIMESTAMP_MS:
                raise InvalidRequest(
                    f"record {i}: timestamp_ms {r.timestamp_ms} is out of range: 0 (now) to {MAX_TIMESTAMP_MS} ms",
                    index=i,
                )
            rows = per_partition.setdefault(p, [])
            placed.append((p, len(rows)))
            rows.append(
                [
                    r.timestamp_ms or now,
                    r.key if r.HasField("key") else None,
                    r.value if r.HasField("value") else None,
                    [(h.name, h.value) for h in r.headers] or None,
                ]
            )
        partitions = sorted(per_partition)
        appended = self._append(meta, [(p, codec.encode_batch(per_partition[p])) for p in partitions])
        base = {a.partition: a.base_offset for a in appended}
        return pb.ProduceRecordsResponse(
            positions=[pb.RecordPosition(partition=p, offset=base[p] + i) for p, i in placed]
        )

    # -- fetch ----------------------------------------------------------------------------------

    def _read_all(self, request: pb.FetchRequest) -> tuple[FetchAnswer, int]:
        budget = min(request.max_bytes or DEFAULT_FETCH_BYTES, self.settings.fetch_max_bytes)
        records_left = request.max_records or 0
        out = FetchAnswer()
        total = 0
        for fp in request.partitions:
            if budget <= 0 or (request.max_records and records_left <= 0):
                # Still report offsets, with no batches, so the client sees every partition.
                st = self.store.partition_states(fp.topic)
                s = st[check_partition(fp.topic, fp.partition, len(st))]
                out.add(fp.topic, fp.partition, s.log_start_offset, s.next_offset)
                continue
            got = self.store.read(fp.topic, fp.partition, fp.offset, budget, records_left)
            # every batch as stored, a corrupt one too: the consumer reports or skips it
            n_bytes = out.add(fp.topic, fp.partition, got.log_start_offset, got.next_offset, got.batches)
            n_records = got.record_count  # as the store counted them
            if n_records:
                self.metrics.fetch_records.labels(fp.topic).inc(n_records)
                self.metrics.fetch_bytes.labels(fp.topic).inc(n_bytes)
            budget -= n_bytes
            records_left -= n_records
            total += n_records
        return out, total

    async def Fetch(self, request: pb.FetchRequest, call: Call) -> FetchAnswer:
        """On the event loop: the reads run on the worker pool, the wait for data holds no thread
        (:class:`~logsvc.server.long_polls.LongPolls`). The answer is a
        :class:`~logsvc.server.fetch_answer.FetchAnswer`, sent as FetchResponse bytes."""
        if not request.partitions:
            raise InvalidRequest("fetch names no partitions")
        for fp in request.partitions:
            check_topic_name(fp.topic)
        loop = asyncio.get_running_loop()
        response, total = await loop.run_in_executor(self.executor, self._read_all, request)
        if total or not request.max_wait_ms or self.long_polls is None:
            return response
        wait_s = min(request.max_wait_ms, self.settings.fetch_max_wait_ms) / 1000
        positions = [(fp.topic, fp.partition, fp.offset) for fp in request.partitions]
        if await self.long_polls.wait(positions, wait_s) and not self.stopping.is_set():
            response, _ = await loop.run_in_executor(self.executor, self._read_all, request)
        return response

    # -- offsets --------------------------------------------------------------------------------

    def ListOffsets(self, request: pb.ListOffsetsRequest, call: Call) -> pb.ListOffsetsResponse:
        meta = self.store.topic(check_topic_name(request.topic))
        partitions = list(request.partitions) or list(range(meta.partitions))
        for p in partitions:
            check_partition(meta.name, p, meta.partitions)
        out = pb.ListOffsetsResponse()
        if request.spec == pb.ListOffsetsRequest.TIMESTAMP:
            for p in partitions:
                found = self.store.offset_for_time(meta.name, p, request.timestamp_ms)
                out.offsets.add(partition=p, offset=found.offset, timestamp_ms=found.timestamp_ms)
            return out
        states = self.store.partition_states(meta.name)
        for p in partitions:
            st = states[p]
            offset = st.log_start_offset if request.spec == pb.ListOffsetsRequest.EARLIEST else st.next_offset
            out.offsets.add(partition=p, offset=offset, timestamp_ms=-1)
        return out

    def Trim(self, request: pb.TrimRequest, call: Call) -> pb.TrimResponse:
        start = self.store.trim(check_topic_name(request.topic), request.partition, request.before_offset)
        return pb.TrimResponse(log_start_offset=start)
