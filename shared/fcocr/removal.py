"""Personal data leaves with its document: a deleted source takes what fcocr derived from it along.

An ``ObjectRemoved`` event (DeleteObject, DeleteObjects) for a source deletes, when FCOCR_DELETE_WITH_SOURCE is on
(the default): its task record and receipt, the staged copy the record names, whatever ``DERIVED`` finders name
(page checkpoints, claims), and last its result document.

Events arrive late and out of order, so the event itself proves nothing:

1. the result is read first: the ETag it belongs to says which version's task record, receipt and checkpoints
   to delete;
2. the source is then looked up (HEAD): if a key by that name exists, it was uploaded again after the delete
   and nothing is deleted (the new version's own upload event settles its result);
3. the result is deleted last, and only if it still belongs to the ETag read in step 1, so a new version's
   result written meanwhile stays. A fault half-way leaves the result, so FC's retry of the event finds the
   ETag again.

What cannot be found from the result (a task record of a version whose result was already replaced) is closed by
the reconcile timer: ``tasks.finish`` finds the source gone and drops it.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable
from urllib.parse import unquote

from . import checkpoints, claims, logs, tasks
from .config import Settings
from .events import Upload
from .model import SourceRef
from .results import ResultWriter, is_result_key, result_key
from .runtime import Runtime
from .storage import RESERVED_PREFIXES, Storage, open_storage

# Finders of further objects derived from (source key, ETag) in the source's bucket: each returns the keys to
# delete (absent keys are fine). A module that writes such objects has its finder here, so a deletion takes them.
DerivedFinder = Callable[[Storage, str, str], Iterable[str]]


def _listed(prefix_of: Callable[[SourceRef], str]) -> DerivedFinder:
    def find(storage: Storage, source_key: str, etag: str) -> list[str]:
        if not etag:
            return []
        return [info.key for info in storage.list(prefix_of(SourceRef(storage.bucket, source_key, etag)))]

    return find


DERIVED: list[DerivedFinder] = [_listed(checkpoints.prefix), _listed(claims.folder)]


def derived_keys(storage: Storage, source_key: str, etag: str) -> list[str]:
    """Every object besides the result that fcocr may hold for version ``etag`` of ``source_key``."""
    keys: list[str] = []
    if etag:
        data_id = tasks.data_id_for(storage.bucket, source_key, etag)
        parsed = tasks.parse_data_id(data_id)
        if parsed is not None:
            keys.append(parsed[1])
        receipt = tasks.receipt_key(data_id)
        if receipt:
            keys.append(receipt)
    for finder in DERIVED:
        keys.extend(finder(storage, source_key, etag))
    return keys


def forget(storage: Storage, source_key: str, settings: Settings, runtime: Runtime) -> dict[str, Any]:
    """Delete what fcocr derived from ``source_key`` if the source is really gone; what was done."""
    writer = ResultWriter(storage, settings.result_suffix)
    existing = writer.read(source_key)
    etag = existing.source.etag if existing is not None else ""
    if writer.source_exists(source_key):
        return {"deleted": 0, "reason": "the source exists again (uploaded after the delete): nothing deleted"}
    deleted = 0
    if etag:
        record = tasks.load(storage, tasks.data_id_for(storage.bucket, source_key, etag))
        if record is not None:  # its staged copy too (possibly in a staging bucket elsewhere)
            tasks.close(storage, record, settings, runtime, None)
            deleted += 1
    for key in derived_keys(storage, source_key, etag):  # receipt, checkpoints (absent ones are fine)
        storage.delete(key)
    if existing is not None:
        again = writer.read(source_key)
        if again is not None and again.source.etag == etag:
            storage.delete(result_key(source_key, settings.result_suffix))
            deleted += 1
    return {"deleted": deleted, "reason": "the source is gone: its result and derived objects deleted"
            if existing is not None else "the source is gone and had no result"}


def source_removed(upload: Upload, runtime: Runtime, settings: Settings) -> Any:
    """The ``remove`` action of the upload function: one ObjectRemoved record."""
    from .pipeline import Report

    def done(status: str, reason: str) -> Report:
        logs.log(logging.INFO, "source removed", requestId=runtime.request_id, bucket=upload.bucket,
                 key=upload.key, eventName=upload.event_name, outcome=status, reason=reason)
        return Report(upload.bucket, upload.key, status, reason=reason)

    if not settings.delete_with_source:
        return done("skipped", "FCOCR_DELETE_WITH_SOURCE is off: results stay when their source is deleted")
    if is_result_key(upload.key, settings.result_suffix) or upload.key.startswith(RESERVED_PREFIXES):
        return done("skipped", "the object is fcocr's own")
    storage = open_storage(upload.bucket, runtime, settings, upload.region)
    # Whether OSS percent-encodes keys in events is undocumented (see pipeline._locate): both spellings.
    candidates = [upload.key] + ([unquote(upload.key)] if "%" in upload.key and unquote(upload.key) != upload.key
                                 else [])
    total, reasons = 0, []
    for key in candidates:
        outcome = forget(storage, key, settings, runtime)
        total += outcome["deleted"]
        reasons.append(outcome["reason"])
    return done("removed" if total else "skipped", reasons[0] if len(reasons) == 1 or total == 0 else
                "; ".join(reasons))
