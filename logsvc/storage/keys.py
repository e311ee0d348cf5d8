"""LMDB keys: big-endian tuples, so byte order is tuple order.

* batches:    ``(topic_id u32, partition u32, base_offset u64)`` -> the batch bytes. A cursor walks
  a partition in offset order; ``set_range`` on ``(t, p, offset + 1)`` then one step back lands
  on the batch holding ``offset``.
* time index: ``(topic_id u32, partition u32, running_max_timestamp_ms u64)`` -> base offset u64.
* partitions: ``(topic_id u32, partition u32)`` -> the persisted partition state.
* groups:     ``(len u16, group utf-8, topic_id u32, partition u32)`` -> the committed offset. The
  length prefix keeps one group's keys contiguous whatever characters the name holds.

Every key of one partition starts with the same 8-byte :func:`partition_key`.
"""

from __future__ import annotations

import struct

from logsvc_wire.errors import InvalidRequest

PARTITION = struct.Struct(">II")
POSITION = struct.Struct(">IIQ")  # batches and time index: (topic_id, partition, offset or time)
U64 = struct.Struct(">Q")
U32 = struct.Struct(">I")
_GROUP_LEN = struct.Struct(">H")

PREFIX_SIZE = PARTITION.size  # 8
U64_MAX = (1 << 64) - 1
MAX_GROUP_BYTES = 255

partition_key = PARTITION.pack
position_key = POSITION.pack  # (topic_id, partition, base_offset | timestamp_ms)
unpack_position = POSITION.unpack


def topic_prefix(topic_id: int) -> bytes:
    """The first 4 bytes of every batch, time-index and partition key of one topic."""
    return U32.pack(topic_id)


def group_prefix(group: str) -> bytes:
    """The first bytes of every key of ``group``; InvalidRequest for an empty or too long name."""
    raw = group.encode("utf-8") if isinstance(group, str) else b""
    if not raw or len(raw) > MAX_GROUP_BYTES:
        raise InvalidRequest(
            f"invalid consumer group name {group!r}: use 1 to {MAX_GROUP_BYTES} bytes of UTF-8", group=group
        )
    return _GROUP_LEN.pack(len(raw)) + raw


def group_key(prefix: bytes, topic_id: int, partition: int) -> bytes:
    return prefix + PARTITION.pack(topic_id, partition)


def group_after(prefix: bytes) -> bytes:
    """A key sorting after every key of the group whose prefix is ``prefix``."""
    return prefix + b"\xff" * PREFIX_SIZE


def split_group_key(key: bytes | memoryview) -> tuple[str, int, int]:
    """``(group, topic_id, partition)`` from a groups key."""
    (n,) = _GROUP_LEN.unpack_from(key)
    group = bytes(key[2 : 2 + n]).decode("utf-8")
    topic_id, partition = PARTITION.unpack_from(key, 2 + n)
    return group, topic_id, partition


def group_prefix_of(key: bytes | memoryview) -> bytes:
    """The group prefix (length + name) of a groups key."""
    (n,) = _GROUP_LEN.unpack_from(key)
    return bytes(key[: 2 + n])
