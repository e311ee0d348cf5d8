"""Request messages built from the caller's values, with protobuf's range errors translated.

protobuf refuses an integer its field cannot hold (a partition count past 2^32 - 1 in a
``uint32``, a timestamp past 2^63 - 1 in an ``int64``, a negative number in an unsigned field)
with a bare ``ValueError: Value out of range: N`` that names neither the field nor the call.
:func:`build` makes the message and turns that error into :class:`InvalidRequest` naming the
field, the value and what the field holds, before anything is sent. The produce path builds its
messages directly: every number in them is the client's own (partitions it computed, sequences
it counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from ..errors import InvalidRequest

M = TypeVar("M", bound=Message)

#: what each integer kind of field holds, by protobuf's C++ type
_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: ("int32", -(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: ("int64", -(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: ("uint32", 0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: ("uint64", 0, 2**64 - 1),
}


def build(message: type[M], **fields: Any) -> M:
    """``message(**fields)``; InvalidRequest naming the field when a value does not fit it."""
    try:
        return message(**fields)
    except (ValueError, TypeError) as e:
        raise InvalidRequest(_explain(message.DESCRIPTOR, fields, e)) from None


def _explain(descriptor: Any, fields: Mapping[str, Any], error: Exception) -> str:
    """Which of ``fields`` the message cannot hold, and why; protobuf's own words when no single
    integer is out of its field's range (a wrong type, say)."""
    for name, value in fields.items():
        field = descriptor.fields_by_name.get(name)
        if field is None or field.cpp_type not in _RANGES:
            continue
        kind, low, high = _RANGES[field.cpp_type]
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, int) and not low <= v <= high:
                article = "an" if kind.startswith("i") else "a"
                return f"{name}={v} is out of range: {descriptor.name}.{name} is {article} {kind}, {low} to {high}"
    return f"cannot build {descriptor.name}: {error}"
