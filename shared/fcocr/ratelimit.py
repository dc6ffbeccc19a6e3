"""The one rate limiter: a token bucket on an injectable clock (vendor quotas counted over any sliding second)."""

from __future__ import annotations

import threading
import time
from typing import Callable


class TokenBucket:
    """At most ``rate`` acquisitions a second and ``burst`` at once; the one rate limiter of fcocr.

    Tokens are counted on the clock as it is when a waiter wakes, and never above ``burst``: a waiter that
    wakes late gets no credit for it, so with a burst of 1 two acquisitions are never closer than 1/rate,
    which is what a quota counted over any sliding second needs. Waiters queue on the lock, one at a time.
    Clock and sleep are injectable (tests run a fake clock).
    """

    def __init__(self, rate: float, burst: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not rate > 0 or not burst >= 1:
            raise ValueError(f"a token bucket needs a rate above 0 and a burst of at least 1, not {rate} and {burst}")
        self.rate, self.burst, self.clock, self.sleep = float(rate), float(burst), clock, sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take a token, waiting for it if need be; returns the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self.clock()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1.0 - 1e-9:  # float dust must not cost another round
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return waited
                pause = (1.0 - self._tokens) / self.rate
                self.sleep(pause)
                waited += pause
