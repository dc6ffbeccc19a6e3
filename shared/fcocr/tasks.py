"""Task records, and finishing them: what an asynchronous recognition needs to be finished later, by someone else.

A recognizer that answers later (Content Security's async scan, viapi's TrimDocument and
RecognizeVideoCharacter) leaves a ``pending`` result beside the source and a small task record
under the reserved prefix ``.fcocr-tasks/`` of the source bucket. The callback function and the
reconcile timer find the source through the record, never through anything else in a request.

The record's id (the Content Security ``dataId``) is ``<bucket>/<40 hex>``: ASCII and short
whatever the key (long, Chinese, with spaces), derived from bucket, key and ETag so a re-upload
of the same key is a new task, and a replay of the old one cannot finish the new upload.

``finish`` is the one step that turns a task record into a final result, shared by the callback and the
reconcile timer (through each family's ``finish_due``): it writes the final document with the one writer, then
``close``s the task -- a receipt when asked (``.fcocr-tasks/<digest>.done``, so a duplicate or late push for a
finished task is answered without writing), the record gone, the staged input gone. It never replaces a final
result, and never writes for an object that has since been replaced (the record names the ETag it was for).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Iterator

from . import logs
from .errors import FcocrError, ObjectNotFound, PermanentError
from .model import Outcome, SourceRef, TaskRef
from .results import PENDING, SUCCEEDED, ResultDocument, ResultWriter, result_key, utc_now
from .runtime import Runtime
from .storage import TASK_PREFIX, Storage, delete_staged

TASK_SUFFIX = ".json"
TASK_MARK = {"fcocr-kind": "task"}
_DATA_ID = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9-]{1,62})/(?P<digest>[0-9a-f]{40})$")
MAX_RECORD_BYTES = 64 * 1024
RECEIPT_SUFFIX = ".done"

# What finish() did.
WRITTEN, ALREADY_FINAL, NOT_READY, STALE = "written", "already-final", "not-ready", "stale"


def epoch(timestamp: Any) -> float | None:
    """Seconds since the epoch for an fcocr timestamp (``2026-11-21T10:40:01.112Z``); None when unreadable."""
    if not isinstance(timestamp, str):
        return None
    try:  # Python 3.10's fromisoformat does not take the Z
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def version_digest(bucket: str, key: str, etag: str) -> str:
    """40 hex naming one object version (bucket, key, ETag): task records, claims and page checkpoints use it."""
    return hashlib.sha256(f"{bucket}\n{key}\n{etag}".encode("utf-8")).hexdigest()[:40]


def data_id_for(bucket: str, key: str, etag: str) -> str:
    return f"{bucket}/{version_digest(bucket, key, etag)}"


def parse_data_id(data_id: Any) -> tuple[str, str] | None:
    """(bucket, record key) for a well-formed id; None for anything else (never a path we did not make)."""
    if not isinstance(data_id, str):
        return None
    match = _DATA_ID.match(data_id)
    if not match:
        return None
    return match["bucket"], f"{TASK_PREFIX}{match['digest']}{TASK_SUFFIX}"


@dataclass
class TaskRecord:
    data_id: str
    kind: str  # "green" | "aliyun-async"
    task_id: str
    bucket: str
    key: str
    etag: str
    recognizer: str
    submitted_at: str
    size: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the green card, a staging object to delete

    @property
    def ref(self) -> TaskRef:
        return TaskRef(self.task_id, self.kind, self.data_id, self.submitted_at)

    @property
    def record_key(self) -> str:
        parsed = parse_data_id(self.data_id)
        assert parsed is not None, self.data_id
        return parsed[1]

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> "TaskRecord":
        raw = json.loads(data)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known})


def save(storage: Storage, record: TaskRecord) -> None:
    storage.write(record.record_key, record.to_bytes(), content_type="application/json", metadata=dict(TASK_MARK))


def load(storage: Storage, data_id: str) -> TaskRecord | None:
    """The record for ``data_id`` in ``storage``'s bucket, or None when there is none."""
    parsed = parse_data_id(data_id)
    if parsed is None:
        return None
    try:
        record = TaskRecord.from_bytes(storage.read(parsed[1], MAX_RECORD_BYTES))
    except ObjectNotFound:
        return None
    except (ValueError, TypeError) as exc:
        raise PermanentError(f"task record {parsed[1]} is unreadable: {exc}", code="BadTaskRecord") from None
    return record if record.data_id == data_id else None


def delete(storage: Storage, record: TaskRecord) -> None:
    storage.delete(record.record_key)


def pending(storage: Storage) -> Iterator[TaskRecord]:
    """Every task record in the bucket (records are deleted when their task is final)."""
    for info in storage.list(TASK_PREFIX):
        if not info.key.endswith(TASK_SUFFIX):
            continue
        try:
            yield TaskRecord.from_bytes(storage.read(info.key, MAX_RECORD_BYTES))
        except (ObjectNotFound, ValueError, TypeError):
            continue


# ----------------------------------------------------------------------------------------- receipts
def receipt_key(data_id: str) -> str | None:
    parsed = parse_data_id(data_id)
    return parsed[1][: -len(TASK_SUFFIX)] + RECEIPT_SUFFIX if parsed else None


def load_receipt(storage: Storage, data_id: str) -> dict | None:
    """The receipt a finished task left, or None."""
    key = receipt_key(data_id)
    if key is None:
        return None
    try:
        receipt = json.loads(storage.read(key, MAX_RECORD_BYTES))
    except (ObjectNotFound, ValueError):
        return None
    return receipt if isinstance(receipt, dict) and receipt.get("dataId") == data_id else None


def drop_old_receipts(storage: Storage, now: float, keep_seconds: float) -> int:
    """Delete receipts older than ``keep_seconds`` (nobody can push for their tasks any more); how many."""
    dropped = 0
    for info in storage.list(TASK_PREFIX):
        if not info.key.endswith(RECEIPT_SUFFIX):
            continue
        try:
            receipt = json.loads(storage.read(info.key, MAX_RECORD_BYTES))
            finalized = epoch(receipt.get("finalizedAt")) if isinstance(receipt, dict) else None
        except (FcocrError, ValueError):
            continue
        if finalized is None or now - finalized > keep_seconds:
            storage.delete(info.key)
            dropped += 1
    return dropped


# ------------------------------------------------------------------------------------------- finish
def close(storage: Storage, record: TaskRecord, settings: Any, runtime: Runtime, status: str | None, *,
          receipt: bool = False) -> None:
    """The task is over: a receipt (when asked and a result was final), the record gone, the staged input gone."""
    if receipt and status is not None:
        body = {"dataId": record.data_id, "taskId": record.task_id, "status": status, "finalizedAt": utc_now()}
        storage.write(receipt_key(record.data_id) or "", json.dumps(body).encode("utf-8"),
                      content_type="application/json", metadata=dict(TASK_MARK))
    delete(storage, record)
    staged = record.extra.get("staging")
    if isinstance(staged, dict):
        delete_staged(staged, storage, runtime, settings)


def finish(storage: Storage, record: TaskRecord, settings: Any, runtime: Runtime, *,
           outcome: Outcome | None = None, error: FcocrError | None = None, require_pending: bool,
           receipt: bool = False) -> str:
    """Write the final result of ``record``'s task (``outcome`` or ``error``) and close the task.

    Returns WRITTEN; ALREADY_FINAL when a final result for the record's ETag exists (nothing is written);
    STALE when the source object has since been replaced or deleted (nothing is written, the task is closed);
    NOT_READY when ``require_pending`` and the source's result is not yet this task's pending document (the
    upload function writes it just after submitting: a callback can overtake it). Storage faults raise.
    """
    writer = ResultWriter.for_settings(storage, settings, runtime)
    existing = writer.read(record.key)
    same_etag = existing is not None and existing.source.etag == record.etag
    if existing is not None and same_etag and existing.status != PENDING and existing.settles(record.etag):
        close(storage, record, settings, runtime, existing.status, receipt=receipt)
        return ALREADY_FINAL
    ours = (existing is not None and same_etag and existing.status == PENDING
            and existing.task is not None and existing.task.id == record.task_id)
    # The newest version wins: even over our own pending document, a result for replaced bytes is not written.
    try:
        current = storage.head(record.key).etag
    except ObjectNotFound:
        current = None
    if current != record.etag:  # replaced or deleted since: this result is for nothing that exists
        if current is None and writer.drop_orphans and existing is not None:
            storage.delete(result_key(record.key, settings.result_suffix))  # a pending document, orphaned
        close(storage, record, settings, runtime, None, receipt=receipt)
        return STALE
    if not ours and require_pending:
        return NOT_READY
    task = record.ref
    started_at = existing.started_at if ours and existing is not None else record.submitted_at
    started = epoch(started_at)
    common: dict[str, Any] = dict(
        source=SourceRef(record.bucket, record.key, record.etag, record.size), recognizer=record.recognizer,
        options=dict(existing.options or record.options) if ours and existing is not None else dict(record.options),
        started_at=started_at or utc_now(), finished_at=utc_now(),
        duration_ms=max(0, round((time.time() - started) * 1000)) if started is not None else 0,
        request_id=runtime.request_id, route=existing.route if ours and existing is not None else None)
    if error is not None:
        doc = ResultDocument.from_error(error, **common)
        doc.outcome = Outcome(task=task, warnings=list(record.extra.get("warnings") or []))
    else:
        assert outcome is not None
        outcome.task = outcome.task or task
        doc = ResultDocument(status=SUCCEEDED, outcome=outcome, **common)
    if ours and existing is not None:
        doc.billed_calls = existing.billed_calls  # what submitting the task cost, as the pending document said
    if writer.write(doc) is None:  # the source was deleted meanwhile: its result is dropped, not written
        close(storage, record, settings, runtime, None, receipt=receipt)
        return STALE
    logs.log(logging.WARNING if error else logging.INFO, "task finished", requestId=runtime.request_id,
             bucket=record.bucket, key=record.key, recognizer=record.recognizer, taskId=record.task_id,
             status=doc.status, errorCode=error.code if error else None)
    close(storage, record, settings, runtime, doc.status, receipt=receipt)
    return WRITTEN
