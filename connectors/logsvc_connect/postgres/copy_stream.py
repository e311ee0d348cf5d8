"""Plain jsonb rows as the bytes of a binary ``COPY … FROM STDIN (FORMAT BINARY)``, built for a
whole batch in one pass: :func:`jsonb_copy`.

The PostgreSQL sink's commonest batch — jsonb mode without key fields, every value a JSON object
left to the server to check, no headers, bound for a direct COPY — goes to the server as one block
of COPY data made here, on the runtime's thread while the previous batch is written
(:meth:`~logsvc_connect.sink.Sink.prepare`), instead of row tuples that psycopg's ``write_row``
formats one by one on the writer thread. The bytes are those ``write_row`` sends for the rows
:meth:`~logsvc_connect.postgres.rows.RowEncoder.rows` builds from the same records
(``tests/connectors/postgres_sink/test_copy_stream.py`` stores both and compares).

:func:`jsonb_copy` is the C extension ``logsvc_connect.postgres._copy`` when it was built (and
``LOGSVC_PURE_PYTHON`` is not set, as for the wire's codec), else :func:`jsonb_copy_py`, which
gives the same bytes, or None, for the same records (the tests run both).

The format (PostgreSQL's "Binary Format" of COPY): a signature, then per row a 16-bit field count
and, per field, a 32-bit length (-1: NULL) and the value in its type's binary form — big-endian
integers, text and bytea as their bytes, jsonb as version byte 1 and the JSON text, timestamptz as
64-bit µs since 2000-01-01 UTC — then a trailer of -1. The fields are the jsonb layout's
(:class:`~logsvc_connect.postgres.schema.TableLayout`): topic, partition, offset, key, value,
value_bytes (NULL), timestamp, headers (NULL).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from itertools import chain, repeat
from operator import eq, itemgetter, mul, sub

from logsvc_wire.native import ENV_PURE_PYTHON, optional_extension

from ..sink import SinkRecord
from .rows import END_TIMESTAMP_MS, MIN_TIMESTAMP_MS, PG_EPOCH_MS

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # then 32-bit flags and header extension length, both 0
TRAILER = b"\xff\xff"
FIELDS = 8
#: a NULL field's length
NULL = b"\xff\xff\xff\xff"
INT4_END = 2**31

#: the offset (int8) and the key's length; then the key
_OFFSET_KEY = struct.Struct(">qi")
#: the value's length with its jsonb version byte, and that byte; then the JSON text
_VALUE = struct.Struct(">ib")
#: value_bytes NULL, the timestamp's length; then the timestamp and headers NULL
_NULL_TIMESTAMP = NULL + (8).to_bytes(4, "big")
_INT8 = struct.Struct(">q")
_FIRST_BYTE = itemgetter(0)
_OPEN_BRACE = 0x7B

JsonbCopy = Callable[[list[SinkRecord], str, bool], "bytes | None"]


def _row_start(topic: bytes, partition: int) -> bytes:
    """A row's bytes up to its offset: the field count, the topic and the partition, and the
    offset's length."""
    return struct.pack(">hi", FIELDS, len(topic)) + topic + struct.pack(">iii", 4, partition, 8)


def jsonb_copy_py(records: list[SinkRecord], topic: str, needs_key: bool) -> bytes | None:
    """The COPY data of the rows ``(topic, partition, offset, key, jsonb of value, NULL,
    timestamp, NULL)`` of ``records`` when every one is of ``topic`` (ASCII: its bytes are then the
    same in any client encoding), has no headers and no decoded doc, a value that starts with "{"
    and holds no ``\\u0000``, a key when ``needs_key``, a partition that fits an int4 and a
    timestamp in timestamptz's range; else None."""
    if not records or not topic.isascii():
        return None
    topics, partitions, offsets, stamps, keys, values, headers, docs = zip(*records, strict=True)
    try:
        if (
            topics.count(topic) < len(topics)
            or docs.count(None) < len(docs)
            or headers.count(None) < len(headers)
            or (needs_key and None in keys)
            or not all(map(eq, map(_FIRST_BYTE, values), repeat(_OPEN_BRACE)))
            # every value starts with "{", so a \u0000 in them joined is in one of them
            or b"\\u0000" in b"".join(values)
            or min(partitions) < -INT4_END
            or max(partitions) >= INT4_END
            or min(stamps) < MIN_TIMESTAMP_MS
            or max(stamps) >= END_TIMESTAMP_MS
        ):
            return None
        name = topic.encode()
        starts = {partition: _row_start(name, partition) for partition in set(partitions)}
        if None in keys:
            key_lengths = [-1 if k is None else len(k) for k in keys]
            keys = tuple(b"" if k is None else k for k in keys)
        else:
            key_lengths = list(map(len, keys))
        micros = map(mul, map(sub, stamps, repeat(PG_EPOCH_MS)), repeat(1000))
        pieces = zip(
            map(starts.__getitem__, partitions),
            map(_OFFSET_KEY.pack, offsets, key_lengths),
            keys,
            map(_VALUE.pack, map((1).__add__, map(len, values)), repeat(1)),
            values,
            repeat(_NULL_TIMESTAMP),
            map(_INT8.pack, micros),
            repeat(NULL),
        )
        return b"".join(chain((SIGNATURE,), chain.from_iterable(pieces), (TRAILER,)))
    except (TypeError, IndexError, struct.error):  # a field of another type, an empty value
        return None


_extension = optional_extension("logsvc_connect.postgres._copy")
#: whether the C extension builds the COPY data (see the module docstring; ``ENV_PURE_PYTHON``)
NATIVE = _extension is not None
jsonb_copy: JsonbCopy = jsonb_copy_py if _extension is None else _extension.jsonb_copy

__all__ = ["ENV_PURE_PYTHON", "NATIVE", "jsonb_copy", "jsonb_copy_py"]
