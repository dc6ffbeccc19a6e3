"""Fallback recognizers: when a route's recognizer cannot answer for a reason of the vendor, the next one named in
the route's ``fallback`` list is tried, within the same claim on the object version.

The next recognizer is tried only when the failure was the vendor's, not the input's, and nothing was charged:
the recognizer is not configured (no credentials, no APPCODE), a transient fault outlived its retries
(throttling, a service error), or the vendor refused the account (a family's ``account_codes``: credentials,
subscription, quota). After a charged answer that recognized nothing, trying another vendor pays twice: that
happens only where the route sets ``fallbackAfterBilled: true``. The result names the recognizer that answered
and, in ``attempts``, why each earlier one did not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, FcocrError
from .model import Capability, Outcome
from .recognizers import capability, family


@dataclass
class Attempted:
    """How the chain ended: the recognizer that answered or failed last, its Outcome or error, the earlier ones."""

    recognizer: str
    options: dict[str, Any]
    outcome: Outcome | None = None
    error: FcocrError | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    billed: dict[str, int] = field(default_factory=dict)  # calls charged by the recognizers in ``attempts``


def billed_calls(recognizer: str, outcome: Outcome | None) -> int:
    """Vendor calls charged for a document: as the family counted them; a family that does not count is charged
    one call per accepted paid request (a result, or a pending task); nothing for a refusal or a free engine."""
    if outcome is None:
        return 0
    if outcome.billed_calls is not None:
        return outcome.billed_calls
    try:
        _, cap = capability(recognizer)
    except FcocrError:
        return 0
    return 1 if cap.paid else 0


def account_codes(name: str) -> frozenset[str]:
    """The vendor codes family ``name`` declares as the account's fault (entries ending in '.' are prefixes)."""
    return frozenset(getattr(family(name), "account_codes", frozenset()))


def reason_to_fall_back(cap: Capability, exc: FcocrError, billed: int, after_billed: bool) -> str | None:
    """Why the next recognizer may be tried after ``exc``; None when it may not."""
    if billed:
        return "it answered and was charged, but recognized nothing usable (fallbackAfterBilled)" if after_billed else None
    if isinstance(exc, ConfigError):
        return "it is not configured"
    if exc.retryable:
        return "a fault of the service outlived its retries"
    vendor_code = str(exc.details.get("vendorCode") or "")
    if vendor_code and any(vendor_code == c or (c.endswith(".") and vendor_code.startswith(c))
                           for c in account_codes(cap.family)):
        return "the vendor refused the account (credentials, subscription or quota)"
    return None


def recognize(chain: list[tuple[str, dict[str, Any], Capability]], job: Any, after_billed: bool) -> Attempted:
    """Run ``chain`` (the route's recognizer, then its fallbacks) until one answers or may not be passed over."""
    done = Attempted(chain[0][0], chain[0][1])
    for position, (recognizer, options, cap) in enumerate(chain):
        done.recognizer, done.options = recognizer, options
        try:
            done.outcome, done.error = family(cap.family).recognize(cap, job, options), None
            return done
        except FcocrError as exc:
            done.error = exc
            if position == len(chain) - 1:
                return done
            billed = billed_calls(recognizer, getattr(exc, "outcome", None))
            reason = reason_to_fall_back(cap, exc, billed, after_billed)
            if reason is None:
                return done
            error = {"code": exc.code, "message": exc.message, "retryable": exc.retryable, **exc.details}
            done.attempts.append({"recognizer": recognizer, "error": error, "billedCalls": billed,
                                  "reason": f"{reason}: tried {chain[position + 1][0]} next"})
            done.billed[recognizer] = done.billed.get(recognizer, 0) + billed
    return done
