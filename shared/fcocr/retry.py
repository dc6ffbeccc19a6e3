"""One error classification and one retry policy for every vendor.

Each vendor client turns its failures into ``VendorFault`` (HTTP status, vendor code, message,
request id) or lets a network exception through; ``classify`` decides, from the tables below,
whether the fault is the input's (permanent: a failed result keeping the vendor's code, message
and request id) or the world's (transient: retried here with exponential backoff and jitter, as
long as the function has time left, then raised so Function Compute retries the event).

Which vendor codes mean "try again later" is each family's knowledge (``Family.transient_codes``, matched
against the fault's code and, for families that use statuses as codes, its HTTP status); the statuses below are
transient for every vendor.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from .errors import FcocrError, PermanentError, TransientError, vendor_text
from .runtime import Runtime

T = TypeVar("T")

# An answer that is not the JSON the vendor documents (cut off, a proxy's page) is worth another try.
TRANSIENT_EVERYWHERE = frozenset({"MalformedResponse"})
# HTTP statuses that are transient whatever the body says.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass
class VendorFault(Exception):
    """A vendor's refusal, as it arrived: the raw facts ``classify`` decides on."""

    family: str
    status: int | None
    code: str
    message: str
    request_id: str | None = None

    def __str__(self) -> str:
        return f"{self.family} {self.status or ''} {self.code}: {self.message}".replace("  ", " ")


def classify(fault: VendorFault, *, code_prefix: str | None = None) -> FcocrError:
    """The fcocr error for a vendor fault: TransientError or PermanentError, vendor facts kept."""
    from .recognizers import transient_codes

    family_codes = transient_codes(fault.family)
    details = dict(vendorCode=fault.code or None, vendorMessage=fault.message or None,
                   vendorRequestId=fault.request_id or None)
    prefix = code_prefix or fault.family.capitalize()
    code = f"{prefix}.{fault.code}" if fault.code else f"{prefix}.HTTP{fault.status}"
    text = f"{fault.family} answered {fault.status or ''} {fault.code}: {vendor_text(fault.message)}".replace("  ", " ")
    if (fault.code in family_codes or str(fault.status) in family_codes or fault.code in TRANSIENT_EVERYWHERE
            or fault.status in TRANSIENT_STATUSES):
        return TransientError(text, code=code, **details)
    return PermanentError(text, code=code, **details)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by attempts and by the function's remaining time.

    ``reserve`` seconds are kept back for writing the result document after the last attempt, so a
    slow vendor cannot eat the time the function needs to record what happened.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    call_timeout: float = 15.0
    min_call_timeout: float = 2.0
    reserve: float = 5.0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Backoff before attempt ``attempt + 1``: full exponential step, half of it jittered."""
        step = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return step / 2 + rng() * step / 2

    def timeout(self, runtime: Runtime | None) -> float:
        """The timeout for the next call: the policy's, cut to the time left minus the reserve."""
        remaining = runtime.remaining_seconds() if runtime is not None else None
        if remaining is None:
            return self.call_timeout
        budget = remaining - self.reserve
        if budget < self.min_call_timeout:
            raise TransientError(f"only {remaining:.1f} s of the function's time left: not starting another vendor call",
                                 code="DeadlineNear")
        return min(self.call_timeout, budget)

    def call(self, fn: Callable[[float], T], runtime: Runtime | None = None, *,
             sleep: Callable[[float], None] = time.sleep, rng: Callable[[], float] = random.random,
             on_retry: Callable[[int, FcocrError, float], None] | None = None) -> T:
        """``fn(timeout)`` until it succeeds, raises a permanent error, or attempts/time run out."""
        attempt = 0
        while True:
            attempt += 1
            timeout = self.timeout(runtime)
            try:
                return fn(timeout)
            except TransientError as exc:
                if attempt >= self.attempts:
                    raise
                pause = self.delay(attempt, rng)
                remaining = runtime.remaining_seconds() if runtime is not None else None
                if remaining is not None and remaining - self.reserve - pause < self.min_call_timeout:
                    raise
                if on_retry is not None:
                    on_retry(attempt, exc, pause)
                sleep(pause)

    @classmethod
    def from_settings(cls, settings) -> "RetryPolicy":
        return cls(attempts=settings.retry_attempts, base_delay=settings.retry_base_ms / 1000.0,
                   call_timeout=settings.call_timeout)
