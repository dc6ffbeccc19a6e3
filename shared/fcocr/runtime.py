"""What an invocation knows about where it runs: credentials, request id, region, time left.

Credentials come from ``context.credentials`` when the runtime provides it (FC python3.10)
and from the environment otherwise (python3.12 has no ``context.credentials``; outside FC,
the developer's shell). This is the one place every function reads them.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .errors import register_secret


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    def __bool__(self) -> bool:
        return bool(self.access_key_id and self.access_key_secret)


def credentials_from(context: Any = None, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The one helper: FC context first, then ALIBABA_CLOUD_* variables; None when neither has a key."""
    creds = getattr(context, "credentials", None) if context is not None else None
    if creds is not None:
        ak = getattr(creds, "access_key_id", None) or getattr(creds, "accessKeyId", None)
        sk = getattr(creds, "access_key_secret", None) or getattr(creds, "accessKeySecret", None)
        token = getattr(creds, "security_token", None) or getattr(creds, "securityToken", None)
        if ak and sk:
            return _registered(Credentials(ak, sk, token or None))
    env = os.environ if env is None else env
    ak = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "").strip()
    sk = env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "").strip()
    if ak and sk:  # checked for stray characters at start-up (config.Settings.from_env)
        return _registered(Credentials(ak, sk, env.get("ALIBABA_CLOUD_SECURITY_TOKEN", "").strip() or None))
    return None


def _registered(creds: Credentials) -> Credentials:
    # Masked wherever a library's error text (or a vendor's echo of a presigned URL) might quote them.
    register_secret(creds.access_key_id)
    register_secret(creds.access_key_secret)
    register_secret(creds.security_token)
    return creds


@dataclass
class Runtime:
    """One invocation's facts, built from the FC context (or a local stand-in)."""

    request_id: str
    credentials: Credentials | None = None
    region: str = ""
    function_name: str = ""
    deadline: float | None = None  # a ``clock()`` value; None = no limit known
    # What "now" is for the deadline: injected by tests, so a deadline never depends on the machine's load.
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def from_context(cls, context: Any = None) -> "Runtime":
        request_id = str(getattr(context, "request_id", "") or "") or f"local-{uuid.uuid4().hex[:12]}"
        function = getattr(context, "function", None)
        timeout = getattr(function, "timeout", None)
        deadline = None
        if timeout:
            try:
                deadline = time.monotonic() + float(timeout)
            except (TypeError, ValueError):
                deadline = None
        return cls(
            request_id=request_id,
            credentials=credentials_from(context),
            region=str(getattr(context, "region", "") or ""),
            function_name=str(getattr(function, "name", "") or ""),
            deadline=deadline,
        )

    def remaining_seconds(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - self.clock())


@dataclass
class LocalFunction:
    name: str = "ocr_upload"
    timeout: int = 600
    memory_size: int = 2048
    handler: str = "index.handler"


@dataclass
class LocalContext:
    """A stand-in for FC's context when running handlers on a laptop: no credentials, a fresh request id."""

    request_id: str = field(default_factory=lambda: f"local-{uuid.uuid4().hex[:12]}")
    credentials: Any = None
    region: str = "cn-shanghai"
    function: LocalFunction = field(default_factory=LocalFunction)
