"""The result document, and the one writer that puts it beside its source.

Every processed upload ends with ``<key><suffix>`` (default ``.ocr.json``): ``succeeded``,
``failed`` or ``pending``. The JSON Schema lives in ``schema/result.schema.json``; the README
documents it and the tests validate every document they write against it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .checks import checks_for
from .errors import FcocrError, PermanentError
from .storage import RESERVED_PREFIXES, RESULT_MARK, Storage

SCHEMA_VERSION = "1.1"
SUCCEEDED, FAILED, PENDING = "succeeded", "failed", "pending"
RESULT_CONTENT_TYPE = "application/json; charset=utf-8"
MAX_RESULT_BYTES = 64 * 1024 * 1024
# User metadata on every result (x-oss-meta-*), so idempotency needs a HEAD, not a download.
META_STATUS, META_SOURCE_ETAG, META_RETRYABLE = "fcocr-status", "fcocr-source-etag", "fcocr-retryable"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Line:
    """One recognized text line: text, confidence 0–100, 4-point polygon, axis-aligned box, page."""

    text: str
    confidence: float | None  # None: the vendor gives no confidence
    polygon: tuple[tuple[float, float], ...]
    page: int = 0

    @property
    def box(self) -> dict[str, float]:
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
        left, top = min(xs), min(ys)
        return {"left": left, "top": top, "width": max(xs) - left, "height": max(ys) - top}

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": None if self.confidence is None else round(self.confidence, 2),
            "polygon": [[round(x, 1), round(y, 1)] for x, y in self.polygon],
            "box": {k: round(v, 1) for k, v in self.box.items()},
            "page": self.page,
        }


@dataclass
class Outcome:
    """What a recognizer returns: lines and/or fields, the vendor's answer verbatim, or a pending task."""

    lines: list[Line] | None = None
    fields: dict[str, Any] | None = None
    raw: Any = None
    pages: list[dict[str, Any]] = field(default_factory=list)
    engine: dict[str, Any] | None = None
    vendor_request_id: str | None = None
    task: dict[str, Any] | None = None  # set for async capabilities: the result is pending
    warnings: list[str] = field(default_factory=list)
    document_type: str | None = None  # set when ``fields`` is a normalized field set (fcocr.fields)


@dataclass(frozen=True)
class SourceRef:
    bucket: str
    key: str
    etag: str = ""
    size: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "etag": self.etag, "size": self.size}


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

    @classmethod
    def from_outcome(cls, outcome: Outcome, **common: Any) -> "ResultDocument":
        return cls(status=PENDING if outcome.task else SUCCEEDED, outcome=outcome, **common)

    @classmethod
    def from_error(cls, exc: FcocrError, **common: Any) -> "ResultDocument":
        error = {"code": exc.code, "message": exc.message, "retryable": exc.retryable, **exc.details}
        return cls(status=FAILED, error=error, **common)

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
            if out.task is not None:
                doc["task"] = out.task
            if self.status == SUCCEEDED:
                doc["raw"] = out.raw
            if out.vendor_request_id:
                doc["vendorRequestId"] = out.vendor_request_id
            if out.warnings:
                doc["warnings"] = out.warnings
        if self.error is not None:
            doc["error"] = self.error
        return doc

    def to_bytes(self) -> bytes:
        # ensure_ascii=False: Chinese text stays readable; long digit strings stay strings upstream.
        return json.dumps(self.to_json(), ensure_ascii=False, indent=2).encode("utf-8")


def _with_checks(page: dict[str, Any], document_type: str | None) -> dict[str, Any]:
    """A page that carries its own normalized fields (several documents in one upload) gets their checks."""
    if document_type is None or not isinstance(page.get("fields"), dict):
        return page
    return {**page, "checks": checks_for(document_type, page["fields"])}


def result_key(key: str, suffix: str) -> str:
    return key + suffix


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


def is_final_for(existing: dict[str, Any] | None, etag: str) -> bool:
    """Does the document ``existing`` already settle the source with this ETag?"""
    if not existing:
        return False
    return _settles(existing.get("status"), (existing.get("source") or {}).get("etag"),
                    bool((existing.get("error") or {}).get("retryable", False)), etag)


class ResultWriter:
    """The one way a result document reaches storage."""

    def __init__(self, storage: Storage, suffix: str) -> None:
        self.storage = storage
        self.suffix = suffix

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
        return is_final_for(self.read(source_key), etag)

    def read(self, source_key: str) -> dict[str, Any] | None:
        """The existing document for ``source_key``, or None (absent or unreadable: then we redo it)."""
        try:
            data = self.storage.read(result_key(source_key, self.suffix), MAX_RESULT_BYTES)
        except PermanentError:  # ObjectNotFound, or unreadable
            return None
        try:
            doc = json.loads(data)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    def write(self, doc: ResultDocument) -> str:
        key = result_key(doc.source.key, self.suffix)
        metadata = dict([RESULT_MARK])
        metadata[META_STATUS] = doc.status
        metadata[META_SOURCE_ETAG] = doc.source.etag
        if doc.error is not None:
            metadata[META_RETRYABLE] = "true" if doc.error.get("retryable") else "false"
        self.storage.write(key, doc.to_bytes(), content_type=RESULT_CONTENT_TYPE, metadata=metadata)
        return key
