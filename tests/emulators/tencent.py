"""A local Tencent Cloud OCR ``VatInvoiceOCR`` (API 3.0, version 2018-11-19) server for tests.

``TencentEmulator`` answers on 127.0.0.1 the way ``ocr.tencentcloudapi.com`` does, so unmodified
code using the official SDK (``tencentcloud.ocr.v20181119.ocr_client.OcrClient``, ``call_json``
or the typed ``VatInvoiceOCR`` method) runs against it. It verifies TC3-HMAC-SHA256 signatures
byte for byte (canonical request, credential scope, derived key chain), the 5-minute clock
window, the SecretId, the Action/Version/Region headers, then validates the request body the
way the product page (shared/seeds/004_a29da2229bffd163.txt) describes: ``ImageUrl`` or
``ImageBase64`` (``ImageUrl`` wins when both are given; it is fetched over HTTP, at most 3 s),
PNG/JPG/JPEG/PDF only (no GIF), at most 7 MB *after* base64 encoding (URL downloads too),
20..10000 px per side, ``IsPdf`` and ``PdfPageNumber`` (pages counted with pypdfium2).
Every answer is HTTP 200 with a JSON ``{"Response": {...}}`` body, errors included, as the
real service does.

Usage::

    with TencentEmulator() as tc:                       # credentials {'AKIDtest': 'secret-test'}
        client = OcrClient(credential.Credential('AKIDtest', 'secret-test'), 'ap-guangzhou',
                           ClientProfile(httpProfile=HttpProfile(endpoint=tc.host,
                                                                 protocol='http')))
        out = client.call_json('VatInvoiceOCR', {'ImageBase64': b64_png})
        assert out['Response']['VatInvoiceInfos'][0]['Name'] == '销售方识别号'

Pass ``tc.host`` ('127.0.0.1:PORT') as the SDK endpoint, not ``tc.endpoint``: the SDK signs
its endpoint as the Host header. Only POST with a JSON body and TC3 signatures is implemented;
GET, form bodies and the old HmacSHA1/HmacSHA256 signatures answer HTTP 501 (the SDK raises
ServerNetworkError) rather than pretending to work.

Error codes for the input checks (the seed's table, with the two gaps it leaves filled from
the SDK's ocr/v20181119/errorcodes.py, see ``INPUT_ERRORS``) and the default response
(tests/emulators/data/tencent_examples.json) are module data so tests can refer to them.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import datetime
import hashlib
import hmac
import io
import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Callable, Dict, List, NoReturn, Optional, Tuple, Union
from urllib.parse import urlsplit

from ._http import BadRequest, LoopbackEmulator, LoopbackHandler

__all__ = ["TencentEmulator", "RequestRecord", "TencentError", "tc3_signature", "verify_tc3",
           "example_response", "ALLOWED_REGIONS", "INPUT_ERRORS", "MAX_BASE64_BYTES",
           "MAX_RAW_BYTES"]

ACTION = 'VatInvoiceOCR'
VERSION = '2018-11-19'
SERVICE = 'ocr'
ALGORITHM = 'TC3-HMAC-SHA256'
# "本接口仅支持其中的: ap-beijing, ap-guangzhou, ap-hongkong, ap-shanghai, na-toronto"
ALLOWED_REGIONS = ('ap-beijing', 'ap-guangzhou', 'ap-hongkong', 'ap-shanghai', 'na-toronto')
DEFAULT_CREDENTIALS = {'AKIDtest': 'secret-test'}

# "Timestamp 和服务器时间相差不得超过五分钟"
MAX_CLOCK_SKEW_SECONDS = 5 * 60
# "所下载文件经Base64编码后不超过 7M" (the current SDK docstring says 10M; the seed says 7M).
MAX_BASE64_BYTES = 7 * 1024 * 1024
# The largest file whose base64 form still fits: base64 turns every 3 bytes into 4 characters.
MAX_RAW_BYTES = MAX_BASE64_BYTES // 4 * 3
# "文件下载时间不超过 3 秒"
DOWNLOAD_TIMEOUT_SECONDS = 3.0
# "需介于20–10000px之间" (per side: the seed does not say, per side is the usual reading).
MIN_PIXELS, MAX_PIXELS = 20, 10000
# API 3.0 refuses request bodies over 10 MB (RequestSizeLimitExceeded).
MAX_BODY_BYTES = 10 * 1024 * 1024

# The error codes the input checks answer with. The seed's table (section 6 of the product
# page) is used wherever it has a fitting code; it has none for a page number beyond the PDF,
# for which the OCR SDK's errorcodes.py InvalidParameterValue.InvalidParameterValueLimit
# ("参数值错误") is used, nor for an image under 20 px, for which the engine's own decode
# failure (InvalidParameter.EngineImageDecodeFailed) is used. GIF and other formats the
# service does not take are a decode failure: the seed has no UnKnowFileTypeError for this API
# (that code exists in errorcodes.py for other OCR actions).
INPUT_ERRORS = {
    'missing_image': 'FailedOperation.EmptyImageError',     # neither ImageUrl nor ImageBase64
    'empty_file': 'FailedOperation.EmptyImageError',        # the download had no bytes
    'bad_base64': 'FailedOperation.ImageDecodeFailed',
    'too_large': 'FailedOperation.ImageSizeTooLarge',       # > 7 MB after base64
    'download': 'FailedOperation.DownLoadError',            # HTTP error, unreachable, > 3 s
    'unsupported_format': 'FailedOperation.ImageDecodeFailed',  # GIF, BMP, unknown bytes...
    'corrupt_image': 'FailedOperation.ImageDecodeFailed',
    'pdf_without_is_pdf': 'FailedOperation.ImageDecodeFailed',
    'corrupt_pdf': 'FailedOperation.ImageDecodeFailed',
    'too_many_pixels': 'FailedOperation.ImageSizeTooLarge',     # a side over 10000 px
    'too_few_pixels': 'InvalidParameter.EngineImageDecodeFailed',   # a side under 20 px
    'page_out_of_range': 'InvalidParameterValue.InvalidParameterValueLimit',
}

_PARAMS = {'ImageBase64': str, 'ImageUrl': str, 'IsPdf': bool, 'PdfPageNumber': int}
_REGION_RE = re.compile(r'^[a-z]{2,}-[a-z]+(-[0-9]+)?$')
_HEX64_RE = re.compile(r'^[0-9a-f]{64}$')
_EXAMPLES_PATH = Path(__file__).resolve().parent / 'data' / 'tencent_examples.json'
_INVOICE_NO_FIELD = '发票号码'

_FAULT_KINDS = ('error', 'http', 'drop', 'delay', 'malformed', 'content-type', 'empty')
_HTTP_REASONS = {500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
                 504: 'Gateway Timeout'}


# --------------------------------------------------------------------------------------------
# The documented example

def example_response(page: Optional[int] = None) -> dict:
    """The inner ``Response`` object the emulator answers by default (a deep copy).

    ``page`` None (an image) gives the example as documented. For PDF page ``n`` the invoice
    number changes with the page, ``No63591128`` for page 1, ``No63591129`` for page 2..., so
    tests can tell pages apart. RequestId and PdfPageSize are set per reply by the emulator.
    """
    with open(_EXAMPLES_PATH, encoding='utf-8') as fh:
        response = json.load(fh)[ACTION]['Response']
    if page is not None and page > 1:
        for info in response['VatInvoiceInfos']:
            if info['Name'] == _INVOICE_NO_FIELD:
                info['Value'] = 'No%d' % (int(info['Value'][2:]) + page - 1)
    return response


# --------------------------------------------------------------------------------------------
# TC3-HMAC-SHA256

class TencentError(Exception):
    """A Tencent Cloud API error: ``{"Response": {"Error": {"Code", "Message"}, ...}}``."""

    def __init__(self, code: str, message: str):
        super().__init__('%s: %s' % (code, message))
        self.code = code
        self.message = message


@dataclasses.dataclass(frozen=True)
class Tc3Signature:
    canonical_request: str
    string_to_sign: str
    signature: str


def _hmac_sha256(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode('utf-8'), hashlib.sha256).digest()


def tc3_signature(secret_key: str, *, method: str, uri: str, query: str,
                  headers: Dict[str, str], signed_headers: List[str], payload: bytes,
                  timestamp: int, service: str, unsigned_payload: bool = False) -> Tc3Signature:
    """Tencent's TC3-HMAC-SHA256, step by step as the "签名方法 v3" page describes it.

    ``headers`` maps lower-case header names to values; ``signed_headers`` lists the lower-case
    names that take part, in the order of the Authorization header's SignedHeaders (the page
    asks clients to sort them). Header keys and values are lower-cased and trimmed. The payload
    hash is over the raw body bytes, or over the literal ``UNSIGNED-PAYLOAD`` when the request
    carries ``X-TC-Content-SHA256: UNSIGNED-PAYLOAD``.
    """
    canonical_headers = ''.join('%s:%s\n' % (name, headers.get(name, '').strip().lower())
                                for name in signed_headers)
    hashed_payload = hashlib.sha256(b'UNSIGNED-PAYLOAD' if unsigned_payload else payload)
    canonical_request = '\n'.join([method.upper(), uri, query, canonical_headers,
                                   ';'.join(signed_headers), hashed_payload.hexdigest()])
    date = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime('%Y-%m-%d')
    scope = '%s/%s/tc3_request' % (date, service)
    string_to_sign = '\n'.join([
        ALGORITHM, str(timestamp), scope,
        hashlib.sha256(canonical_request.encode('utf-8')).hexdigest()])
    key = _hmac_sha256(('TC3' + secret_key).encode('utf-8'), date)
    key = _hmac_sha256(key, service)
    key = _hmac_sha256(key, 'tc3_request')
    signature = hmac.new(key, string_to_sign.encode('utf-8'), hashlib.sha256).hexdigest()
    return Tc3Signature(canonical_request, string_to_sign, signature)


def _parse_authorization(value: str) -> Tuple[str, str, str, List[str], str]:
    """(secret_id, date, service, signed_headers, signature) or AuthFailure.InvalidAuthorization."""
    invalid = TencentError('AuthFailure.InvalidAuthorization',
                           'Authorization header format error.')
    algorithm, _, rest = value.strip().partition(' ')
    if algorithm != ALGORITHM:
        raise invalid
    fields = {}
    for item in rest.split(','):
        name, sep, val = item.strip().partition('=')
        if not sep:
            raise invalid
        fields[name.strip()] = val.strip()
    try:
        credential = fields['Credential']
        signed = fields['SignedHeaders']
        signature = fields['Signature']
    except KeyError:
        raise invalid from None
    parts = credential.split('/')
    if len(parts) != 4 or not parts[0] or parts[3] != 'tc3_request':
        raise invalid
    signed_headers = signed.split(';')
    if (any(h != h.lower() or not h for h in signed_headers)
            or 'content-type' not in signed_headers or 'host' not in signed_headers):
        raise TencentError('AuthFailure.InvalidAuthorization',
                           'SignedHeaders must include content-type and host, in lower case.')
    return parts[0], parts[1], parts[2], signed_headers, signature


def verify_tc3(*, method: str, path: str, query: str, headers: Dict[str, str], body: bytes,
               credentials: Dict[str, Union[str, Tuple[str, Optional[str]]]], now: float,
               service: str = SERVICE) -> str:
    """Check a request's TC3-HMAC-SHA256 signature as the API gateway does; return the SecretId.

    ``headers`` has lower-case names. ``credentials`` maps SecretId to SecretKey, or to
    (SecretKey, session token) for temporary keys (whose requests must carry X-TC-Token).
    Raises TencentError with the code Tencent answers: AuthFailure.InvalidAuthorization,
    MissingParameter / InvalidParameter (X-TC-Timestamp), AuthFailure.SignatureExpire,
    AuthFailure.SecretIdNotFound, AuthFailure.TokenFailure, AuthFailure.SignatureFailure.
    """
    authorization = headers.get('authorization')
    if not authorization:
        raise TencentError('AuthFailure.InvalidAuthorization',
                           'The request is missing the Authorization header.')
    secret_id, scope_date, scope_service, signed_headers, signature = \
        _parse_authorization(authorization)
    raw_ts = headers.get('x-tc-timestamp')
    if raw_ts is None:
        raise TencentError('MissingParameter',
                           'The request is missing a required parameter `Timestamp`.')
    if not raw_ts.strip().isdigit():
        raise TencentError('InvalidParameter',
                           'The parameter `Timestamp` must be a Unix time in seconds.')
    timestamp = int(raw_ts)
    if abs(now - timestamp) > MAX_CLOCK_SKEW_SECONDS:
        raise TencentError(
            'AuthFailure.SignatureExpire',
            'Signature expired. Timestamp and server time cannot differ by more than five '
            'minutes (request timestamp %d, server time %d).' % (timestamp, int(now)))
    entry = credentials.get(secret_id)
    if entry is None:
        raise TencentError('AuthFailure.SecretIdNotFound',
                           'The SecretId is not found, please ensure that your SecretId is '
                           'correct.')
    secret_key, token = (entry, None) if isinstance(entry, str) else entry
    sent_token = headers.get('x-tc-token')
    if token is not None and not hmac.compare_digest((sent_token or '').encode('utf-8'),
                                                     token.encode('utf-8')):
        raise TencentError('AuthFailure.TokenFailure', 'Token verification failed.')
    expected_date = datetime.datetime.fromtimestamp(
        timestamp, datetime.timezone.utc).strftime('%Y-%m-%d')
    if scope_date != expected_date:
        raise TencentError(
            'AuthFailure.SignatureFailure',
            'The credential scope date %r does not match X-TC-Timestamp (UTC date %s). The '
            'provided credentials could not be validated.' % (scope_date, expected_date))
    if scope_service != service:
        raise TencentError(
            'AuthFailure.SignatureFailure',
            'The credential scope service %r is not %r. The provided credentials could not be '
            'validated.' % (scope_service, service))
    computed = tc3_signature(
        secret_key, method=method, uri=path, query=query, headers=headers,
        signed_headers=signed_headers, payload=body, timestamp=timestamp, service=service,
        unsigned_payload=headers.get('x-tc-content-sha256') == 'UNSIGNED-PAYLOAD')
    if not (_HEX64_RE.match(signature)
            and hmac.compare_digest(computed.signature, signature)):
        raise TencentError('AuthFailure.SignatureFailure',
                           'The provided credentials could not be validated. Please check your '
                           'signature is correct.')
    return secret_id


# --------------------------------------------------------------------------------------------
# Records and faults

@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One handled request, as the server saw it."""
    action: str                   # X-TC-Action as sent ('' when missing)
    region: str                   # X-TC-Region as sent ('' when missing)
    secret_id: str                # from the Authorization Credential ('' when unparsable)
    params: dict = dataclasses.field(repr=False)   # the JSON body ({} if absent / not an object)
    status: int                   # HTTP status sent; 0 when a 'drop' fault closed the socket
    error_code: Optional[str]     # Response.Error.Code sent, 'ConnectionDropped', 'HTTP 503'...
    request_id: str
    fault: Optional[str] = None   # the kind of injected fault that shaped the answer
    source: Optional[str] = None  # 'url' or 'base64': which input was used
    fetched_url: Optional[str] = None
    fetched_bytes: Optional[int] = None   # size of the downloaded file (None: nothing fetched)
    input_bytes: Optional[int] = None     # size of the file recognised (decoded or downloaded)
    file_type: Optional[str] = None       # 'PNG', 'JPEG', 'PDF', 'GIF'... when identified
    pdf_page_size: Optional[int] = None   # page count, for a PDF read with IsPdf
    pdf_page: Optional[int] = None        # the page recognised
    timestamp: Optional[int] = None       # X-TC-Timestamp


@dataclasses.dataclass
class _Fault:
    kind: str
    code: str
    message: str
    status: int
    content_type: Optional[str]
    delay: Optional[float]
    body: Optional[Union[str, bytes]]
    remaining: int
    release: threading.Event = dataclasses.field(default_factory=threading.Event)


@dataclasses.dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = 'application/json'
    error_code: Optional[str] = None
    drop: bool = False
    request_id: str = ''


class _Context:
    """What processing learnt about a request, for its record."""

    def __init__(self) -> None:
        self.action = self.region = self.secret_id = ''
        self.params: dict = {}
        self.timestamp: Optional[int] = None
        self.fault: Optional[str] = None
        self.source = self.fetched_url = self.file_type = None
        self.fetched_bytes = self.input_bytes = self.pdf_page_size = self.pdf_page = None


# --------------------------------------------------------------------------------------------
# The emulator

class TencentEmulator(LoopbackEmulator):
    """A Tencent Cloud OCR VatInvoiceOCR endpoint on 127.0.0.1; see the module docstring.

    ``credentials`` maps SecretId -> SecretKey (or -> (SecretKey, token) for temporary keys).
    ``clock`` is the server's time source (seconds): shift it to test clock skew.
    ``download_timeout`` bounds an ImageUrl download (3 s, as documented).
    ``rate_limit`` (requests per second; None = off; the service's is 10) answers
    RequestLimitExceeded beyond it.
    """

    def __init__(self, credentials: Optional[dict] = None, *, clock: Callable[[], float] = time.time,
                 download_timeout: float = DOWNLOAD_TIMEOUT_SECONDS,
                 rate_limit: Optional[int] = None):
        super().__init__(_Handler, 'tencent-emulator')
        self.credentials: dict = dict(DEFAULT_CREDENTIALS if credentials is None else credentials)
        self.clock = clock
        self.download_timeout = download_timeout
        self.rate_limit = rate_limit
        self.requests: List[RequestRecord] = []
        self.host = ''
        # Set whenever a 'delay' fault starts holding a reply: tests wait on it, not on time.
        self.delay_started = threading.Event()
        self._faults: List[_Fault] = []
        self._held: List[_Fault] = []
        self._responses: Dict[Optional[int], Union[dict, str]] = {}
        self._recent: List[float] = []
        self._stopping = threading.Event()
        self._changed = threading.Condition(self._lock)  # notified when a request is recorded

    # ---- lifecycle ----------------------------------------------------------------------

    def _published(self, port: int) -> None:
        self.host = '127.0.0.1:%d' % port
        self.endpoint = 'http://' + self.host

    def _starting(self) -> None:
        self._stopping.clear()

    def _stopping_now(self) -> None:
        self._stopping.set()
        self.release_delayed()

    # ---- responses ----------------------------------------------------------------------

    def set_response(self, body: Union[dict, str], page: Optional[int] = None) -> None:
        """Answer successful requests with ``body`` instead of the documented example.

        ``body`` is the inner Response object or the whole ``{"Response": {...}}``; RequestId
        and PdfPageSize are filled in per reply when it lacks them. A str is sent verbatim
        (Content-Type application/json). ``page`` None applies to images and to every PDF page
        without its own body; ``page=n`` only to PDF page n.
        """
        if isinstance(body, dict):
            body = copy.deepcopy(body['Response'] if set(body) == {'Response'} else body)
        elif not isinstance(body, str):
            raise TypeError('body must be a dict or a str')
        with self._lock:
            self._responses[page] = body

    def reset_responses(self) -> None:
        with self._lock:
            self._responses.clear()

    # ---- fault injection ------------------------------------------------------------------

    def inject_fault(self, *, kind: str = 'error', code: str = 'RequestLimitExceeded',
                     message: Optional[str] = None, times: int = 1, status: int = 200,
                     content_type: Optional[str] = None, delay: Optional[float] = None,
                     body: Optional[Union[str, bytes]] = None) -> None:
        """Make the next ``times`` requests that pass authentication misbehave.

        kind='error'        a Tencent error body (``code``, ``message``) with ``status`` and
                            ``content_type`` (default application/json);
        kind='http'         HTTP ``status`` (200 means 503) with a non-JSON body (``body`` or an
                            HTML page), Content-Type ``content_type`` or text/html;
        kind='drop'         close the connection without answering;
        kind='delay'        hold the request ``delay`` seconds (None: until release_delayed()
                            or stop()), then process it normally; ``delay_started`` is set
                            when the hold begins;
        kind='malformed'    HTTP 200 with ``body`` (default: truncated JSON) and
                            ``content_type`` (default application/json);
        kind='content-type' an error body (``code``) sent with ``content_type`` (default
                            'application/json; charset=utf-8'), status ``status``;
        kind='empty'        a success Response whose fields are all empty.
        Faults are used in the order injected; requests failing authentication do not use them.
        """
        if kind not in _FAULT_KINDS:
            raise ValueError('kind must be one of %s' % ', '.join(_FAULT_KINDS))
        if times < 1:
            raise ValueError('times must be >= 1')
        if kind == 'http' and status == 200:
            status = 503
        if kind == 'content-type' and content_type is None:
            content_type = 'application/json; charset=utf-8'
        with self._lock:
            self._faults.append(_Fault(
                kind=kind, code=code, message=message or 'Injected fault: %s.' % code,
                status=status, content_type=content_type, delay=delay, body=body,
                remaining=times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def release_delayed(self) -> None:
        """Let every reply held by a 'delay' fault go on now; delay faults not reached yet
        will not hold either."""
        with self._lock:
            held, self._held = self._held, []
            pending = [f for f in self._faults if f.kind == 'delay']
        for fault in held + pending:
            fault.release.set()

    def _take_fault(self) -> Optional[_Fault]:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.pop(0)
            return fault

    def _record(self, record: RequestRecord) -> None:
        with self._changed:
            self.requests.append(record)
            self._changed.notify_all()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` requests have been recorded in total (answered or dropped): a
        client can see its connection cut by stop() before the handler has recorded it."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.requests) >= count, timeout)

    # ---- request processing ---------------------------------------------------------------

    def _handle_request(self, method: str, target: str, headers: Dict[str, str], body: bytes,
                        ctx: _Context) -> _Reply:
        request_id = str(uuid.uuid4())
        try:
            return self._process(method, target, headers, body, ctx, request_id)
        except TencentError as exc:
            return _error_reply(exc.code, exc.message, request_id)

    def _process(self, method: str, target: str, headers: Dict[str, str], body: bytes,
                 ctx: _Context, request_id: str) -> _Reply:
        ctx.action = headers.get('x-tc-action', '')
        ctx.region = headers.get('x-tc-region', '')
        if headers.get('x-tc-timestamp', '').isdigit():
            ctx.timestamp = int(headers['x-tc-timestamp'])
        try:
            ctx.secret_id = _parse_authorization(headers.get('authorization', ''))[0]
        except TencentError:
            pass

        content_type = headers.get('content-type', '')
        if method != 'POST' or content_type.split(';')[0].strip().lower() != 'application/json':
            return _Reply(501, ('The Tencent emulator implements POST with a JSON body only '
                                '(got %s, Content-Type %r).' % (method, content_type)).encode(),
                          'text/plain; charset=utf-8', 'NotImplemented')
        if len(body) > MAX_BODY_BYTES:
            raise TencentError('RequestSizeLimitExceeded',
                               'The request body is larger than %d bytes.' % MAX_BODY_BYTES)
        if not ctx.action:
            raise TencentError('MissingParameter',
                               'The request is missing a required parameter `Action`.')
        if ctx.action != ACTION:
            raise TencentError('InvalidAction',
                               'The requested action `%s` does not exist.' % ctx.action)
        version = headers.get('x-tc-version')
        if not version:
            raise TencentError('MissingParameter',
                               'The request is missing a required parameter `Version`.')
        if version != VERSION:
            raise TencentError('NoSuchVersion',
                               'The requested version `%s` of action `%s` does not exist.'
                               % (version, ctx.action))

        path, _, query = target.partition('?')
        verify_tc3(method=method, path=path, query=query, headers=headers, body=body,
                   credentials=self.credentials, now=self.clock(), service=SERVICE)

        if not ctx.region:
            raise TencentError('MissingParameter',
                               'The request is missing a required parameter `Region`.')
        if not _REGION_RE.match(ctx.region):
            raise TencentError('InvalidParameterValue',
                               'The value `%s` of parameter `Region` is not valid.' % ctx.region)
        if ctx.region not in ALLOWED_REGIONS:
            raise TencentError('UnsupportedRegion',
                               'The action `%s` does not support region `%s`.'
                               % (ACTION, ctx.region))
        self._check_rate()

        try:
            params = json.loads(body.decode('utf-8')) if body.strip() else {}
        except (UnicodeDecodeError, ValueError):
            params = None
        if isinstance(params, dict):
            ctx.params = params

        fault = self._take_fault()
        if fault is not None:
            ctx.fault = fault.kind
            reply = self._fault_reply(fault, request_id)
            if reply is not None:
                return reply
        if params is None or not isinstance(params, dict):
            raise TencentError('InvalidParameter', 'The request body is not a valid JSON object.')
        return self._recognise(params, ctx, request_id)

    def _check_rate(self) -> None:
        if not self.rate_limit:
            return
        now = time.monotonic()
        with self._lock:
            self._recent = [t for t in self._recent if now - t < 1.0]
            if len(self._recent) >= self.rate_limit:
                raise TencentError('RequestLimitExceeded',
                                   'Your current request rate has exceeded the limit of %d '
                                   'requests per second.' % self.rate_limit)
            self._recent.append(now)

    def _fault_reply(self, fault: _Fault, request_id: str) -> Optional[_Reply]:
        kind = fault.kind
        if kind == 'error':
            return _error_reply(fault.code, fault.message, request_id, status=fault.status,
                                content_type=fault.content_type or 'application/json')
        if kind == 'content-type':
            return _error_reply(fault.code, fault.message, request_id, status=fault.status,
                                content_type=fault.content_type)
        if kind == 'http':
            reason = _HTTP_REASONS.get(fault.status, 'Error')
            body = fault.body if fault.body is not None else (
                '<html><head><title>%d %s</title></head><body><center><h1>%d %s</h1></center>'
                '<hr><center>nginx</center></body></html>' % (fault.status, reason,
                                                              fault.status, reason))
            return _Reply(fault.status, _to_bytes(body), fault.content_type or 'text/html',
                          'HTTP %d' % fault.status)
        if kind == 'malformed':
            body = fault.body if fault.body is not None else (
                '{"Response": {"VatInvoiceInfos": [{"Name": "发票代码", "Val')
            return _Reply(200, _to_bytes(body), fault.content_type or 'application/json',
                          'Malformed')
        if kind == 'empty':
            return _json_reply({'Response': {'VatInvoiceInfos': [], 'Items': [], 'PdfPageSize': 0,
                                             'Angle': 0, 'RequestId': request_id}})
        if kind == 'drop':
            return _Reply(0, b'', error_code='ConnectionDropped', drop=True)
        # 'delay': hold, then carry on as if nothing happened.
        with self._lock:
            self._held.append(fault)
        self.delay_started.set()
        fault.release.wait(fault.delay)
        with self._lock:
            if fault in self._held:
                self._held.remove(fault)
        if self._stopping.is_set():
            return _Reply(0, b'', error_code='ConnectionDropped', drop=True)
        return None

    # ---- VatInvoiceOCR ----------------------------------------------------------------------

    def _recognise(self, params: dict, ctx: _Context, request_id: str) -> _Reply:
        for name, value in params.items():
            if name not in _PARAMS:
                raise TencentError('UnknownParameter',
                                   'The parameter `%s` is not recognized.' % name)
            expected = _PARAMS[name]
            if expected is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
            else:
                ok = isinstance(value, expected)
            if not ok:
                raise TencentError('InvalidParameter',
                                   'The type of parameter `%s` must be %s.'
                                   % (name, {str: 'String', bool: 'Boolean',
                                             int: 'Integer'}[expected]))
        is_pdf = params.get('IsPdf', False)
        page = params.get('PdfPageNumber', 1)
        if page < 1:
            raise TencentError('InvalidParameterValue',
                               'The value of parameter `PdfPageNumber` must be >= 1.')

        url = params.get('ImageUrl') or ''
        b64 = params.get('ImageBase64') or ''
        if url:   # "如果都提供，只使用 ImageUrl"
            ctx.source, ctx.fetched_url = 'url', url
            data = self._download(url, ctx)
        elif b64:
            ctx.source = 'base64'
            if len(b64) > MAX_BASE64_BYTES:
                _input_error('too_large', 'ImageBase64 is %d bytes; the limit is %d bytes after '
                             'base64 encoding.' % (len(b64), MAX_BASE64_BYTES))
            try:
                data = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                _input_error('bad_base64', 'ImageBase64 is not valid base64 (no data: prefix, '
                             'no line breaks).')
        else:
            _input_error('missing_image', 'One of ImageUrl and ImageBase64 must be given.')
        ctx.input_bytes = len(data)
        if not data:
            _input_error('empty_file', 'The image is empty.')

        file_type = _sniff(data)
        ctx.file_type = file_type
        if file_type == 'PDF':
            if not is_pdf:
                _input_error('pdf_without_is_pdf', 'The file is a PDF but IsPdf is not true.')
            pages = _pdf_page_count(data)
            ctx.pdf_page_size = pages
            if page > pages:
                _input_error('page_out_of_range', 'PdfPageNumber %d is beyond the %d page(s) of '
                             'the PDF.' % (page, pages))
            ctx.pdf_page = page
            return self._success(page, pages, request_id)
        if file_type not in ('PNG', 'JPEG'):
            _input_error('unsupported_format', 'Unsupported file type %s: PNG, JPG, JPEG and '
                         'PDF are supported, GIF is not.' % (file_type or 'unknown'))
        _check_image(data, file_type)
        return self._success(None, 0, request_id)

    def _download(self, url: str, ctx: _Context) -> bytes:
        parts = urlsplit(url)
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            _input_error('download', 'ImageUrl must be an http(s) URL: %r.' % url)
        # The whole download must finish within download_timeout: it runs in a worker thread
        # the handler waits for, so a server that trickles bytes cannot stretch the limit.
        outcome: dict = {}
        done = threading.Event()

        def fetch() -> None:
            # The service downloads from the internet: local proxy settings do not apply.
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            try:
                with opener.open(url, timeout=self.download_timeout) as resp:
                    outcome['data'] = resp.read(MAX_RAW_BYTES + 1)
            except urllib.error.HTTPError as exc:
                outcome['error'] = 'HTTP %d %s' % (exc.code, exc.reason)
            except Exception as exc:   # URLError, timeouts, resets, bad URLs...
                outcome['error'] = '%s: %s' % (type(exc).__name__, exc)
            finally:
                done.set()

        threading.Thread(target=fetch, name='tencent-emulator-download', daemon=True).start()
        if not done.wait(self.download_timeout):
            _input_error('download', 'Downloading ImageUrl took longer than %.1f s.'
                         % self.download_timeout)
        if 'error' in outcome:
            _input_error('download', 'Downloading ImageUrl failed: %s.' % outcome['error'])
        data = outcome['data']
        ctx.fetched_bytes = len(data)
        if len(data) > MAX_RAW_BYTES:
            _input_error('too_large', 'The file at ImageUrl is over %d bytes after base64 '
                         'encoding.' % MAX_BASE64_BYTES)
        return data

    def _success(self, page: Optional[int], page_count: int, request_id: str) -> _Reply:
        with self._lock:
            custom = self._responses.get(page, self._responses.get(None)) \
                if page is not None else self._responses.get(None)
        if isinstance(custom, str):
            return _Reply(200, custom.encode('utf-8'))
        if custom is None:
            response = example_response(page)
            response['PdfPageSize'] = page_count
            response['RequestId'] = request_id
        else:
            response = copy.deepcopy(custom)
            response.setdefault('PdfPageSize', page_count)
            response.setdefault('RequestId', request_id)
        return _json_reply({'Response': response})


# --------------------------------------------------------------------------------------------
# File checks

def _input_error(kind: str, message: str) -> NoReturn:
    raise TencentError(INPUT_ERRORS[kind], message)


def _sniff(data: bytes) -> Optional[str]:
    if data.startswith(b'\x89PNG\r\n\x1a\n'):
        return 'PNG'
    if data.startswith(b'\xff\xd8\xff'):
        return 'JPEG'
    if data.startswith(b'%PDF-'):
        return 'PDF'
    if data[:6] in (b'GIF87a', b'GIF89a'):
        return 'GIF'
    if data.startswith(b'BM'):
        return 'BMP'
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        return 'WEBP'
    if data[:4] in (b'II*\x00', b'MM\x00*'):
        return 'TIFF'
    return None


def _check_image(data: bytes, file_type: str) -> None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            found = img.format
            img.verify()
    except Exception as exc:   # Pillow raises many kinds for broken files
        _input_error('corrupt_image', 'The %s image could not be decoded: %s.' % (file_type, exc))
    if found != file_type:
        _input_error('corrupt_image', 'The file looks like %s but decodes as %s.'
                     % (file_type, found))
    if width > MAX_PIXELS or height > MAX_PIXELS:
        _input_error('too_many_pixels', 'The image is %dx%d px; each side must be %d..%d px.'
                     % (width, height, MIN_PIXELS, MAX_PIXELS))
    if width < MIN_PIXELS or height < MIN_PIXELS:
        _input_error('too_few_pixels', 'The image is %dx%d px; each side must be %d..%d px.'
                     % (width, height, MIN_PIXELS, MAX_PIXELS))


def _pdf_page_count(data: bytes) -> int:
    import pypdfium2

    try:
        pdf = pypdfium2.PdfDocument(data)
    except Exception as exc:
        _input_error('corrupt_pdf', 'The PDF could not be parsed: %s.' % (exc,))
    try:
        pages = len(pdf)
    finally:
        pdf.close()
    if pages < 1:
        _input_error('corrupt_pdf', 'The PDF has no pages.')
    return pages


# --------------------------------------------------------------------------------------------
# Replies

def _to_bytes(body: Union[str, bytes]) -> bytes:
    return body if isinstance(body, bytes) else body.encode('utf-8')


def _json_reply(doc: dict, status: int = 200, content_type: str = 'application/json',
                error_code: Optional[str] = None) -> _Reply:
    # Tencent sends compact UTF-8 JSON with Content-Type exactly application/json (the SDK
    # only looks for an Error in bodies labelled exactly that, or text/plain).
    body = json.dumps(doc, ensure_ascii=False, separators=(',', ':')).encode('utf-8')
    return _Reply(status, body, content_type, error_code,
                  request_id=doc['Response'].get('RequestId', ''))


def _error_reply(code: str, message: str, request_id: str, status: int = 200,
                 content_type: str = 'application/json') -> _Reply:
    return _json_reply({'Response': {'Error': {'Code': code, 'Message': message},
                                     'RequestId': request_id}},
                       status=status, content_type=content_type, error_code=code)


# --------------------------------------------------------------------------------------------
# HTTP plumbing

class _Handler(LoopbackHandler):
    server_header = 'nginx'
    do_PATCH = LoopbackHandler.do_POST

    def _handle(self) -> None:
        emulator = self.emulator
        ctx = _Context()
        try:
            body = self._read_body()
            reply = emulator._handle_request(self.command, self._origin_target(),
                                             self._lower_headers(), body, ctx)
        except BadRequest as exc:
            self.close_connection = True
            reply = _Reply(400, str(exc).encode(), 'text/plain', 'BadRequest')
        except Exception as exc:  # a bug in the emulator: answer and say what happened
            reply = _error_reply('InternalError', 'Emulator bug: %s: %s'
                                 % (type(exc).__name__, exc), str(uuid.uuid4()))
        emulator._record(RequestRecord(
            action=ctx.action, region=ctx.region, secret_id=ctx.secret_id, params=ctx.params,
            status=0 if reply.drop else reply.status, error_code=reply.error_code,
            request_id=reply.request_id, fault=ctx.fault, source=ctx.source,
            fetched_url=ctx.fetched_url, fetched_bytes=ctx.fetched_bytes,
            input_bytes=ctx.input_bytes, file_type=ctx.file_type,
            pdf_page_size=ctx.pdf_page_size, pdf_page=ctx.pdf_page, timestamp=ctx.timestamp))
        if reply.drop:
            self._drop_connection()
            return
        self.send_response(reply.status, _HTTP_REASONS.get(reply.status))
        self.send_header('Content-Type', reply.content_type)
        self.send_header('Content-Length', str(len(reply.body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(reply.body)
        self.wfile.flush()
