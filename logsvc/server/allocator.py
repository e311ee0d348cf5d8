"""How ``logsvc serve`` has the C heap keep the memory of its large, short-lived buffers.

Every produced batch passes through buffers the size of its request or of a commit group: the
gRPC message, the batches' bytes, LMDB's dirty pages (tens of MB a second at full speed), each
freed again within a commit. glibc's defaults hand such memory back to the kernel as soon as it is
free (blocks over the dynamic mmap threshold are unmapped, a heap top over twice that trimmed), so
the next request faults every page in again, zeroed: 6,000 to 52,000 page faults per million
records produced, and on a virtual machine that reports free memory to its host, a fault may
cost the host's work as well. :func:`keep_freed_memory` fixes both thresholds high
(``mallopt``), so the heap keeps what a busy broker has just used and reuses it. On the reference
machine, six alternating runs each of 5 M records produced (after 1 M to warm up): page faults
3,400 to 9,600 per million instead; the broker's CPU per million records 0.32 to 0.36 s (median
0.335) instead of 0.32 to 0.42 s (median 0.355), the slow runs being the ones with the most
faults; peak RSS 286 to 354 MB instead of 282 to 340 MB.

The cost: memory freed after a burst stays in the process, up to :data:`TRIM_THRESHOLD_BYTES` at
the top of each heap, instead of going back to the operating system. Only with glibc; nothing
elsewhere. An operator who sets malloc tunables (``GLIBC_TUNABLES`` naming ``glibc.malloc``,
``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``) keeps them.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Mapping

log = logging.getLogger(__name__)

#: glibc's mallopt parameters
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: blocks this large or larger are still mapped on their own (glibc's largest dynamic threshold)
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
#: free memory at the top of a heap is given back only beyond this
TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024
_OPERATOR_SET = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def keep_freed_memory(environ: Mapping[str, str] = os.environ) -> bool:
    """Set this process's heap thresholds (see the module docstring); True when set, False when the
    C library is not glibc or the operator set malloc tunables."""
    if "glibc.malloc" in environ.get("GLIBC_TUNABLES", "") or any(name in environ for name in _OPERATOR_SET):
        log.debug("malloc tunables set in the environment: left as they are")
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl and others have no such symbol)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
