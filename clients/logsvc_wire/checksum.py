"""The CRC-32 of a batch payload (the IEEE polynomial, zlib's ``crc32``; see the proto).

Every produced batch is checksummed by the producer and checked by the broker, and every fetched
one by the consumer (``check_crcs``): at about 4 GB/s, zlib's CRC took a tenth of a consumer's
time per record. ISA-L's (the ``isal`` package, carry-less multiplication: about 50 GB/s on this
machine kind) computes the same value; zlib's remains the fallback where ``isal`` has no wheel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    from isal.isal_zlib import crc32 as _crc32
except ImportError:  # no isal wheel for this platform: the same checksum, slower
    from zlib import crc32 as _crc32

#: ``crc32(data) -> int``: zlib's CRC-32 of a bytes-like object
crc32: Callable[[Any], int] = _crc32
