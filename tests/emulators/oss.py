"""A local Alibaba Cloud OSS server for tests, strict enough to trust.

``OssEmulator`` speaks the OSS REST protocol on 127.0.0.1 (path-style addressing, which is what
oss2 uses for IP endpoints) so that unmodified oss2 code runs against it. It verifies every
signature byte-for-byte the way OSS does (V1 ``OSS ak:sig`` headers, V4 ``OSS4-HMAC-SHA256``
headers, and V1/V4 presigned URLs), checks STS security tokens, clock skew and Content-MD5, and
answers with the status codes, headers and XML error bodies real OSS returns, so a client that
works here has been exercised against the same rejections it meets in the cloud.

Usage::

    with OssEmulator() as oss:
        oss.create_bucket("in-bucket")
        bucket = oss2.Bucket(oss2.StsAuth("STS.test-ak", "test-secret", "test-token"),
                             oss.endpoint, "in-bucket")
        bucket.put_object("a.jpg", b"...")
        assert oss.get("in-bucket", "a.jpg") == b"..."

Pure standard library; crcmod's C extension is used for CRC-64 when it is importable (it comes
with oss2), with a table-driven fallback otherwise.

Supported: ListBuckets, PutBucket, DeleteBucket, GetBucketLocation, ListObjects (v1 and v2),
DeleteMultipleObjects, PutObject, GetObject (Range, conditional headers, response-* overrides),
HeadObject, GetObjectMeta, DeleteObject, CopyObject, PutSymlink, GetSymlink.
Anything else answers 501 NotImplemented rather than pretending to succeed.

Server-side encryption: PutObject and CopyObject check ``x-oss-server-side-encryption`` (AES256, KMS or SM4,
else 400 InvalidEncryptionAlgorithmError) and ``x-oss-server-side-encryption-key-id`` (only with KMS, else 400
InvalidArgument), store them with the object, return them on GET/HEAD, and ``head()`` reports them as
``encryption`` (absent when none was asked for) so tests can assert what each write asked for.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import email.utils
import hashlib
import hmac
import itertools
import time
from typing import Dict, List, Optional, Tuple
from urllib.parse import quote, unquote_plus, unquote_to_bytes
from xml.etree import ElementTree
from xml.sax.saxutils import escape as _xml_escape

from ._http import BadRequest, LoopbackEmulator, LoopbackHandler, parse_http_date

__all__ = ["OssEmulator", "RequestRecord", "OssServiceError", "crc64_ecma"]

DEFAULT_CREDENTIALS = {"STS.test-ak": ("test-secret", "test-token")}

# OSS rejects header-signed requests whose Date / x-oss-date is more than 15 minutes off.
MAX_CLOCK_SKEW_SECONDS = 15 * 60
# V4 presigned URLs may live at most 7 days.
MAX_V4_PRESIGN_EXPIRES = 7 * 24 * 3600
MAX_KEY_BYTES = 1023
MAX_LIST_KEYS = 1000
OWNER_ID = "1283641033516515"

# Query parameters that take part in the V1 CanonicalizedResource. This is oss2's list
# (oss2.auth.ProviderAuth._subresource_key_set), which mirrors the server's: these parameters
# select an operation (?acl, ?symlink, ?uploadId...) or change the response (response-*,
# x-oss-process), so they are signed to stop a URL signed for one thing being replayed as another.
# Everything else (prefix, marker, max-keys...) is left out of a V1 signature.
_V1_SUBRESOURCES = frozenset([
    'response-content-type', 'response-content-language', 'response-cache-control', 'logging',
    'response-content-encoding', 'acl', 'uploadId', 'uploads', 'partNumber', 'group', 'link',
    'delete', 'website', 'location', 'objectInfo', 'objectMeta', 'response-expires',
    'response-content-disposition', 'cors', 'lifecycle', 'restore', 'qos', 'referer', 'stat',
    'bucketInfo', 'append', 'position', 'security-token', 'live', 'comp', 'status', 'vod',
    'startTime', 'endTime', 'x-oss-process', 'symlink', 'callback', 'callback-var', 'tagging',
    'encryption', 'versions', 'versioning', 'versionId', 'policy', 'requestPayment',
    'x-oss-traffic-limit', 'qosInfo', 'asyncFetch', 'x-oss-request-payer', 'sequential',
    'inventory', 'inventoryId', 'continuation-token', 'worm', 'wormId', 'wormExtend',
    'replication', 'replicationLocation', 'replicationProgress', 'transferAcceleration', 'cname',
    'metaQuery', 'x-oss-ac-source-ip', 'x-oss-ac-subnet-mask', 'x-oss-ac-vpc-id',
    'x-oss-ac-forward-allow', 'resourceGroup', 'style', 'styleName', 'x-oss-async-process',
    'regionList', 'x-oss-write-get-object-response', 'bucketArchiveDirectRead', 'httpsConfig',
    'redundancyTransition', 'x-oss-target-redundancy-type', 'x-oss-redundancy-transition-taskid',
    'accessPoint', 'accessPointPolicy', 'publicAccessBlock', 'x-oss-access-point-name',
    'requesterQosInfo', 'qosRequester', 'resourcePoolInfo', 'resourcePool', 'resourcePoolBuckets',
])
# Sub-resources this emulator implements; any other one in the set above is an operation it does
# not know, and gets 501 instead of being silently treated as a plain GET/PUT of the object.
_RESPONSE_OVERRIDES = {
    'response-content-type': 'Content-Type',
    'response-content-language': 'Content-Language',
    'response-expires': 'Expires',
    'response-cache-control': 'Cache-Control',
    'response-content-disposition': 'Content-Disposition',
    'response-content-encoding': 'Content-Encoding',
}
_SERVICE_SUBRESOURCES = frozenset(['security-token'])
_BUCKET_SUBRESOURCES = frozenset(['security-token', 'continuation-token', 'delete', 'location'])
_OBJECT_SUBRESOURCES = frozenset(['security-token', 'symlink', 'objectMeta']
                                 + list(_RESPONSE_OVERRIDES))

# Standard headers OSS stores with an object and returns on GET/HEAD.
_STORED_HEADERS = ('Cache-Control', 'Content-Disposition', 'Content-Encoding', 'Content-Language',
                   'Expires')
_STORAGE_CLASSES = {'standard': 'Standard', 'ia': 'IA', 'archive': 'Archive',
                    'coldarchive': 'ColdArchive', 'deepcoldarchive': 'DeepColdArchive'}
_OBJECT_ACLS = frozenset(['default', 'private', 'public-read', 'public-read-write'])
_BUCKET_NAME_CHARS = frozenset('abcdefghijklmnopqrstuvwxyz0123456789-')


# --------------------------------------------------------------------------------------------
# CRC-64/XZ (ECMA-182 polynomial, reflected, init and xorout all ones): OSS's x-oss-hash-crc64ecma.

def _make_crc64():
    try:
        import crcmod  # shipped with oss2; its C extension is fast
        return crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, rev=True,
                               xorOut=0xFFFFFFFFFFFFFFFF)
    except Exception:  # pragma: no cover - only without crcmod
        table = []
        for i in range(256):
            crc = i
            for _ in range(8):
                crc = (crc >> 1) ^ 0xC96C5795D7870F42 if crc & 1 else crc >> 1
            table.append(crc)

        def crc64(data: bytes) -> int:
            crc = 0xFFFFFFFFFFFFFFFF
            for byte in data:
                crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
            return crc ^ 0xFFFFFFFFFFFFFFFF
        return crc64


crc64_ecma = _make_crc64()


# --------------------------------------------------------------------------------------------
# Records, storage and errors

@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One handled request, as seen by the server after decoding."""
    method: str
    bucket: str          # '' for service-level requests
    key: str             # '' for bucket-level requests
    query: Dict[str, str]
    auth: str            # "v1" | "v4" | "presign-v1" | "presign-v4" | "anonymous"
    status: int          # 0 when an injected fault dropped the connection
    error_code: Optional[str]
    request_id: str = ''


@dataclasses.dataclass
class _Fault:
    method: Optional[str]
    bucket: Optional[str]
    key: Optional[str]
    status: int
    code: str
    message: str
    remaining: int


@dataclasses.dataclass
class _StoredObject:
    data: bytes
    etag: str                      # upper-hex MD5, unquoted
    crc64: int
    content_md5: str               # base64 MD5, as the Content-MD5 header
    last_modified: int
    content_type: Optional[str]    # None only for a symlink created without one
    metadata: Dict[str, bytes]     # lower-case name without "x-oss-meta-" -> raw header bytes
    headers: Dict[str, str]        # stored standard headers (Cache-Control...)
    storage_class: str = 'Standard'
    symlink_target: Optional[str] = None
    # Server-side encryption as requested: x-oss-server-side-encryption and -key-id ({} = none).
    encryption: Dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def object_type(self) -> str:
        return 'Symlink' if self.symlink_target is not None else 'Normal'


def _new_object(data: bytes, content_type, metadata, headers, storage_class='Standard',
                symlink_target=None) -> _StoredObject:
    digest = hashlib.md5(data if symlink_target is None else symlink_target.encode('utf-8'))
    return _StoredObject(
        data=data, etag=digest.hexdigest().upper(), crc64=crc64_ecma(data),
        content_md5=base64.b64encode(digest.digest()).decode('ascii'),
        last_modified=int(time.time()), content_type=content_type, metadata=dict(metadata),
        headers=dict(headers), storage_class=storage_class, symlink_target=symlink_target)


@dataclasses.dataclass
class _Bucket:
    created: int
    objects: Dict[str, _StoredObject] = dataclasses.field(default_factory=dict)


class OssServiceError(Exception):
    """An OSS error response: status, Code, Message and extra <Error> children."""

    def __init__(self, status: int, code: str, message: str, **details: str):
        super().__init__('%d %s: %s' % (status, code, message))
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def _err_no_such_bucket(bucket):
    return OssServiceError(404, 'NoSuchBucket', 'The specified bucket does not exist.',
                           BucketName=bucket)


def _err_no_such_key(key):
    return OssServiceError(404, 'NoSuchKey', 'The specified key does not exist.', Key=key)


def _err_invalid_argument(message, name=None, value=None):
    details = {}
    if name is not None:
        details = {'ArgumentName': name, 'ArgumentValue': '' if value is None else value}
    return OssServiceError(400, 'InvalidArgument', message, **details)


def _err_not_implemented(what):
    return OssServiceError(501, 'NotImplemented',
                           'The OSS emulator does not implement %s.' % what)


def _err_access_denied(message):
    return OssServiceError(403, 'AccessDenied', message)


def _err_invalid_access_key(ak):
    return OssServiceError(403, 'InvalidAccessKeyId',
                           'The OSS Access Key Id you provided does not exist in our records.',
                           OSSAccessKeyId=ak)


# --------------------------------------------------------------------------------------------
# Small helpers

def _http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def _iso8601(ts: float) -> str:
    return datetime.datetime.fromtimestamp(int(ts), datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%S.000Z')


def _parse_v4_datetime(value: str) -> Optional[float]:
    try:
        parsed = datetime.datetime.strptime(value, '%Y%m%dT%H%M%SZ')
    except (TypeError, ValueError):
        return None
    return parsed.replace(tzinfo=datetime.timezone.utc).timestamp()


def _v4_uri_encode(text: str, keep_slash: bool) -> str:
    # RFC 3986 unreserved characters stay, everything else is %XX of its UTF-8 bytes; the
    # canonical URI keeps '/', the canonical query does not. Same as oss2's __v4_uri_encode.
    return quote(text, safe='/' if keep_slash else '')


def _x(text: str) -> str:
    return _xml_escape(text)


def _xml_doc(body: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode('utf-8')


def _key_error(key: str) -> Optional[OssServiceError]:
    """OSS object naming rules: UTF-8, 1..1023 bytes, not starting with '/' or '\\'."""
    if not key or len(key.encode('utf-8')) > MAX_KEY_BYTES or key[0] in '/\\':
        return OssServiceError(400, 'InvalidObjectName', 'The specified object is not valid.',
                               ObjectName=key)
    return None


def _valid_bucket_name(name: str) -> bool:
    return (3 <= len(name) <= 63 and set(name) <= _BUCKET_NAME_CHARS
            and name[0] != '-' and name[-1] != '-')


def _meta_value_text(raw: bytes) -> str:
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError:
        return raw.decode('latin-1')


@dataclasses.dataclass
class _Response:
    status: int
    headers: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
    body: bytes = b''
    content_length: Optional[int] = None   # set when the body is withheld (HEAD)
    error_code: Optional[str] = None


@dataclasses.dataclass
class _Request:
    method: str
    bucket: str
    key: str
    params: Dict[str, str]
    headers: Dict[str, str]        # lower-case name -> value (latin-1 text, as on the wire)
    body: bytes
    auth: str = 'anonymous'


# --------------------------------------------------------------------------------------------
# The emulator

class OssEmulator(LoopbackEmulator):
    """An in-memory OSS endpoint on 127.0.0.1; see the module docstring."""

    def __init__(self, region: str = 'cn-shanghai', credentials=None):
        super().__init__(_Handler, 'oss-emulator')
        self.region = region
        # access_key_id -> (access_key_secret, security_token or None)
        self.credentials: Dict[str, Tuple[str, Optional[str]]] = dict(
            DEFAULT_CREDENTIALS if credentials is None else credentials)
        self.requests: List[RequestRecord] = []
        self._buckets: Dict[str, _Bucket] = {}
        self._faults: List[_Fault] = []
        self._request_ids = itertools.count(1)

    # ---- direct seeding and inspection (no HTTP, no auth) ---------------------------------

    def create_bucket(self, name: str) -> None:
        if not _valid_bucket_name(name):
            raise ValueError('invalid OSS bucket name: %r' % name)
        with self._lock:
            self._buckets.setdefault(name, _Bucket(created=int(time.time())))

    def put(self, bucket: str, key: str, data: bytes, metadata: Optional[dict] = None,
            content_type: Optional[str] = None) -> str:
        """Store an object directly; returns its ETag (upper-hex MD5, no quotes)."""
        if _key_error(key):
            raise ValueError('invalid OSS object key: %r' % key)
        meta = {}
        for name, value in (metadata or {}).items():
            name = name.lower()
            if name.startswith('x-oss-meta-'):
                name = name[len('x-oss-meta-'):]
            meta[name] = value if isinstance(value, bytes) else str(value).encode('utf-8')
        obj = _new_object(bytes(data), content_type or 'application/octet-stream', meta, {})
        with self._lock:
            self._bucket(bucket).objects[key] = obj
        return obj.etag

    def put_symlink(self, bucket: str, key: str, target: str) -> None:
        if _key_error(key) or _key_error(target):
            raise ValueError('invalid OSS object key: %r -> %r' % (key, target))
        with self._lock:
            self._bucket(bucket).objects[key] = _new_object(b'', None, {}, {},
                                                            symlink_target=target)

    def get(self, bucket: str, key: str) -> Optional[bytes]:
        """The object's content (a symlink's target content), or None."""
        with self._lock:
            obj = self._bucket(bucket).objects.get(key)
            if obj is not None and obj.symlink_target is not None:
                obj = self._bucket(bucket).objects.get(obj.symlink_target)
                if obj is not None and obj.symlink_target is not None:
                    obj = None
            return None if obj is None else obj.data

    def head(self, bucket: str, key: str) -> Optional[dict]:
        """{"etag", "size", "metadata", "content_type"} of the stored object (not following
        symlinks; a symlink also has "symlink_target"), or None."""
        with self._lock:
            obj = self._bucket(bucket).objects.get(key)
        if obj is None:
            return None
        info = {'etag': obj.etag, 'size': len(obj.data),
                'metadata': {k: _meta_value_text(v) for k, v in obj.metadata.items()},
                'content_type': obj.content_type}
        if obj.symlink_target is not None:
            info['symlink_target'] = obj.symlink_target
        if obj.encryption:
            info['encryption'] = dict(obj.encryption)
        return info

    def keys(self, bucket: str) -> List[str]:
        with self._lock:
            return sorted(self._bucket(bucket).objects)

    def _bucket(self, name: str) -> _Bucket:
        try:
            return self._buckets[name]
        except KeyError:
            raise KeyError('no bucket %r in the emulator; call create_bucket first' % name)

    # ---- fault injection ------------------------------------------------------------------

    def inject_fault(self, *, method: Optional[str] = None, key: Optional[str] = None,
                     status: int = 503, code: str = 'ServiceUnavailable', times: int = 1,
                     bucket: Optional[str] = None, message: Optional[str] = None) -> None:
        """Make the next `times` matching requests fail, after they pass authentication.

        The failure is an OSS error response with `status` and `code`; status=0 instead drops
        the connection without answering (oss2 raises RequestError for that).
        """
        if times < 1:
            raise ValueError('times must be >= 1')
        with self._lock:
            self._faults.append(_Fault(
                method=method.upper() if method else None, bucket=bucket, key=key,
                status=status, code=code,
                message=message or 'Injected fault: %s.' % code, remaining=times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, req: _Request) -> Optional[_Fault]:
        with self._lock:
            for fault in self._faults:
                if ((fault.method is None or fault.method == req.method)
                        and (fault.bucket is None or fault.bucket == req.bucket)
                        and (fault.key is None or fault.key == req.key)):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def _new_request_id(self) -> str:
        # Real request ids are 24 upper-case hex digits.
        return '%08X%016X' % (int(time.time()) & 0xFFFFFFFF, next(self._request_ids))

    # ---- request processing ---------------------------------------------------------------

    def _process(self, req: _Request) -> _Response:
        """Validate, authenticate, apply faults, dispatch. Raises OssServiceError (or
        _DropConnection for an injected connection drop)."""
        # OSS resolves the bucket before it checks a signature (the keys that may sign for a
        # bucket come from its owner), so a missing bucket is NoSuchBucket whatever the auth.
        if req.bucket:
            if not _valid_bucket_name(req.bucket):
                raise OssServiceError(400, 'InvalidBucketName',
                                      'The specified bucket is not valid.', BucketName=req.bucket)
            if req.key:
                err = _key_error(req.key)
                if err:
                    raise err
            creating = req.method == 'PUT' and not req.key and not (
                set(req.params) & _V1_SUBRESOURCES)
            with self._lock:
                exists = req.bucket in self._buckets
            if not exists and not creating:
                raise _err_no_such_bucket(req.bucket)

        self._authenticate(req)

        # Faults model the service failing a valid request, so they fire only after auth: a
        # badly signed request still gets its 403 and does not use a fault up.
        fault = self._take_fault(req)
        if fault is not None:
            if fault.status == 0:
                raise _DropConnection()
            raise OssServiceError(fault.status, fault.code, fault.message)

        self._check_content_md5(req)
        if not req.bucket:
            return self._service_op(req)
        if not req.key:
            return self._bucket_op(req)
        return self._object_op(req)

    @staticmethod
    def _check_content_md5(req: _Request) -> None:
        value = req.headers.get('content-md5')
        if value is None:
            return
        try:
            digest = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            digest = b''
        if len(digest) != 16:
            raise OssServiceError(400, 'InvalidDigest',
                                  'The Content-MD5 you specified is not valid.')
        if digest != hashlib.md5(req.body).digest():
            raise OssServiceError(400, 'InvalidDigest',
                                  'The Content-MD5 you specified was invalid.')

    # ---- authentication -------------------------------------------------------------------

    def _authenticate(self, req: _Request) -> None:
        authorization = req.headers.get('authorization')
        if authorization is not None:
            if authorization.startswith('OSS4-HMAC-SHA256 '):
                req.auth = 'v4'
                self._verify_v4_header(req, authorization)
            elif authorization.startswith('OSS '):
                req.auth = 'v1'
                self._verify_v1_header(req, authorization)
            elif authorization.startswith('OSS2 '):
                raise _err_not_implemented('OSS2 (signature version 2) authorization')
            else:
                raise _err_invalid_argument('Authorization header is invalid.', 'Authorization',
                                            authorization)
            return
        version = req.params.get('x-oss-signature-version')
        if version == 'OSS4-HMAC-SHA256':
            req.auth = 'presign-v4'
            self._verify_v4_presigned(req)
        elif version is not None:
            raise _err_not_implemented('presigned URLs with x-oss-signature-version=%s' % version)
        elif 'OSSAccessKeyId' in req.params or 'Signature' in req.params:
            req.auth = 'presign-v1'
            self._verify_v1_presigned(req)
        else:
            # Emulated buckets are private, so anonymous access is refused everywhere.
            if req.bucket:
                raise _err_access_denied('You have no right to access this object because of '
                                         'bucket acl.')
            raise _err_access_denied('Anonymous access is forbidden for this operation.')

    def _secret_for(self, ak: str, token: Optional[str]) -> str:
        """The secret for `ak`, after checking the STS token that came with the request."""
        entry = self.credentials.get(ak)
        if entry is None:
            raise _err_invalid_access_key(ak)
        secret, expected_token = entry
        if expected_token is None:
            # OSS treats any request carrying a token as STS; a long-term key is not an STS key.
            if token is not None:
                raise _err_invalid_access_key(ak)
        else:
            if token is None:
                raise _err_invalid_access_key(ak)
            if not hmac.compare_digest(token.encode('latin-1', 'replace'),
                                       expected_token.encode('latin-1', 'replace')):
                raise OssServiceError(403, 'InvalidSecurityToken',
                                      'The security token you provided is invalid.')
        return secret

    def _check_skew(self, when: float, raw: str) -> None:
        now = time.time()
        if abs(now - when) > MAX_CLOCK_SKEW_SECONDS:
            raise OssServiceError(
                403, 'RequestTimeTooSkewed',
                'The difference between the request time and the current time is too large.',
                RequestTime=raw, ServerTime=_iso8601(now),
                MaxAllowedSkewMilliseconds=str(MAX_CLOCK_SKEW_SECONDS * 1000))

    # V1 -----------------------------------------------------------------------------------

    def _v1_string_to_sign(self, req: _Request, date: str) -> bytes:
        """VERB, Content-MD5, Content-Type, Date, CanonicalizedOSSHeaders+CanonicalizedResource."""
        oss_headers = sorted((name, value) for name, value in req.headers.items()
                             if name.startswith('x-oss-'))
        canonical_headers = b''.join(name.encode('latin-1') + b':' + value.encode('latin-1') + b'\n'
                                     for name, value in oss_headers)
        subresources = sorted((k, v) for k, v in req.params.items() if k in _V1_SUBRESOURCES)
        resource = '/' if not req.bucket else '/%s/%s' % (req.bucket, req.key)
        if subresources:
            resource += '?' + '&'.join(k + '=' + v if v else k for k, v in subresources)
        return b'\n'.join([
            req.method.encode('ascii'),
            req.headers.get('content-md5', '').encode('latin-1'),
            req.headers.get('content-type', '').encode('latin-1'),
            date.encode('latin-1'),
            canonical_headers + resource.encode('utf-8'),
        ])

    def _compare_v1(self, req: _Request, ak: str, secret: str, provided: str, date: str) -> None:
        to_sign = self._v1_string_to_sign(req, date)
        expected = base64.b64encode(
            hmac.new(secret.encode('utf-8'), to_sign, hashlib.sha1).digest()).decode('ascii')
        if not hmac.compare_digest(expected.encode('ascii'), provided.encode('latin-1', 'replace')):
            raise OssServiceError(
                403, 'SignatureDoesNotMatch',
                'The request signature we calculated does not match the signature you provided. '
                'Check your key and signing method.',
                StringToSign=to_sign.decode('utf-8', 'replace'), SignatureProvided=provided,
                OSSAccessKeyId=ak)

    def _verify_v1_header(self, req: _Request, authorization: str) -> None:
        ak, sep, signature = authorization[len('OSS '):].strip().partition(':')
        if not sep or not ak or not signature:
            raise _err_invalid_argument('Authorization header is invalid.', 'Authorization',
                                        authorization)
        # oss2 (like OSS) prefers x-oss-date over Date in the string to sign.
        date = req.headers.get('x-oss-date') or req.headers.get('date')
        when = parse_http_date(date) if date else None
        if when is None:
            raise _err_access_denied('OSS authentication requires a valid Date.')
        self._check_skew(when, date)
        secret = self._secret_for(ak, req.headers.get('x-oss-security-token'))
        self._compare_v1(req, ak, secret, signature, date)

    def _verify_v1_presigned(self, req: _Request) -> None:
        ak = req.params.get('OSSAccessKeyId')
        expires = req.params.get('Expires')
        signature = req.params.get('Signature')
        if not ak or not expires or not signature:
            raise _err_access_denied('Signed URLs need OSSAccessKeyId, Expires and Signature.')
        try:
            expires_at = int(expires)
        except ValueError:
            raise _err_access_denied('Invalid Expires value in the signed URL.')
        now = time.time()
        if now > expires_at:
            raise OssServiceError(403, 'AccessDenied', 'Request has expired.',
                                  Expires=_iso8601(expires_at), ServerTime=_iso8601(now))
        secret = self._secret_for(ak, req.params.get('security-token'))
        # The Expires value takes the Date slot of the string to sign.
        self._compare_v1(req, ak, secret, signature, expires)

    # V4 -----------------------------------------------------------------------------------

    def _v4_signature(self, req: _Request, secret: str, date_time: str, scope: str,
                      additional: List[str], query: Dict[str, str]) -> Tuple[str, bytes, bytes]:
        """(hex signature, canonical request, string to sign), exactly as oss2/auth.py builds."""
        canonical_uri = _v4_uri_encode('/%s/%s' % (req.bucket, req.key) if req.bucket else '/',
                                       True)
        encoded = sorted((_v4_uri_encode(k, False), _v4_uri_encode(v, False))
                         for k, v in query.items())
        canonical_query = '&'.join(k + '=' + v if v else k for k, v in encoded)
        # Signed headers: every x-oss-*, Content-Type, Content-MD5, and the AdditionalHeaders.
        signed = sorted((name, value.strip()) for name, value in req.headers.items()
                        if name.startswith('x-oss-') or name in ('content-type', 'content-md5')
                        or name in additional)
        canonical_headers = b''.join(n.encode('latin-1') + b':' + v.encode('latin-1') + b'\n'
                                     for n, v in signed)
        payload_hash = req.headers.get('x-oss-content-sha256', 'UNSIGNED-PAYLOAD')
        canonical_request = (
            req.method.encode('ascii') + b'\n' + canonical_uri.encode('ascii') + b'\n'
            + canonical_query.encode('ascii') + b'\n' + canonical_headers + b'\n'
            + ';'.join(sorted(additional)).encode('latin-1') + b'\n'
            + payload_hash.encode('latin-1'))
        string_to_sign = ('OSS4-HMAC-SHA256\n%s\n%s\n%s' % (
            date_time, scope, hashlib.sha256(canonical_request).hexdigest())).encode('utf-8')
        key = ('aliyun_v4' + secret).encode('utf-8')
        for part in scope.split('/'):   # date, region, product, "aliyun_v4_request"
            key = hmac.new(key, part.encode('utf-8'), hashlib.sha256).digest()
        signature = hmac.new(key, string_to_sign, hashlib.sha256).hexdigest()
        return signature, canonical_request, string_to_sign

    def _parse_v4_credential(self, credential: str, date_time: str) -> Tuple[str, str]:
        """Split 'ak/date/region/oss/aliyun_v4_request' into (ak, scope) after checking it."""
        parts = credential.split('/')
        if len(parts) != 5 or not parts[0]:
            raise _err_invalid_argument('Invalid credential in the V4 signature.', 'Credential',
                                        credential)
        ak, date, region, product, terminator = parts
        if terminator != 'aliyun_v4_request' or product != 'oss':
            raise _err_invalid_argument('Invalid credential scope in the V4 signature.',
                                        'Credential', credential)
        if date != date_time[:8]:
            raise OssServiceError(403, 'SignatureDoesNotMatch',
                                  'The date in the credential scope does not match x-oss-date.',
                                  OSSAccessKeyId=ak)
        if region != self.region:
            raise OssServiceError(403, 'SignatureDoesNotMatch',
                                  'Invalid signing region in the credential scope: %r, '
                                  'expected %r.' % (region, self.region), OSSAccessKeyId=ak)
        return ak, '/'.join(parts[1:])

    def _compare_v4(self, req, ak, provided, computed) -> None:
        signature, canonical_request, string_to_sign = computed
        if not hmac.compare_digest(signature.encode('ascii'),
                                   provided.encode('latin-1', 'replace')):
            raise OssServiceError(
                403, 'SignatureDoesNotMatch',
                'The request signature we calculated does not match the signature you provided. '
                'Check your key and signing method.',
                CanonicalRequest=canonical_request.decode('utf-8', 'replace'),
                StringToSign=string_to_sign.decode('utf-8', 'replace'),
                SignatureProvided=provided, OSSAccessKeyId=ak)

    def _verify_v4_header(self, req: _Request, authorization: str) -> None:
        fields = {}
        for item in authorization[len('OSS4-HMAC-SHA256 '):].split(','):
            name, sep, value = item.strip().partition('=')
            if sep:
                fields[name] = value.strip()
        if 'Credential' not in fields or 'Signature' not in fields:
            raise _err_invalid_argument('Authorization header is invalid.', 'Authorization',
                                        authorization)
        date_time = req.headers.get('x-oss-date', '')
        when = _parse_v4_datetime(date_time)
        if when is None:
            raise _err_access_denied('V4 signatures need a valid x-oss-date header '
                                     '(YYYYMMDDTHHMMSSZ).')
        self._check_skew(when, date_time)
        payload_hash = req.headers.get('x-oss-content-sha256')
        if payload_hash != 'UNSIGNED-PAYLOAD':
            # OSS only supports unsigned payloads in V4 header signatures.
            raise _err_invalid_argument('x-oss-content-sha256 must be UNSIGNED-PAYLOAD.',
                                        'x-oss-content-sha256', payload_hash)
        ak, scope = self._parse_v4_credential(fields['Credential'], date_time)
        additional = [h.strip().lower() for h in fields.get('AdditionalHeaders', '').split(';')
                      if h.strip()]
        secret = self._secret_for(ak, req.headers.get('x-oss-security-token'))
        self._compare_v4(req, ak, fields['Signature'],
                         self._v4_signature(req, secret, date_time, scope, additional, req.params))

    def _verify_v4_presigned(self, req: _Request) -> None:
        params = req.params
        missing = [p for p in ('x-oss-credential', 'x-oss-date', 'x-oss-expires',
                               'x-oss-signature') if not params.get(p)]
        if missing:
            raise _err_access_denied('Signed URL is missing %s.' % ', '.join(missing))
        date_time = params['x-oss-date']
        signed_at = _parse_v4_datetime(date_time)
        if signed_at is None:
            raise _err_invalid_argument('Invalid x-oss-date.', 'x-oss-date', date_time)
        try:
            expires = int(params['x-oss-expires'])
        except ValueError:
            expires = -1
        if not 0 < expires <= MAX_V4_PRESIGN_EXPIRES:
            raise _err_invalid_argument('x-oss-expires must be between 1 and %d seconds.'
                                        % MAX_V4_PRESIGN_EXPIRES,
                                        'x-oss-expires', params['x-oss-expires'])
        now = time.time()
        if now > signed_at + expires:
            raise OssServiceError(403, 'AccessDenied', 'Request has expired.',
                                  Expires=_iso8601(signed_at + expires), ServerTime=_iso8601(now))
        if now < signed_at - MAX_CLOCK_SKEW_SECONDS:
            raise _err_access_denied('Request is not valid yet: x-oss-date is in the future.')
        ak, scope = self._parse_v4_credential(params['x-oss-credential'], date_time)
        additional = [h.strip().lower()
                      for h in params.get('x-oss-additional-headers', '').split(';') if h.strip()]
        secret = self._secret_for(ak, params.get('x-oss-security-token'))
        # The signature covers every query parameter except itself.
        query = {k: v for k, v in params.items() if k != 'x-oss-signature'}
        self._compare_v4(req, ak, params['x-oss-signature'],
                         self._v4_signature(req, secret, date_time, scope, additional, query))

    # ---- service and bucket operations ----------------------------------------------------

    @staticmethod
    def _reject_unhandled_subresources(req: _Request, handled: frozenset) -> None:
        unknown = sorted((set(req.params) & _V1_SUBRESOURCES) - handled)
        if unknown:
            raise _err_not_implemented('%s %s' % (req.method, ', '.join('?' + u for u in unknown)))

    def _service_op(self, req: _Request) -> _Response:
        self._reject_unhandled_subresources(req, _SERVICE_SUBRESOURCES)
        if req.method != 'GET':
            raise OssServiceError(405, 'MethodNotAllowed',
                                  'The specified method is not allowed against this resource.',
                                  Method=req.method, ResourceType='Service')
        prefix = req.params.get('prefix', '')
        marker = req.params.get('marker', '')
        max_keys = self._max_keys(req)
        with self._lock:
            names = sorted(n for n in self._buckets if n.startswith(prefix) and n > marker)
            created = {n: self._buckets[n].created for n in names}
        page, truncated = names[:max_keys], len(names) > max_keys
        parts = ['<ListAllMyBucketsResult><Owner><ID>%s</ID><DisplayName>%s</DisplayName></Owner>'
                 % (OWNER_ID, OWNER_ID)]
        if prefix:
            parts.append('<Prefix>%s</Prefix>' % _x(prefix))
        if marker:
            parts.append('<Marker>%s</Marker>' % _x(marker))
        if 'max-keys' in req.params:
            parts.append('<MaxKeys>%d</MaxKeys>' % max_keys)
        parts.append('<IsTruncated>%s</IsTruncated>' % str(truncated).lower())
        if truncated:
            parts.append('<NextMarker>%s</NextMarker>' % _x(page[-1]))
        parts.append('<Buckets>')
        for name in page:
            parts.append(
                '<Bucket><CreationDate>%s</CreationDate>'
                '<ExtranetEndpoint>oss-%s.aliyuncs.com</ExtranetEndpoint>'
                '<IntranetEndpoint>oss-%s-internal.aliyuncs.com</IntranetEndpoint>'
                '<Location>oss-%s</Location><Name>%s</Name><Region>%s</Region>'
                '<StorageClass>Standard</StorageClass></Bucket>'
                % (_iso8601(created[name]), self.region, self.region, self.region, name,
                   self.region))
        parts.append('</Buckets></ListAllMyBucketsResult>')
        return _xml_response(200, ''.join(parts))

    def _bucket_op(self, req: _Request) -> _Response:
        self._reject_unhandled_subresources(req, _BUCKET_SUBRESOURCES)
        method, params = req.method, req.params
        if method == 'GET' and 'location' in params:
            return _xml_response(200, '<LocationConstraint>oss-%s</LocationConstraint>'
                                 % self.region)
        if method == 'GET':
            if params.get('list-type') == '2':
                return self._list_objects(req, v2=True)
            if 'list-type' in params:
                raise _err_invalid_argument('list-type must be 2.', 'list-type',
                                            params['list-type'])
            return self._list_objects(req, v2=False)
        if method == 'POST' and 'delete' in params:
            return self._delete_multiple(req)
        if method == 'PUT':
            with self._lock:
                if req.bucket in self._buckets:
                    raise OssServiceError(409, 'BucketAlreadyExists',
                                          'The requested bucket name is not available.',
                                          BucketName=req.bucket)
                self._buckets[req.bucket] = _Bucket(created=int(time.time()))
            return _Response(200, [('Location', '/' + req.bucket)])
        if method == 'DELETE':
            with self._lock:
                if self._buckets[req.bucket].objects:
                    raise OssServiceError(409, 'BucketNotEmpty',
                                          'The bucket you tried to delete is not empty.',
                                          BucketName=req.bucket)
                del self._buckets[req.bucket]
            return _Response(204)
        if method == 'HEAD':
            return _Response(200)
        raise OssServiceError(405, 'MethodNotAllowed',
                              'The specified method is not allowed against this resource.',
                              Method=method, ResourceType='Bucket')

    @staticmethod
    def _max_keys(req: _Request) -> int:
        raw = req.params.get('max-keys', '')
        if raw == '':
            return 100
        try:
            value = int(raw)
        except ValueError:
            value = -1
        if not 0 < value <= MAX_LIST_KEYS:
            raise _err_invalid_argument('max-keys must be between 1 and %d.' % MAX_LIST_KEYS,
                                        'max-keys', raw)
        return value

    def _list_objects(self, req: _Request, v2: bool) -> _Response:
        params = req.params
        prefix = params.get('prefix', '')
        delimiter = params.get('delimiter', '')
        encoding = params.get('encoding-type', '')
        if encoding not in ('', 'url'):
            raise _err_invalid_argument('encoding-type must be url.', 'encoding-type', encoding)
        max_keys = self._max_keys(req)
        fetch_owner = True
        token = ''
        if v2:
            fetch_owner = params.get('fetch-owner', '') == 'true'
            token = params.get('continuation-token', '')
            after = params.get('start-after', '')
            if token:
                after = self._decode_token(token)
        else:
            after = params.get('marker', '')

        with self._lock:
            objects = self._buckets[req.bucket].objects
            items = sorted((k, objects[k]) for k in objects if k.startswith(prefix) and k > after)

        contents: List[Tuple[str, _StoredObject]] = []
        prefixes: List[str] = []
        last_item = ''
        truncated = False
        for key, obj in items:
            common = None
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    common = key[:cut + len(delimiter)]
                    # Already reported, on this page or (when the marker lies inside it) earlier.
                    if (prefixes and prefixes[-1] == common) or after.startswith(common):
                        continue
            if len(contents) + len(prefixes) == max_keys:
                truncated = True
                break
            if common is not None:
                prefixes.append(common)
                last_item = common
            else:
                contents.append((key, obj))
                last_item = key

        enc = (lambda s: quote(s, safe='')) if encoding == 'url' else (lambda s: s)
        parts = ['<ListBucketResult><Name>%s</Name>' % req.bucket,
                 '<Prefix>%s</Prefix>' % _x(enc(prefix))]
        if v2:
            if params.get('start-after'):
                parts.append('<StartAfter>%s</StartAfter>' % _x(enc(params['start-after'])))
            if token:
                parts.append('<ContinuationToken>%s</ContinuationToken>' % _x(token))
        else:
            parts.append('<Marker>%s</Marker>' % _x(enc(after)))
        parts.append('<MaxKeys>%d</MaxKeys><Delimiter>%s</Delimiter>'
                     % (max_keys, _x(enc(delimiter))))
        if encoding:
            parts.append('<EncodingType>%s</EncodingType>' % encoding)
        parts.append('<IsTruncated>%s</IsTruncated>' % str(truncated).lower())
        if truncated and v2:
            # oss2 url-decodes this element when EncodingType is url, so encode it to match.
            parts.append('<NextContinuationToken>%s</NextContinuationToken>'
                         % _x(enc(self._encode_token(last_item))))
        elif truncated:
            parts.append('<NextMarker>%s</NextMarker>' % _x(enc(last_item)))
        for key, obj in contents:
            parts.append(
                '<Contents><Key>%s</Key><LastModified>%s</LastModified><ETag>"%s"</ETag>'
                '<Type>%s</Type><Size>%d</Size><StorageClass>%s</StorageClass>'
                % (_x(enc(key)), _iso8601(obj.last_modified), obj.etag, obj.object_type,
                   len(obj.data), obj.storage_class))
            if fetch_owner:
                parts.append('<Owner><ID>%s</ID><DisplayName>%s</DisplayName></Owner>'
                             % (OWNER_ID, OWNER_ID))
            parts.append('</Contents>')
        for common in prefixes:
            parts.append('<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>'
                         % _x(enc(common)))
        if v2:
            parts.append('<KeyCount>%d</KeyCount>' % (len(contents) + len(prefixes)))
        parts.append('</ListBucketResult>')
        return _xml_response(200, ''.join(parts))

    @staticmethod
    def _encode_token(last_item: str) -> str:
        # Opaque to clients, like the real (base64) tokens; it names the last item returned.
        return base64.urlsafe_b64encode(last_item.encode('utf-8')).decode('ascii')

    @staticmethod
    def _decode_token(token: str) -> str:
        try:
            return base64.urlsafe_b64decode(token.encode('ascii')).decode('utf-8')
        except (binascii.Error, ValueError, UnicodeError):
            raise _err_invalid_argument('The continuation token provided is incorrect.',
                                        'continuation-token', token)

    def _delete_multiple(self, req: _Request) -> _Response:
        if 'content-md5' not in req.headers:
            raise _err_invalid_argument('DeleteMultipleObjects requires a Content-MD5 header.',
                                        'Content-MD5')
        try:
            root = ElementTree.fromstring(req.body)
        except ElementTree.ParseError:
            root = None
        if root is None or root.tag != 'Delete':
            raise OssServiceError(400, 'MalformedXML', 'The XML you provided was not well-formed '
                                  'or did not validate against our published schema.')
        quiet = (root.findtext('Quiet') or 'false').strip().lower() == 'true'
        keys = [node.findtext('Key') or '' for node in root.findall('Object')]
        if not keys or len(keys) > MAX_LIST_KEYS:
            raise OssServiceError(400, 'MalformedXML',
                                  'DeleteMultipleObjects takes 1 to %d keys.' % MAX_LIST_KEYS)
        for key in keys:
            err = _key_error(key)
            if err:
                raise err
        with self._lock:
            objects = self._buckets[req.bucket].objects
            for key in keys:
                objects.pop(key, None)
        url = req.params.get('encoding-type') == 'url'
        parts = ['<DeleteResult>']
        if url:
            parts.append('<EncodingType>url</EncodingType>')
        if not quiet:
            for key in keys:
                parts.append('<Deleted><Key>%s</Key></Deleted>'
                             % _x(quote(key, safe='') if url else key))
        parts.append('</DeleteResult>')
        return _xml_response(200, ''.join(parts))

    # ---- object operations ----------------------------------------------------------------

    def _object_op(self, req: _Request) -> _Response:
        self._reject_unhandled_subresources(req, _OBJECT_SUBRESOURCES)
        method, params = req.method, req.params
        if method == 'PUT':
            if 'symlink' in params:
                return self._put_symlink(req)
            if 'x-oss-copy-source' in req.headers:
                return self._copy_object(req)
            return self._put_object(req)
        if method == 'GET':
            if 'symlink' in params:
                return self._get_symlink(req)
            return self._get_object(req, head=False)
        if method == 'HEAD':
            if 'objectMeta' in params:
                return self._get_object_meta(req)
            return self._get_object(req, head=True)
        if method == 'DELETE':
            with self._lock:
                self._buckets[req.bucket].objects.pop(req.key, None)
            return _Response(204)
        if method == 'POST':
            raise _err_not_implemented('POST on objects (append, multipart, select)')
        raise OssServiceError(405, 'MethodNotAllowed',
                              'The specified method is not allowed against this resource.',
                              Method=method, ResourceType='Object')

    @staticmethod
    def _user_metadata(req: _Request) -> Dict[str, bytes]:
        return {name[len('x-oss-meta-'):]: value.encode('latin-1')
                for name, value in req.headers.items() if name.startswith('x-oss-meta-')}

    @staticmethod
    def _stored_headers(req: _Request) -> Dict[str, str]:
        return {name: req.headers[name.lower()] for name in _STORED_HEADERS
                if name.lower() in req.headers}

    @staticmethod
    def _storage_class(req: _Request, default: str = 'Standard') -> str:
        raw = req.headers.get('x-oss-storage-class')
        if raw is None:
            return default
        value = _STORAGE_CLASSES.get(raw.lower())
        if value is None:
            raise _err_invalid_argument('Invalid storage class.', 'x-oss-storage-class', raw)
        return value

    @staticmethod
    def _check_object_acl(req: _Request) -> None:
        acl = req.headers.get('x-oss-object-acl')
        if acl is not None and acl not in _OBJECT_ACLS:
            raise _err_invalid_argument('no such object access control exists', 'x-oss-object-acl',
                                        acl)

    @staticmethod
    def _encryption(req: _Request) -> Dict[str, str]:
        """The server-side encryption a write asks for, checked as OSS checks it: AES256, KMS or SM4, and a
        key id only with KMS."""
        algorithm = req.headers.get('x-oss-server-side-encryption')
        key_id = req.headers.get('x-oss-server-side-encryption-key-id')
        out: Dict[str, str] = {}
        if algorithm is not None:
            if algorithm not in ('AES256', 'KMS', 'SM4'):
                raise OssServiceError(400, 'InvalidEncryptionAlgorithmError',
                                      'The Encryption request you specified is not valid. Supported value: '
                                      'AES256/KMS/SM4.')
            out['x-oss-server-side-encryption'] = algorithm
        if key_id is not None:
            if algorithm != 'KMS':
                raise _err_invalid_argument('x-oss-server-side-encryption-key-id is only valid with KMS.',
                                            'x-oss-server-side-encryption-key-id', key_id)
            out['x-oss-server-side-encryption-key-id'] = key_id
        return out

    def _store(self, req: _Request, obj: _StoredObject) -> None:
        """Store under the lock, honouring x-oss-forbid-overwrite atomically."""
        forbid = req.headers.get('x-oss-forbid-overwrite', '').lower() == 'true'
        with self._lock:
            objects = self._buckets[req.bucket].objects
            if forbid and req.key in objects:
                raise OssServiceError(409, 'FileAlreadyExists',
                                      'The object you specified already exists and can not be '
                                      'overwritten.', Key=req.key)
            objects[req.key] = obj

    def _put_object(self, req: _Request) -> _Response:
        if 'content-length' not in req.headers and 'chunked' not in req.headers.get(
                'transfer-encoding', '').lower():
            raise OssServiceError(411, 'MissingContentLength',
                                  'You must provide the Content-Length HTTP header.')
        self._check_object_acl(req)
        obj = _new_object(req.body, req.headers.get('content-type') or 'application/octet-stream',
                          self._user_metadata(req), self._stored_headers(req),
                          self._storage_class(req))
        obj.encryption = self._encryption(req)
        self._store(req, obj)
        return _Response(200, [('ETag', '"%s"' % obj.etag),
                               ('Content-MD5', obj.content_md5),
                               ('x-oss-hash-crc64ecma', str(obj.crc64))])

    def _copy_object(self, req: _Request) -> _Response:
        raw = req.headers['x-oss-copy-source']
        path, _, query = raw.partition('?')
        if query:
            raise _err_not_implemented('copying a specific version (x-oss-copy-source ?%s)' % query)
        src_bucket, sep, src_key_raw = path.lstrip('/').partition('/')
        try:
            src_key = unquote_to_bytes(src_key_raw).decode('utf-8')
        except UnicodeDecodeError:
            src_key = ''
        if not sep or not src_bucket or _key_error(src_key):
            raise _err_invalid_argument('Copy Source must mention the source bucket and key: '
                                        '/sourcebucket/sourcekey.', 'x-oss-copy-source', raw)
        directive = req.headers.get('x-oss-metadata-directive', 'COPY')
        if directive not in ('COPY', 'REPLACE'):
            raise _err_invalid_argument('Unknown metadata directive.',
                                        'x-oss-metadata-directive', directive)
        self._check_object_acl(req)
        with self._lock:
            bucket = self._buckets.get(src_bucket)
            if bucket is None:
                raise _err_no_such_bucket(src_bucket)
            source = bucket.objects.get(src_key)
            if source is None:
                raise _err_no_such_key(src_key)
        if directive == 'REPLACE':
            obj = _new_object(source.data,
                              req.headers.get('content-type') or 'application/octet-stream',
                              self._user_metadata(req), self._stored_headers(req),
                              self._storage_class(req, source.storage_class),
                              symlink_target=source.symlink_target)
        else:
            obj = _new_object(source.data, source.content_type, source.metadata, source.headers,
                              self._storage_class(req, source.storage_class),
                              symlink_target=source.symlink_target)
        obj.encryption = self._encryption(req)
        self._store(req, obj)
        body = ('<CopyObjectResult><ETag>"%s"</ETag><LastModified>%s</LastModified>'
                '</CopyObjectResult>' % (obj.etag, _iso8601(obj.last_modified)))
        resp = _xml_response(200, body)
        resp.headers += [('ETag', '"%s"' % obj.etag), ('x-oss-hash-crc64ecma', str(obj.crc64))]
        return resp

    def _put_symlink(self, req: _Request) -> _Response:
        raw = req.headers.get('x-oss-symlink-target')
        if not raw:
            raise _err_invalid_argument('x-oss-symlink-target is required.',
                                        'x-oss-symlink-target')
        try:
            target = unquote_to_bytes(raw).decode('utf-8')
        except UnicodeDecodeError:
            target = ''
        if _key_error(target):
            raise _err_invalid_argument('The symlink target is not a valid object name.',
                                        'x-oss-symlink-target', raw)
        self._check_object_acl(req)
        obj = _new_object(b'', req.headers.get('content-type'), self._user_metadata(req),
                          self._stored_headers(req), self._storage_class(req),
                          symlink_target=target)
        self._store(req, obj)
        return _Response(200, [('ETag', '"%s"' % obj.etag)])

    def _lookup(self, req: _Request) -> _StoredObject:
        with self._lock:
            obj = self._buckets[req.bucket].objects.get(req.key)
        if obj is None:
            raise _err_no_such_key(req.key)
        return obj

    def _get_symlink(self, req: _Request) -> _Response:
        obj = self._lookup(req)
        if obj.symlink_target is None:
            raise OssServiceError(400, 'NotSymlink', 'The specified object is not a symlink.',
                                  Key=req.key)
        headers = [('x-oss-symlink-target', quote(obj.symlink_target, safe='')),
                   ('ETag', '"%s"' % obj.etag), ('Last-Modified', _http_date(obj.last_modified))]
        headers += [('x-oss-meta-' + k, v.decode('latin-1')) for k, v in obj.metadata.items()]
        return _Response(200, headers)

    def _resolve(self, req: _Request, link: _StoredObject) -> _StoredObject:
        """A symlink's target (one level; OSS does not allow links to links)."""
        with self._lock:
            target = self._buckets[req.bucket].objects.get(link.symlink_target)
        if target is None or target.symlink_target is not None:
            raise OssServiceError(404, 'SymlinkTargetNotExist',
                                  'The symlink target object does not exist.',
                                  Key=req.key, SymlinkTarget=link.symlink_target)
        return target

    def _get_object_meta(self, req: _Request) -> _Response:
        obj = self._lookup(req)
        data_obj = self._resolve(req, obj) if obj.symlink_target is not None else obj
        return _Response(200, [('ETag', '"%s"' % data_obj.etag),
                               ('Last-Modified', _http_date(max(obj.last_modified,
                                                                data_obj.last_modified)))],
                         content_length=len(data_obj.data))

    def _get_object(self, req: _Request, head: bool) -> _Response:
        obj = self._lookup(req)
        # For a symlink OSS serves the target's bytes (and their ETag, size, CRC), the later of
        # the two Last-Modified times, and the link's own metadata.
        data_obj = self._resolve(req, obj) if obj.symlink_target is not None else obj
        last_modified = max(obj.last_modified, data_obj.last_modified)
        content_type = obj.content_type or data_obj.content_type or 'application/octet-stream'

        headers = [('ETag', '"%s"' % data_obj.etag),
                   ('Last-Modified', _http_date(last_modified))]
        status = self._check_conditions(req, data_obj.etag, last_modified)
        if status == 304:
            return _Response(304, headers)

        data = data_obj.data
        total = len(data)
        status = 200
        content_range = None
        byte_range = self._parse_range(req.headers.get('range'), total)
        if byte_range is not None:
            start, end = byte_range
            data = data[start:end + 1]
            status = 206
            content_range = 'bytes %d-%d/%d' % (start, end, total)

        stored = dict(obj.headers)
        stored['Content-Type'] = content_type
        # response-* parameters override the stored headers (signed requests only, as on OSS;
        # anonymous requests never get this far).
        for param, header in _RESPONSE_OVERRIDES.items():
            if param in req.params:
                stored[header] = req.params[param]
        headers += list(stored.items())
        if content_range:
            headers.append(('Content-Range', content_range))
        headers += [('Accept-Ranges', 'bytes'),
                    ('x-oss-object-type', obj.object_type),
                    ('x-oss-storage-class', obj.storage_class),
                    ('x-oss-hash-crc64ecma', str(data_obj.crc64))]
        if status == 200 and obj.symlink_target is None:
            headers.append(('Content-MD5', data_obj.content_md5))
        headers += [('x-oss-meta-' + k, v.decode('latin-1')) for k, v in obj.metadata.items()]
        headers += list(data_obj.encryption.items())
        if head:
            return _Response(status, headers, content_length=len(data))
        return _Response(status, headers, data)

    @staticmethod
    def _check_conditions(req: _Request, etag: str, last_modified: int) -> Optional[int]:
        h = req.headers
        quoted = '"%s"' % etag
        if 'if-match' in h and h['if-match'].strip() not in (quoted, etag, '*'):
            raise OssServiceError(412, 'PreconditionFailed', 'At least one of the pre-conditions '
                                  'you specified did not hold.', Condition='If-Match')
        if 'if-unmodified-since' in h:
            since = parse_http_date(h['if-unmodified-since'])
            if since is not None and last_modified > since:
                raise OssServiceError(412, 'PreconditionFailed', 'At least one of the '
                                      'pre-conditions you specified did not hold.',
                                      Condition='If-Unmodified-Since')
        if 'if-none-match' in h:
            if h['if-none-match'].strip() in (quoted, etag, '*'):
                return 304
        elif 'if-modified-since' in h:
            since = parse_http_date(h['if-modified-since'])
            if since is not None and last_modified <= since:
                return 304
        return None

    @staticmethod
    def _parse_range(value: Optional[str], total: int) -> Optional[Tuple[int, int]]:
        """(start, end) inclusive, or None for "whole object".

        Like OSS: a malformed or multi-range header is ignored (200 with everything); a range that
        starts past the end is 416 InvalidRange; an end past the end is clamped.
        """
        if not value or not value.startswith('bytes=') or ',' in value:
            return None
        first, sep, last = value[len('bytes='):].strip().partition('-')
        if not sep:
            return None
        try:
            if first == '':
                suffix = int(last)
                if suffix <= 0:
                    return None
                start, end = max(total - suffix, 0), total - 1
            else:
                start = int(first)
                end = int(last) if last else total - 1
        except ValueError:
            return None
        if start < 0 or (last and end < start):
            return None
        if start >= total:
            raise OssServiceError(416, 'InvalidRange', 'The requested range cannot be satisfied',
                                  RangeRequested=value, ActualObjectSize=str(total))
        return start, min(end, total - 1)


def _xml_response(status: int, body: str) -> _Response:
    return _Response(status, [('Content-Type', 'application/xml')], _xml_doc(body))


class _DropConnection(Exception):
    """An injected fault that closes the connection without a response."""


# --------------------------------------------------------------------------------------------
# HTTP plumbing

class _Handler(LoopbackHandler):
    server_header = 'AliyunOSS'

    def _parse_target(self) -> Tuple[str, str, Dict[str, str]]:
        path, _, query = self._origin_target().partition('?')
        params: Dict[str, str] = {}
        for item in query.split('&'):
            if item:
                name, _, value = item.partition('=')
                # Query strings are form-encoded by requests ('+' is a space there; a literal '+'
                # arrives as %2B), so they decode with unquote_plus...
                params[unquote_plus(name)] = unquote_plus(value)
        bucket_raw, _, key_raw = path.lstrip('/').partition('/')
        # ...while the path is percent-encoded by oss2, where '+' is a literal '+': decode it
        # exactly once with plain unquote semantics, insisting on UTF-8.
        bucket = unquote_to_bytes(bucket_raw).decode('utf-8')
        key = unquote_to_bytes(key_raw).decode('utf-8')
        return bucket, key, params

    def _handle(self) -> None:
        emulator = self.emulator
        request_id = emulator._new_request_id()
        method = self.command
        bucket = key = ''
        params: Dict[str, str] = {}
        req: Optional[_Request] = None
        try:
            body = self._read_body()
            try:
                bucket, key, params = self._parse_target()
            except UnicodeDecodeError:
                raise OssServiceError(400, 'InvalidObjectName', 'The object name is not valid '
                                      'UTF-8.')
            req = _Request(method, bucket, key, params, self._lower_headers(), body)
            resp = emulator._process(req)
        except BadRequest as exc:
            self.close_connection = True
            resp = _error_response(OssServiceError(400, 'InvalidRequest', str(exc)),
                                   request_id, bucket, emulator.region, method)
        except _DropConnection:
            emulator._record(RequestRecord(method, bucket, key, params,
                                           req.auth if req else 'anonymous', 0,
                                           'ConnectionDropped', request_id))
            self._drop_connection()
            return
        except OssServiceError as exc:
            resp = _error_response(exc, request_id, bucket, emulator.region, method)
        except Exception as exc:  # a bug in the emulator: answer 500 and say what happened
            resp = _error_response(OssServiceError(500, 'InternalError',
                                                   '%s: %s' % (type(exc).__name__, exc)),
                                   request_id, bucket, emulator.region, method)
        emulator._record(RequestRecord(method, bucket, key, params,
                                       req.auth if req else 'anonymous', resp.status,
                                       resp.error_code, request_id))
        self._send(resp, request_id)

    def _send(self, resp: _Response, request_id: str) -> None:
        self.send_response(resp.status)
        self.send_header('x-oss-request-id', request_id)
        for name, value in resp.headers:
            self.send_header(name, value)
        length = resp.content_length if resp.content_length is not None else len(resp.body)
        self.send_header('Content-Length', str(length))
        self.end_headers()
        if self.command != 'HEAD' and resp.status not in (204, 304) and resp.body:
            self.wfile.write(resp.body)
        self.wfile.flush()


def _error_response(exc: OssServiceError, request_id: str, bucket: str, region: str,
                    method: str) -> _Response:
    host = 'oss-%s.aliyuncs.com' % region
    if bucket:
        host = bucket + '.' + host
    parts = ['<Error><Code>%s</Code><Message>%s</Message><RequestId>%s</RequestId>'
             '<HostId>%s</HostId>' % (_x(exc.code), _x(exc.message), request_id, host)]
    for name, value in exc.details.items():
        parts.append('<%s>%s</%s>' % (name, _x(value), name))
    parts.append('</Error>')
    body = _xml_doc(''.join(parts))
    headers = [('Content-Type', 'application/xml')]
    if method == 'HEAD':
        # A HEAD answer has no body, so OSS carries the error document base64-encoded in
        # x-oss-err; oss2 decodes it, which is how head_object raises NoSuchKey, not NotFound.
        headers.append(('x-oss-err', base64.b64encode(body).decode('ascii')))
        return _Response(exc.status, headers, b'', content_length=0, error_code=exc.code)
    return _Response(exc.status, headers, body, error_code=exc.code)
