"""A local Function Compute API endpoint (InvokeFunction, FC 2.0 and FC 3.0) for tests, strict where FC is strict.

FC 3.0 (API 2023-03-30): ``POST /2023-03-30/functions/{function}/invocations[?qualifier=Q]``, signed
``ACS3-HMAC-SHA256`` (verified by the viapi emulator's verifier, the same code: canonical request, signed
headers, payload hash, clock skew, nonce replay, STS token), so the unmodified ``alibabacloud-fc20230330``
client runs against it. Its errors carry FC 3.0's body ``{"Code", "Message", "RequestId"}``; the functions are
``functions3`` (name -> handler or None); the quota, faults and records are shared with the FC 2.0 API below.

``FcEmulator`` answers on 127.0.0.1 the way ``https://<account-id>.<region>.fc.aliyuncs.com`` does for
``POST /2016-08-15/services/{service}[.{qualifier}]/functions/{function}/invocations``, so the unmodified
official SDK (``fc2.Client(...).invoke_function``) runs against it:

* The signature is verified byte for byte as FC computes it (``Authorization: FC <ak>:<signature>``,
  the signature being base64 HMAC-SHA256 with the AccessKey secret over
  ``METHOD\\nContent-MD5\\nContent-Type\\nDate\\n`` + each ``x-fc-*`` header as ``name:value\\n``, names
  lower-cased and sorted, + the unescaped path, and, when the request has a query, ``\\n`` + its
  ``name=value`` pairs sorted and joined by ``\\n``). Unknown AccessKey IDs, a wrong signature, a
  missing or wrong ``x-fc-security-token`` for an STS key, a missing Date and a Date more than
  15 minutes off are refused before anything else happens.
* Errors carry FC's JSON body ``{"ErrorCode", "ErrorMessage"}`` (the keys the SDK reads) and an
  ``X-Fc-Request-Id`` header, with the documented statuses: 403 SignatureNotMatch /
  InvalidAccessKeyID, 404 ServiceNotFound / FunctionNotFound / AliasNotFound, 400 PathNotSupported /
  InvalidArgument / MissingRequiredHeader / EntityTooLarge (asynchronous payloads over 128 KB).
  The codes for a bad STS token (InvalidSecurityToken) and clock skew (RequestTimeTooSkewed) are
  this emulator's names: FC's table documents neither.
* ``x-fc-invocation-type: Async`` answers 202 with no body; ``Sync`` (the default) runs the
  function's Python handler, if one was given, and answers 200 with what it returned.
* An emulated QPS quota (``qps_limit`` invocations in any sliding second, per account, on
  ``rate_clock``, which a test may replace) answers ``throttle_status`` / ``throttle_code``
  (429 ResourceThrottled by default) over it; a throttled request is not an invocation.

Every accepted invocation is recorded in ``invocations`` (service, function, qualifier, invocation
type, payload, request id, the rate clock's time); every request in ``requests``. ``run_async()``
runs
the queued asynchronous invocations of functions that have a handler, in the caller's thread (no
background timing). ``on_invoke`` (a callable taking the Invocation) is called after each accepted
invocation, on the server thread: tests use it to interrupt a client at a known point.

Faults (``inject_fault``) after authentication: an FC error (``kind='error'``, status and code), a
gateway's HTML page (``kind='html'``, 502, not JSON), or a dropped connection (``kind='drop'``: closed
without an answer; ``accepted=True`` records the invocation first, the lost-acknowledgement case).

Pure standard library.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import email.utils
import hashlib
import hmac
import json
import time
import uuid
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

from ._http import LoopbackEmulator, LoopbackHandler
from .viapi import ViapiEmulator, ViapiError
from .viapi import _Request as AcsRequest

__all__ = ["FcEmulator", "Invocation", "RequestRecord", "string_to_sign", "sign"]

API_VERSION = "2016-08-15"
FC3_API_VERSION = "2023-03-30"
DEFAULT_CREDENTIALS = {"STS.fc-ak": ("fc-secret", "fc-token")}
DEFAULT_ACCOUNT = "1234567890123456"
MAX_CLOCK_SKEW_SECONDS = 15 * 60
ASYNC_PAYLOAD_LIMIT = 128 * 1024
SYNC_PAYLOAD_LIMIT = 32 * 1024 * 1024


def string_to_sign(method: str, path: str, headers: Dict[str, str],
                   query: Optional[List[Tuple[str, str]]] = None) -> str:
    """FC's string to sign; ``headers`` with lower-case names, ``path`` unescaped."""
    fc_headers = sorted((k, v) for k, v in headers.items() if k.startswith("x-fc-"))
    canonical_headers = "".join("%s:%s\n" % (k, v) for k, v in fc_headers)
    resource = path
    if query:
        resource += "\n" + "\n".join(sorted("%s=%s" % (k, v) if v != "" else k for k, v in query))
    return "\n".join([method.upper(), headers.get("content-md5", ""), headers.get("content-type", ""),
                      headers.get("date", ""), canonical_headers + resource])


def sign(secret: str, text: str) -> str:
    return base64.b64encode(hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).digest()).decode()


@dataclasses.dataclass
class Invocation:
    service: str
    function: str
    qualifier: Optional[str]
    invocation_type: str  # "Async" | "Sync"
    payload: bytes
    request_id: str
    at: float  # rate_clock() when accepted
    ak: str = ""
    done: bool = False  # run_async() ran it
    error: Optional[str] = None  # what the handler raised, if it did

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclasses.dataclass
class RequestRecord:
    method: str
    path: str
    ak: Optional[str]
    status: int  # 0: the connection was dropped
    error_code: Optional[str]
    request_id: str
    invocation_type: Optional[str] = None


@dataclasses.dataclass
class _Fault:
    kind: str
    status: int
    code: str
    remaining: int
    accepted: bool


class FcError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _Drop(Exception):
    pass


class FcEmulator(LoopbackEmulator):
    def __init__(self, credentials: Optional[Dict[str, Tuple[str, Optional[str]]]] = None, *,
                 account_id: str = DEFAULT_ACCOUNT, region: str = "cn-shanghai",
                 functions: Optional[Dict[Tuple[str, str], Optional[Callable[[bytes, Any], Any]]]] = None,
                 qualifiers: Tuple[str, ...] = ("LATEST",), qps_limit: Optional[int] = None,
                 throttle_status: int = 429, throttle_code: str = "ResourceThrottled",
                 rate_clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 functions3: Optional[Dict[str, Optional[Callable[[bytes, Any], Any]]]] = None) -> None:
        super().__init__(_Handler, "fc-emulator", poll_interval=0.05)
        # access key id -> (secret, STS token or None for a long-term key)
        self.credentials = dict(DEFAULT_CREDENTIALS if credentials is None else credentials)
        self.account_id, self.region = account_id, region
        # (service, function) -> handler(payload, context) or None (records only)
        self.functions: Dict[Tuple[str, str], Optional[Callable]] = dict(
            {("fcocr", "ocr_upload"): None} if functions is None else functions)
        # FC 3.0: function name -> handler(payload, context) or None (records only)
        self.functions3: Dict[str, Optional[Callable]] = dict(
            {"fcocr-ocr_upload": None} if functions3 is None else functions3)
        self._nonces: Dict[Tuple[str, str], float] = {}
        self.qualifiers = set(qualifiers)
        self.qps_limit, self.throttle_status, self.throttle_code = qps_limit, throttle_status, throttle_code
        self.rate_clock, self.wall_clock = rate_clock, wall_clock
        self.on_invoke: Optional[Callable[[Invocation], None]] = None
        self.invocations: List[Invocation] = []
        self.requests: List[RequestRecord] = []
        self.port = 0
        self._hits: Deque[float] = collections.deque()
        self._faults: List[_Fault] = []

    # FC 3.0's ACS3-HMAC-SHA256 verification: the viapi emulator's, borrowed whole (it reads self.credentials,
    # self._lock and self._nonces, which this class has in the same shape).
    _verify_acs3 = ViapiEmulator._verify_acs3
    _secret_for = ViapiEmulator._secret_for
    _check_time = staticmethod(ViapiEmulator._check_time)
    _use_nonce = ViapiEmulator._use_nonce

    # ---- lifecycle (start/stop/with: LoopbackEmulator) ------------------------------------------
    def _published(self, port: int) -> None:
        self.port = port
        self.endpoint = "http://127.0.0.1:%d" % port

    # ---- control and inspection -----------------------------------------------------------------
    def inject_fault(self, kind: str = "error", *, status: int = 503, code: str = "ServiceUnavailable",
                     times: int = 1, accepted: bool = False) -> None:
        if kind not in ("error", "html", "drop"):
            raise ValueError("kind must be 'error', 'html' or 'drop'")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.append(_Fault(kind, status, code, times, accepted))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def invoked_records(self) -> List[dict]:
        """Every OSS record of every accepted invocation, in order."""
        with self._lock:
            return [r for inv in self.invocations for r in inv.json().get("events", [])]

    def run_async(self, context_factory: Optional[Callable[[Invocation], Any]] = None) -> int:
        """Run the queued asynchronous invocations that have a handler, here and now; how many ran."""
        ran = 0
        while True:
            with self._lock:
                todo = [i for i in self.invocations if i.invocation_type == "Async" and not i.done
                        and self._handler_of(i)]
                for inv in todo:
                    inv.done = True
            if not todo:
                return ran
            for inv in todo:
                handler = self._handler_of(inv)
                context = context_factory(inv) if context_factory else None
                try:
                    handler(inv.payload, context)
                except Exception as exc:  # FC would retry it; a test looks at .error
                    inv.error = "%s: %s" % (type(exc).__name__, exc)
                ran += 1

    def _handler_of(self, invocation: Invocation) -> Optional[Callable]:
        if invocation.service:  # FC 2.0
            return self.functions.get((invocation.service, invocation.function))
        return self.functions3.get(invocation.function)

    def max_in_any_second(self) -> int:
        """The most accepted invocations in any sliding second of the rate clock (what the quota limits)."""
        times = sorted(i.at for i in self.invocations)
        best, low = 0, 0
        for high, t in enumerate(times):
            while t - times[low] >= 1.0:
                low += 1
            best = max(best, high - low + 1)
        return best

    # ---- request handling -----------------------------------------------------------------------
    def _take_fault(self) -> Optional[_Fault]:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _authenticate(self, method: str, raw_path: str, headers: Dict[str, str]) -> str:
        auth = headers.get("authorization")
        if not auth:
            raise FcError(400, "MissingRequiredHeader", "required HTTP header Authorization was not specified")
        date = headers.get("date")
        if not date:
            raise FcError(400, "MissingRequiredHeader", "required HTTP header Date was not specified")
        if not auth.startswith("FC ") or ":" not in auth:
            raise FcError(403, "SignatureNotMatch", "Authorization must be 'FC <AccessKeyID>:<Signature>'")
        ak, _, signature = auth[3:].rpartition(":")
        if ak not in self.credentials:
            raise FcError(403, "InvalidAccessKeyID", "invalid access key ID '%s'" % ak)
        secret, token = self.credentials[ak]
        try:
            when = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError):
            raise FcError(400, "InvalidArgument", "Date %r is not an RFC 1123 date" % date) from None
        if abs(self.wall_clock() - when) > MAX_CLOCK_SKEW_SECONDS:
            raise FcError(403, "RequestTimeTooSkewed", "the difference between the request time and the "
                          "server's time is too large")
        sent_token = headers.get("x-fc-security-token")
        if token is not None and sent_token != token:
            raise FcError(403, "InvalidSecurityToken", "the security token is missing or invalid")
        if token is None and sent_token is not None:
            raise FcError(403, "InvalidSecurityToken", "a security token was sent with a long-term AccessKey")
        split = urlsplit(raw_path)
        query = parse_qsl(split.query, keep_blank_values=True) if split.query else None
        expected = sign(secret, string_to_sign(method, unquote(split.path), headers, query))
        if not hmac.compare_digest(expected, signature):
            raise FcError(403, "SignatureNotMatch", "The request signature we calculated does not match the "
                          "signature you provided. Check your access key and signing method")
        return ak

    def _throttle(self) -> float:
        now = self.rate_clock()
        if self.qps_limit is None:
            return now
        with self._lock:
            while self._hits and now - self._hits[0] >= 1.0:
                self._hits.popleft()
            if len(self._hits) >= self.qps_limit:
                raise FcError(self.throttle_status, self.throttle_code,
                              "Reserve resource exceeded limit: over %d invocations a second" % self.qps_limit)
            self._hits.append(now)
        return now

    def handle(self, method: str, raw_path: str, headers: Dict[str, str], body: bytes,
               request_id: str) -> Tuple[int, List[Tuple[str, str]], bytes]:
        record = RequestRecord(method, raw_path, None, 0, None, request_id,
                               headers.get("x-fc-invocation-type"))
        with self._lock:
            self.requests.append(record)
        if urlsplit(raw_path).path.startswith("/%s/" % FC3_API_VERSION):
            return self._handle_fc3(method, raw_path, headers, body, request_id, record)
        try:
            record.ak = self._authenticate(method, raw_path, headers)
            path = unquote(urlsplit(raw_path).path)
            parts = path.strip("/").split("/")
            if (method != "POST" or len(parts) != 6 or parts[0] != API_VERSION or parts[1] != "services"
                    or parts[3] != "functions" or parts[5] != "invocations"):
                raise FcError(400, "PathNotSupported", "'%s' against '%s' is not supported" % (method, path))
            service, _, qualifier = parts[2].partition(".")
            function = parts[4]
            if not any(s == service for s, _ in self.functions):
                raise FcError(404, "ServiceNotFound", "service '%s' does not exist" % service)
            if qualifier and qualifier not in self.qualifiers:
                raise FcError(404, "AliasNotFound", "alias '%s' of service '%s' does not exist" % (qualifier, service))
            if (service, function) not in self.functions:
                raise FcError(404, "FunctionNotFound", "function '%s' does not exist" % function)
            return self._invoke(headers, body, record, Invocation(service, function, qualifier or None, "", body,
                                                                  request_id, 0.0, record.ak),
                                self.functions[(service, function)])
        except FcError as exc:
            record.status, record.error_code = exc.status, exc.code
            body = json.dumps({"ErrorCode": exc.code, "ErrorMessage": exc.message}).encode("utf-8")
            return exc.status, [("Content-Type", "application/json")], body


    def _invoke(self, headers: Dict[str, str], body: bytes, record: RequestRecord, invocation: "Invocation",
                handler: Any) -> Tuple[int, List[Tuple[str, str]], bytes]:
        """What both APIs do once the function is found: the invocation type and payload limit, injected faults,
        the shared quota, the record, then 202 (Async) or the handler's answer (Sync)."""
        kind = headers.get("x-fc-invocation-type", "Sync")
        if kind not in ("Sync", "Async"):
            raise FcError(400, "InvalidArgument", "x-fc-invocation-type must be Sync or Async, not %r" % kind)
        limit = ASYNC_PAYLOAD_LIMIT if kind == "Async" else SYNC_PAYLOAD_LIMIT
        if len(body) > limit:
            raise FcError(400, "EntityTooLarge", "payload size exceeds maximum allowed size (%d bytes)" % limit)
        invocation.invocation_type = kind
        fault = self._take_fault()
        if fault is not None and not (fault.kind == "drop" and fault.accepted):
            if fault.kind == "drop":
                raise _Drop()
            if fault.kind == "html":
                record.status, record.error_code = 502, "BadGateway"
                return 502, [("Content-Type", "text/html")], b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            raise FcError(fault.status, fault.code, "Injected fault: %s" % fault.code)
        invocation.at = self._throttle()
        with self._lock:
            self.invocations.append(invocation)
        if self.on_invoke is not None:
            self.on_invoke(invocation)
        if fault is not None:  # accepted, then the answer is lost
            raise _Drop()
        if kind == "Async":
            record.status = 202
            return 202, [], b""
        invocation.done = True
        out = handler(body, None) if handler else b""
        record.status = 200
        return 200, [("Content-Type", "application/octet-stream")], (
            out if isinstance(out, bytes) else str(out).encode("utf-8"))

    def _handle_fc3(self, method: str, raw_path: str, headers: Dict[str, str], body: bytes, request_id: str,
                    record: RequestRecord) -> Tuple[int, List[Tuple[str, str]], bytes]:
        """InvokeFunction of the 2023-03-30 API; the same quota, faults and records as FC 2.0's."""
        try:
            split = urlsplit(raw_path)
            query = parse_qsl(split.query, keep_blank_values=True)
            authorization = headers.get("authorization")
            if not authorization:
                raise FcError(400, "MissingRequiredHeader", "required HTTP header Authorization was not specified")
            try:
                request = AcsRequest(method, split.path, query, dict(query), {k: [v] for k, v in headers.items()},
                                     body, request_id)
                self._verify_acs3(request, authorization)
            except ViapiError as exc:
                raise FcError(exc.status, exc.code, exc.message) from None
            record.ak = authorization.partition("Credential=")[2].split(",")[0]
            parts = unquote(split.path).strip("/").split("/")
            if method != "POST" or len(parts) != 4 or parts[1] != "functions" or parts[3] != "invocations":
                raise FcError(404, "PathNotSupported", "'%s' against '%s' is not supported" % (method, split.path))
            function, qualifier = parts[2], dict(query).get("qualifier")
            if function not in self.functions3:
                raise FcError(404, "FunctionNotFound", "function '%s' does not exist" % function)
            if qualifier and qualifier not in self.qualifiers:
                raise FcError(404, "AliasNotFound",
                              "alias '%s' of function '%s' does not exist" % (qualifier, function))
            return self._invoke(headers, body, record,
                                Invocation("", function, qualifier, "", body, request_id, 0.0, record.ak or ""),
                                self.functions3[function])
        except FcError as exc:
            record.status, record.error_code = exc.status, exc.code
            answer = {"Code": exc.code, "Message": exc.message, "RequestId": request_id}
            return exc.status, [("Content-Type", "application/json")], json.dumps(answer).encode("utf-8")


class _Handler(LoopbackHandler):
    server_header = "FcEmulator"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        request_id = str(uuid.uuid4())
        try:
            status, extra, data = self.emulator.handle(self.command, self.path, headers, body, request_id)
        except _Drop:
            self._drop_connection()
            return
        self.send_response(status)
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("X-Fc-Request-Id", request_id)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

