"""How often and how long to retry: plain policies, shared by every transport and by the sender.

:class:`Backoff` is the wait before attempt ``n``; :class:`RetryPolicy` bounds a retried call by
count and by time. Neither knows a network library.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter: attempt ``n`` waits U(0.5, 1) x min(cap, base x 2^n)."""

    base_ms: float = 100
    max_ms: float = 5_000

    def delay_s(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        ceiling = min(self.max_ms, self.base_ms * (2 ** min(attempt, 30)))
        return ceiling * (0.5 + 0.5 * rng()) / 1000


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry an operation that failed with a retriable error."""

    retries: int = 5
    backoff: Backoff = Backoff()
    timeout_ms: float = 30_000  # per attempt, and the bound on the whole retry loop
