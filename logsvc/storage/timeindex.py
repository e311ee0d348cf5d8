"""The time index: for offsets-for-times without reading every batch.

An entry ``(topic_id, partition, ts) -> base_offset`` is written, in the batch's own transaction,
only when a batch's max timestamp exceeds every earlier batch's (the partition's running max,
``PartState.index_max_ts``). Entry keys and values therefore both increase, and the first entry
with key >= T names the first batch holding a record with timestamp >= T.

When batches are deleted from the head, their entries go too, and entries are rebuilt for the
remaining batches that had none because a deleted batch held a greater timestamp, so the rule
above keeps holding over the batches that remain.
"""

from __future__ import annotations

import lmdb

from logsvc.storage import keys
from logsvc.storage.ops import TxnContext
from logsvc.storage.state import Dbs, PartState
from logsvc_wire.batch import stored_span


def first_batch_at(txn: lmdb.Transaction[memoryview], dbs: Dbs, topic_id: int, partition: int, ts: int) -> int | None:
    """Base offset of the first batch whose max timestamp is >= ``ts``; None when there is none."""
    prefix = keys.partition_key(topic_id, partition)
    cur = txn.cursor(db=dbs.timeindex)
    if cur.set_range(keys.position_key(topic_id, partition, max(ts, 0))) and cur.key()[: keys.PREFIX_SIZE] == prefix:
        return int(keys.U64.unpack(cur.value())[0])
    return None


def after_head_delete(ctx: TxnContext, topic_id: int, partition: int, st: PartState, head_base: int | None) -> None:
    """Fix the index once batches before ``head_base`` (the new first batch; None when the
    partition is now empty) were deleted; updates ``st.index_max_ts``."""
    prefix = keys.partition_key(topic_id, partition)
    cur = ctx.cursor("timeindex")
    first_entry: int | None = None
    if cur.set_range(prefix):
        while cur.key()[: keys.PREFIX_SIZE] == prefix:
            base = keys.U64.unpack(cur.value())[0]
            if head_base is not None and base >= head_base:
                first_entry = base
                break
            cur.delete()
    if head_base is None:
        st.index_max_ts = -1
        return
    if first_entry == head_base:
        return
    # Batches from the head up to the first indexed one lost their index entries' reason to be
    # missing (a greater timestamp in a deleted batch): index them as if they came first.
    batches = ctx.txn.cursor(db=ctx.dbs.batches)
    batches.set_range(keys.position_key(topic_id, partition, head_base))
    running = -1
    while (key := batches.key())[: keys.PREFIX_SIZE] == prefix:
        base = keys.unpack_position(key)[2]
        if first_entry is not None and base >= first_entry:
            break
        max_ts = stored_span(batches.value()).max_timestamp_ms
        if max_ts > running:
            ctx.txn.put(keys.position_key(topic_id, partition, max_ts), keys.U64.pack(base), db=ctx.dbs.timeindex)
            running = max_ts
        if not batches.next():
            break
    if first_entry is None:
        st.index_max_ts = running
