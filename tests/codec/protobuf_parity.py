"""What the tests of the wire's own protobuf readers and writers share: hand-made fields, random
mutations of valid bytes, and what a reader makes of bytes (its values, or "refused")."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from google.protobuf.message import DecodeError

from logsvc_wire.protowire import varint


def field(number: int, wire: int, payload: bytes) -> bytes:
    """One field: its key, then ``payload`` (a length-delimited field's length is added here)."""
    return varint(number << 3 | wire) + (varint(len(payload)) + payload if wire == 2 else payload)


def outcome(read: Callable[[bytes], Any], data: bytes) -> Any:
    """What ``read`` makes of ``data``: its values, or "refused" (protobuf's DecodeError, or the
    wire's ValueError)."""
    try:
        return read(data)
    except (DecodeError, ValueError):
        return "refused"


def mutations(data: bytes, seed: int, count: int = 3000) -> Iterator[bytes]:
    """``count`` copies of ``data``, each with one to three bytes changed, inserted or removed at
    random (the same ones for the same seed)."""
    rng = random.Random(seed)
    for _ in range(count):
        mutated = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(mutated) + 1)
            kind = rng.randrange(3)
            if kind == 0 and at < len(mutated):
                mutated[at] = rng.randrange(256)
            elif kind == 1:
                mutated[at:at] = bytes([rng.randrange(256)])
            else:
                del mutated[at : at + rng.randrange(1, 4)]
        yield bytes(mutated)
