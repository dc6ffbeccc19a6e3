"""Loopback emulators of where fcocr announces results: an MNS topic endpoint, and an HTTPS-style webhook.

``MnsEmulator`` answers PublishMessage (``POST /topics/<name>/messages``) as MNS does: it checks the
``Authorization: MNS <AccessKeyId>:<Signature>`` header byte-for-byte (HMAC-SHA1, base64, over
``VERB\\nContent-MD5\\nContent-Type\\nDate\\n<x-mns-* headers, sorted>/topics/<name>/messages``), the STS
``security-token``, ``x-mns-version: 2015-06-06``, the clock skew of ``Date`` (15 minutes) and the body's
Content-MD5 (the SDK sends base64 of the *hex* MD5), then answers 201 with ``MessageId`` and ``MessageBodyMD5``
(the upper-hex MD5 of the message body). Unknown topics answer 404 ``TopicNotExist``; ``fail_next(n, status,
code)`` injects faults. Published messages are kept in ``messages`` ((topic, body text) pairs).

``WebhookReceiver`` is a loopback HTTP endpoint that verifies ``X-Fcocr-Signature`` (HMAC-SHA256 of the body
with the shared secret) and the body's ``sentAt`` against an injected clock; verified messages are kept in
``received``, rejected requests answer 401. ``fail_next(n, status)`` answers the next requests with ``status``.

Pure standard library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
import xml.etree.ElementTree as ET
from typing import Callable, Dict, List, Optional, Tuple

from ._http import LoopbackEmulator, LoopbackHandler, parse_http_date

MNS_XMLNS = "http://mns.aliyuncs.com/doc/v1/"
MNS_VERSION = "2015-06-06"
SKEW_SECONDS = 15 * 60


def _mns_error(status: int, code: str, message: str, request_id: str) -> Tuple[int, bytes]:
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error xmlns="%s"><Code>%s</Code><Message>%s</Message>'
            '<RequestId>%s</RequestId><HostId>mns.emulator</HostId></Error>'
            % (MNS_XMLNS, code, message, request_id))
    return status, body.encode("utf-8")


class _MnsHandler(LoopbackHandler):
    server_header = "MnsEmulator"

    def _handle(self) -> None:
        request_id = uuid.uuid4().hex.upper()[:24]
        body = self._read_body()
        status, payload = self.emulator._answer(self.command, self._origin_target(), self._lower_headers(), body,
                                                request_id)
        self.send_response(status)
        self.send_header("x-mns-request-id", request_id)
        self.send_header("Content-Type", "text/xml;charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()


class MnsEmulator(LoopbackEmulator):
    """Topics on 127.0.0.1 that take PublishMessage from the MNS SDK; see the module docstring."""

    def __init__(self, credentials: Dict[str, Tuple[str, Optional[str]]], topics=("fcocr-results",), *,
                 clock: Callable[[], float] = time.time):
        super().__init__(_MnsHandler, "mns-emulator")
        self.credentials = dict(credentials)  # AccessKeyId -> (secret, security token or None)
        self.topics = set(topics)
        self.clock = clock
        self.messages: List[Tuple[str, str]] = []
        self.rejected: List[str] = []  # error codes answered
        self._faults: List[Tuple[int, str]] = []

    def fail_next(self, count: int, status: int = 503, code: str = "ServiceUnavailable") -> None:
        with self._lock:
            self._faults.extend([(status, code)] * count)

    def _answer(self, method: str, target: str, headers: Dict[str, str], body: bytes,
                request_id: str) -> Tuple[int, bytes]:
        try:
            topic = self._check(method, target, headers, body)
        except _Refused as refused:
            self.rejected.append(refused.code)
            return _mns_error(refused.status, refused.code, refused.message, request_id)
        with self._lock:
            if self._faults:
                status, code = self._faults.pop(0)
                self.rejected.append(code)
                return _mns_error(status, code, "injected fault", request_id)
        try:
            root = ET.fromstring(body)
            text = root.findtext("{%s}MessageBody" % MNS_XMLNS)
        except ET.ParseError:
            text = None
        if text is None:
            return _mns_error(400, "InvalidArgument", "the body is not a Message with a MessageBody", request_id)
        with self._lock:
            self.messages.append((topic, text))
        answer = ('<?xml version="1.0" encoding="UTF-8"?>\n<Message xmlns="%s"><MessageId>%s</MessageId>'
                  '<MessageBodyMD5>%s</MessageBodyMD5></Message>'
                  % (MNS_XMLNS, uuid.uuid4().hex.upper(), hashlib.md5(text.encode("utf-8")).hexdigest().upper()))
        return 201, answer.encode("utf-8")

    def _check(self, method: str, target: str, headers: Dict[str, str], body: bytes) -> str:
        path = target.split("?", 1)[0]
        parts = path.strip("/").split("/")
        if method != "POST" or len(parts) != 3 or parts[0] != "topics" or parts[2] != "messages":
            raise _Refused(404, "ResourceNotFound", "only PublishMessage is emulated")
        if headers.get("x-mns-version") != MNS_VERSION:
            raise _Refused(400, "InvalidArgument", "x-mns-version must be %s" % MNS_VERSION)
        date = headers.get("date", "")
        when = parse_http_date(date)
        if when is None or abs(self.clock() - when) > SKEW_SECONDS:
            raise _Refused(403, "TimeExpired", "the Date header is missing or too far from the server's clock")
        md5 = headers.get("content-md5", "")
        expected_md5 = base64.b64encode(hashlib.md5(body).hexdigest().encode("ascii")).decode("ascii")
        if md5 != expected_md5:
            raise _Refused(400, "InvalidDigest", "Content-MD5 does not match the body")
        auth = headers.get("authorization", "")
        if not auth.startswith("MNS ") or ":" not in auth:
            raise _Refused(403, "AccessDenied", "no MNS Authorization header")
        access_key_id, _, provided = auth[4:].partition(":")
        if access_key_id not in self.credentials:
            raise _Refused(403, "InvalidAccessKeyId", "unknown AccessKeyId")
        secret, token = self.credentials[access_key_id]
        if token is not None and headers.get("security-token") != token:
            raise _Refused(403, "InvalidSecurityToken", "the STS security token is missing or wrong")
        mns_headers = "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers) if k.startswith("x-mns-"))
        to_sign = "%s\n%s\n%s\n%s\n%s%s" % (method, md5, headers.get("content-type", ""), date, mns_headers, path)
        expected = base64.b64encode(hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"),
                                             hashlib.sha1).digest()).decode("ascii")
        if not hmac.compare_digest(expected, provided):
            raise _Refused(403, "SignatureDoesNotMatch", "the request signature does not match")
        if parts[1] not in self.topics:
            raise _Refused(404, "TopicNotExist", "the topic does not exist")
        return parts[1]


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


# ------------------------------------------------------------------------------------------- webhook
class _WebhookHandler(LoopbackHandler):
    server_header = "WebhookReceiver"

    def _handle(self) -> None:
        body = self._read_body()
        status = self.emulator._receive(self.command, self._lower_headers(), body)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.wfile.flush()


class WebhookReceiver(LoopbackEmulator):
    """A webhook endpoint that verifies fcocr's signature; see the module docstring."""

    def __init__(self, secret: str, *, clock: Callable[[], float] = time.time, window: float = 300):
        super().__init__(_WebhookHandler, "webhook-receiver")
        self.secret = secret
        self.clock = clock
        self.window = window
        self.received: List[dict] = []
        self.headers: List[Dict[str, str]] = []
        self.rejected = 0
        self._faults: List[int] = []
        self._seen: set = set()

    @property
    def url(self) -> str:
        return self.endpoint + "/fcocr"

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._faults.extend([status] * count)

    def _receive(self, method: str, headers: Dict[str, str], body: bytes) -> int:
        with self._lock:
            if self._faults:
                return self._faults.pop(0)
        expected = "sha256=" + hmac.new(self.secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
        try:
            message = json.loads(body)
            fresh = abs(self.clock() - float(message["sentAt"])) <= self.window
            replayed = message["id"] in self._seen
        except (ValueError, KeyError, TypeError):
            fresh, replayed, message = False, False, None
        if (method != "POST" or not hmac.compare_digest(expected, headers.get("x-fcocr-signature", ""))
                or not fresh or replayed or headers.get("x-fcocr-timestamp") != str(message["sentAt"])):
            with self._lock:
                self.rejected += 1
            return 401
        with self._lock:
            self._seen.add(message["id"])
            self.received.append(message)
            self.headers.append(headers)
        return 204
