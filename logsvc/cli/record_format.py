"""kcat's ``-f`` format strings for ``logsvc consume``: one compiled writer per string.

``%t`` topic, ``%p`` partition, ``%o`` offset, ``%k`` key, ``%s`` value, ``%K`` key length and
``%S`` value length (-1 for null), ``%T`` timestamp (ms), ``%h`` headers as ``name=value,...``,
``%%`` a percent sign; backslash escapes as :mod:`logsvc.cli.escapes` (``\\n``, ``\\t``, ...).
A null key or value (a tombstone) prints as the ``null`` bytes given (``null`` by default,
kcat's ``NULL`` with ``-Z``). Keys, values and header values are written byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable

from logsvc.cli.escapes import unescape
from logsvc_client.records import Record

Part = Callable[[Record], bytes]

CODES = "tpoksKSTh%"


def _length(data: bytes | None) -> bytes:
    return b"-1" if data is None else str(len(data)).encode()


def _headers(record: Record) -> bytes:
    return b",".join(name.encode() + b"=" + value for name, value in record.headers or ())


def compile_format(fmt: str, null: bytes) -> Callable[[Record], bytes]:
    """The writer of ``fmt``: a Record to the bytes to print; ValueError naming an unknown
    ``%`` code or a bad escape."""
    text = unescape(fmt)
    parts: list[Part | bytes] = []
    codes: dict[int, Part] = {
        ord("t"): lambda r: r.topic.encode(),
        ord("p"): lambda r: str(r.partition).encode(),
        ord("o"): lambda r: str(r.offset).encode(),
        ord("k"): lambda r: null if r.key is None else r.key,
        ord("s"): lambda r: null if r.value is None else r.value,
        ord("K"): lambda r: _length(r.key),
        ord("S"): lambda r: _length(r.value),
        ord("T"): lambda r: str(r.timestamp_ms).encode(),
        ord("h"): _headers,
    }
    literal = bytearray()
    i = 0
    while i < len(text):
        j = text.find(b"%", i)
        if j < 0:
            literal += text[i:]
            break
        literal += text[i:j]
        if j + 1 >= len(text):
            raise ValueError(f"{fmt!r} ends with a lone %: use %% for a percent sign")
        code = text[j + 1]
        if code == ord("%"):
            literal += b"%"
        elif code in codes:
            if literal:
                parts.append(bytes(literal))
                literal.clear()
            parts.append(codes[code])
        else:
            raise ValueError(f"%{chr(code)} in {fmt!r} is not a format code: use %t %p %o %k %s %K %S %T %h or %%")
        i = j + 2
    if literal:
        parts.append(bytes(literal))
    return lambda r: b"".join(p if isinstance(p, bytes) else p(r) for p in parts)
