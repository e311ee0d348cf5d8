"""Records from a byte stream, split at a delimiter, as they arrive: ``logsvc produce``'s input.

Reads the file descriptor directly (a buffered reader cannot say whether it holds a whole
record), so :meth:`RecordReader.ready` can tell whether the next record can be had without
waiting. The delimiter is any byte string (``\\n`` by default, ``\\0`` for NUL-separated binary
values); the input is split there and nowhere else, so a value is its bytes exactly. An empty
delimiter makes the whole input one record.
"""

from __future__ import annotations

import os
import select
from typing import IO

READ_CHUNK_BYTES = 64 * 1024


class RecordReader:
    """The records of ``stream`` separated by ``delimiter`` (each returned without it; the last
    one needs none). With ``delimiter`` empty, the whole stream is one record, even when empty."""

    def __init__(self, stream: IO[bytes], delimiter: bytes = b"\n") -> None:
        self._stream = stream
        try:
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None
        self._delim = delimiter
        self._buf = b""
        self._pos = 0  # start of the unread part of _buf
        self._scan = 0  # no delimiter starts in _buf[_pos:_scan]
        self._eof = False
        self._whole_done = False

    def _find(self) -> int:
        if not self._delim:
            return -1
        i = self._buf.find(self._delim, max(self._pos, self._scan))
        self._scan = max(self._pos, len(self._buf) - len(self._delim) + 1) if i < 0 else i
        return i

    def _fill(self) -> None:
        fd = self._fd
        chunk = os.read(fd, READ_CHUNK_BYTES) if fd is not None else self._stream.read(READ_CHUNK_BYTES)
        if not chunk:
            self._eof = True
            return
        self._buf = self._buf[self._pos :] + chunk
        self._scan = max(0, self._scan - self._pos)
        self._pos = 0

    def ready(self) -> bool:
        """True when :meth:`read` would return (a record, or the end) without waiting."""
        if self._fd is None or self._eof:
            return True
        while self._find() < 0:
            readable, _, _ = select.select([self._fd], [], [], 0)
            if not readable:
                return False
            self._fill()
            if self._eof:
                return True
        return True

    def read(self) -> bytes | None:
        """The next record, without its delimiter; None at the end."""
        while True:
            i = self._find()
            if i >= 0:
                record = self._buf[self._pos : i]
                self._pos = self._scan = i + len(self._delim)
                return record
            if self._eof:
                record = self._buf[self._pos :]
                self._buf, self._pos, self._scan = b"", 0, 0
                if not self._delim:
                    if self._whole_done:
                        return None
                    self._whole_done = True
                    return record
                return record or None
            self._fill()
