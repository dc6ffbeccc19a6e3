"""A local Alibaba Cloud Vision Intelligence (viapi) OCR endpoint, API version 2019-12-30, for tests.

``ViapiEmulator`` answers on 127.0.0.1 the way ``ocr.cn-shanghai.aliyuncs.com`` does, so that the
unmodified generic client ``alibabacloud_tea_openapi.client.Client`` (``call_api`` with an RPC-style
``Params``) runs against it. It is strict where the real service is strict:

* Authentication is verified byte for byte: the V3 header signature (``ACS3-HMAC-SHA256``: the
  canonical request is rebuilt from the method, path, canonical query, the headers the client
  listed in ``SignedHeaders`` and the ``x-acs-content-sha256`` payload hash) and the legacy RPC
  signature (``SignatureVersion=1.0``, HMAC-SHA1 over the percent-encoded sorted parameters).
  Clock skew (15 minutes), nonce replay, the payload hash against the body, unsigned ``x-acs-*``
  headers and STS security tokens are all checked.
* Every API's documented required parameters are validated (``Missing<Name>`` / ``Invalid<Name>``
  like the real gateway), and every input URL is downloaded (3 s budget) and checked against that
  API's documented formats, byte limit, pixel bounds and PDF page limit.
* Success answers are the documented example responses of shared/specs/recognizers.md section 3,
  kept verbatim in data/viapi_examples.txt, number-typed IDs and all; only the RequestId changes.
* The two async APIs (TrimDocument, RecognizeVideoCharacter) answer ``{"RequestId": X}`` only;
  GetAsyncJobResult(JobId=X) walks QUEUING -> PROCESSING -> PROCESS_SUCCESS with ``Data.Result``
  a JSON *string* (double-encoded), as documented.
* Errors carry the documented body ``{"RequestId","HostId","Code","Message"}`` with the status
  from the seed's error-code table.

Usage::

    from alibabacloud_tea_openapi import utils_models as m
    with OssEmulator() as oss, ViapiEmulator(oss=oss) as viapi:   # credentials: ak-test/sk-test
        client = Client(m.Config(access_key_id='ak-test', access_key_secret='sk-test',
                                 endpoint=viapi.host, protocol='http'))
        client.call_api(m.Params(action='RecognizeBankCard', version='2019-12-30', protocol='HTTP',
                                 method='POST', auth_type='AK', style='RPC', pathname='/',
                                 req_body_type='formData', body_type='json'),
                        m.OpenApiRequest(body={'ImageURL': presigned_oss_url}), RuntimeOptions())
        assert viapi.requests[-1].status == 200

Test controls: set_response / set_async_result / fail_async_job / clear_responses,
inject_fault / clear_faults / release_delayed, async_polls_before_done, and for synchronising
without sleeps wait_until_held(n) and wait_for_requests(n). ``requests`` lists a RequestRecord per
request: action, params, auth ('acs3' | 'rpc-v1' | 'none'), status, error_code, fetched (a Fetch
per input URL: url, status, size, format), request_id, fault.

Faults (``inject_fault``) reproduce what a client meets in production: documented error bodies
(throttling, 5xx), dropped connections, held replies, 200s that are not JSON, and the gateway's
HTML 502 page. Pure standard library plus Pillow (image checks) and pypdfium2 (PDF page counts,
optional: without it pages are counted from the PDF's /Type /Page objects).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import hmac
import http.client
import io
import json
import re
import struct
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple, Union
from urllib.parse import parse_qsl, quote, urlsplit

from ._http import BadRequest, LoopbackEmulator, LoopbackHandler

__all__ = [
    "ViapiEmulator", "RequestRecord", "Fetch", "ViapiError", "ACTIONS", "API_VERSION",
    "load_examples", "percent_encode", "acs3_canonical_request", "acs3_signature",
    "rpc_string_to_sign", "rpc_signature",
]

API_VERSION = '2019-12-30'
HOST_ID = 'ocr.cn-shanghai.aliyuncs.com'
SERVICE_REGION = 'cn-shanghai'
DEFAULT_CREDENTIALS = {'ak-test': ('sk-test', None)}
JSON_CONTENT_TYPE = 'application/json;charset=utf-8'
ACS3_ALGORITHM = 'ACS3-HMAC-SHA256'

# 000 "InvalidTimeStamp.Expired": client and server clocks may differ by at most 15 minutes;
# "SignatureNonceUsed": a nonce may not repeat within 15 minutes.
MAX_CLOCK_SKEW_SECONDS = 15 * 60
NONCE_TTL_SECONDS = 15 * 60
# A5 (and the Content Security doc): "图片下载时间限制为3秒".
DOWNLOAD_TIMEOUT_SECONDS = 3.0
MB = 1024 * 1024

EXAMPLES_PATH = Path(__file__).resolve().parent / 'data' / 'viapi_examples.txt'

# The seed's common error-code table (recognizers.md section 3.0): code -> HTTP status. Codes the
# table does not list (the gateway's own, e.g. MissingSecurityToken) answer 400.
VIDEO_MAX_SECONDS = 60  # RecognizeVideoCharacter: "视频时长：小于60秒"
ERROR_STATUS: Dict[str, int] = {
    'InvalidImage.Category': 400, 'InvalidImage.Content': 400, 'InvalidImage.Decode': 400,
    'InvalidImage.Download': 400, 'InvalidImage.Gif': 400, 'InvalidImage.URL': 400,
    'InvalidImage.Unsafe': 400, 'IllegalUrlParameter': 400, 'MissingImageURL': 400,
    'InvalidSide': 400, 'Throttling.User': 400, 'InvalidParameter': 400,
    'InvalidImage.Region': 400, 'InvalidResult': 400, 'InvalidTimeStamp.Expired': 400,
    'InvalidParameter.TooLarge': 400, 'InvalidOutputFormat': 400, 'MissingOutputFormat': 400,
    'InvalidImageType': 400, 'MissingUseFinanceModel': 400, 'MissingAssureDirection': 400,
    'MissingSide': 400, 'MissingSkipDetection': 400, 'MissingMinHeight': 400,
    'MissingAccessKeyId': 400, 'SignatureNonceUsed': 400, 'SignatureDoesNotMatch': 400,
    'Unauthorized': 403, 'ParameterError': 403, 'UnsupportedHTTPMethod': 403,
    'InvalidApi.NotPurchase': 403, 'InvalidAccessKeyId.NotFound': 404, 'Timeout': 408,
    'InvalidImage.UnsupportedMediaType': 415, 'InternalError': 500, 'ServiceUnavailable': 503,
    'UnsupportedOperation': 400,
}

# Common parameters of the RPC protocol: not business parameters, so left out of records.
_PROTOCOL_PARAMS = frozenset([
    'Action', 'Version', 'Format', 'RegionId', 'AccessKeyId', 'Signature', 'SignatureMethod',
    'SignatureNonce', 'SignatureVersion', 'SignatureType', 'Timestamp', 'SecurityToken',
    'BearerToken',
])

_GATEWAY_502_PAGE = (
    b'<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\r\n<html>\r\n<head><title>502 Bad Gateway'
    b'</title></head>\r\n<body>\r\n<h1>502 Bad Gateway</h1>\r\n<p>The proxy server received an '
    b'invalid response from an upstream server.</p>\r\n<hr/>Powered by Tengine\r\n</body>\r\n'
    b'</html>\r\n')

FAULT_KINDS = ('error', 'drop', 'delay', 'malformed', 'html')


# --------------------------------------------------------------------------------------------
# Per-API rules (recognizers.md section 2.1 and the A-sections)

@dataclasses.dataclass(frozen=True)
class _Param:
    name: str
    kind: str                         # 'enum' | 'bool' | 'int'
    choices: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ActionSpec:
    name: str
    url_param: Optional[str]          # ImageURL | FileURL | VideoURL | Tasks (Tasks.N.ImageURL)
    formats: frozenset                # accepted detected formats (JPEG, PNG, BMP, GIF, WEBP, PDF, ...)
    max_bytes: int = 0
    strict_max: bool = False          # "<20MB" rather than "<=3MB"
    base64_limit: bool = False        # the limit applies to the base64 encoding of the bytes
    min_side: Optional[int] = None    # exclusive: ">15x15"
    max_side: Optional[int] = None    # exclusive: "<4096x4096"
    max_pages: Optional[int] = None
    params: Tuple[_Param, ...] = ()
    is_async: bool = False


_IMG = frozenset(['JPEG', 'PNG', 'BMP', 'GIF'])
_IMG_NO_GIF = frozenset(['JPEG', 'PNG', 'BMP'])
_QR = frozenset(['PNG', 'JPEG', 'BMP', 'GIF', 'WEBP'])
_PDF = frozenset(['PDF'])
_VIDEO = frozenset(['AVI', 'MP4', 'H264'])
_SIDE = _Param('Side', 'enum', ('face', 'back'))


def _specs(*specs: ActionSpec) -> Dict[str, ActionSpec]:
    return {s.name: s for s in specs}


ACTIONS: Dict[str, ActionSpec] = _specs(
    ActionSpec('RecognizeIdentityCard', 'ImageURL', _IMG, 3 * MB, min_side=15, max_side=4096,
               params=(_SIDE,)),
    ActionSpec('RecognizeAccountPage', 'ImageURL', _IMG, 3 * MB),
    ActionSpec('RecognizeBankCard', 'ImageURL', _IMG, 3 * MB),
    ActionSpec('RecognizeBusinessCard', 'ImageURL', _IMG, 3 * MB),
    ActionSpec('RecognizeQrCode', 'Tasks', _QR, 10 * MB),
    # "图片二进制数据的base64编码后大小不超过2MB"
    ActionSpec('RecognizeChinapassport', 'ImageURL', _IMG, 2 * MB, base64_limit=True),
    ActionSpec('RecognizePassportMRZ', 'ImageURL', frozenset(['JPEG', 'PNG']), 10 * MB),
    ActionSpec('RecognizeBusinessLicense', 'ImageURL', _IMG, 3 * MB),
    ActionSpec('RecognizeStamp', 'ImageURL', _IMG, 3 * MB),
    ActionSpec('RecognizeCharacter', 'ImageURL', _IMG, 3 * MB, min_side=15, max_side=4096,
               params=(_Param('MinHeight', 'int'), _Param('OutputProbability', 'bool'))),
    ActionSpec('RecognizeTable', 'ImageURL', _IMG, 3 * MB,
               params=(_Param('OutputFormat', 'enum', ('html', 'json', 'xlsx')),
                       _Param('UseFinanceModel', 'bool'), _Param('AssureDirection', 'bool'),
                       _Param('HasLine', 'bool'), _Param('SkipDetection', 'bool'))),
    ActionSpec('TrimDocument', 'FileURL', _PDF, 10 * MB, max_pages=2,
               params=(_Param('FileType', 'enum', ('pdf',)),
                       _Param('OutputType', 'enum', ('json', 'html'))),
               is_async=True),
    ActionSpec('DetectCardScreenshot', 'ImageURL', _IMG_NO_GIF, 3 * MB, min_side=100,
               max_side=3000),
    ActionSpec('RecognizePoiName', 'ImageURL', _IMG_NO_GIF, 10 * MB, min_side=15, max_side=4096),
    ActionSpec('RecognizePdf', 'FileURL', _PDF, 10 * MB, max_pages=5),
    ActionSpec('RecognizeVideoCharacter', 'VideoURL', _VIDEO, 20 * MB, strict_max=True,
               is_async=True),
    ActionSpec('RecognizeDriverLicense', 'ImageURL', _IMG, 4 * MB, min_side=15, max_side=4096,
               params=(_SIDE,)),
    ActionSpec('RecognizeDrivingLicense', 'ImageURL', _IMG, 3 * MB, params=(_SIDE,)),
    ActionSpec('RecognizeLicensePlate', 'ImageURL', _IMG, 4 * MB, min_side=15, max_side=4096),
    ActionSpec('RecognizeVINCode', 'ImageURL', _IMG, 3 * MB),
    ActionSpec('RecognizeTaxiInvoice', 'ImageURL', _IMG, 3 * MB),
    # JPG only, and FileURL + FileType rather than ImageURL.
    ActionSpec('RecognizeVATInvoice', 'FileURL', frozenset(['JPEG']), 3 * MB, min_side=15,
               max_side=4096, params=(_Param('FileType', 'enum', ('jpg',)),)),
    ActionSpec('RecognizeTrainTicket', 'ImageURL', _IMG, 3 * MB),
    ActionSpec('RecognizeTakeoutOrder', 'ImageURL', _IMG_NO_GIF, 10 * MB),
    ActionSpec('RecognizeQuotaInvoice', 'ImageURL', _IMG_NO_GIF, 4 * MB, min_side=15,
               max_side=4096),
    ActionSpec('RecognizeTicketInvoice', 'ImageURL', _IMG_NO_GIF, 4 * MB, min_side=15,
               max_side=4096),
    ActionSpec('GetAsyncJobResult', None, frozenset()),
)
MAX_QR_TASKS = 10


# --------------------------------------------------------------------------------------------
# Documented example responses

def _compact_json(text: str) -> str:
    """`text` without the whitespace outside strings; every other character (numbers!) kept."""
    out = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == '\\':
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch not in ' \t\r\n':
            out.append(ch)
    return ''.join(out)


_EXAMPLE_HEADER = re.compile(r'^=== (\w+)(?: \([^)]*\))? ===$')
_examples_cache: Optional[Dict[str, str]] = None


def load_examples() -> Dict[str, str]:
    """Action -> the documented example response, as raw JSON text exactly as stored."""
    global _examples_cache
    if _examples_cache is None:
        examples: Dict[str, List[str]] = {}
        current: Optional[List[str]] = None
        for line in EXAMPLES_PATH.read_text('utf-8').splitlines():
            match = _EXAMPLE_HEADER.match(line)
            if match:
                current = examples.setdefault(match.group(1), [])
            elif current is not None:
                current.append(line)
        texts = {name: '\n'.join(lines).strip() for name, lines in examples.items()}
        for _name, text in texts.items():
            json.loads(text)   # fail loudly on a broken data file
        _examples_cache = texts
    return dict(_examples_cache)


_REQUEST_ID_FIELD = re.compile(r'"RequestId":"[^"]*"')


# --------------------------------------------------------------------------------------------
# Signatures, written from Alibaba Cloud's documentation (V3 "ACS3-HMAC-SHA256" and RPC V1)

def percent_encode(text: str) -> str:
    """RFC 3986 encoding of the UTF-8 bytes: only A-Z a-z 0-9 - _ . ~ stay (space -> %20)."""
    return quote(text, safe='-_.~', encoding='utf-8')


def acs3_canonical_request(method: str, path: str, query: List[Tuple[str, str]],
                           headers: List[Tuple[str, str]], signed_headers: str,
                           payload_hash: str) -> str:
    """The V3 CanonicalRequest.

    `query` is the decoded (name, value) pairs of the URL query; `headers` the (lower-case name,
    value) pairs to sign, in SignedHeaders order, values as received.
    """
    canonical_uri = quote(path or '/', safe='/-_.~')
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in query)
    canonical_query = '&'.join('%s=%s' % kv for kv in encoded)
    canonical_headers = ''.join('%s:%s\n' % (name, value.strip()) for name, value in headers)
    return '\n'.join([method.upper(), canonical_uri, canonical_query, canonical_headers,
                      signed_headers, payload_hash])


def acs3_signature(secret: str, canonical_request: str) -> Tuple[str, str]:
    """(hex signature, string to sign) for a canonical request."""
    string_to_sign = '%s\n%s' % (ACS3_ALGORITHM,
                                 hashlib.sha256(canonical_request.encode('utf-8')).hexdigest())
    signature = hmac.new(secret.encode('utf-8'), string_to_sign.encode('utf-8'),
                         hashlib.sha256).hexdigest()
    return signature, string_to_sign


def rpc_string_to_sign(method: str, params: Dict[str, str]) -> str:
    pairs = sorted((percent_encode(k), percent_encode(v)) for k, v in params.items()
                   if k != 'Signature')
    canonical = '&'.join('%s=%s' % kv for kv in pairs)
    return '%s&%s&%s' % (method.upper(), percent_encode('/'), percent_encode(canonical))


def rpc_signature(method: str, params: Dict[str, str], secret: str) -> Tuple[str, str]:
    """(base64 signature, string to sign) of SignatureVersion 1.0: HMAC-SHA1 keyed secret + '&'."""
    string_to_sign = rpc_string_to_sign(method, params)
    digest = hmac.new((secret + '&').encode('utf-8'), string_to_sign.encode('utf-8'),
                      hashlib.sha1).digest()
    return base64.b64encode(digest).decode('ascii'), string_to_sign


# --------------------------------------------------------------------------------------------
# Records, errors, state

class Fetch(NamedTuple):
    """One input URL the emulator downloaded (status 0: no HTTP answer at all)."""
    url: str
    status: int
    size: int
    format: Optional[str]


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One handled request, as seen by the service after decoding."""
    action: str                 # '' when the request never named one
    params: Dict[str, str]      # business parameters (query and form body merged)
    auth: str                   # 'acs3' | 'rpc-v1' | 'none'
    status: int                 # 0 when an injected fault dropped the connection
    error_code: Optional[str]
    fetched: Tuple[Fetch, ...] = ()
    request_id: str = ''
    fault: Optional[str] = None     # the kind of injected fault that shaped the answer


class ViapiError(Exception):
    """A documented error answer: HTTP status from the error table, Code and Message."""

    def __init__(self, code: str, message: str, status: Optional[int] = None,
                 retry_after: Optional[int] = None):
        super().__init__('%s: %s' % (code, message))
        self.code = code
        self.message = message
        self.status = status if status is not None else ERROR_STATUS.get(code, 400)
        self.retry_after = retry_after


def _missing(name: str) -> ViapiError:
    return ViapiError('Missing' + name, '%s is mandatory for this action.' % name)


def _invalid(name: str, value: str) -> ViapiError:
    return ViapiError('Invalid' + name, 'Specified parameter %s is not valid: %r.' % (name, value))


def _missing_parameter(name: str) -> ViapiError:
    return ViapiError('MissingParameter', 'The input parameter "%s" that is mandatory for '
                      'processing this request is not supplied.' % name)


@dataclasses.dataclass
class _Fault:
    action: Optional[str]
    kind: str
    status: int
    code: str
    message: str
    remaining: int
    delay: float
    retry_after: Optional[int] = None


@dataclasses.dataclass
class _Override:
    body: bytes
    status: int
    content_type: str
    fresh_request_id: bool


@dataclasses.dataclass
class _Job:
    job_id: str
    action: str
    result: str                                    # the Data.Result string on success
    failure: Optional[Tuple[str, str, str]] = None  # (Status, ErrorCode, ErrorMessage)
    polls: int = 0


@dataclasses.dataclass
class _Request:
    method: str
    path: str
    query: List[Tuple[str, str]]
    params: Dict[str, str]
    headers: Dict[str, List[str]]   # lower-case name -> values, as received
    body: bytes
    request_id: str
    auth: str = 'none'
    action: str = ''
    fetched: List[Fetch] = dataclasses.field(default_factory=list)
    fault: Optional[str] = None

    def header(self, name: str) -> Optional[str]:
        values = self.headers.get(name)
        return values[0] if values else None


@dataclasses.dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    error_code: Optional[str] = None
    headers: Tuple[Tuple[str, str], ...] = ()


class _DropConnection(Exception):
    pass


def _parse_acs_time(value: str) -> Optional[float]:
    for fmt in ('%Y-%m-%dT%H:%M:%SZ', '%Y-%m-%dT%H:%M:%S.%fZ'):
        try:
            parsed = datetime.datetime.strptime(value, fmt)
        except (TypeError, ValueError):
            continue
        return parsed.replace(tzinfo=datetime.timezone.utc).timestamp()
    return None


# --------------------------------------------------------------------------------------------
# The emulator

class ViapiEmulator(LoopbackEmulator):
    """An in-process viapi OCR 2019-12-30 endpoint on 127.0.0.1; see the module docstring."""

    def __init__(self, credentials: Optional[Dict[str, Tuple[str, Optional[str]]]] = None,
                 oss=None):
        super().__init__(_Handler, 'viapi-emulator', poll_interval=0.01)
        # access_key_id -> (access_key_secret, security token or None for a long-term key)
        self.credentials: Dict[str, Tuple[str, Optional[str]]] = dict(
            DEFAULT_CREDENTIALS if credentials is None else credentials)
        self.oss = oss
        self.requests: List[RequestRecord] = []
        # GetAsyncJobResult answers QUEUING, then PROCESSING, for this many polls of a job before
        # the final status.
        self.async_polls_before_done = 1
        self.download_timeout = DOWNLOAD_TIMEOUT_SECONDS
        self.host = ''
        self._changed = threading.Condition(self._lock)   # a request held or recorded
        self._held_count = 0
        self._faults: List[_Fault] = []
        self._delay_events: List[threading.Event] = []
        self._overrides: Dict[str, _Override] = {}
        self._async_results: Dict[str, str] = {}
        self._async_failures: List[List] = []       # [status, code, message, remaining or None]
        self._jobs: Dict[str, _Job] = {}
        self._nonces: Dict[Tuple[str, str], float] = {}
        self._examples = {name: _compact_json(text) for name, text in load_examples().items()}
        self._stopping = False

    # ---- lifecycle ----------------------------------------------------------------------

    def _published(self, port: int) -> None:
        self.host = '127.0.0.1:%d' % port
        self.endpoint = 'http://' + self.host

    def _starting(self) -> None:
        self._stopping = False

    def _stopping_now(self) -> None:
        with self._lock:
            self._stopping = True   # no reply is held from now on
        self.release_delayed()

    # ---- answers ----------------------------------------------------------------------------

    @staticmethod
    def example(action: str) -> dict:
        """The documented example response of `action`, parsed (big integers stay exact)."""
        return json.loads(load_examples()[action])

    @staticmethod
    def example_text(action: str) -> str:
        """The documented example response of `action` as the raw JSON text stored."""
        return load_examples()[action]

    def set_response(self, action: str, body: Union[str, bytes, dict, None], status: int = 200,
                     content_type: str = JSON_CONTENT_TYPE) -> None:
        """Answer `action` with `body` instead of its example (None restores the example).

        A str/bytes body goes on the wire as given; a dict is JSON-encoded, with a fresh RequestId
        put first unless it has one. The override is served once the request has passed
        authentication, parameter validation and the input download, and for an async action it
        replaces the submit answer (no job is created).
        """
        if action not in ACTIONS:
            raise ValueError('unknown viapi action %r' % action)
        with self._lock:
            if body is None:
                self._overrides.pop(action, None)
                return
            if isinstance(body, dict):
                fresh = 'RequestId' not in body
                payload = json.dumps(body if not fresh else {'RequestId': '', **body},
                                     ensure_ascii=False, separators=(',', ':')).encode('utf-8')
            else:
                fresh = False
                payload = body.encode('utf-8') if isinstance(body, str) else bytes(body)
            self._overrides[action] = _Override(payload, status, content_type, fresh)

    def clear_responses(self) -> None:
        """Back to the documented examples: drops set_response, set_async_result and pending
        fail_async_job settings."""
        with self._lock:
            self._overrides.clear()
            self._async_results.clear()
            self._async_failures.clear()

    def set_async_result(self, action: str, result: Union[str, dict, None]) -> None:
        """The Data.Result of jobs submitted later through `action` (TrimDocument or
        RecognizeVideoCharacter): a dict is JSON-encoded, a str used as the Result string as is;
        None restores the documented example's Data."""
        if action not in ('TrimDocument', 'RecognizeVideoCharacter'):
            raise ValueError('%s is not an async action' % action)
        with self._lock:
            if result is None:
                self._async_results.pop(action, None)
            else:
                self._async_results[action] = (result if isinstance(result, str) else
                                               json.dumps(result, ensure_ascii=False))

    def fail_async_job(self, status: str = 'PROCESS_FAILED', code: str = 'InvalidParameter',
                       message: str = 'paramsIllegal', *, times: Optional[int] = 1) -> None:
        """Make the next `times` jobs submitted (all of them if None) end in `status` (e.g.
        PROCESS_FAILED, TIMEOUT_FAILED, LIMIT_RETRY_FAILED) with ErrorCode/ErrorMessage."""
        if times is not None and times < 1:
            raise ValueError('times must be >= 1 or None')
        with self._lock:
            self._async_failures.append([status, code, message, times])

    def jobs(self) -> Dict[str, str]:
        """JobId -> action of every async job submitted so far."""
        with self._lock:
            return {job_id: job.action for job_id, job in self._jobs.items()}

    # ---- faults -------------------------------------------------------------------------------

    def inject_fault(self, action: Optional[str] = None, *, status: Optional[int] = None,
                     code: str = 'InternalError', message: Optional[str] = None, times: int = 1,
                     kind: str = 'error', delay: float = 30.0,
                     retry_after: Optional[int] = None) -> None:
        """Make the next `times` authenticated requests (for `action`, or any) fail.

        kind='error': the documented error body with `status` (default 500) and `code`, e.g.
        (400, 'Throttling.User') or (503, 'ServiceUnavailable'). 'drop': the connection is closed
        without an answer. 'delay': the reply is held up to `delay` seconds (or until
        release_delayed()), then the request is served normally. 'malformed': 200 with a body that
        is not JSON. 'html': the gateway's text/html error page (status default 502).
        `retry_after` (seconds) adds an x-acs-retry-after header to an 'error' answer, which the
        SDK turns into a ThrottlingException.
        """
        if kind not in FAULT_KINDS:
            raise ValueError('kind must be one of %s' % ', '.join(FAULT_KINDS))
        if times < 1:
            raise ValueError('times must be >= 1')
        if status is None:
            status = {'html': 502, 'malformed': 200}.get(kind, 500)
        with self._lock:
            self._faults.append(_Fault(action, kind, status, code,
                                       message or 'Injected fault: %s.' % code, times, delay,
                                       retry_after))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def release_delayed(self) -> None:
        """Let every request held by a 'delay' fault go on now."""
        with self._lock:
            events, self._delay_events = self._delay_events, []
        for event in events:
            event.set()

    def wait_until_held(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until `count` requests have been held by 'delay' faults in total."""
        with self._changed:
            return self._changed.wait_for(lambda: self._held_count >= count, timeout)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until `count` requests have been recorded in total (answered or dropped)."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.requests) >= count, timeout)

    def _take_fault(self, action: str) -> Optional[_Fault]:
        with self._lock:
            for fault in self._faults:
                if fault.action is None or fault.action == action:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # ---- bookkeeping --------------------------------------------------------------------------

    def _record(self, req: Optional[_Request], status: int, error_code: Optional[str],
                request_id: str) -> None:
        if req is None:
            record = RequestRecord('', {}, 'none', status, error_code, (), request_id)
        else:
            params = {k: v for k, v in req.params.items() if k not in _PROTOCOL_PARAMS}
            record = RequestRecord(req.action, params, req.auth, status, error_code,
                                   tuple(req.fetched), request_id, req.fault)
        with self._changed:
            self.requests.append(record)
            self._changed.notify_all()

    @staticmethod
    def _new_request_id() -> str:
        return str(uuid.uuid4()).upper()

    # ---- request processing ---------------------------------------------------------------

    def _process(self, req: _Request) -> _Response:
        if req.method not in ('GET', 'POST'):
            raise ViapiError('UnsupportedHTTPMethod',
                             'The HTTP method %s is not supported.' % req.method)
        self._authenticate(req)

        version = req.header('x-acs-version') if req.auth == 'acs3' else req.params.get('Version')
        if not version:
            raise _missing_parameter('x-acs-version' if req.auth == 'acs3' else 'Version')
        if version != API_VERSION:
            raise ViapiError('InvalidVersion', 'Specified parameter Version is not valid.')
        spec = ACTIONS.get(req.action)
        if spec is None or req.path != '/':
            raise ViapiError('UnsupportedOperation', 'The specified action is not supported.')

        fault = self._take_fault(req.action)
        if fault is not None:
            req.fault = fault.kind
            if fault.kind == 'error':
                raise ViapiError(fault.code, fault.message, fault.status, fault.retry_after)
            if fault.kind == 'drop':
                raise _DropConnection()
            if fault.kind == 'malformed':
                return _Response(fault.status, ('{"RequestId":"%s","Data":{"Fron'
                                                % req.request_id).encode('ascii'))
            if fault.kind == 'html':
                return _Response(fault.status, _GATEWAY_502_PAGE, 'text/html',
                                 error_code='BadGateway')
            release = threading.Event()
            with self._changed:
                if self._stopping:
                    release.set()
                self._delay_events.append(release)
                self._held_count += 1
                self._changed.notify_all()
            release.wait(fault.delay)

        if spec.name == 'GetAsyncJobResult':
            return self._get_async_job_result(req)
        urls = self._validate(spec, req.params)
        for url in urls:
            self._check_input(spec, url, req)

        override = self._override(req)
        if override is not None:
            return override
        if spec.is_async:
            self._submit_job(spec, req.request_id)
            return self._json(200, {'RequestId': req.request_id})
        text = _REQUEST_ID_FIELD.sub('"RequestId":"%s"' % req.request_id,
                                     self._examples[spec.name], count=1)
        if spec.url_param == 'Tasks' and len(urls) > 1:
            text = self._one_element_per_task(text, urls)
        return _Response(200, text.encode('utf-8'))

    @staticmethod
    def _one_element_per_task(text: str, urls: List[str]) -> str:
        """RecognizeQrCode answers one Elements[] entry per task ("one per task"), in the tasks' order, each
        naming its task's ImageURL. The seed's example shows one task: a request of one gets it verbatim, a
        request of several gets it once per task, each with that task's URL and its own TaskId."""
        doc = json.loads(text)
        [element] = doc['Data']['Elements']
        doc['Data']['Elements'] = [dict(element, ImageURL=url, TaskId='%s-%d' % (element['TaskId'], n))
                                   for n, url in enumerate(urls, 1)]
        return json.dumps(doc, ensure_ascii=False, separators=(',', ':'))

    def _override(self, req: _Request) -> Optional[_Response]:
        with self._lock:
            override = self._overrides.get(req.action)
        if override is None:
            return None
        body = override.body
        if override.fresh_request_id:
            body = body.replace(b'"RequestId":""', ('"RequestId":"%s"'
                                                     % req.request_id).encode('ascii'), 1)
        error_code = None
        if override.status >= 400:
            try:
                error_code = json.loads(body).get('Code')
            except (ValueError, AttributeError):
                error_code = None
        return _Response(override.status, body, override.content_type, error_code)

    @staticmethod
    def _json(status: int, payload: dict) -> _Response:
        return _Response(status, json.dumps(payload, ensure_ascii=False,
                                            separators=(',', ':')).encode('utf-8'))

    # ---- authentication ---------------------------------------------------------------------

    def _authenticate(self, req: _Request) -> None:
        authorization = req.header('authorization')
        if authorization is not None:
            req.auth = 'acs3'
            req.action = req.header('x-acs-action') or ''
            self._verify_acs3(req, authorization)
        elif 'Signature' in req.params or 'AccessKeyId' in req.params:
            req.auth = 'rpc-v1'
            req.action = req.params.get('Action', '')
            self._verify_rpc_v1(req)
        else:
            req.action = req.header('x-acs-action') or req.params.get('Action', '')
            raise _missing('AccessKeyId')

    def _secret_for(self, ak: str, token: Optional[str]) -> str:
        entry = self.credentials.get(ak)
        if entry is None:
            raise ViapiError('InvalidAccessKeyId.NotFound', 'Specified access key is not found.')
        secret, expected_token = entry
        if expected_token is None:
            if token:
                raise ViapiError('InvalidSecurityToken.MismatchWithAccessKey',
                                 'Specified SecurityToken mismatch with the AccessKey: %s is '
                                 'not an STS AccessKey.' % ak)
        elif not token:
            raise ViapiError('MissingSecurityToken', 'SecurityToken is mandatory for this action.')
        elif not hmac.compare_digest(token.encode('utf-8'), expected_token.encode('utf-8')):
            raise ViapiError('InvalidSecurityToken.MismatchWithAccessKey',
                             'Specified SecurityToken mismatch with the AccessKey.')
        return secret

    @staticmethod
    def _check_time(raw: str) -> None:
        when = _parse_acs_time(raw)
        if when is None:
            raise ViapiError('InvalidTimeStamp.Format',
                             'Specified time stamp or date value is not well formatted.')
        if abs(time.time() - when) > MAX_CLOCK_SKEW_SECONDS:
            raise ViapiError('InvalidTimeStamp.Expired',
                             'Specified time stamp or date value is expired.')

    def _use_nonce(self, ak: str, nonce: str) -> None:
        now = time.time()
        with self._lock:
            for key in [k for k, expiry in self._nonces.items() if expiry < now]:
                del self._nonces[key]
            if (ak, nonce) in self._nonces:
                raise ViapiError('SignatureNonceUsed', 'Specified signature nonce was used '
                                 'already.')
            self._nonces[(ak, nonce)] = now + NONCE_TTL_SECONDS

    def _verify_acs3(self, req: _Request, authorization: str) -> None:
        algorithm, _, rest = authorization.strip().partition(' ')
        if algorithm != ACS3_ALGORITHM:
            raise ViapiError('InvalidAuthorization', 'The signature algorithm %r is not '
                             'supported; use %s.' % (algorithm, ACS3_ALGORITHM))
        fields = {}
        for item in rest.split(','):
            name, sep, value = item.strip().partition('=')
            if sep:
                fields[name] = value.strip()
        ak = fields.get('Credential', '')
        signed = fields.get('SignedHeaders', '')
        provided = fields.get('Signature', '')
        if not ak or not signed or not provided:
            raise ViapiError('IncompleteSignature', 'The Authorization header must carry '
                             'Credential, SignedHeaders and Signature.')
        for name in ('host', 'x-acs-action', 'x-acs-version', 'x-acs-date',
                     'x-acs-signature-nonce', 'x-acs-content-sha256'):
            if req.header(name) is None:
                raise _missing_parameter(name)
        signed_names = signed.split(';')
        # Every common header present must be signed ("除Authorization外的所有公共请求头，只要存在必须
        # 被加入签名"): host, content-type and all x-acs-* headers.
        must_sign = [name for name in req.headers
                     if name in ('host', 'content-type') or name.startswith('x-acs-')]
        unsigned = sorted(set(must_sign) - set(signed_names))
        if unsigned:
            raise ViapiError('IncompleteSignature', 'These headers must be signed: %s.'
                             % ', '.join(unsigned))
        absent = [name for name in signed_names if name not in req.headers]
        if absent or any(name != name.lower() for name in signed_names):
            raise ViapiError('IncompleteSignature', 'SignedHeaders lists headers the request does '
                             'not carry, or not in lower case: %s.' % signed)

        self._check_time(req.header('x-acs-date') or '')
        secret = self._secret_for(ak, req.header('x-acs-security-token'))
        key_header = req.header('x-acs-accesskey-id')
        if key_header is not None and key_header != ak:
            raise ViapiError('InvalidSecurityToken.MismatchWithAccessKey',
                             'x-acs-accesskey-id does not match the Credential.')

        headers = [(name, ','.join(sorted(v.strip() for v in req.headers[name])))
                   for name in signed_names]
        payload_hash = req.header('x-acs-content-sha256') or ''
        canonical = acs3_canonical_request(req.method, req.path, req.query, headers, signed,
                                           payload_hash)
        expected, string_to_sign = acs3_signature(secret, canonical)
        if not hmac.compare_digest(expected.encode('ascii'),
                                   provided.encode('utf-8', 'replace')):
            raise ViapiError('SignatureDoesNotMatch', 'Specified signature does not match our '
                             'calculation. server StringToSign is [%s]'
                             % string_to_sign.replace('\n', ' '))
        if payload_hash.lower() != hashlib.sha256(req.body).hexdigest():
            raise ViapiError('SignatureDoesNotMatch', 'x-acs-content-sha256 does not match the '
                             'SHA-256 of the request body: the payload was changed after signing.')
        self._use_nonce(ak, req.header('x-acs-signature-nonce') or '')

    def _verify_rpc_v1(self, req: _Request) -> None:
        params = req.params
        ak = params.get('AccessKeyId')
        if not ak:
            raise _missing('AccessKeyId')
        for name in ('Signature', 'SignatureMethod', 'SignatureVersion', 'SignatureNonce',
                     'Timestamp'):
            if not params.get(name):
                raise _missing(name)
        if params['SignatureMethod'] != 'HMAC-SHA1':
            raise ViapiError('InvalidSignatureMethod',
                             'Specified signature method is not supported: %r.'
                             % params['SignatureMethod'])
        if params['SignatureVersion'] != '1.0':
            raise ViapiError('InvalidSignatureVersion',
                             'Specified signature version is not supported: %r.'
                             % params['SignatureVersion'])
        self._check_time(params['Timestamp'])
        secret = self._secret_for(ak, params.get('SecurityToken'))
        expected, string_to_sign = rpc_signature(req.method, params, secret)
        if not hmac.compare_digest(expected.encode('ascii'),
                                   params['Signature'].encode('utf-8', 'replace')):
            raise ViapiError('SignatureDoesNotMatch', 'Specified signature does not match our '
                             'calculation. server string to sign is:%s' % string_to_sign)
        self._use_nonce(ak, params['SignatureNonce'])

    # ---- parameters and inputs --------------------------------------------------------------

    @staticmethod
    def _validate(spec: ActionSpec, params: Dict[str, str]) -> List[str]:
        """Check the documented required parameters; returns the input URLs."""
        if spec.url_param == 'Tasks':
            indexed = {}
            for name, value in params.items():
                match = re.fullmatch(r'Tasks\.(\d+)\.ImageURL', name)
                if match and value:
                    indexed[int(match.group(1))] = value
            if not indexed:
                raise ViapiError('MissingImageURL', 'Tasks.1.ImageURL is mandatory for this '
                                 'action.')
            if len(indexed) > MAX_QR_TASKS or max(indexed) > MAX_QR_TASKS:
                raise ViapiError('InvalidParameter', 'Tasks takes at most %d elements.'
                                 % MAX_QR_TASKS)
            if sorted(indexed) != list(range(1, len(indexed) + 1)):
                raise ViapiError('InvalidParameter', 'Tasks.N.ImageURL must be numbered 1..N.')
            urls = [indexed[i] for i in sorted(indexed)]
        else:
            url = params.get(spec.url_param or '')
            if not url:
                raise _missing(spec.url_param or '')
            urls = [url]
        for param in spec.params:
            value = params.get(param.name)
            if value is None or value == '':
                raise _missing(param.name)
            if param.kind == 'enum' and value not in param.choices:
                raise _invalid(param.name, value)
            if param.kind == 'bool' and value.lower() not in ('true', 'false'):
                raise _invalid(param.name, value)
            if param.kind == 'int' and not re.fullmatch(r'\d{1,9}', value):
                raise _invalid(param.name, value)
        return urls

    def _check_input(self, spec: ActionSpec, url: str, req: _Request) -> None:
        try:
            url.encode('ascii')
        except UnicodeEncodeError:
            raise ViapiError('InvalidImage.URL', 'The URL must not contain non-ASCII (e.g. '
                             'Chinese) characters: %s' % url)
        parts = urlsplit(url)
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            raise ViapiError('InvalidImage.URL', 'Invalid image URL: %s' % url)
        region = self._url_region(parts)
        if region is not None and region != SERVICE_REGION:
            raise ViapiError('InvalidImage.Region', 'Only OSS URLs of the Shanghai region '
                             '(cn-shanghai) are supported; this object is in %s.' % region)

        limit = spec.max_bytes
        read_limit = (limit * 4 // 3 + 4) if spec.base64_limit else limit
        status, data = self._download(url, read_limit + 1)
        if status != 200:
            req.fetched.append(Fetch(url, status, len(data), None))
            raise ViapiError('InvalidImage.Download', 'Failed to download the file from the URL '
                             '(%s).' % ('HTTP %d' % status if status else 'no answer'))
        fmt = _sniff(data)
        req.fetched.append(Fetch(url, status, len(data), fmt))

        size = len(data)
        measured = 4 * ((size + 2) // 3) if spec.base64_limit else size
        if measured > limit or (spec.strict_max and measured >= limit):
            raise ViapiError('InvalidParameter.TooLarge', 'The file is %d bytes%s; %s accepts '
                             '%s %d bytes.' % (size, ' (%d in base64)' % measured
                                               if spec.base64_limit else '', spec.name,
                                               'less than' if spec.strict_max else 'at most',
                                               limit))
        if fmt is None:
            raise ViapiError('InvalidImage.UnsupportedMediaType', 'Failed to decode the input '
                             'file: not a format this service reads.')
        if fmt not in spec.formats:
            raise ViapiError('InvalidImageType', 'The file is %s; %s accepts %s.'
                             % (fmt, spec.name, ', '.join(sorted(spec.formats))))
        if fmt == 'PDF':
            self._check_pdf(spec, data)
        elif fmt in _VIDEO:
            self._check_video(spec, data)
        else:
            self._check_image(spec, data, fmt)

    @staticmethod
    def _check_video(spec: ActionSpec, data: bytes) -> None:
        """The documented "视频时长：小于60秒", read from an MP4's mvhd box (its first occurrence; no decoder
        here, so frame rate and size go unchecked). The seed names no error for it: InvalidParameter, the
        service's code for a parameter outside its documented range, is the one chosen."""
        at = data.find(b'mvhd')
        if at < 4 or at + 4 + 28 > len(data):
            return
        body = at + 4
        if data[body] == 1:
            timescale, duration = struct.unpack_from('>IQ', data, body + 4 + 16)
        else:
            timescale, duration = struct.unpack_from('>II', data, body + 4 + 8)
        if timescale and duration / timescale >= VIDEO_MAX_SECONDS:
            raise ViapiError('InvalidParameter', 'The video lasts %.1f s; %s accepts videos under %d s.'
                             % (duration / timescale, spec.name, VIDEO_MAX_SECONDS))

    def _url_region(self, parts) -> Optional[str]:
        if self.oss is not None and self.oss.endpoint:
            if parts.netloc.lower() == urlsplit(self.oss.endpoint).netloc.lower():
                return self.oss.region
        match = re.search(r'(?:^|\.)oss-([a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com$',
                          (parts.hostname or '').lower())
        return match.group(1) if match else None

    def _download(self, url: str, max_bytes: int) -> Tuple[int, bytes]:
        """(HTTP status, at most `max_bytes` of the body); status 0 for no answer in time."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + self.download_timeout
        request = urllib.request.Request(url, headers={'User-Agent': 'viapi-emulator'})
        chunks: List[bytes] = []
        try:
            with opener.open(request, timeout=self.download_timeout) as resp:
                status = resp.status
                got = 0
                while got < max_bytes:
                    if time.monotonic() > deadline:
                        return 0, b''.join(chunks)
                    chunk = resp.read(min(65536, max_bytes - got))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    got += len(chunk)
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read()
            except OSError:
                body = b''
            return exc.code, body
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
            return 0, b''
        return status, b''.join(chunks)

    @staticmethod
    def _check_image(spec: ActionSpec, data: bytes, fmt: str) -> None:
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                img.load()
        except Image.DecompressionBombError:
            raise ViapiError('InvalidParameter.TooLarge', 'The image has too many pixels.')
        except Exception as exc:
            if fmt == 'GIF':
                raise ViapiError('InvalidImage.Gif', 'Failed to decode the GIF image: %s' % exc)
            raise ViapiError('InvalidImage.UnsupportedMediaType',
                             'Failed to decode the input image: %s' % exc)
        if spec.max_side is not None and (width >= spec.max_side or height >= spec.max_side):
            raise ViapiError('InvalidParameter.TooLarge', 'The image is %dx%d; %s accepts less '
                             'than %dx%d.' % (width, height, spec.name, spec.max_side,
                                              spec.max_side))
        if spec.min_side is not None and (width <= spec.min_side or height <= spec.min_side):
            raise ViapiError('InvalidParameter', 'The image is %dx%d; %s needs more than %dx%d.'
                             % (width, height, spec.name, spec.min_side, spec.min_side))

    @staticmethod
    def _check_pdf(spec: ActionSpec, data: bytes) -> None:
        pages = _pdf_page_count(data)
        if pages is None or pages < 1:
            raise ViapiError('InvalidImage.UnsupportedMediaType', 'Failed to open the PDF file.')
        if spec.max_pages is not None and pages > spec.max_pages:
            raise ViapiError('InvalidParameter.TooLarge', 'The PDF has %d pages; %s accepts at '
                             'most %d.' % (pages, spec.name, spec.max_pages))

    # ---- async jobs ---------------------------------------------------------------------------

    def _submit_job(self, spec: ActionSpec, job_id: str) -> None:
        with self._lock:
            result = self._async_results.get(spec.name)
            if result is None:
                data = json.loads(self._examples[spec.name]).get('Data', {})
                result = json.dumps(data, ensure_ascii=False, separators=(',', ':'))
            failure = None
            if self._async_failures:
                entry = self._async_failures[0]
                failure = (entry[0], entry[1], entry[2])
                if entry[3] is not None:
                    entry[3] -= 1
                    if entry[3] <= 0:
                        self._async_failures.pop(0)
            self._jobs[job_id] = _Job(job_id, spec.name, result, failure)

    def _get_async_job_result(self, req: _Request) -> _Response:
        job_id = req.params.get('JobId')
        if not job_id:
            raise _missing('JobId')
        override = self._override(req)
        if override is not None:
            return override
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise ViapiError('InvalidParameter', 'The specified JobId does not exist: %s'
                                 % job_id)
            job.polls += 1
            polls = job.polls
        if polls <= self.async_polls_before_done:
            data = {'Status': 'QUEUING' if polls == 1 else 'PROCESSING', 'JobId': job_id}
        elif job.failure is not None:
            status, code, message = job.failure
            data = {'Status': status, 'ErrorMessage': message, 'ErrorCode': code,
                    'JobId': job_id}
        else:
            # The documented example, Result and JobId replaced: it keeps the example's
            # ErrorCode/ErrorMessage beside PROCESS_SUCCESS (a trap: decide by Status).
            data = dict(json.loads(self._examples['GetAsyncJobResult'])['Data'])
            data['Result'] = job.result
            data['JobId'] = job_id
        return self._json(200, {'RequestId': req.request_id, 'Data': data})


# --------------------------------------------------------------------------------------------
# Content sniffing

def _sniff(data: bytes) -> Optional[str]:
    """The format of `data` from its leading bytes (JPEG, PNG, GIF, BMP, WEBP, TIFF, PDF, MP4,
    AVI, H264), else whatever Pillow recognises; None if nothing does."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b'RIFF' and data[8:12] in (b'WEBP', b'AVI '):
        return 'WEBP' if data[8:12] == b'WEBP' else 'AVI'
    if len(data) >= 12 and data[4:8] == b'ftyp':
        return 'MP4'
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.format
    except Exception:
        return None


_MAGIC = (
    (b'\xff\xd8\xff', 'JPEG'), (b'\x89PNG\r\n\x1a\n', 'PNG'), (b'GIF87a', 'GIF'),
    (b'GIF89a', 'GIF'), (b'BM', 'BMP'), (b'II*\x00', 'TIFF'), (b'MM\x00*', 'TIFF'),
    (b'%PDF-', 'PDF'), (b'\x00\x00\x00\x01', 'H264'), (b'\x00\x00\x01', 'H264'),
)


def _pdf_page_count(data: bytes) -> Optional[int]:
    try:
        import pypdfium2
    except ImportError:  # pragma: no cover - pypdfium2 comes with the 'local' extra
        return len(re.findall(rb'/Type\s*/Page(?![a-zA-Z])', data)) or None
    try:
        pdf = pypdfium2.PdfDocument(data)
    except Exception:
        return None
    try:
        return len(pdf)
    finally:
        pdf.close()


# --------------------------------------------------------------------------------------------
# HTTP plumbing

class _Handler(LoopbackHandler):
    server_header = 'Tengine'
    do_PATCH = LoopbackHandler.do_POST

    def _parse(self, request_id: str, body: bytes) -> _Request:
        path, _, raw_query = self._origin_target().partition('?')
        try:
            query = parse_qsl(raw_query, keep_blank_values=True, encoding='utf-8',
                              errors='strict')
            form: List[Tuple[str, str]] = []
            content_type = (self.headers.get('Content-Type') or '').lower()
            if body and content_type.startswith('application/x-www-form-urlencoded'):
                form = parse_qsl(body.decode('utf-8'), keep_blank_values=True,
                                 encoding='utf-8', errors='strict')
        except UnicodeDecodeError:
            raise ViapiError('InvalidParameter', 'Parameters must be UTF-8.')
        params = dict(query)
        params.update(form)
        headers: Dict[str, List[str]] = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        return _Request(self.command, path, query, params, headers, body, request_id)

    def _handle(self) -> None:
        emulator = self.emulator
        request_id = emulator._new_request_id()
        req: Optional[_Request] = None
        try:
            body = self._read_body()
            req = self._parse(request_id, body)
            resp = emulator._process(req)
        except BadRequest as exc:
            self.close_connection = True
            resp = _error_response(ViapiError('InvalidParameter', str(exc)), request_id)
        except _DropConnection:
            emulator._record(req, 0, 'ConnectionDropped', request_id)
            self._drop_connection()
            return
        except ViapiError as exc:
            resp = _error_response(exc, request_id)
        except Exception as exc:  # a bug in the emulator: answer 500 and say what happened
            resp = _error_response(ViapiError('InternalError', '%s: %s'
                                              % (type(exc).__name__, exc)), request_id)
        emulator._record(req, resp.status, resp.error_code, request_id)
        self._send(resp, request_id)

    def _send(self, resp: _Response, request_id: str) -> None:
        self.send_response(resp.status)
        self.send_header('Content-Type', resp.content_type)
        self.send_header('x-acs-request-id', request_id)
        for name, value in resp.headers:
            self.send_header(name, value)
        self.send_header('Content-Length', str(len(resp.body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(resp.body)
        self.wfile.flush()


def _error_response(exc: ViapiError, request_id: str) -> _Response:
    body = json.dumps({'RequestId': request_id, 'HostId': HOST_ID, 'Code': exc.code,
                       'Message': exc.message}, ensure_ascii=False, separators=(',', ':'))
    headers = ((('x-acs-retry-after', str(exc.retry_after)),)
               if exc.retry_after is not None else ())
    return _Response(exc.status, body.encode('utf-8'), error_code=exc.code, headers=headers)
