"""Announcing a final result (FCOCR_NOTIFY): an MNS topic message, or a signed HTTPS webhook.

The message is small and holds no field values (they may be personal data):

    {"event": "fcocr.result", "id": "<32 hex>", "sentAt": 1764590400, "bucket": "...", "key": "...",
     "etag": "...", "status": "succeeded", "documentType": "idcard", "resultKey": "<key>.ocr.json",
     "errorCode": null}

A webhook is a POST of that JSON with ``X-Fcocr-Signature: sha256=<hex>``, the HMAC-SHA256 of the exact body
bytes keyed with FCOCR_NOTIFY_SECRET, and ``X-Fcocr-Timestamp`` (= ``sentAt``, which the body also carries and
the signature covers): a receiver checks the signature, refuses a ``sentAt`` more than five minutes old and may
drop an ``id`` it has seen, so a captured request cannot be replayed. An MNS message is the same JSON published
to the topic with the MNS SDK (``mns`` module: aliyun-mns on FC python3.10, aliyun-mns-sdk packaged elsewhere).

Sending happens after the result is written, with the one retry policy (``retry.RetryPolicy``); a notification
that still fails is logged and dropped: it never changes, delays past its retries or loses the result.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

from . import logs
from .errors import FcocrError, PermanentError, TransientError
from .retry import TRANSIENT_STATUSES, RetryPolicy
from .runtime import Runtime

SIGNATURE_HEADER = "X-Fcocr-Signature"
TIMESTAMP_HEADER = "X-Fcocr-Timestamp"
EVENT = "fcocr.result"
REPLAY_WINDOW_SECONDS = 300  # what the README tells receivers to accept
# MNS error codes that may pass (the rest are the configuration's fault: a missing topic, a denied role).
MNS_TRANSIENT_CODES = frozenset({"InternalError", "ServiceUnavailable", "TimeExpired", "QpsLimitExceeded"})


def sign(secret: str, body: bytes) -> str:
    """The X-Fcocr-Signature value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str, *, now: float, window: float = REPLAY_WINDOW_SECONDS) -> bool:
    """What a receiver does: the signature matches the body, and the body's ``sentAt`` is recent."""
    if not hmac.compare_digest(sign(secret, body), signature or ""):
        return False
    try:
        sent = float(json.loads(body)["sentAt"])
    except (ValueError, KeyError, TypeError):
        return False
    return abs(now - sent) <= window


def message_for(doc: Any, result_key: str, *, now: float, message_id: str | None = None) -> dict[str, Any]:
    """The announcement of result ``doc`` (a ResultDocument) written at ``result_key``: where, what, no values."""
    outcome = getattr(doc, "outcome", None)
    return {
        "event": EVENT,
        "id": message_id or secrets.token_hex(16),
        "sentAt": int(now),
        "bucket": doc.source.bucket,
        "key": doc.source.key,
        "etag": doc.source.etag,
        "status": doc.status,
        "documentType": getattr(outcome, "document_type", None),
        "resultKey": result_key,
        "errorCode": (doc.error or {}).get("code"),
    }


@dataclass
class Notifier:
    """Sends announcements to FCOCR_NOTIFY; ``sleep`` and ``clock`` are injectable (tests)."""

    target: str
    settings: Any
    runtime: Runtime
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    sent: int = field(default=0, init=False)

    @classmethod
    def from_settings(cls, settings: Any, runtime: Runtime) -> "Notifier | None":
        target = getattr(settings, "notify", None)
        return cls(target, settings, runtime) if target else None

    def announce(self, doc: Any, result_key: str) -> bool:
        """Send the announcement of ``doc``; True when it was delivered. Never raises."""
        body = json.dumps(message_for(doc, result_key, now=self.clock()), ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")
        policy = RetryPolicy.from_settings(self.settings)
        try:
            policy.call(lambda timeout: self._send(body, timeout), self.runtime, sleep=self.sleep)
        except FcocrError as exc:
            logs.log(logging.WARNING, "notification not sent", requestId=self.runtime.request_id,
                     bucket=doc.source.bucket, key=doc.source.key, errorCode=exc.code)
            return False
        except Exception as exc:  # noqa: BLE001 - an SDK's own error: the result is written, it stays written
            logs.log(logging.WARNING, "notification not sent", requestId=self.runtime.request_id,
                     bucket=doc.source.bucket, key=doc.source.key, errorCode=type(exc).__name__)
            return False
        self.sent += 1
        return True

    def _send(self, body: bytes, timeout: float) -> None:
        if self.target.startswith("mns:"):
            self._publish_mns(self.target.split("/", 1)[1], body, timeout)
        else:
            self._post_webhook(body, timeout)

    def _post_webhook(self, body: bytes, timeout: float) -> None:
        secret = self.settings.notify_secret or ""
        request = urllib.request.Request(self.target, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", SIGNATURE_HEADER: sign(secret, body),
            TIMESTAMP_HEADER: str(json.loads(body)["sentAt"]), "User-Agent": "fcocr-notify"})
        # No proxy: a webhook is reached directly (and a proxy variable must not capture a loopback receiver).
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=timeout) as response:
                response.read(4096)
        except urllib.error.HTTPError as exc:
            text = f"webhook answered HTTP {exc.code}"
            if exc.code in TRANSIENT_STATUSES:
                raise TransientError(text, code="Notify.HTTP%d" % exc.code) from None
            raise PermanentError(text, code="Notify.HTTP%d" % exc.code) from None
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out
            raise TransientError(f"webhook unreachable: {getattr(exc, 'reason', exc)}",
                                 code="Notify.Unreachable") from None

    def _publish_mns(self, topic: str, body: bytes, timeout: float) -> None:
        from mns.account import Account  # the MNS SDK: FC python3.10's aliyun-mns, or aliyun-mns-sdk
        from mns.mns_exception import MNSClientNetworkException, MNSServerException
        from mns.topic import TopicMessage

        creds = self.runtime.credentials
        if not creds:
            raise PermanentError("no credentials to publish to MNS", code="NoCredentials")
        account = Account(self.settings.mns_endpoint, creds.access_key_id, creds.access_key_secret,
                          creds.security_token or "")
        account.mns_client.set_connection_timeout(max(1, int(timeout)))
        try:
            account.get_topic(topic).publish_message(TopicMessage(body.decode("utf-8")))
        except MNSServerException as exc:
            code = f"Notify.Mns.{exc.type}"
            if exc.type in MNS_TRANSIENT_CODES:
                raise TransientError(f"MNS answered {exc.type}", code=code) from None
            raise PermanentError(f"MNS answered {exc.type}", code=code) from None
        except MNSClientNetworkException as exc:
            raise TransientError(f"MNS unreachable: {exc.type}", code="Notify.Unreachable") from None
        except OSError as exc:
            raise TransientError(f"MNS unreachable: {exc}", code="Notify.Unreachable") from None
