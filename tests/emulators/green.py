"""A local Alibaba Cloud Content Security ("green") 2018-05-09 server for tests.

``GreenEmulator`` speaks the ROA protocol of ``/green/image/asyncscan`` and
``/green/image/results`` (scene ``ocr``, structured ticket OCR) on 127.0.0.1, so that unmodified
``aliyunsdkgreen`` requests sent through ``aliyunsdkcore.client.AcsClient`` run against it.
It checks what the service checks before it does any work -- the ROA HMAC-SHA1 signature over
method, Accept, Content-MD5, Content-Type, Date, the ``x-acs-*`` headers and the resource; the
signature method and version; ``x-acs-version``; the 15-minute Date window; nonce reuse; STS
security tokens; Content-MD5 against the body; the per-AccessKey QPS limit -- and answers the
way the API gateway does (JSON ``{"RequestId","HostId","Code","Message"}`` with 4xx), which is
what the SDK turns into ``ServerException``.

Accepted tasks are worked through at once: each image is downloaded through its (presigned) URL,
and the task's result is the documented example for its ticket type
(``data/green_examples.json``, copied verbatim from the seed) with the task's own dataId, taskId
and url. A download that fails becomes a task result with green's public error code (480
DOWNLOAD_FAILED, 592 DOWNLOAD_TIMEOUT, 589 TOO_LARGE, 590 BAD_FORMAT). Results are polled with
``/green/image/results`` or pushed to the task's callback by ``deliver_callbacks()`` -- an
explicit call, one push attempt per due task per call, so tests decide when pushes happen.

Usage::

    with GreenEmulator() as green:
        client = AcsClient('ak-green', 'sk-green', 'cn-shanghai')
        request = ImageAsyncScanRequest()
        request.set_endpoint(green.endpoint)          # 'http://127.0.0.1:PORT'
        request.set_content_type('application/json')
        request.set_content(json.dumps(body).encode('utf-8'))
        answer = json.loads(client.do_action_with_exception(request))

Time: signatures, the Date window and nonces use the real clock; the QPS limit uses
``rate_clock`` (``time.monotonic`` unless a test passes its own); processing delay, retention and
callbacks use the emulator's clock, which ``advance_clock()`` moves forward.

Where the seed is silent, these choices are made (all configurable or noted):

* request-level validation errors answer the green envelope ``{"code":400,"msg",...,"requestId"}``
  with the HTTP status equal to ``code`` ("code ... 和HTTP状态码一致"); ``business_http_status=200``
  answers them with HTTP 200 instead;
* a callback ``content`` is one ``data[]`` element (``callback_content='task'``) or the whole
  results envelope (``'envelope'``), since the doc only says "see the results example";
* "最多重复推送16次检测结果 ... 重复推送16次后仍未接收成功,则不再推送" is read as the first push and then 16
  re-pushes, 17 in all (``max_callback_attempts``): 重复 counts repetitions of a push already made;
* a taskId never issued answers 404 NOT_FOUND, one past retention 594 EXPIRED (green's public
  error codes, outside the seed).

Pure standard library.
"""

from __future__ import annotations

import base64
import binascii
import collections
import concurrent.futures
import copy
import dataclasses
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import socket
import string
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple
from urllib.parse import unquote_plus, urlencode, urlsplit

from ._http import BadRequest, LoopbackEmulator, LoopbackHandler, parse_http_date

__all__ = ['GreenEmulator', 'RequestRecord', 'CallbackAttempt', 'DownloadRecord',
           'GreenGatewayError', 'load_examples', 'CARDS', 'DEFAULT_CREDENTIALS', 'DEFAULT_UID']

DEFAULT_CREDENTIALS = {'ak-green': ('sk-green', None)}
DEFAULT_UID = '1234567890123456'
API_VERSION = '2018-05-09'
SUBMIT_PATH = '/green/image/asyncscan'
RESULTS_PATH = '/green/image/results'

# The API gateway refuses a Date more than 15 minutes off and a nonce seen in the last 15 minutes.
MAX_CLOCK_SKEW_SECONDS = 15 * 60
NONCE_TTL_SECONDS = 15 * 60
# Seed 003: "单用户QPS限制为10次/秒" for each of the two APIs.
DEFAULT_QPS_LIMIT = 10
MAX_TASKS = 100
MAX_QUERY_TASK_IDS = 100
# "检测结果最长保留一小时".
DEFAULT_RETENTION_SECONDS = 3600
# "接收失败时,内容安全将最多重复推送16次检测结果": the first push, then up to 16 re-pushes.
CALLBACK_REPUSHES = 16
DEFAULT_MAX_CALLBACK_ATTEMPTS = 1 + CALLBACK_REPUSHES
# Image requirements: downloaded within 3 s, at most 20 MB, PNG/JPG/JPEG/BMP/GIF/WEBP.
DEFAULT_DOWNLOAD_TIMEOUT = 3.0
MAX_IMAGE_BYTES = 20 * 1024 * 1024

CARDS = ('invoice', 'quota-account-permit', 'train-ticket', 'taxi-ticket')
CRYPT_TYPES = ('SHA256', 'SM3')
_SEED_RE = re.compile(r'[A-Za-z0-9_]{1,64}\Z')

# Green's public per-task codes (help.aliyun.com/document_detail/53414; not in the seed).
OK, PROCESSING, BAD_REQUEST, NOT_FOUND = 200, 280, 400, 404
DOWNLOAD_FAILED, TOO_LARGE, BAD_FORMAT, DOWNLOAD_TIMEOUT, EXPIRED = 480, 589, 590, 592, 594
_MSG = {OK: 'OK', PROCESSING: 'PROCESSING', BAD_REQUEST: 'BAD_REQUEST', NOT_FOUND: 'NOT_FOUND',
        DOWNLOAD_FAILED: 'DOWNLOAD_FAILED', TOO_LARGE: 'TOO_LARGE', BAD_FORMAT: 'BAD_FORMAT',
        DOWNLOAD_TIMEOUT: 'DOWNLOAD_TIMEOUT', EXPIRED: 'EXPIRED', 500: 'GENERAL_ERROR',
        588: 'EXCEED_QUOTA'}

_DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data',
                          'green_examples.json')


def load_examples() -> dict:
    """The verbatim seed examples (a fresh copy each call, safe to modify)."""
    with open(_DATA_FILE, encoding='utf-8') as f:
        return json.load(f)


# --------------------------------------------------------------------------------------------
# Records and errors

@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One handled request, as the server saw it."""
    method: str
    path: str
    ak: Optional[str]         # AccessKeyId from the Authorization header, if it could be read
    auth_ok: bool             # the request passed authentication
    status: int               # HTTP status; 0 when an injected fault dropped the connection
    error_code: Optional[str]  # gateway Code, green msg (BAD_REQUEST...), or the injected code
    body: Any                 # the request body parsed as JSON, or None
    response: Any             # the response body parsed as JSON, or None
    request_id: str = ''


@dataclasses.dataclass(frozen=True)
class CallbackAttempt:
    """One push of a task result to its callback URL."""
    task_id: str
    attempt: int              # 1-based, per task
    status: int               # the callback server's HTTP status; 0 when it could not be reached
    url: str
    checksum: str
    content: str
    crypt_type: str
    error: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class DownloadRecord:
    """One image download made for a task."""
    task_id: str
    url: str
    status: int               # the image server's HTTP status; 0 when there was no answer
    size: int
    code: int                 # the task code it led to (200, 480, 589, 590, 592)
    error: Optional[str] = None


class GreenGatewayError(Exception):
    """An API-gateway error: HTTP status and ``{"Code","Message"}``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__('%d %s: %s' % (status, code, message))
        self.status = status
        self.code = code
        self.message = message


class _BusinessError(Exception):
    """A request green itself rejects: the ``{"code","msg"}`` envelope."""

    def __init__(self, code: int, msg: str):
        super().__init__('%d %s' % (code, msg))
        self.code = code
        self.msg = msg


class _DropConnection(Exception):
    pass


def _err_incomplete_signature(detail: str) -> GreenGatewayError:
    return GreenGatewayError(400, 'IncompleteSignature',
                             'The request signature does not conform to Aliyun standards. ' + detail)


@dataclasses.dataclass
class _Fault:
    path: Optional[str]
    kind: str
    status: int
    code: str
    message: str
    remaining: int


@dataclasses.dataclass
class _Task:
    task_id: str
    data_id: Optional[str]
    url: str
    card: str
    extras: dict
    ak: str
    submitted_at: float
    ready_at: float
    callback: Optional[str]
    seed: Optional[str]
    crypt_type: str
    code: int = OK
    msg: str = 'OK'
    results: Optional[list] = None
    image_md5: Optional[str] = None
    callback_done: bool = False
    callback_attempts: int = 0
    callback_content: Optional[str] = None


@dataclasses.dataclass
class _Request:
    method: str
    path: str
    params: Dict[str, str]
    headers: Dict[str, str]   # lower-case name -> value as received
    body: bytes
    ak: Optional[str] = None
    auth_ok: bool = False
    body_json: Any = None


@dataclasses.dataclass
class _Response:
    status: int
    body: bytes
    error_code: Optional[str] = None
    json_body: Any = None


# --------------------------------------------------------------------------------------------
# Helpers

def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(',', ':')).encode('utf-8')


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


_TASK_ID_CHARS = string.ascii_letters + string.digits


def _task_id(rng: random.Random) -> str:
    # Shaped like the doc's ids ("img1CVBf$Vgrno7wF75H5LaRm-1p****"), '$' and '@' included: a
    # client that splices task ids into URLs or paths unescaped should find out here.
    body = ''.join(rng.choice(_TASK_ID_CHARS + '$@') for _ in range(22))
    tail = ''.join(rng.choice(_TASK_ID_CHARS) for _ in range(6))
    return 'img' + body + '-1' + tail


def _image_format(data: bytes) -> Optional[str]:
    if data.startswith(b'\x89PNG\r\n\x1a\n'):
        return 'png'
    if data.startswith(b'\xff\xd8\xff'):
        return 'jpeg'
    if data[:6] in (b'GIF87a', b'GIF89a'):
        return 'gif'
    if data.startswith(b'BM'):
        return 'bmp'
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        return 'webp'
    return None


def _sm3_hex(data: bytes) -> str:
    try:
        return hashlib.new('sm3', data).hexdigest()
    except ValueError:
        from cryptography.hazmat.primitives import hashes  # OpenSSL without SM3 in hashlib
        h = hashes.Hash(hashes.SM3())
        h.update(data)
        return h.finalize().hex()


def _checksum(uid: str, seed: str, content: str, crypt_type: str) -> str:
    # Computed here, independently of fcocr.checksum, so tests compare two implementations.
    data = (uid + seed + content).encode('utf-8')
    if crypt_type == 'SM3':
        return _sm3_hex(data)
    return hashlib.sha256(data).hexdigest()


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    # Loopback only: never route the emulator's own downloads or pushes through a proxy.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _roa_string_to_sign(req: _Request) -> str:
    """Exactly what aliyunsdkcore's roa_signature_composer signs."""
    h = req.headers
    acs = sorted((name, value) for name, value in h.items() if name.startswith('x-acs-'))
    canonical_headers = ''.join('%s:%s\n' % (name, value) for name, value in acs)
    resource = req.path
    if req.params:
        resource += '?' + '&'.join('%s=%s' % (k, v) for k, v in sorted(req.params.items()))
    return '\n'.join([req.method, h.get('accept', ''), h.get('content-md5', ''),
                      h.get('content-type', ''), h.get('date', ''),
                      canonical_headers + resource])


# --------------------------------------------------------------------------------------------
# The emulator

class GreenEmulator(LoopbackEmulator):
    """An in-memory Content Security endpoint on 127.0.0.1; see the module docstring."""

    def __init__(self, credentials: Optional[Dict[str, Tuple[str, Optional[str]]]] = None,
                 uid: str = DEFAULT_UID, *, region: str = 'cn-shanghai',
                 qps_limit: Optional[int] = DEFAULT_QPS_LIMIT,
                 retention_seconds: float = DEFAULT_RETENTION_SECONDS,
                 processing_delay: float = 0.0,
                 max_callback_attempts: int = DEFAULT_MAX_CALLBACK_ATTEMPTS,
                 download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT,
                 callback_content: str = 'task',
                 business_http_status: Optional[int] = None,
                 random_seed: Optional[int] = None,
                 rate_clock: Callable[[], float] = time.monotonic):
        super().__init__(_Handler, 'green-emulator')
        if callback_content not in ('task', 'envelope'):
            raise ValueError("callback_content must be 'task' or 'envelope'")
        self.region = region
        self.host_id = 'green.%s.aliyuncs.com' % region
        # access_key_id -> (access_key_secret, security_token or None for a long-term key)
        self.credentials: Dict[str, Tuple[str, Optional[str]]] = dict(
            DEFAULT_CREDENTIALS if credentials is None else credentials)
        self.uid = uid
        self.qps_limit = qps_limit
        self.retention_seconds = retention_seconds
        self.processing_delay = processing_delay
        self.max_callback_attempts = max_callback_attempts
        self.download_timeout = download_timeout
        self.callback_content = callback_content
        self.business_http_status = business_http_status
        # The QPS limiter's clock (seconds, monotonic): a test can pass its own and move it.
        self.rate_clock = rate_clock

        self.requests: List[RequestRecord] = []
        self.callback_attempts: List[CallbackAttempt] = []
        self.downloads: List[DownloadRecord] = []
        examples = load_examples()
        self.examples = examples
        # card -> the `results` list every successful task of that card gets (tests may swap it).
        self.card_results: Dict[str, list] = {
            card: examples['results'][card]['data'][0]['results'] for card in CARDS}
        self._card_extras: Dict[str, dict] = {
            card: examples['results'][card]['data'][0].get('extras', {}) for card in CARDS}

        self.host = '127.0.0.1'
        self.port = 0
        self._rng = random.Random(random_seed)  # task ids
        self._clock_offset = 0.0
        self._tasks: Dict[str, _Task] = {}
        self._faults: List[_Fault] = []
        self._nonces: Dict[Tuple[str, str], float] = {}
        self._hits: Dict[Tuple[str, str], Deque[float]] = collections.defaultdict(
            collections.deque)

    # ---- lifecycle ----------------------------------------------------------------------

    def _published(self, port: int) -> None:
        self.port = port
        self.endpoint = 'http://%s:%d' % (self.host, self.port)

    # ---- clock --------------------------------------------------------------------------

    def now(self) -> float:
        """The emulator's clock: wall time plus everything advance_clock() added."""
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock forward (processing delay, retention, callbacks)."""
        if seconds < 0:
            raise ValueError('the clock only moves forward')
        with self._lock:
            self._clock_offset += seconds

    # ---- inspection and control --------------------------------------------------------

    def task(self, task_id: str) -> Optional[dict]:
        """A snapshot of a task's state, or None."""
        with self._lock:
            t = self._tasks.get(task_id)
            if t is None:
                return None
            return {'taskId': t.task_id, 'dataId': t.data_id, 'url': t.url, 'card': t.card,
                    'ak': t.ak, 'code': t.code, 'msg': t.msg, 'callback': t.callback,
                    'seed': t.seed, 'cryptType': t.crypt_type, 'submitted_at': t.submitted_at,
                    'ready_at': t.ready_at, 'image_md5': t.image_md5,
                    'callback_done': t.callback_done, 'callback_attempts': t.callback_attempts,
                    'results': copy.deepcopy(t.results)}

    def task_ids(self) -> List[str]:
        with self._lock:
            return list(self._tasks)

    def set_card_results(self, card: str, results: list) -> None:
        """Replace the `results` list tasks of `card` get from now on (e.g. the taxi variant
        with the table's ``invoiceNumbe`` spelling: ``load_examples()['variants']``)."""
        if card not in CARDS:
            raise ValueError('unknown card %r' % card)
        with self._lock:
            self.card_results[card] = copy.deepcopy(results)

    def inject_fault(self, path: Optional[str] = None, *, kind: str = 'error',
                     status: Optional[int] = None, code: Optional[str] = None, times: int = 1,
                     message: Optional[str] = None) -> None:
        """Make the next `times` requests to `path` (any path when None) fail after they pass
        authentication and the QPS limit.

        kind='error':     gateway error JSON {"Code","Message",...}, status default 500 and code
                          default InternalError (the SDK raises ServerException).
        kind='business':  green envelope {"code": status, "msg": code}, e.g. status=588,
                          code='EXCEED_QUOTA'; HTTP status as for other business errors.
        kind='drop':      the connection is closed without an answer (SDK: ClientException
                          SDK.HttpError).
        kind='malformed': a truncated JSON body, HTTP status default 200 (the SDK hands it back;
                          the caller's json.loads fails).
        """
        if times < 1:
            raise ValueError('times must be >= 1')
        defaults = {'error': (500, 'InternalError'), 'business': (500, 'GENERAL_ERROR'),
                    'drop': (0, 'ConnectionDropped'), 'malformed': (200, 'Malformed')}
        if kind not in defaults:
            raise ValueError('kind must be one of %s' % ', '.join(sorted(defaults)))
        default_status, default_code = defaults[kind]
        status = default_status if status is None else status
        code = code or default_code
        if message is None:
            message = ('The request processing has failed due to some unknown error, exception '
                       'or failure.' if code == 'InternalError' else 'Injected fault: %s.' % code)
        with self._lock:
            self._faults.append(_Fault(path, kind, status, code, message, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, path: str) -> Optional[_Fault]:
        with self._lock:
            for fault in self._faults:
                if fault.path is None or fault.path == path:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    # ---- request processing -------------------------------------------------------------

    def _process(self, req: _Request, request_id: str) -> _Response:
        """Route, authenticate, throttle, apply faults, dispatch."""
        handler = {('POST', SUBMIT_PATH): self._submit,
                   ('POST', RESULTS_PATH): self._results}.get((req.method, req.path))
        if handler is None:
            raise GreenGatewayError(404, 'InvalidApi.NotFound',
                                    'Specified api is not found, please check your url and '
                                    'method.')
        self._authenticate(req)
        req.auth_ok = True
        self._throttle(req)
        fault = self._take_fault(req.path)
        if fault is not None:
            return self._fault_response(fault, request_id)
        try:
            req.body_json = json.loads(req.body.decode('utf-8')) if req.body else None
        except (UnicodeDecodeError, ValueError):
            raise _BusinessError(BAD_REQUEST, 'BAD_REQUEST: the request body is not valid JSON')
        return handler(req, request_id)

    def _fault_response(self, fault: _Fault, request_id: str) -> _Response:
        if fault.kind == 'drop':
            raise _DropConnection()
        if fault.kind == 'error':
            raise GreenGatewayError(fault.status, fault.code, fault.message)
        if fault.kind == 'business':
            raise _BusinessError(fault.status, fault.code)
        body = _json_bytes({'code': 200, 'msg': 'OK', 'requestId': request_id, 'data': []})
        return _Response(fault.status, body[:len(body) // 2], error_code=fault.code)

    # ---- authentication -----------------------------------------------------------------

    def _authenticate(self, req: _Request) -> None:
        h = req.headers
        authorization = h.get('authorization')
        if authorization is None:
            raise _err_incomplete_signature('The Authorization header is missing.')
        scheme, _, credential = authorization.partition(' ')
        ak, sep, signature = credential.strip().partition(':')
        if scheme != 'acs' or not sep or not ak or not signature:
            raise _err_incomplete_signature('Authorization must be "acs <AccessKeyId>:<Signature>".')
        req.ak = ak

        version = h.get('x-acs-version')
        if version is None:
            raise GreenGatewayError(400, 'MissingVersion',
                                    'Version is mandatory for this request.')
        if version != API_VERSION:
            raise GreenGatewayError(400, 'InvalidVersion',
                                    'Specified parameter Version is not valid.')
        method = h.get('x-acs-signature-method')
        if method != 'HMAC-SHA1':
            raise GreenGatewayError(400, 'InvalidSignatureMethod',
                                    'Specified signature method is not valid.')
        if h.get('x-acs-signature-version') != '1.0':
            raise GreenGatewayError(400, 'InvalidSignatureVersion',
                                    'Specified signature version is not valid.')

        date = h.get('date')
        when = parse_http_date(date) if date else None
        if when is None:
            raise GreenGatewayError(400, 'InvalidTimeStamp.Format',
                                    'Specified time stamp or date value is not well formatted.')
        if abs(time.time() - when) > MAX_CLOCK_SKEW_SECONDS:
            raise GreenGatewayError(400, 'InvalidTimeStamp.Expired',
                                    'Specified time stamp or date value is expired.')

        entry = self.credentials.get(ak)
        if entry is None:
            raise GreenGatewayError(404, 'InvalidAccessKeyId.NotFound',
                                    'Specified access key is not found.')
        secret, expected_token = entry
        token = h.get('x-acs-security-token')
        if expected_token is None:
            if token is not None:
                raise GreenGatewayError(400, 'InvalidSecurityToken.Malformed',
                                        'Specified SecurityToken is malformed.')
        else:
            if token is None:
                raise GreenGatewayError(400, 'MissingSecurityToken',
                                        'SecurityToken is mandatory for this action.')
            if not hmac.compare_digest(token.encode('utf-8', 'replace'),
                                       expected_token.encode('utf-8')):
                raise GreenGatewayError(400, 'InvalidSecurityToken.MismatchWithAccessKey',
                                        'Specified SecurityToken mismatch with the AccessKey.')

        to_sign = _roa_string_to_sign(req)
        expected = base64.b64encode(hmac.new(secret.encode('utf-8'), to_sign.encode('utf-8'),
                                             hashlib.sha1).digest()).decode('ascii')
        if not hmac.compare_digest(expected.encode('ascii'),
                                   signature.encode('utf-8', 'replace')):
            # The SDK splits this message on ':' (client._get_server_exception), so it must
            # contain one; the real gateway appends its string to sign the same way.
            raise GreenGatewayError(400, 'SignatureDoesNotMatch',
                                    'Specified signature is not matched with our calculation. '
                                    'server string to sign is:' + to_sign)

        nonce = h.get('x-acs-signature-nonce')
        if nonce is not None:
            now = time.time()
            with self._lock:
                for key in [k for k, seen in self._nonces.items()
                            if now - seen > NONCE_TTL_SECONDS]:
                    del self._nonces[key]
                if (ak, nonce) in self._nonces:
                    raise GreenGatewayError(400, 'SignatureNonceUsed',
                                            'Specified signature nonce was used already.')
                self._nonces[(ak, nonce)] = now

        md5 = h.get('content-md5')
        if md5 is not None:
            try:
                digest = base64.b64decode(md5, validate=True)
            except (binascii.Error, ValueError):
                digest = b''
            if digest != hashlib.md5(req.body).digest():
                raise GreenGatewayError(400, 'ContentMD5NotMatched',
                                        'Specified content md5 is not matched with your '
                                        'request body.')

    def _throttle(self, req: _Request) -> None:
        if self.qps_limit is None:
            return
        now = self.rate_clock()
        with self._lock:
            hits = self._hits[(req.ak or '', req.path)]
            while hits and now - hits[0] >= 1.0:
                hits.popleft()
            if len(hits) >= self.qps_limit:
                raise GreenGatewayError(400, 'Throttling.User',
                                        'Request was denied due to user flow control.')
            hits.append(now)

    # ---- /green/image/asyncscan ---------------------------------------------------------

    def _validate_submit(self, body: Any) -> Tuple[str, list, Optional[str], Optional[str], str]:
        def bad(reason: str) -> _BusinessError:
            return _BusinessError(BAD_REQUEST, 'BAD_REQUEST: ' + reason)

        if not isinstance(body, dict):
            raise bad('the request body must be a JSON object')
        if body.get('scenes') != ['ocr']:
            raise bad('scenes must be ["ocr"]')
        extras = body.get('extras')
        card = extras.get('card') if isinstance(extras, dict) else None
        if card not in CARDS:
            raise bad('extras.card must be one of %s' % ', '.join(CARDS))
        tasks = body.get('tasks')
        if not isinstance(tasks, list) or not tasks:
            raise bad('tasks must be a non-empty array')
        if len(tasks) > MAX_TASKS:
            raise bad('tasks size must be <= %d' % MAX_TASKS)
        seen = set()
        for task in tasks:
            if not isinstance(task, dict):
                raise bad('each task must be a JSON object')
            data_id = task.get('dataId')
            if data_id is not None:
                if not isinstance(data_id, str):
                    raise bad('dataId must be a string')
                if data_id in seen:
                    raise bad('dataId %r is repeated in one request' % data_id)
                seen.add(data_id)
        if 'bizType' in body and not isinstance(body['bizType'], str):
            raise bad('bizType must be a string')
        callback = body.get('callback')
        seed = body.get('seed')
        crypt_type = body.get('cryptType', 'SHA256')
        if callback is not None and callback != '':
            if not isinstance(callback, str) or urlsplit(callback).scheme not in ('http', 'https') \
                    or not urlsplit(callback).netloc:
                raise bad('callback must be an HTTP or HTTPS URL')
            if seed is None or seed == '':
                raise bad('seed is required when callback is used')
        else:
            callback = None
        if seed is not None and seed != '':
            if not isinstance(seed, str) or not _SEED_RE.match(seed):
                raise bad('seed must be 1-64 letters, digits or underscores')
        else:
            seed = None
        if crypt_type not in CRYPT_TYPES:
            raise bad('cryptType must be SHA256 or SM3')
        return card, tasks, callback, seed, crypt_type

    def _submit(self, req: _Request, request_id: str) -> _Response:
        card, tasks, callback, seed, crypt_type = self._validate_submit(req.body_json)
        now = self.now()
        data = []
        accepted: List[_Task] = []
        for task in tasks:
            url = task.get('url')
            item: Dict[str, Any] = {}
            if not isinstance(url, str) or urlsplit(url).scheme not in ('http', 'https') \
                    or not urlsplit(url).netloc:
                item = {'code': BAD_REQUEST, 'msg': 'BAD_REQUEST: url must be an HTTP or HTTPS URL'}
                if task.get('dataId') is not None:
                    item['dataId'] = task['dataId']
                item['url'] = url
                data.append(item)
                continue
            with self._lock:
                task_id = _task_id(self._rng)
                while task_id in self._tasks:
                    task_id = _task_id(self._rng)
            t = _Task(task_id=task_id, data_id=task.get('dataId'), url=url, card=card,
                      extras={'card': card}, ak=req.ak or '', submitted_at=now,
                      ready_at=now + self.processing_delay, callback=callback, seed=seed,
                      crypt_type=crypt_type)
            accepted.append(t)
            item = {'code': OK, 'msg': 'OK'}
            if t.data_id is not None:
                item['dataId'] = t.data_id
            item.update({'taskId': task_id, 'url': url, 'extras': {'card': card}})
            data.append(item)
        # The downloads run a few at a time (each may take up to download_timeout; more than 4
        # at once would overflow the 5-deep listen backlog of a stdlib test server, and a
        # dropped SYN costs a 1 s retransmit), then the tasks become visible all at once.
        if accepted:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(4, len(accepted))) as pool:
                list(pool.map(self._scan, accepted))
            with self._lock:
                for t in accepted:
                    self._tasks[t.task_id] = t
        return self._ok({'code': OK, 'msg': 'OK', 'requestId': request_id, 'data': data})

    def _scan(self, t: _Task) -> None:
        """Download the image and settle the task's code and results."""
        status, size, error, code = 0, 0, None, OK
        data = b''
        try:
            with _no_proxy_opener().open(t.url, timeout=self.download_timeout) as resp:
                status = resp.status
                data = resp.read(MAX_IMAGE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            status, code, error = exc.code, DOWNLOAD_FAILED, 'HTTP %d' % exc.code
            exc.close()
        except (socket.timeout, TimeoutError) as exc:
            code, error = DOWNLOAD_TIMEOUT, 'timed out: %s' % exc
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                code, error = DOWNLOAD_TIMEOUT, 'timed out: %s' % reason
            else:
                code, error = DOWNLOAD_FAILED, str(reason)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            code, error = DOWNLOAD_FAILED, '%s: %s' % (type(exc).__name__, exc)
        size = len(data)
        if code == OK:
            if size > MAX_IMAGE_BYTES:
                code, error = TOO_LARGE, 'larger than 20 MB'
            elif _image_format(data) is None:
                code, error = BAD_FORMAT, 'not PNG, JPEG, BMP, GIF or WEBP'
        t.code, t.msg = code, _MSG[code]
        if code == OK:
            t.image_md5 = hashlib.md5(data).hexdigest()
            with self._lock:
                t.results = copy.deepcopy(self.card_results[t.card])
        with self._lock:
            self.downloads.append(DownloadRecord(t.task_id, t.url, status, size, code, error))

    # ---- /green/image/results -----------------------------------------------------------

    def _task_item(self, t: _Task, now: float) -> dict:
        """The results-query data[] element for a task, as of `now`."""
        if now < t.ready_at:
            item = {'code': PROCESSING, 'msg': 'PROCESSING'}
        elif now > t.ready_at + self.retention_seconds:
            return {'code': EXPIRED, 'msg': 'EXPIRED', 'taskId': t.task_id}
        else:
            item = {'code': t.code, 'msg': t.msg}
        if t.data_id is not None:
            item['dataId'] = t.data_id
        if item['code'] == OK:
            extras = copy.deepcopy(self._card_extras[t.card])
            if 'md5' in extras:
                extras['md5'] = t.image_md5
            item['extras'] = extras
            item['results'] = copy.deepcopy(t.results)
        item['taskId'] = t.task_id
        item['url'] = t.url
        return item

    def _results(self, req: _Request, request_id: str) -> _Response:
        ids = req.body_json
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise _BusinessError(BAD_REQUEST, 'BAD_REQUEST: the body must be a non-empty JSON '
                                              'array of taskIds')
        if len(ids) > MAX_QUERY_TASK_IDS:
            raise _BusinessError(BAD_REQUEST, 'BAD_REQUEST: at most %d taskIds per query'
                                 % MAX_QUERY_TASK_IDS)
        now = self.now()
        data = []
        with self._lock:
            for task_id in ids:
                t = self._tasks.get(task_id)
                if t is None:
                    data.append({'code': NOT_FOUND, 'msg': 'NOT_FOUND', 'taskId': task_id})
                else:
                    data.append(self._task_item(t, now))
        return self._ok({'code': OK, 'msg': 'OK', 'requestId': request_id, 'data': data})

    def _ok(self, obj: dict) -> _Response:
        return _Response(200, _json_bytes(obj), json_body=obj)

    def _business_response(self, exc: _BusinessError, request_id: str) -> _Response:
        obj = {'code': exc.code, 'msg': exc.msg, 'requestId': request_id}
        status = exc.code if self.business_http_status is None else self.business_http_status
        label = exc.msg.split(':', 1)[0]
        return _Response(status, _json_bytes(obj), error_code=label, json_body=obj)

    def _gateway_response(self, exc: GreenGatewayError, request_id: str) -> _Response:
        obj = {'RequestId': request_id, 'HostId': self.host_id, 'Code': exc.code,
               'Message': exc.message}
        return _Response(exc.status, _json_bytes(obj), error_code=exc.code, json_body=obj)

    # ---- callbacks ----------------------------------------------------------------------

    def _callback_content(self, t: _Task, now: float) -> str:
        item = self._task_item(t, now)
        if self.callback_content == 'envelope':
            item = {'code': OK, 'msg': 'OK', 'requestId': _request_id(), 'data': [item]}
        return json.dumps(item, ensure_ascii=False, separators=(',', ':'))

    def deliver_callbacks(self, timeout: float = 5.0) -> List[CallbackAttempt]:
        """Push every due task result once; returns this round's attempts.

        Due: the task has a callback, is done processing and its result is still retained
        (emulator clock), has not been acknowledged with HTTP 200 and has had fewer than
        `max_callback_attempts` pushes.
        Each push is ``POST application/x-www-form-urlencoded`` with ``checksum`` and ``content``;
        the same content and checksum are sent on every attempt for a task.
        """
        now = self.now()
        with self._lock:
            due = [t for t in self._tasks.values()
                   if t.callback and not t.callback_done
                   and t.ready_at <= now <= t.ready_at + self.retention_seconds
                   and t.callback_attempts < self.max_callback_attempts]
            for t in due:
                if t.callback_content is None:
                    t.callback_content = self._callback_content(t, now)
                t.callback_attempts += 1
            work = [(t, t.callback_attempts, t.callback_content) for t in due]
        attempts = []
        opener = _no_proxy_opener()
        for t, attempt, content in work:
            checksum = _checksum(self.uid, t.seed or '', content, t.crypt_type)
            body = urlencode({'checksum': checksum, 'content': content}).encode('ascii')
            request = urllib.request.Request(
                t.callback, data=body, method='POST',
                headers={'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8'})
            status, error = 0, None
            try:
                with opener.open(request, timeout=timeout) as resp:
                    status = resp.status
                    resp.read()
            except urllib.error.HTTPError as exc:
                status = exc.code
                exc.close()
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                error = '%s: %s' % (type(exc).__name__, exc)
            record = CallbackAttempt(t.task_id, attempt, status, t.callback, checksum, content,
                                     t.crypt_type, error)
            with self._lock:
                if status == 200:
                    t.callback_done = True
                self.callback_attempts.append(record)
            attempts.append(record)
        return attempts


# --------------------------------------------------------------------------------------------
# HTTP plumbing

class _Handler(LoopbackHandler):
    server_header = 'Tengine'
    do_PATCH = LoopbackHandler.do_POST

    def _parse_target(self) -> Tuple[str, Dict[str, str]]:
        path, _, query = self._origin_target().partition('?')
        params: Dict[str, str] = {}
        for item in query.split('&'):
            if item:
                name, _, value = item.partition('=')
                # The SDK builds the query with urlencode (quote_plus) and signs the raw values.
                params[unquote_plus(name)] = unquote_plus(value)
        return path, params

    def _handle(self) -> None:
        emulator = self.emulator
        request_id = _request_id()
        path = ''
        req: Optional[_Request] = None
        try:
            body = self._read_body()
            path, params = self._parse_target()
            req = _Request(self.command, path, params, self._lower_headers(), body)
            resp = emulator._process(req, request_id)
        except BadRequest as exc:
            self.close_connection = True
            resp = emulator._gateway_response(GreenGatewayError(400, 'InvalidParameter', str(exc)),
                                              request_id)
        except _DropConnection:
            emulator._record(self._make_record(req, path, 0, 'ConnectionDropped', None,
                                               request_id))
            self._drop_connection()
            return
        except GreenGatewayError as exc:
            resp = emulator._gateway_response(exc, request_id)
        except _BusinessError as exc:
            resp = emulator._business_response(exc, request_id)
        except Exception as exc:  # a bug in the emulator: answer 500 and say what happened
            resp = emulator._gateway_response(
                GreenGatewayError(500, 'InternalError', '%s: %s' % (type(exc).__name__, exc)),
                request_id)
        emulator._record(self._make_record(req, path, resp.status, resp.error_code,
                                           resp.json_body, request_id))
        self._send(resp, request_id)

    @staticmethod
    def _make_record(req: Optional[_Request], path: str, status: int, error_code, response,
                     request_id: str) -> RequestRecord:
        body = None
        if req is not None:
            body = req.body_json
            if body is None and req.body:
                try:
                    body = json.loads(req.body.decode('utf-8'))
                except (UnicodeDecodeError, ValueError):
                    body = None
        return RequestRecord(req.method if req else '', req.path if req else path,
                             req.ak if req else None, bool(req and req.auth_ok), status,
                             error_code, body, response, request_id)

    def _send(self, resp: _Response, request_id: str) -> None:
        self.send_response(resp.status)
        self.send_header('Content-Type', 'application/json;charset=utf-8')
        self.send_header('x-acs-request-id', request_id)
        self.send_header('Content-Length', str(len(resp.body)))
        self.end_headers()
        if self.command != 'HEAD' and resp.body:
            self.wfile.write(resp.body)
        self.wfile.flush()

