"""The per-record check of a batch's msgpack payload against proto/logsvc/v1/logsvc.proto.

:func:`check` says whether a payload is exactly an array of ``record_count`` records, each
``[timestamp_ms: int in 0..MAX_TIMESTAMP_MS, key: bin|nil, value: bin|nil, headers: nil | array of
[name: str (UTF-8), value: bin|nil]]``, with nothing after it, and (when asked) whether the header's
first and max timestamps are what the records hold. It returns None, or a message naming the
record index and the field ("record 3: key is msgpack str (0xa5); keys must be bin or nil ...").

The broker runs it on every produced batch, so it is the C extension
:mod:`logsvc_wire._codec` (one pass over the bytes, no Python object per record) when that
was built. Without a compiler, :func:`check_py` gives the same verdict and the same message:
msgpack's own decoder and a type check over the rows accept a good payload quickly, and
:func:`walk` (the C walker, line for line in Python) finds what is wrong with a bad one.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

import msgpack

from .native import extension

#: 9999-12-31T23:59:59.999Z in ms since the Unix epoch: the greatest timestamp a record may have.
MAX_TIMESTAMP_MS = 253_402_300_799_999
#: Length widths (bytes after the marker) of msgpack's bin 8/16/32 and str 8/16/32 markers
_BIN_WIDTHS = {0xC4: 1, 0xC5: 2, 0xC6: 4}
_STR_WIDTHS = {0xD9: 1, 0xDA: 2, 0xDB: 4}
#: The most records one batch may hold.
MAX_RECORDS_PER_BATCH = 1_000_000
#: The smallest record's msgpack size (``94 00 c0 c0 c0``): a payload of n bytes holds fewer than n / 5 records.
MIN_RECORD_BYTES = 5

Check = Callable[[Any, int, int, int, bool], "str | None"]

_U16 = struct.Struct(">H").unpack_from
_U32 = struct.Struct(">I").unpack_from
_U64 = struct.Struct(">Q").unpack_from
_I8 = struct.Struct(">b").unpack_from
_I16 = struct.Struct(">h").unpack_from
_I32 = struct.Struct(">i").unpack_from
_I64 = struct.Struct(">q").unpack_from
_STR_HINT = " (send text as bin: encode it to bytes)"


def type_name(b: int) -> str:
    """The msgpack family of a value whose first byte is ``b``."""
    if b <= 0x7F or b >= 0xE0 or 0xCC <= b <= 0xD3:
        return "int"
    if b <= 0x8F or b in (0xDE, 0xDF):
        return "map"
    if b <= 0x9F or b in (0xDC, 0xDD):
        return "array"
    if b <= 0xBF or 0xD9 <= b <= 0xDB:
        return "str"
    return {
        0xC0: "nil",
        0xC1: "never-used byte",
        0xC2: "bool",
        0xC3: "bool",
        0xC4: "bin",
        0xC5: "bin",
        0xC6: "bin",
        0xCA: "float32",
        0xCB: "float64",
    }.get(b, "ext")


def _is_str(b: int) -> bool:
    return 0xA0 <= b <= 0xBF or 0xD9 <= b <= 0xDB


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


class _Walker:
    """The C walker of _codec.c, written again in Python: same order, same messages."""

    def __init__(self, data: bytes) -> None:
        self.d = data
        self.p = 0
        self.end = len(data)
        self.first_ts = -1
        self.max_ts = -1

    def cut_off(self, i: int) -> _Refused:
        return _Refused(f"record {i}: payload ends inside the record")

    def array_header(self) -> int | None:
        """The length of the array at p (moving past its header), None when not an array;
        raises IndexError when cut off."""
        d, p = self.d, self.p
        b = d[p]
        if 0x90 <= b <= 0x9F:
            self.p = p + 1
            return b & 0x0F
        if b == 0xDC:
            if self.end - p < 3:
                raise IndexError
            self.p = p + 3
            return int(_U16(d, p + 1)[0])
        if b == 0xDD:
            if self.end - p < 5:
                raise IndexError
            self.p = p + 5
            return int(_U32(d, p + 1)[0])
        return None

    def need(self, i: int) -> int:
        if self.p >= self.end:
            raise self.cut_off(i)
        return self.d[self.p]

    def sized(self, i: int, width: int) -> tuple[int, int]:
        """Where the bytes of the str or bin at the cursor start and how many there are; its marker
        is followed by a ``width``-byte big-endian length (0: a fixstr, the length in the marker).
        Raises cut_off when the payload ends inside it."""
        d, p, left = self.d, self.p, self.end - self.p
        if width == 0:
            size, hdr = d[p] & 0x1F, 1
        elif left < 1 + width:
            raise self.cut_off(i)
        else:
            size, hdr = int.from_bytes(d[p + 1 : p + 1 + width], "big"), 1 + width
        if left - hdr < size:
            raise self.cut_off(i)
        return p + hdr, size

    def bin_or_nil(self, i: int, field: str, plural: str) -> None:
        b = self.d[self.p]
        if b == 0xC0:
            self.p += 1
            return
        width = _BIN_WIDTHS.get(b)
        if width is None:
            hint = _STR_HINT if _is_str(b) else ""
            raise _Refused(
                f"record {i}: {field} is msgpack {type_name(b)} ({b:#04x}); {plural} must be bin or nil{hint}"
            )
        start, size = self.sized(i, width)
        self.p = start + size

    def header(self, i: int, j: int) -> None:
        b = self.need(i)
        try:
            n = self.array_header()
        except IndexError:
            raise self.cut_off(i) from None
        if n is None:
            raise _Refused(
                f"record {i}: header {j} is msgpack {type_name(b)} ({b:#04x}), not an array of 2 [name, value]"
            )
        if n != 2:
            raise _Refused(f"record {i}: header {j} is an array of {n} elements, not 2 [name, value]")
        b = self.need(i)
        width = 0 if 0xA0 <= b <= 0xBF else _STR_WIDTHS.get(b)
        if width is None:
            raise _Refused(
                f"record {i}: header {j} name is msgpack {type_name(b)} ({b:#04x}); header names must be str"
            )
        start, size = self.sized(i, width)
        try:
            self.d[start : start + size].decode()
        except UnicodeDecodeError:
            raise _Refused(f"record {i}: header {j} name is not valid UTF-8") from None
        self.p = start + size
        self.need(i)
        self.bin_or_nil(i, f"header {j} value", "header values")

    def timestamp(self, i: int) -> int:
        b = self.need(i)
        d, p, left = self.d, self.p, self.end - self.p
        if b <= 0x7F:
            ts, size = b, 1
        elif b >= 0xE0:
            ts, size = b - 0x100, 1
        else:
            size = {0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9, 0xD0: 2, 0xD1: 3, 0xD2: 5, 0xD3: 9}.get(b, 0)
            if not size:
                raise _Refused(f"record {i}: timestamp is msgpack {type_name(b)} ({b:#04x}); timestamps must be int")
            if left < size:
                raise self.cut_off(i)
            if b == 0xCC:
                ts = d[p + 1]
            elif b == 0xCD:
                ts = _U16(d, p + 1)[0]
            elif b == 0xCE:
                ts = _U32(d, p + 1)[0]
            elif b == 0xCF:
                ts = _U64(d, p + 1)[0]
            elif b == 0xD0:
                ts = _I8(d, p + 1)[0]
            elif b == 0xD1:
                ts = _I16(d, p + 1)[0]
            elif b == 0xD2:
                ts = _I32(d, p + 1)[0]
            else:
                ts = _I64(d, p + 1)[0]
        if not 0 <= ts <= MAX_TIMESTAMP_MS:
            raise _Refused(f"record {i}: timestamp {ts} is out of range: 0 to {MAX_TIMESTAMP_MS} ms")
        self.p = p + size
        return int(ts)

    def record(self, i: int) -> None:
        b = self.d[self.p]
        if b == 0x94:
            self.p += 1
        else:
            try:
                n = self.array_header()
            except IndexError:
                raise self.cut_off(i) from None
            if n is None:
                raise _Refused(
                    f"record {i}: is msgpack {type_name(b)} ({b:#04x}), not an array of 4 "
                    "[timestamp, key, value, headers]"
                )
            if n != 4:
                raise _Refused(f"record {i}: is an array of {n} elements, not 4 [timestamp, key, value, headers]")
        ts = self.timestamp(i)
        if i == 0:
            self.first_ts = ts
        self.max_ts = max(self.max_ts, ts)
        self.need(i)
        self.bin_or_nil(i, "key", "keys")
        self.need(i)
        self.bin_or_nil(i, "value", "values")
        b = self.need(i)
        if b == 0xC0:
            self.p += 1
            return
        try:
            n = self.array_header()
        except IndexError:
            raise self.cut_off(i) from None
        if n is None:
            raise _Refused(
                f"record {i}: headers is msgpack {type_name(b)} ({b:#04x}); headers must be nil or an array of "
                "[name, value] pairs"
            )
        for j in range(n):
            self.header(i, j)

    def payload(self, count: int) -> None:
        if self.end == 0:
            raise _Refused("payload is empty")
        b = self.d[0]
        try:
            n = self.array_header()
        except IndexError:
            raise _Refused("payload ends inside its array header") from None
        if n is None:
            raise _Refused(f"payload is msgpack {type_name(b)} ({b:#04x}), not an array of records")
        if n != count:
            raise _Refused(f"header says {count} records, payload holds {n}")
        for i in range(n):
            if self.p >= self.end:
                raise self.cut_off(i)
            self.record(i)
        if self.p != self.end:
            raise _Refused(f"payload has {self.end - self.p} bytes after its last record")


def walk(
    payload: Any, record_count: int, first_timestamp_ms: int, max_timestamp_ms: int, timestamps: bool
) -> str | None:
    """The byte-by-byte check in Python: None, or what is wrong (the C extension's message)."""
    w = _Walker(bytes(payload))
    try:
        w.payload(record_count)
    except _Refused as e:
        return e.message
    return _timestamps(w.first_ts, w.max_ts, first_timestamp_ms, max_timestamp_ms) if timestamps else None


def _timestamps(first: int, greatest: int, first_timestamp_ms: int, max_timestamp_ms: int) -> str | None:
    if first_timestamp_ms != first:
        return f"header first_timestamp_ms {first_timestamp_ms} is not the first record's timestamp {first}"
    if max_timestamp_ms != greatest:
        return f"header max_timestamp_ms {max_timestamp_ms} is not the greatest record timestamp {greatest}"
    return None


def greatest_timestamp(rows: Sequence[Any]) -> int | None:
    """The greatest timestamp of records msgpack decoded (``use_list=False, raw=False``), -1 for
    none; None when a record is not of the specified types. (A plain loop: on CPython 3.11 it beats
    column-wise ``set(map(type, ...))`` passes.)"""
    greatest = -1
    for r in rows:
        if type(r) is not tuple or len(r) != 4:
            return None
        ts, key, value, headers = r
        if type(ts) is not int or not 0 <= ts <= MAX_TIMESTAMP_MS:
            return None
        if ts > greatest:
            greatest = ts
        if (key is not None and type(key) is not bytes) or (value is not None and type(value) is not bytes):
            return None
        if headers is not None:
            if type(headers) is not tuple:
                return None
            for h in headers:
                if type(h) is not tuple or len(h) != 2 or type(h[0]) is not str:
                    return None
                if h[1] is not None and type(h[1]) is not bytes:
                    return None
    return greatest


def check_py(
    payload: Any, record_count: int, first_timestamp_ms: int, max_timestamp_ms: int, timestamps: bool
) -> str | None:
    """:func:`check` without the C extension: msgpack's decoder and a type check accept a good
    payload; :func:`walk` says what is wrong with any other."""
    try:
        rows = msgpack.unpackb(payload, use_list=False, raw=False)
    except Exception:  # msgpack raises several unrelated classes for malformed input
        rows = None
    greatest = greatest_timestamp(rows) if type(rows) is tuple and len(rows) == record_count else None
    if greatest is not None and greatest >= 0:  # of the specified types, at least one record
        if not timestamps:
            return None
        if _timestamps(rows[0][0], greatest, first_timestamp_ms, max_timestamp_ms) is None:
            return None
    return walk(payload, record_count, first_timestamp_ms, max_timestamp_ms, timestamps) or (
        "payload does not decode as the specified records"  # never reached: walk finds what msgpack refused
    )


#: the C extension's check, None when the pure-Python code runs (see :mod:`~logsvc_wire.native`)
check_c: Check | None = None if extension is None else extension.check

#: check(payload, record_count, first_timestamp_ms, max_timestamp_ms, timestamps) -> None | message
check: Check = check_c if check_c is not None else check_py
