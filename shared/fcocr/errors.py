"""The error vocabulary every part of fcocr speaks.

Two questions decide what happens to a failure: is it the input's fault (a
permanent error, recorded in a failed result and never retried) or the world's
(a transient error, raised so Function Compute's async retry runs)? The class
answers the first; ``code`` is the stable, documented name users match on.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict

# ---------------------------------------------------------------------------------------------- the scrubber
# Every credential value fcocr holds (settings read at start-up, the FC context's keys) is registered here,
# and every error text, result error and log line passes through ``scrub``: whichever library produced a
# text (an HTTP client quoting a header, an SDK echoing a request), a registered value never leaves.
MASK = "***"
MIN_SECRET_LENGTH = 8  # shorter values would mask ordinary words and numbers (real keys are 16-40 characters)
_SECRETS: OrderedDict[str, None] = OrderedDict()
_SECRETS_LIMIT = 64  # STS keys rotate: keep the latest ones, not every one an instance ever saw
_SECRETS_LOCK = threading.Lock()
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_MESSAGE_CHARS = 2000
MAX_VENDOR_TEXT_CHARS = 300


def register_secret(value: object) -> None:
    """Mask ``value`` (and its JSON-escaped spelling) in every error text, result and log line from now on."""
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        return
    with _SECRETS_LOCK:
        for spelling in {value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1]}:
            _SECRETS[spelling] = None
            _SECRETS.move_to_end(spelling)
        while len(_SECRETS) > _SECRETS_LIMIT:
            _SECRETS.popitem(last=False)


def forget_secrets() -> None:
    """Forget every registered value (tests: one test's credentials are not the next one's)."""
    with _SECRETS_LOCK:
        _SECRETS.clear()


def scrub(text: str) -> str:
    """``text`` with every registered credential replaced by ``***``."""
    if not _SECRETS or not isinstance(text, str):
        return text
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)  # a secret containing another is masked whole
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def clean_text(text: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Fit for a result, a log line or a terminal: credentials masked, control characters (line breaks,
    terminal escapes) shown as spaces, at most ``limit`` characters."""
    text = _CONTROL.sub(" ", scrub(str(text)))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def vendor_text(text: object) -> str:
    """A vendor's own words (an error message, which may quote the document back): cleaned and kept short."""
    return clean_text(text, MAX_VENDOR_TEXT_CHARS)


class FcocrError(Exception):
    """Base: a failure with a stable code and a message fit for a result document."""

    code = "InternalError"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None, **details: object) -> None:
        message = clean_text(message)
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = clean_text(code, 200)
        # Vendor code, vendor message, vendor request id, ...: kept in the result's error object.
        self.details = {k: vendor_text(v) if isinstance(v, str) else v for k, v in details.items() if v is not None}


class ConfigError(FcocrError):
    """A setting, routes file or recognizer id is wrong: found at start-up, not at the first upload."""

    code = "ConfigError"


class PermanentError(FcocrError):
    """Retrying cannot help: the input or the request is wrong. Recorded as a failed result."""

    code = "PermanentError"


class InputError(PermanentError):
    """The uploaded object cannot be recognized: empty, not an image, truncated, too large, a bomb."""

    code = "InvalidInput"


class UnsafeKeyError(PermanentError):
    """A key that would escape its bucket directory in local storage."""

    code = "UnsafeKey"


class ObjectNotFound(PermanentError):
    code = "ObjectNotFound"


class TransientError(FcocrError):
    """The world failed (storage, network, throttling): raise so the platform retries."""

    code = "TransientError"
    retryable = True
