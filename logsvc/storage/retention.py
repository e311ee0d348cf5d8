"""Deleting from the head of a partition: ``trim`` on demand and retention by time and size.

Both delete whole batches only and advance the partition's log start offset, which never moves
backwards; their time-index entries go in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable

from logsvc.storage import keys, rules, timeindex
from logsvc.storage.ops import Op, TxnContext, expire_producers
from logsvc.topic_config import TopicConfig
from logsvc_wire.batch import stored_span

# (end offset of the batch, its max timestamp, the partition's bytes) -> delete this head batch?
HeadPredicate = Callable[[int, int, int], bool]


def delete_head(ctx: TxnContext, topic_id: int, partition: int, should_delete: HeadPredicate) -> int:
    """Delete batches from the head while ``should_delete`` says so; how many were deleted.
    The log start moves to the end of the last deleted batch (or stays, when it is past it)."""
    prefix = keys.partition_key(topic_id, partition)
    cur = ctx.cursor("batches")
    if not cur.set_range(prefix):
        return 0
    size = ctx.peek(topic_id, partition).bytes
    deleted = freed = end = 0
    while (key := cur.key())[: keys.PREFIX_SIZE] == prefix:
        value = cur.value()
        span = stored_span(value)
        batch_end = keys.unpack_position(key)[2] + span.record_count
        if not should_delete(batch_end, span.max_timestamp_ms, size - freed):
            break
        freed += len(value)
        end = batch_end
        deleted += 1
        cur.delete()
    if not deleted:
        return 0
    st = ctx.part(topic_id, partition)
    st.bytes = max(0, st.bytes - freed)  # never negative, even over batches planted or damaged outside the store
    st.log_start = max(st.log_start, end)
    head_base: int | None = None
    if (key := cur.key())[: keys.PREFIX_SIZE] == prefix:
        head_base = keys.unpack_position(key)[2]
        st.first_ts = stored_span(cur.value()).first_timestamp_ms
    else:
        st.first_ts = st.last_ts = -1
    timeindex.after_head_delete(ctx, topic_id, partition, st, head_base)
    return deleted


class Trim(Op):
    """Delete records before an offset; a batch straddling it stays, the log start moves to it."""

    def __init__(self, topic: str, partition: int, before_offset: int) -> None:
        super().__init__()
        self.topic, self.partition, self.before_offset = topic, partition, before_offset

    def check(self, ctx: TxnContext) -> int:
        meta = ctx.topic(self.topic)
        rules.check_partition(meta, self.partition)
        st = ctx.peek(meta.topic_id, self.partition)
        if self.before_offset > st.next_offset:
            raise rules.out_of_range(self.topic, self.partition, self.before_offset, st.log_start, st.next_offset)
        return meta.topic_id

    def write(self, ctx: TxnContext, topic_id: int) -> int:
        before = self.before_offset
        if before <= ctx.peek(topic_id, self.partition).log_start:
            return ctx.peek(topic_id, self.partition).log_start
        delete_head(ctx, topic_id, self.partition, lambda end, _ts, _size: end <= before)
        st = ctx.part(topic_id, self.partition)
        st.log_start = max(st.log_start, before)
        return st.log_start


class ApplyRetention(Op):
    """Apply every topic's retention_ms / retention_bytes as of ``now_ms``; also forget the
    idempotent producers idle for longer than producer_id_expiration_ms."""

    def __init__(self, now_ms: int) -> None:
        super().__init__()
        self.now_ms = now_ms

    def write(self, ctx: TxnContext, plan: None) -> int:
        deleted = 0
        for meta in ctx.all_topics():
            if not rules.has_retention(meta.config):
                continue
            expired = _expired(meta.config, self.now_ms)
            for partition in range(meta.partitions):
                if ctx.peek(meta.topic_id, partition).first_ts >= 0:
                    deleted += delete_head(ctx, meta.topic_id, partition, expired)
        expire_producers(ctx, self.now_ms)
        return deleted


def _expired(config: TopicConfig, now_ms: int) -> HeadPredicate:
    def expired(_end: int, max_ts: int, size: int) -> bool:
        return rules.expired(config, now_ms, max_ts, size)

    return expired
