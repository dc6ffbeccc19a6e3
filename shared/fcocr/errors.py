"""The error vocabulary every part of fcocr speaks.

Two questions decide what happens to a failure: is it the input's fault (a
permanent error, recorded in a failed result and never retried) or the world's
(a transient error, raised so Function Compute's async retry runs)? The class
answers the first; ``code`` is the stable, documented name users match on.
"""

from __future__ import annotations


class FcocrError(Exception):
    """Base: a failure with a stable code and a message fit for a result document."""

    code = "InternalError"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        # Vendor code, vendor message, vendor request id, ...: kept in the result's error object.
        self.details = {k: v for k, v in details.items() if v is not None}


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
