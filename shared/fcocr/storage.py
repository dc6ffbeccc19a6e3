"""One storage interface, two implementations: OSS through oss2, and a local directory.

The pipeline, the CLI and (later) the callback and backfill speak only ``Storage``.
``open_storage`` picks the implementation: a local directory when FCOCR_LOCAL_ROOT is
set, OSS otherwise.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

from .config import Settings
from .errors import FcocrError, InputError, ObjectNotFound, PermanentError, TransientError, UnsafeKeyError, vendor_text
from .events import normalize_etag
from .model import is_bucket_name
from .runtime import Credentials, Runtime

# User metadata marking an object fcocr wrote, so a result is recognised whatever its name.
RESULT_MARK = ("fcocr-kind", "result")
# The reserved prefixes of what fcocr writes besides results: never processed as uploads.
TASK_PREFIX = ".fcocr-tasks/"
STAGING_PREFIX = ".fcocr-staging/"
CLAIM_PREFIX = ".fcocr-claims/"  # who is recognizing which object version (fcocr.claims)
# Results of keys too long to have one beside them (results.result_key names them by a hash of the key).
LONG_KEY_PREFIX = ".fcocr-long-keys/"
RESERVED_PREFIXES = (TASK_PREFIX, STAGING_PREFIX, CLAIM_PREFIX, LONG_KEY_PREFIX)


def put_staged(storage: "Storage", data: bytes, content_type: str, prefix: str = STAGING_PREFIX) -> str:
    """Write a prepared input where a vendor can download it; its key has no image suffix, so it never
    triggers the upload function, and ``fcocr-kind`` marks it as ours. The caller deletes it when done."""
    key = f"{prefix}{secrets.token_hex(16)}.fcocr-staging"
    storage.write(key, data, content_type=content_type, metadata={RESULT_MARK[0]: "staging"})
    return key


def read_own_json(storage: "Storage", key: str, max_bytes: int) -> Any:
    """A small JSON object fcocr wrote (a claim, a checkpoint): None when it is gone or unreadable, so it counts
    as absent; a fault that may pass (StorageUnavailable) is raised, so nothing is decided on a storage outage."""
    try:
        return json.loads(storage.read(key, max_bytes))
    except (ObjectNotFound, ValueError, RecursionError):
        return None
    except FcocrError as exc:
        if exc.retryable:
            raise
        return None


def staged_ref(storage: "Storage", key: str) -> dict[str, str]:
    """Where a staged copy is, as a task record keeps it: enough for anyone to open its bucket and delete it."""
    ref = {"bucket": storage.bucket, "key": key}
    endpoint, region = getattr(storage, "endpoint", None), getattr(storage, "region", "")
    if endpoint:
        ref["endpoint"] = endpoint
    if region:
        ref["region"] = region
    return ref


def delete_staged(ref: dict[str, Any], near: "Storage", runtime: Runtime, settings: Settings) -> None:
    """Delete a staged copy named by ``staged_ref`` (``near``: the source's storage, used when it is that bucket).
    The one cleanup of staged copies; a leftover is harmless (it triggers nothing), so faults are swallowed."""
    key = ref.get("key")
    if not isinstance(key, str) or not key:
        return
    bucket = str(ref.get("bucket") or near.bucket)
    try:
        storage = near if bucket == near.bucket else open_storage(
            bucket, runtime, settings, str(ref.get("region") or ""), endpoint=ref.get("endpoint") or None)
        storage.delete(key)
    except Exception:  # noqa: BLE001 - oss2's own errors too: the result is what matters, not the leftover
        pass


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str  # bare, upper-case (see events.normalize_etag)
    size: int
    content_type: str = ""
    # User metadata: lower-case names without the x-oss-meta- prefix.
    metadata: dict[str, str] = field(default_factory=dict)


class Storage(Protocol):
    bucket: str
    region: str  # the bucket's cloud region ("" for a local directory: no vendor can download from it)

    def head(self, key: str) -> ObjectInfo: ...

    def read(self, key: str, max_bytes: int) -> bytes: ...

    def write(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> None:
        """Replace ``key`` atomically: a reader sees the old document or the new one, never half."""

    def create_exclusive(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> bool:
        """Create ``key`` only if it does not exist, atomically: True when this call created it, False when
        it was already there (then nothing is written). Two callers at once: exactly one gets True."""

    def symlink_target(self, key: str) -> str: ...

    def presign_get(self, key: str, expires_seconds: int) -> str: ...

    def delete(self, key: str) -> None:
        """Remove ``key``; absent is fine (deleting twice is not an error)."""

    def list(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix`` and sorts after ``start_after``, in key order, as OSS lists them."""


def _too_large(key: str, size: int, max_bytes: int) -> InputError:
    return InputError(
        f"object is {size} bytes, over the {max_bytes}-byte limit (FCOCR_MAX_BYTES)",
        code="InputTooLarge", key=key,
    )


# --------------------------------------------------------------------------- local directory


class LocalStorage:
    """Bucket ``B`` is the directory ``root/B``; keys are relative paths that may not leave it."""

    region = ""  # no cloud region: vendors cannot download from here

    def __init__(self, root: str, bucket: str) -> None:
        if not bucket or bucket in {".", ".."} or "/" in bucket or "\0" in bucket:
            raise UnsafeKeyError(f"bucket name {bucket!r} is not a plain directory name")
        self.bucket = bucket
        self.directory = os.path.realpath(os.path.join(root, bucket))
        self._etags: dict[tuple[str, int, int], str] = {}

    def path_for(self, key: str) -> str:
        """The file for ``key``, refusing anything that would escape the bucket directory."""
        if not key or "\0" in key:
            raise UnsafeKeyError(f"key {key!r} is empty or holds a NUL byte")
        if key.startswith("/"):
            raise UnsafeKeyError(f"key {key!r} is absolute")
        parts = key.split("/")
        if any(p in {"", ".", ".."} for p in parts):
            raise UnsafeKeyError(f"key {key!r} has an empty, '.' or '..' segment")
        path = os.path.join(self.directory, *parts)
        # Symlinks are followed only while they stay inside the bucket directory.
        real = os.path.realpath(path)
        if os.path.commonpath([real, self.directory]) != self.directory:
            raise UnsafeKeyError(f"key {key!r} resolves outside bucket {self.bucket!r}")
        return real

    def _own_path(self, key: str) -> str:
        """The directory entry of ``key`` itself, not what a symlink there points to: writing or deleting a
        key replaces or removes that entry, never another object a link names (OSS has no write-through)."""
        self.path_for(key)  # the same refusals
        parent, _, name = key.rpartition("/")
        directory = self.path_for(parent) if parent else self.directory
        return os.path.join(directory, name)

    def head(self, key: str) -> ObjectInfo:
        path = self.path_for(key)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {key!r} in local bucket {self.bucket!r}") from None
        except OSError as exc:
            raise _local_fault(key, self.bucket, exc) from None
        if not os.path.isfile(path):
            raise ObjectNotFound(f"{key!r} in local bucket {self.bucket!r} is not a file")
        return ObjectInfo(key=key, etag=self._etag(path, st), size=st.st_size, metadata=_xattrs(path))

    def _etag(self, path: str, st: os.stat_result) -> str:
        # OSS's ETag of a simple upload is the content MD5; use the same so results stay comparable.
        cache_key = (path, st.st_mtime_ns, st.st_size)
        if cache_key not in self._etags:
            digest = hashlib.md5(usedforsecurity=False)
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            self._etags[cache_key] = digest.hexdigest().upper()
        return self._etags[cache_key]

    def read(self, key: str, max_bytes: int) -> bytes:
        path = self.path_for(key)
        try:
            with open(path, "rb") as fh:
                data = fh.read(max_bytes + 1)
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {key!r} in local bucket {self.bucket!r}") from None
        except IsADirectoryError:
            raise ObjectNotFound(f"{key!r} in local bucket {self.bucket!r} is not a file") from None
        except OSError as exc:
            raise _local_fault(key, self.bucket, exc) from None
        if len(data) > max_bytes:
            raise _too_large(key, os.path.getsize(path), max_bytes)
        return data

    def write(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> None:
        path = self._own_path(key)
        if not os.path.isdir(self.directory):  # as OSS: writing never creates a bucket (an event may name any)
            raise PermanentError(f"local bucket {self.bucket!r} does not exist", code="NoSuchBucket")
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._replace(path, data, metadata)
        except OSError as exc:
            raise _local_fault(key, self.bucket, exc) from None

    @staticmethod
    def _replace(path: str, data: bytes, metadata: dict[str, str]) -> None:
        # The temporary name is short: a key's own name may already be near the file system's 255-byte limit.
        tmp = os.path.join(os.path.dirname(path), f".fcocr-{secrets.token_hex(8)}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            for name, value in metadata.items():
                _set_xattr(tmp, name, value)
            os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def create_exclusive(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> bool:
        # The content is written to a private file first, then hard-linked into place: link() fails with EEXIST
        # when the name exists (an exclusive create, as O_CREAT|O_EXCL) and a reader never sees half a file.
        path = self.path_for(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            for name, value in metadata.items():
                _set_xattr(tmp, name, value)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            return True
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass

    def symlink_target(self, key: str) -> str:
        path = self.path_for(key)  # refuses targets outside the bucket
        return os.path.relpath(path, self.directory).replace(os.sep, "/")

    def presign_get(self, key: str, expires_seconds: int) -> str:
        raise PermanentError("a presigned URL needs OSS storage; local storage (FCOCR_LOCAL_ROOT) has none",
                             code="PresignUnsupported")

    def delete(self, key: str) -> None:
        try:
            os.remove(self._own_path(key))  # a symlink is removed itself, never the file it names
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _local_fault(key, self.bucket, exc) from None

    def list(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        keys = []
        for dirpath, _, filenames in os.walk(self.directory):
            for name in filenames:
                rel = os.path.relpath(os.path.join(dirpath, name), self.directory).replace(os.sep, "/")
                if rel.startswith(prefix) and rel > start_after and not (name.startswith(".") and name.endswith(".tmp")):
                    keys.append(rel)
        for rel in sorted(keys):  # key order, as OSS lists (str order is UTF-8 byte order)
            try:
                yield self.head(rel)
            except (ObjectNotFound, UnsafeKeyError):
                continue


def _local_fault(key: str, bucket: str, exc: OSError) -> PermanentError | TransientError:
    """A file system refusal, in fcocr's terms: a name the file system cannot hold never will be; anything
    else (permissions, a full disk) may pass."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno == errno.ENAMETOOLONG:
        return UnsafeKeyError(f"key {key!r} is too long for a file name in local bucket {bucket!r}: {reason}")
    return TransientError(f"local bucket {bucket!r}: {key!r}: {reason}", code="StorageUnavailable")


def _xattrs(path: str) -> dict[str, str]:
    # Local stand-in for OSS user metadata: user.* extended attributes.
    try:
        names = os.listxattr(path)
    except (OSError, AttributeError):
        return {}
    out = {}
    for name in names:
        if name.startswith("user."):
            try:
                out[name[5:].lower()] = os.getxattr(path, name).decode("utf-8", "replace")
            except OSError:
                continue
    return out


def _set_xattr(path: str, name: str, value: str) -> None:
    try:
        os.setxattr(path, f"user.{name}", value.encode("utf-8"))
    except (OSError, AttributeError):
        pass  # a filesystem without xattrs still gets the document; the marker is a second guard


# --------------------------------------------------------------------------- OSS


_BUCKETS: dict[tuple, Any] = {}
_BUCKETS_LOCK = threading.Lock()


def _oss_bucket(endpoint: str, bucket: str, region: str, creds: Credentials) -> Any:
    """An oss2.Bucket, cached per instance so warm invocations reuse connections."""
    import oss2  # imported here: local runs and the callback's rejection path never need it

    cache_key = (endpoint, bucket, region, creds.access_key_id, creds.security_token)
    with _BUCKETS_LOCK:
        cached = _BUCKETS.get(cache_key)
        if cached is None:
            # V4 signing (the current OSS scheme) needs the region and oss2 >= 2.18; FC python3.10's built-in
            # oss2 is 2.16, which signs V1 only, so the package can use the runtime's copy.
            v4 = bool(region) and hasattr(oss2, "ProviderAuthV4")
            if v4:
                provider = oss2.credentials.StaticCredentialsProvider(
                    creds.access_key_id, creds.access_key_secret, creds.security_token or "")
                cached = oss2.Bucket(oss2.ProviderAuthV4(provider), endpoint, bucket, region=region, connect_timeout=10)
            else:
                auth = (oss2.StsAuth(creds.access_key_id, creds.access_key_secret, creds.security_token)
                        if creds.security_token else oss2.Auth(creds.access_key_id, creds.access_key_secret))
                cached = oss2.Bucket(auth, endpoint, bucket, connect_timeout=10)
            if len(_BUCKETS) > 32:
                _BUCKETS.clear()
            _BUCKETS[cache_key] = cached
        return cached


def encryption_headers(settings: Settings) -> dict[str, str]:
    """The OSS server-side encryption headers of FCOCR_SSE, for every object fcocr writes ({} when unset)."""
    if not settings.sse:
        return {}
    headers = {"x-oss-server-side-encryption": settings.sse}
    if settings.sse == "KMS" and settings.sse_key_id:
        headers["x-oss-server-side-encryption-key-id"] = settings.sse_key_id
    return headers


class _AlreadyExists(Exception):
    """An exclusive create found the key taken (OSS 409 FileAlreadyExists)."""


class OssStorage:
    list_page = 1000  # keys per ListObjectsV2 page: OSS's maximum

    def __init__(self, bucket: str, *, endpoint: str, region: str, credentials: Credentials | None,
                 public_endpoint: str | None = None, encryption: dict[str, str] | None = None) -> None:
        if not credentials:
            raise PermanentError(
                "no credentials for OSS: FC context.credentials is empty and ALIBABA_CLOUD_ACCESS_KEY_ID/"
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET are not set (or set FCOCR_LOCAL_ROOT for offline runs)",
                code="NoCredentials")
        if not is_bucket_name(bucket):  # oss2 would raise its own ClientError: say it in fcocr's words
            raise PermanentError(f"{bucket!r} is not an OSS bucket name (3-63 lower-case letters, digits and '-')",
                                 code="InvalidBucketName")
        self.bucket = bucket
        self.region = region
        self.endpoint = endpoint
        self.encryption = dict(encryption or {})  # see write_headers
        self._bucket = _oss_bucket(endpoint, bucket, region, credentials)
        # Vendors download presigned URLs from outside our VPC: sign for the public endpoint.
        self._public = (_oss_bucket(public_endpoint, bucket, region, credentials)
                        if public_endpoint and public_endpoint != endpoint else self._bucket)

    def _call(self, key: str, fn, *args, **kwargs):
        import oss2

        try:
            return fn(*args, **kwargs)
        except oss2.exceptions.NoSuchKey:
            raise ObjectNotFound(f"no object {key!r} in bucket {self.bucket!r}") from None
        except oss2.exceptions.NotFound as exc:
            if getattr(exc, "code", "") == "NoSuchBucket":
                raise PermanentError(f"bucket {self.bucket!r} does not exist", code="NoSuchBucket") from None
            raise ObjectNotFound(f"no object {key!r} in bucket {self.bucket!r}") from None
        except oss2.exceptions.RequestError as exc:  # connection refused, reset, timeout
            raise TransientError(f"OSS unreachable: {vendor_text(exc)}", code="StorageUnavailable") from None
        except oss2.exceptions.InconsistentError as exc:  # CRC64 mismatch: the bytes were damaged in transit
            raise TransientError(f"OSS transfer corrupted: {vendor_text(exc)}", code="StorageUnavailable") from None
        except oss2.exceptions.OssError as exc:
            details = dict(vendorCode=exc.code, vendorMessage=exc.message, vendorRequestId=exc.request_id)
            if exc.status >= 500 or exc.status == 429 or exc.code in {"Throttling", "RequestTimeTooSkewed"}:
                raise TransientError(f"OSS {exc.status} {exc.code}: {vendor_text(exc.message)}", code="StorageUnavailable",
                                     **details) from None
            raise PermanentError(f"OSS {exc.status} {exc.code}: {vendor_text(exc.message)}", code=f"Oss.{exc.code}",
                                 **details) from None

    def head(self, key: str) -> ObjectInfo:
        meta = self._call(key, self._bucket.head_object, key)
        headers = meta.headers
        user = {k[len("x-oss-meta-"):].lower(): v for k, v in headers.items() if k.lower().startswith("x-oss-meta-")}
        return ObjectInfo(key=key, etag=normalize_etag(meta.etag), size=int(meta.content_length or 0),
                          content_type=headers.get("Content-Type", ""), metadata=user)

    def read(self, key: str, max_bytes: int) -> bytes:
        result = self._call(key, self._bucket.get_object, key)
        length = int(result.content_length or 0)
        if length > max_bytes:
            result.resp.response.close()
            raise _too_large(key, length, max_bytes)
        return self._call(key, result.read)

    def write_headers(self, content_type: str, metadata: dict[str, str]) -> dict[str, str]:
        """The headers of every object fcocr writes: type, user metadata, and the configured server-side
        encryption (FCOCR_SSE). Every write method (a PutObject, a create-if-absent) builds its headers here."""
        return {"Content-Type": content_type, **{f"x-oss-meta-{k}": v for k, v in metadata.items()},
                **self.encryption}

    def write(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> None:
        # A PutObject replaces the object whole: OSS readers never see a partial document.
        self._call(key, self._bucket.put_object, key, data, headers=self.write_headers(content_type, metadata))

    def create_exclusive(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> bool:
        # x-oss-forbid-overwrite makes PutObject fail with 409 FileAlreadyExists when the key exists: OSS decides
        # atomically, so of two creators exactly one succeeds.
        headers = {**self.write_headers(content_type, metadata), "x-oss-forbid-overwrite": "true"}
        try:
            self._call(key, self._put_forbidding_overwrite, key, data, headers)
        except _AlreadyExists:
            return False
        return True

    def _put_forbidding_overwrite(self, key: str, data: bytes, headers: dict[str, str]) -> None:
        import oss2

        try:
            self._bucket.put_object(key, data, headers=headers)
        except oss2.exceptions.OssError as exc:
            if exc.status == 409 and exc.code == "FileAlreadyExists":
                raise _AlreadyExists() from None
            raise

    def symlink_target(self, key: str) -> str:
        return self._call(key, self._bucket.get_symlink, key).target_key

    def presign_get(self, key: str, expires_seconds: int) -> str:
        return self._public.sign_url("GET", key, expires_seconds, slash_safe=True)

    def delete(self, key: str) -> None:
        self._call(key, self._bucket.delete_object, key)  # OSS answers 204 for an absent key too

    def list(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        import oss2

        pages = iter(oss2.ObjectIteratorV2(self._bucket, prefix=prefix, start_after=start_after,
                                          max_keys=self.list_page))
        while True:
            obj = self._call(prefix, next, pages, None)  # a page is fetched inside next(): its errors mapped as any call's
            if obj is None:
                return
            if not obj.is_prefix():
                yield ObjectInfo(key=obj.key, etag=normalize_etag(obj.etag), size=int(obj.size or 0))


def oss_endpoint(settings: Settings, region: str) -> str:
    if settings.oss_endpoint:
        return settings.oss_endpoint
    if not region:
        raise PermanentError("the OSS region is unknown: the event has no region and FCOCR_OSS_ENDPOINT is not set",
                             code="NoRegion")
    return f"https://oss-{region}-internal.aliyuncs.com"


def open_storage(bucket: str, runtime: Runtime, settings: Settings, region: str = "", *,
                 endpoint: str | None = None) -> Storage:
    """The one way to open a bucket: the local directory, or OSS at ``endpoint`` (a bucket elsewhere, such as a
    staging bucket in another region, reached and presigned through that endpoint) or the region's own."""
    if settings.local_root:
        return LocalStorage(settings.local_root, bucket)
    encryption = encryption_headers(settings)
    if endpoint:
        return OssStorage(bucket, endpoint=endpoint, region=region, credentials=runtime.credentials,
                          public_endpoint=endpoint, encryption=encryption)
    region = region or runtime.region
    public = settings.oss_public_endpoint or (f"https://oss-{region}.aliyuncs.com" if region else None)
    return OssStorage(bucket, endpoint=oss_endpoint(settings, region), region=region,
                      credentials=runtime.credentials, public_endpoint=public, encryption=encryption)
