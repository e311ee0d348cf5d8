"""How a record's bytes are shown: pretty JSON when they parse, text when they are printable UTF-8,
decoded msgpack when the whole value is one msgpack map or array, hex otherwise.

The result is plain text for a template to put inside ``<pre>``; Jinja2's autoescape turns
``<script>`` into ``&lt;script&gt;`` there, so nothing a producer wrote becomes markup.
Timestamps are shown as ISO-8601 UTC, as the CLI prints them.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Literal

import msgpack

Kind = Literal["null", "json", "text", "msgpack", "hex"]
#: values longer than this are cut in the rendered text (the record's own page shows it all)
MAX_RENDER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Rendered:
    kind: Kind
    text: str
    size: int  # bytes of the original value
    truncated: bool = False


def iso_ms(timestamp_ms: int | None) -> str:
    """A millisecond timestamp as ISO-8601 UTC with milliseconds and ``Z``; ``-`` for none."""
    if timestamp_ms is None or timestamp_ms < 0:
        return "-"
    moment = dt.datetime.fromtimestamp(timestamp_ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp_ms % 1000:03d}Z"


def _printable(text: str) -> bool:
    return all(ch.isprintable() or ch in "\n\r\t" for ch in text)


def _jsonable(obj: Any) -> Any:
    """msgpack's decoded values as JSON can show them: bytes as hex, map keys as strings."""
    if isinstance(obj, dict):
        return {str(_jsonable(k)): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, msgpack.ExtType):
        return {"ext": obj.code, "data": obj.data.hex()}
    return obj


def hex_dump(data: bytes) -> str:
    """Sixteen bytes a line: offset, hex."""
    return "\n".join(f"{i:08x}  {data[i : i + 16].hex(' ')}" for i in range(0, len(data), 16))


def render(data: bytes | None, max_bytes: int = MAX_RENDER_BYTES) -> Rendered:
    """``data`` as text to show, and how it was read (see the module docstring)."""
    if data is None:
        return Rendered("null", "null", 0)
    size = len(data)
    cut = data[:max_bytes]
    truncated = size > max_bytes
    try:
        text = cut.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and not truncated:
        try:
            parsed = json.loads(text)
        except ValueError:
            pass
        else:
            return Rendered("json", json.dumps(parsed, indent=2, ensure_ascii=False), size)
    if text is not None and _printable(text):
        return Rendered("text", text, size, truncated)
    if not truncated:
        try:
            decoded = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except (ValueError, msgpack.UnpackException, TypeError):
            decoded = None
        else:
            if isinstance(decoded, dict | list):
                return Rendered("msgpack", json.dumps(_jsonable(decoded), indent=2, ensure_ascii=False), size)
    return Rendered("hex", hex_dump(cut), size, truncated)


def render_key(data: bytes | None) -> str:
    """A key on one line: its UTF-8 text when printable, else ``0x`` and hex; ``null`` for none."""
    if data is None:
        return "null"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + data.hex()
    return text if text.isprintable() else "0x" + data.hex()


def key_bytes(text: str) -> bytes:
    """A key typed in the browser's filter, as :func:`render_key` shows keys: ``0x…`` is hex."""
    if text.startswith("0x"):
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            pass
    return text.encode("utf-8")
