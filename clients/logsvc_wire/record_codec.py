"""The codec's per-record loops: encoding queued records and decoding fetched ones.

Each function here runs once per record of a produce or a fetch, so each is the C extension
:mod:`logsvc_wire._codec` when that was built (:data:`NATIVE`; see :mod:`~logsvc_wire.native`)
and the pure-Python function of the same name with ``_py`` otherwise. Both give byte-identical
encodings and equal decodings, the same verdicts and messages for malformed payloads
(``tests/codec`` runs both over the same cases).

Encoding (the producer): records are encoded into their batch's buffer as they are queued —
:func:`append_record` one at a time (``send``), :func:`encode_bulk` a whole ``send_many`` call,
partitioned on the way — and :func:`payload` makes the batch's msgpack payload of them when it is
sent. A record is the msgpack array ``[timestamp_ms, key, value, headers]``, each value in
msgpack's shortest form (msgpack-python's ``Packer(use_bin_type=True)``), so a payload made here
is exactly ``packb(list_of_records)``.

Decoding (the consumer): :func:`decode` checks a stored payload record by record (the walk of
:mod:`~logsvc_wire.record_check`) and builds :class:`~logsvc_wire.types.Record` tuples straight
from it.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any

import msgpack

from .native import extension
from .partitioner import murmur2_positive
from .record_check import MAX_TIMESTAMP_MS, greatest_timestamp, walk
from .types import record_padding

_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack
_new = tuple.__new__
#: msgpack nil: the packed headers of a record without headers
NO_HEADERS = b"\xc0"

#: (chunks, ends, bounds, slots, ranks) of one send_many call: see :func:`encode_bulk_py`
Bulk = tuple[list[bytes | None], list[bytes | None], list[bytes | None], bytes, bytes]


def pack_headers(headers: Sequence[tuple[str, bytes]] | None) -> bytes:
    """Headers (``(name, value)`` pairs, or None) as msgpack, for :func:`append_record` and
    :func:`encode_bulk`."""
    return NO_HEADERS if headers is None else _packb(headers)


def _timestamp(timestamp_ms: int) -> None:
    if not 0 <= timestamp_ms <= MAX_TIMESTAMP_MS:
        raise ValueError(f"timestamp {timestamp_ms} is out of range: 0 to {MAX_TIMESTAMP_MS} ms")


def _bytes_or_none(x: object) -> bool:
    return x is None or x.__class__ is bytes


def _record(timestamp_ms: int, key: bytes | None, value: bytes | None, packed_headers: bytes) -> bytes:
    return b"\x94" + _packb(timestamp_ms) + _packb(key) + _packb(value) + packed_headers


def append_record_py(buffer: bytearray, timestamp_ms: int, key: object, value: object, packed_headers: bytes) -> bool:
    """Append the record ``[timestamp_ms, key, value, headers]`` to ``buffer`` (``packed_headers``:
    :func:`pack_headers`). False, and nothing appended, when ``key`` or ``value`` is neither bytes
    nor None: the caller converts it and calls again. ValueError for a timestamp out of range."""
    _timestamp(timestamp_ms)
    if not (_bytes_or_none(key) and _bytes_or_none(value)):
        return False
    buffer += _record(timestamp_ms, key, value, packed_headers)  # type: ignore[arg-type]
    return True


def encode_bulk_py(
    keys: Sequence[object] | None,
    values: Sequence[object],
    timestamp_ms: int,
    packed_headers: bytes,
    overhead: int,
    partitions: int,
    partition: int,
) -> Bulk | None:
    """The records ``[timestamp_ms, keys[i], values[i], headers]`` of one ``send_many`` call,
    encoded and partitioned: to ``partition`` when it is >= 0, else by Kafka's murmur2 of the key
    modulo ``partitions``, else (no key) to the sticky slot, numbered ``partitions``.

    Returns ``(chunks, ends, bounds, slots, ranks)``: ``chunks[s]`` the records of slot s encoded
    one after another (None: none), ``ends[s]`` where each of them ends in it (native uint32s in
    bytes), ``bounds[s]`` the running sum of their size bounds, ``overhead + len(key) +
    len(value)`` each, the bound ``send`` counts (native uint64s), ``slots`` each record's slot
    and ``ranks`` its index among its slot's records, in call order (native uint32s). None when
    some key or value is neither bytes nor None (the caller converts and calls again)."""
    _timestamp(timestamp_ms)
    if keys is not None and len(keys) != len(values):
        raise ValueError("encode_bulk(): as many keys as values")
    if not 0 < partitions <= 0xFFFFFFF or partition >= partitions:
        raise ValueError(f"encode_bulk(): partition {partition} of {partitions} partitions")
    if not all(map(_bytes_or_none, values)) or (keys is not None and not all(map(_bytes_or_none, keys))):
        return None
    parts: list[list[bytes]] = [[] for _ in range(partitions + 1)]
    bound_parts: list[list[int]] = [[] for _ in range(partitions + 1)]
    slots, ranks = array("I"), array("I")
    for i, value in enumerate(values):
        key = None if keys is None else keys[i]
        if partition >= 0:
            s = partition
        elif key is not None:
            s = murmur2_positive(key) % partitions  # type: ignore[arg-type]
        else:
            s = partitions
        slots.append(s)
        ranks.append(len(parts[s]))
        parts[s].append(_record(timestamp_ms, key, value, packed_headers))  # type: ignore[arg-type]
        bound_parts[s].append(overhead + (0 if key is None else len(key)) + (0 if value is None else len(value)))  # type: ignore[arg-type]
    chunks: list[bytes | None] = []
    ends: list[bytes | None] = []
    bounds: list[bytes | None] = []
    for records, sizes in zip(parts, bound_parts, strict=True):
        if not records:
            chunks.append(None)
            ends.append(None)
            bounds.append(None)
            continue
        chunks.append(b"".join(records))
        ends.append(array("I", accumulate(map(len, records))).tobytes())
        bounds.append(array("Q", accumulate(sizes)).tobytes())
    return chunks, ends, bounds, slots.tobytes(), ranks.tobytes()


def _array_header(count: int) -> bytes:
    if count < 16:
        return bytes([0x90 | count])
    if count < 0x10000:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def payload_py(records: bytes | bytearray | memoryview, record_count: int) -> tuple[bytes, int, int]:
    """A batch's msgpack payload of ``record_count`` records encoded one after another (by
    :func:`append_record` / :func:`encode_bulk`), with its first and greatest timestamps."""
    if not 1 <= record_count <= 0xFFFFFFFF:
        raise ValueError(f"payload(): record_count {record_count}")
    data = _array_header(record_count) + bytes(records)
    rows = msgpack.unpackb(data, use_list=False, raw=False)
    greatest = greatest_timestamp(rows) if type(rows) is tuple and len(rows) == record_count else None
    if greatest is None:
        why = walk(data, record_count, 0, 0, False)
        raise ValueError(f"payload(): the records are not the specified ones: {why}")
    return data, rows[0][0], greatest


def decode_py(
    payload: bytes | memoryview,
    record_count: int,
    record_type: type[tuple[Any, ...]],
    topic: str,
    partition: int,
    base_offset: int,
    skip: int,
    append_time_ms: int,
) -> list[Any] | str:
    """The records of a stored payload as ``record_type(topic, partition, offset, timestamp_ms,
    key, value, headers)`` tuples from the ``skip``-th on (offsets ``base_offset + skip`` ...);
    ``append_time_ms`` >= 0 is every record's timestamp (a LogAppendTime batch). A ``record_type``
    whose NamedTuple fields go on past those seven gets None in the others. A payload that is not
    exactly ``record_count`` records of the specified types gives the check's message instead
    (the header's timestamps are not compared: LogAppendTime rewrites them)."""
    try:
        rows = msgpack.unpackb(payload, use_list=False, raw=False)
    except Exception:  # msgpack raises several unrelated classes for malformed input
        rows = None
    if type(rows) is not tuple or len(rows) != record_count or greatest_timestamp(rows) is None:
        return walk(payload, record_count, 0, 0, False) or "payload is not the specified records"
    skip = min(max(skip, 0), record_count)
    first = base_offset + skip
    if skip:
        rows = rows[skip:]
    # () for Record; "+ more" rather than (..., *more): t + () is t itself, half the cost per record
    more = record_padding(record_type)
    if append_time_ms >= 0:
        ts = append_time_ms
        return [
            _new(record_type, (topic, partition, first + i, ts, k, v, h) + more)  # noqa: RUF005
            for i, (_, k, v, h) in enumerate(rows)
        ]
    return [
        _new(record_type, (topic, partition, first + i, t, k, v, h) + more)  # noqa: RUF005
        for i, (t, k, v, h) in enumerate(rows)
    ]


AppendRecord = Callable[[bytearray, int, object, object, bytes], bool]
EncodeBulk = Callable[[Sequence[object] | None, Sequence[object], int, bytes, int, int, int], "Bulk | None"]
Payload = Callable[[Any, int], tuple[bytes, int, int]]
Decode = Callable[[Any, int, type, str, int, int, int, int], "list[Any] | str"]

#: whether the C extension runs these loops (see :mod:`~logsvc_wire.native`)
NATIVE = extension is not None
append_record: AppendRecord = append_record_py if extension is None else extension.append_record
encode_bulk: EncodeBulk = encode_bulk_py if extension is None else extension.encode_bulk
payload: Payload = payload_py if extension is None else extension.payload
decode: Decode = decode_py if extension is None else extension.decode
#: ``FastAppend(accumulator, future_type, overhead)``: the producer's ``send`` with its common record
#: queued in one C call (see _codec.c), counted ``overhead`` bytes beside its key and value; None
#: without the extension, where ``accumulator.append`` is ``send``
FastAppend: Callable[[Any, type, int], Callable[..., Any]] | None = None if extension is None else extension.FastAppend
