"""The result document, and the one writer that puts it beside its source.

Every processed upload ends with ``<key><suffix>`` (default ``.ocr.json``): ``succeeded``,
``failed`` or ``pending``. The JSON Schema lives in ``schema/result.schema.json``; the README
documents it and the tests validate every document they write against it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .checks import checks_for
from .errors import FcocrError, ObjectNotFound, PermanentError, UnsafeKeyError, scrub
from .model import MAX_KEY_BYTES, Line, Outcome, SourceRef, TaskRef  # noqa: F401 - Line and Outcome: the documents' vocabulary
from .storage import LONG_KEY_PREFIX, RESERVED_PREFIXES, RESULT_MARK, Storage

SCHEMA_VERSION = "1.1"
SUCCEEDED, FAILED, PENDING = "succeeded", "failed", "pending"
RESULT_CONTENT_TYPE = "application/json; charset=utf-8"
MAX_RESULT_BYTES = 64 * 1024 * 1024
MAX_NAME_BYTES = 255  # a file name's limit on local file systems (ext4, xfs, APFS)
# User metadata on every result (x-oss-meta-*), so idempotency needs a HEAD, not a download.
META_STATUS, META_SOURCE_ETAG, META_RETRYABLE = "fcocr-status", "fcocr-source-etag", "fcocr-retryable"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class ResultDocument:
    status: str
    source: SourceRef
    recognizer: str | None
    started_at: str
    finished_at: str
    duration_ms: int
    options: dict[str, Any] = field(default_factory=dict)
    request_id: str = ""
    route: dict[str, Any] | None = None
    outcome: Outcome | None = None
    error: dict[str, Any] | None = None
    billed_calls: dict[str, int] | None = None  # vendor calls charged for this document, per recognizer
    attempts: list[dict[str, Any]] | None = None  # recognizers tried before ``recognizer``, and why they did not answer

    @classmethod
    def from_json(cls, data: Any) -> "ResultDocument | None":
        """An existing document as far as fcocr reads it back (status, source, timing, options, route, task,
        error); None for anything that is not a result document. Lines, fields and raw stay in the file."""
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            return None
        source = data.get("source") if isinstance(data.get("source"), dict) else {}
        size = source.get("size")
        task = TaskRef.from_json(data.get("task"))
        error = data.get("error") if isinstance(data.get("error"), dict) else None
        return cls(status=data["status"],
                   source=SourceRef(str(source.get("bucket") or ""), str(source.get("key") or ""),
                                    str(source.get("etag") or ""), size if isinstance(size, int) else None),
                   recognizer=data.get("recognizer") if isinstance(data.get("recognizer"), str) else None,
                   started_at=str(data.get("startedAt") or ""), finished_at=str(data.get("finishedAt") or ""),
                   duration_ms=data.get("durationMs") if isinstance(data.get("durationMs"), int) else 0,
                   options=dict(data["options"]) if isinstance(data.get("options"), dict) else {},
                   request_id=str(data.get("requestId") or ""),
                   route=data.get("route") if isinstance(data.get("route"), dict) else None,
                   outcome=Outcome(task=task) if task is not None else None, error=error,
                   billed_calls=_billed(data.get("billedCalls")))

    @property
    def task(self) -> TaskRef | None:
        return self.outcome.task if self.outcome is not None else None

    @property
    def retryable(self) -> bool:
        return bool((self.error or {}).get("retryable", False))

    def settles(self, etag: str) -> bool:
        """Does this document settle the source with ``etag``? (Then no recognizer may run again.)"""
        return _settles(self.status, self.source.etag, self.retryable, etag)

    @classmethod
    def from_outcome(cls, outcome: Outcome, **common: Any) -> "ResultDocument":
        return cls(status=PENDING if outcome.task else SUCCEEDED, outcome=outcome, **common)

    @classmethod
    def from_error(cls, exc: FcocrError, **common: Any) -> "ResultDocument":
        error = {"code": exc.code, "message": exc.message, "retryable": exc.retryable, **exc.details}
        # What the vendor was paid for before the failure (its answer, the pages) stays in the document.
        kept = getattr(exc, "outcome", None)
        return cls(status=FAILED, error=error, outcome=kept if isinstance(kept, Outcome) else None, **common)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schemaVersion": SCHEMA_VERSION,
            "status": self.status,
            "source": self.source.to_json(),
            "recognizer": self.recognizer,
            "options": self.options,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "durationMs": self.duration_ms,
            "requestId": self.request_id,
        }
        if self.route is not None:
            doc["route"] = self.route
        out = self.outcome
        if out is not None:
            if out.engine:
                doc["engine"] = out.engine
            if out.pages:
                doc["pages"] = [_with_checks(page, out.document_type) for page in out.pages]
            if out.lines is not None:
                doc["lines"] = [line.to_json() for line in out.lines]
                doc["text"] = "\n".join(line.text for line in out.lines)
            if out.document_type is not None:
                doc["documentType"] = out.document_type
            if out.fields is not None:
                doc["fields"] = out.fields
                if out.document_type is not None:
                    doc["checks"] = checks_for(out.document_type, out.fields)
            if out.documents:  # several documents in one input: each is checked on its own
                doc["documents"] = [{**d, "checks": checks_for(d["documentType"], d["fields"])}
                                    if isinstance(d.get("fields"), dict) and d.get("documentType") else d
                                    for d in out.documents]
            if out.task is not None:
                doc["task"] = out.task.to_json()
            if self.status == SUCCEEDED or (self.status == FAILED and out.raw is not None):
                doc["raw"] = out.raw  # a failed document keeps the vendor's answer when there was one
            if out.partial:
                doc["partial"] = True
            if out.vendor_request_id:
                doc["vendorRequestId"] = out.vendor_request_id
            if out.warnings:
                doc["warnings"] = out.warnings
        if self.billed_calls is not None:
            doc["billedCalls"] = self.billed_calls
        if self.attempts:
            doc["attempts"] = self.attempts
        if self.error is not None:
            doc["error"] = self.error
        return doc

    def to_bytes(self) -> bytes:
        # ensure_ascii=False: Chinese text stays readable; long digit strings stay strings upstream.
        # scrub: no credential reaches a result, whatever a vendor or library put in an answer or an error.
        return scrub(json.dumps(self.to_json(), ensure_ascii=False, indent=2)).encode("utf-8")


def fits_beside(key: str, suffix: str) -> bool:
    """Can ``<key><suffix>`` exist? Within OSS's 1023-byte key limit, and its last segment within the 255-byte
    file name limit of local file systems (one rule for both storages, so a result is where the README says)."""
    beside = (key + suffix).encode("utf-8")
    return len(beside) <= MAX_KEY_BYTES and len(beside.rpartition(b"/")[2]) <= MAX_NAME_BYTES


def _billed(value: Any) -> dict[str, int] | None:
    if not isinstance(value, dict):
        return None
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)}


def _with_checks(page: dict[str, Any], document_type: str | None) -> dict[str, Any]:
    """A page that carries its own normalized fields (several documents in one upload) gets their checks."""
    if document_type is None or not isinstance(page.get("fields"), dict):
        return page
    return {**page, "checks": checks_for(document_type, page["fields"])}


def result_key(key: str, suffix: str) -> str:
    """``<key><suffix>`` beside the source; for a key too long for that, ``.fcocr-long-keys/<sha256 of key><suffix>``."""
    if fits_beside(key, suffix):
        return key + suffix
    return f"{LONG_KEY_PREFIX}{hashlib.sha256(key.encode('utf-8')).hexdigest()}{suffix}"


def is_result_key(key: str, suffix: str) -> bool:
    return key.endswith(suffix)


def is_result_object(key: str, metadata: dict[str, str], suffix: str) -> bool:
    """Ours: a result by its name or marker (whatever the suffix was then), a task record, a staged input."""
    # Any object fcocr wrote (results, task records, staged inputs) carries fcocr-kind.
    return is_result_key(key, suffix) or RESULT_MARK[0] in metadata or key.startswith(RESERVED_PREFIXES)


def _settles(status: Any, source_etag: Any, retryable: bool, etag: str) -> bool:
    """Succeeded, pending (a paid task is in flight) and permanently failed results for this ETag
    settle the source; a failure marked retryable (a transient fault that outlived its retries) does not."""
    if not etag or source_etag != etag:
        return False
    if status == FAILED:
        return not retryable
    return status in {SUCCEEDED, PENDING}


class ResultWriter:
    """The one way a result document reaches storage."""

    def __init__(self, storage: Storage, suffix: str, *, masking: Any = None, notifier: Any = None,
                 drop_orphans: bool = False) -> None:
        self.storage = storage
        self.suffix = suffix
        self.masking = masking  # masking.Masking: applied by render, the last step before storage
        self.notifier = notifier  # notify.Notifier: told when a final result is written
        self.drop_orphans = drop_orphans  # FCOCR_DELETE_WITH_SOURCE: a result whose source is gone is deleted

    @classmethod
    def for_settings(cls, storage: Storage, settings: Any, runtime: Any = None) -> "ResultWriter":
        """The writer as the settings configure it (masking, notifications, orphans); ``runtime`` for notifying."""
        from .masking import Masking
        from .notify import Notifier

        return cls(storage, settings.result_suffix, masking=Masking.from_settings(settings),
                   notifier=Notifier.from_settings(settings, runtime) if runtime is not None else None,
                   drop_orphans=getattr(settings, "delete_with_source", True))

    def settled(self, source_key: str, etag: str) -> bool:
        """Is there a final result for this source ETag? (Then no recognizer may run again.)

        The writer copies status and source ETag into the result's metadata, so a HEAD answers;
        a document without them (written elsewhere, or a filesystem without xattrs) is read.
        """
        try:
            meta = self.storage.head(result_key(source_key, self.suffix)).metadata
        except PermanentError:  # ObjectNotFound, or unreadable: recognize again
            return False
        if META_SOURCE_ETAG in meta and META_STATUS in meta:
            return _settles(meta[META_STATUS], meta[META_SOURCE_ETAG], meta.get(META_RETRYABLE) == "true", etag)
        existing = self.read(source_key)
        return existing is not None and existing.settles(etag)

    def in_flight(self, source_key: str, etag: str) -> bool:
        """Is an asynchronous task for this ETag in flight (a pending result)? Even a forced run never submits a
        second paid task beside it."""
        try:
            meta = self.storage.head(result_key(source_key, self.suffix)).metadata
        except PermanentError:
            return False
        if META_STATUS in meta and META_SOURCE_ETAG in meta:
            return meta[META_STATUS] == PENDING and meta[META_SOURCE_ETAG] == etag
        existing = self.read(source_key)
        return existing is not None and existing.status == PENDING and existing.source.etag == etag

    def read(self, source_key: str) -> ResultDocument | None:
        """The existing document for ``source_key``, or None (absent or unreadable: then we redo it)."""
        try:
            data = self.storage.read(result_key(source_key, self.suffix), MAX_RESULT_BYTES)
        except PermanentError:  # ObjectNotFound, or unreadable
            return None
        try:
            return ResultDocument.from_json(json.loads(data))
        except (ValueError, RecursionError):
            return None

    def render(self, doc: ResultDocument) -> bytes:
        """The stored bytes of ``doc``. The last step of every result: whatever reads values (field extraction,
        validation checks) has run on the unmasked document before this; here FCOCR_MASK and FCOCR_KEEP_RAW
        apply (``masking.Masking.apply``), so nothing after this point can see a masked value."""
        data = doc.to_json()
        if self.masking is not None:
            data = self.masking.apply(data)
        # ensure_ascii=False: Chinese text stays readable; long digit strings stay strings upstream. scrub: no
        # credential reaches a result, whatever a vendor or library put in an answer or an error.
        return scrub(json.dumps(data, ensure_ascii=False, indent=2)).encode("utf-8")

    def source_exists(self, source_key: str) -> bool:
        """False only when the storage says the source is gone; a key it cannot even hold (UnsafeKey) is not
        known to be gone, and its failed result says why."""
        try:
            self.storage.head(source_key)
        except ObjectNotFound:
            return False
        except UnsafeKeyError:
            return True
        return True

    def write(self, doc: ResultDocument) -> str | None:
        """Write ``doc`` beside its source; its key, or None when the source no longer exists (then nothing
        stays written: a result must not outlive the document it describes, whose deletion may run before,
        during or after this write -- hence a look before and after)."""
        key = result_key(doc.source.key, self.suffix)
        if not self.source_exists(doc.source.key):
            if self.drop_orphans:
                self.storage.delete(key)
            return None
        metadata = dict([RESULT_MARK])
        metadata[META_STATUS] = doc.status
        metadata[META_SOURCE_ETAG] = doc.source.etag
        if doc.error is not None:
            metadata[META_RETRYABLE] = "true" if doc.error.get("retryable") else "false"
        self.storage.write(key, self.render(doc), content_type=RESULT_CONTENT_TYPE, metadata=metadata)
        if not self.source_exists(doc.source.key):  # deleted while we wrote: its cleanup may have run already
            self.storage.delete(key)
            return None
        if self.notifier is not None and doc.status != PENDING and doc.settles(doc.source.etag):  # final
            self.notifier.announce(doc, key)
        return key
