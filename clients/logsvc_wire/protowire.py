"""Protobuf's wire format, for the two messages the wire writes and reads as bytes itself.

The messages that carry record batches (ProduceRequest, FetchResponse) are megabytes each, and
protobuf's library copies every batch into and out of them (see
:mod:`~logsvc_wire.produce_request` and :mod:`~logsvc_wire.fetch_response`). Those modules write
and read them with the primitives here: a field's key (field number << 3 | wire type), base-128
varints, and skipping a field a reader does not know, as
https://protobuf.dev/programming-guides/encoding/ specifies them and protobuf's own parser (upb)
does them.
"""

from __future__ import annotations

UINT32_MAX = (1 << 32) - 1
UINT64_MAX = (1 << 64) - 1

# wire types
VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5
MAX_VARINT_BYTES = 10
#: a field's key is a varint of at most five bytes holding a 32-bit number (so field numbers are
#: at most 2**29 - 1), as protobuf's parser reads it
MAX_KEY_BYTES = 5

#: varints of 0 - 127 are one byte: partitions and most lengths of the small numbers
_SMALL = [bytes((i,)) for i in range(128)]


def key(number: int, wire: int) -> int:
    """The key of field ``number`` of wire type ``wire`` (one byte for fields 1 - 15)."""
    return number << 3 | wire


def varint(value: int) -> bytes:
    """``value`` (0 or more) as a protobuf base-128 varint, low groups first."""
    if value < 128:
        return _SMALL[value]
    out = bytearray()
    while value > 127:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def number_field(written_key: bytes, value: int) -> bytes:
    """A varint field as protobuf writes it in proto3: ``written_key`` (:func:`varint` of its key)
    and ``value``, or nothing when ``value`` is the default 0."""
    return written_key + varint(value) if value else b""


def bytes_head(written_key: bytes, size: int) -> bytes:
    """The key and length of a bytes or string field of ``size`` bytes, the bytes to follow; nothing
    when ``size`` is 0 (proto3 leaves an empty bytes or string field out). A submessage is written
    even when empty, so its head is ``written_key + varint(size)`` always."""
    return written_key + varint(size) if size else b""


def check_range(value: int, top: int, field: str) -> None:
    """ValueError naming ``field`` unless ``0 <= value <= top`` (what protobuf refuses to put in an
    unsigned field)."""
    if not 0 <= value <= top:
        raise ValueError(f"{field} {value} is out of range [0, {top}]")


def read_varint(data: bytes, i: int, end: int) -> tuple[int, int]:
    """The varint at ``i`` of ``data`` (as uint64: bits past the 64th dropped, as protobuf does)
    and the offset after it; ValueError when it runs past ``end`` or over ten bytes."""
    if i < end and data[i] < 0x80:
        return data[i], i + 1
    value = shift = 0
    for j in range(i, min(end, i + MAX_VARINT_BYTES)):
        byte = data[j]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & UINT64_MAX, j + 1
        shift += 7
    if end - i >= MAX_VARINT_BYTES:
        raise ValueError(f"varint at byte {i} is longer than {MAX_VARINT_BYTES} bytes")
    raise ValueError(f"varint at byte {i} runs past the end of its message (byte {end})")


def read_uint32(data: bytes, i: int, end: int) -> tuple[int, int]:
    """A ``uint32`` field's varint at ``i``: its low 32 bits (as protobuf keeps of a longer one) and
    the offset after it."""
    value, after = read_varint(data, i, end)
    return value & UINT32_MAX, after


def read_key(data: bytes, i: int, end: int) -> tuple[int, int]:
    """The field key at ``i`` and the offset after it; ValueError unless it is a varint of at most
    five bytes holding a 32-bit number."""
    if i < end and data[i] < 0x80:
        return data[i], i + 1
    value, after = read_varint(data, i, end)
    if after - i > MAX_KEY_BYTES or value > UINT32_MAX:
        raise ValueError(f"field key at byte {i} is not a varint of a 32-bit number in at most {MAX_KEY_BYTES} bytes")
    return value, after


def read_length(data: bytes, i: int, end: int) -> tuple[int, int]:
    """A length-delimited field's length at ``i``, checked to fit before ``end``, and its start."""
    size, start = read_varint(data, i, end)
    if size > end - start:
        raise ValueError(f"field of {size} bytes at byte {start} runs past the end of its message (byte {end})")
    return size, start


def skip_field(data: bytes, field_key: int, i: int, end: int) -> int:
    """The offset after the value at ``i`` of the field with key ``field_key``, a field the reader
    does not read (unknown, or of another wire type than its own, which protobuf skips alike):
    ValueError for field number 0, wire types 6 and 7, an unclosed group, or a value past ``end``."""
    number, wire = field_key >> 3, field_key & 7
    if number == 0:
        raise ValueError(f"field number 0 before byte {i}")
    if wire == VARINT:
        return read_varint(data, i, end)[1]
    if wire == LENGTH:
        size, start = read_length(data, i, end)
        return start + size
    if wire in (FIXED64, FIXED32):
        after = i + (8 if wire == FIXED64 else 4)
        if after > end:
            raise ValueError(f"fixed-width field at byte {i} runs past the end of its message (byte {end})")
        return after
    if wire == START_GROUP:
        while True:  # up to the END_GROUP of the same field number, nested groups skipped whole
            if i >= end:
                raise ValueError(f"group {number} is not closed before byte {end}")
            inner, i = read_key(data, i, end)
            if inner & 7 == END_GROUP:
                if inner >> 3 != number:
                    raise ValueError(f"group {number} closed as group {inner >> 3} before byte {i}")
                return i
            i = skip_field(data, inner, i, end)
    raise ValueError(f"wire type {wire} of field {number} before byte {i} is not a protobuf wire type")


def read_text(data: bytes, view: memoryview, i: int, end: int, name: str) -> tuple[str, int]:
    """The string field (length-delimited, strict UTF-8, as protobuf requires of ``string``) at
    ``i`` of ``data`` (``view`` is ``memoryview(data)``) and the offset after it; ``name`` says
    which field, for the ValueError."""
    size, start = read_length(data, i, end)
    try:
        return str(view[start : start + size], "utf-8"), start + size
    except UnicodeDecodeError as e:
        raise ValueError(f"{name} at byte {start} is not valid UTF-8: {e.reason}") from None


def read_view(data: bytes, view: memoryview, i: int, end: int) -> tuple[memoryview, int]:
    """The bytes field at ``i`` of ``data`` as a slice of ``view`` (``memoryview(data)``, no copy)
    and the offset after it."""
    size, start = read_length(data, i, end)
    return view[start : start + size], start + size
