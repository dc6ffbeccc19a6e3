"""Finishing asynchronous tasks: the one step that turns a task record into a final result, and the timer.

``finish`` is shared by the callback (``fcocr.callback``) and the reconcile timer (``run``): given a task record
and what became of its task, it writes the final result document beside the source with the one writer, then
leaves a small receipt (green tasks), deletes the record and the staged input. It never replaces a final
result, and never writes for an object that has since been replaced (the record names the ETag it was for).

The timer (``functions/scan_reconcile``) walks ``FCOCR_RECONCILE_BUCKETS``: every task record older than
``FCOCR_RECONCILE_AFTER`` seconds is finished from the vendor's own answer --

* ``green``: ``/green/image/results``, up to 100 taskIds a call, 10 calls a second. The service keeps a result
  for 1 h and answers queries for 4 h: a task with no result past the hour is recorded ``failed``
  (``Green.Expired``) with that reason, and one past 4 h is not even asked about.
* ``aliyun-async``: viapi ``GetAsyncJobResult`` once (``aliyun.poll_async_job(wait=False)``); a job still running
  stays pending until the next tick.

Receipts (``.fcocr-tasks/<digest>.done``) let a duplicate or late callback for a finished task be answered
200 without writing anything; the timer deletes them after 4 h, when the service can no longer push.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from datetime import datetime
from typing import Any

from . import logs, tasks
from .config import Settings
from .errors import FcocrError, ObjectNotFound, PermanentError, TransientError
from .results import PENDING, SUCCEEDED, Outcome, ResultDocument, ResultWriter, SourceRef, is_final_for, utc_now
from .runtime import Runtime
from .storage import Storage, open_storage

RECEIPT_SUFFIX = ".done"
RECEIPT_SECONDS = 4 * 3600  # the service pushes and answers queries for no longer than this
TIME_RESERVE = 10.0  # seconds of the timer's run kept back to record what was finished

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


# ----------------------------------------------------------------------------------------- receipts
def receipt_key(data_id: str) -> str | None:
    parsed = tasks.parse_data_id(data_id)
    return parsed[1][: -len(tasks.TASK_SUFFIX)] + RECEIPT_SUFFIX if parsed else None


def load_receipt(storage: Storage, data_id: str) -> dict | None:
    """The receipt a finished green task left, or None."""
    key = receipt_key(data_id)
    if key is None:
        return None
    try:
        receipt = json.loads(storage.read(key, tasks.MAX_RECORD_BYTES))
    except ObjectNotFound:
        return None
    except ValueError:
        return None
    return receipt if isinstance(receipt, dict) and receipt.get("dataId") == data_id else None


def _close(storage: Storage, record: tasks.TaskRecord, settings: Settings, runtime: Runtime, status: str | None) -> None:
    """The task is over: receipt (when a result was final), record gone, staged input gone."""
    if record.kind == "green" and status is not None:
        receipt = {"dataId": record.data_id, "taskId": record.task_id, "status": status, "finalizedAt": utc_now()}
        storage.write(receipt_key(record.data_id) or "", json.dumps(receipt).encode("utf-8"),
                      content_type="application/json", metadata=dict(tasks.TASK_MARK))
    tasks.delete(storage, record)
    staging = record.extra.get("staging") or {}
    if staging.get("key"):
        try:
            _staging_storage(storage, str(staging.get("bucket") or storage.bucket), settings, runtime).delete(staging["key"])
        except Exception:  # a leftover staged copy is harmless; the result is what matters
            pass


def _staging_storage(storage: Storage, bucket: str, settings: Settings, runtime: Runtime) -> Storage:
    if bucket == storage.bucket:
        return storage
    if settings.viapi_staging and bucket == settings.viapi_staging[0] and not settings.local_root:
        from .storage import OssStorage  # the viapi staging bucket, as aliyun._Staging opened it

        return OssStorage(bucket, endpoint=settings.viapi_staging_endpoint, region="cn-shanghai",
                          credentials=runtime.credentials, public_endpoint=settings.viapi_staging_endpoint)
    return open_storage(bucket, runtime, settings)


# ------------------------------------------------------------------------------------------- finish
def finish(storage: Storage, record: tasks.TaskRecord, settings: Settings, runtime: Runtime, *,
           outcome: Outcome | None = None, error: FcocrError | None = None, require_pending: bool) -> str:
    """Write the final result of ``record``'s task (``outcome`` or ``error``) and close the task.

    Returns WRITTEN; ALREADY_FINAL when a final result for the record's ETag exists (nothing is written);
    STALE when the source object has since been replaced or deleted (nothing is written, the task is closed);
    NOT_READY when ``require_pending`` and the source's result is not yet this task's pending document (the
    upload function writes it just after submitting: a callback can overtake it). Storage faults raise.
    """
    writer = ResultWriter(storage, settings.result_suffix)
    existing = writer.read(record.key) or {}
    same_etag = (existing.get("source") or {}).get("etag") == record.etag
    if same_etag and existing.get("status") != PENDING and is_final_for(existing, record.etag):
        _close(storage, record, settings, runtime, existing.get("status"))
        return ALREADY_FINAL
    ours = same_etag and existing.get("status") == PENDING and (existing.get("task") or {}).get("id") == record.task_id
    if not ours:
        try:
            current = storage.head(record.key).etag
        except ObjectNotFound:
            current = None
        if current != record.etag:  # replaced or deleted since: this result is for nothing that exists
            _close(storage, record, settings, runtime, None)
            return STALE
        if require_pending:
            return NOT_READY
    task = {"id": record.task_id, "kind": record.kind, "dataId": record.data_id, "submittedAt": record.submitted_at}
    started_at = existing.get("startedAt") if ours else record.submitted_at
    started = epoch(started_at)
    common: dict[str, Any] = dict(
        source=SourceRef(record.bucket, record.key, record.etag, record.size), recognizer=record.recognizer,
        options=dict(existing.get("options") or record.options) if ours else dict(record.options),
        started_at=started_at or utc_now(), finished_at=utc_now(),
        duration_ms=max(0, round((time.time() - started) * 1000)) if started is not None else 0,
        request_id=runtime.request_id, route=existing.get("route") if ours else None)
    if error is not None:
        doc = ResultDocument.from_error(error, **common)
        doc.outcome = Outcome(task=task, warnings=list(record.extra.get("warnings") or []))
    else:
        assert outcome is not None
        outcome.task = outcome.task or task
        doc = ResultDocument(status=SUCCEEDED, outcome=outcome, **common)
    writer.write(doc)
    logs.log(logging.WARNING if error else logging.INFO, "task finished", requestId=runtime.request_id,
             bucket=record.bucket, key=record.key, recognizer=record.recognizer, taskId=record.task_id,
             status=doc.status, errorCode=error.code if error else None)
    _close(storage, record, settings, runtime, doc.status)
    return WRITTEN


# -------------------------------------------------------------------------------------------- timer
def _time_left(runtime: Runtime) -> bool:
    remaining = runtime.remaining_seconds()
    return remaining is None or remaining > TIME_RESERVE


def _expired(record: tasks.TaskRecord, age: float, item: dict | None) -> PermanentError:
    said = f" (the service said {item.get('code')} {item.get('msg')})" if item else ""
    return PermanentError(f"no result for task {record.task_id}{said}: it was submitted {int(age)} s ago, the service "
                          "keeps results for 1 h and no callback delivered it (check GREEN_CALLBACK_URL and the "
                          "scan_callback function's logs)", code="Green.Expired",
                          vendorCode=str(item.get("msg")) if item and item.get("msg") else None)


def _finish_green(storage: Storage, due: list[tuple[tasks.TaskRecord, float]], settings: Settings, runtime: Runtime,
                  counts: Counter) -> None:
    from .recognizers import green

    for start in range(0, len(due), green.MAX_TASKS):
        if not _time_left(runtime):
            counts["deferred"] += len(due) - start
            return
        chunk = due[start:start + green.MAX_TASKS]
        try:
            found, request_id = green.query_results(settings, runtime, [r.task_id for r, _ in chunk])
        except FcocrError as exc:
            logs.log(logging.WARNING, "green results query failed", requestId=runtime.request_id,
                     bucket=storage.bucket, errorCode=exc.code, tasks=len(chunk))
            counts["errors"] += len(chunk)
            continue
        for record, age in chunk:
            item = found.get(record.task_id)
            outcome: Outcome | None = None
            error: FcocrError | None = None
            if item is not None and item.get("code") == 200:
                try:
                    outcome = green.final_outcome(record, item, raw=item, request_id=request_id)
                except FcocrError as exc:
                    error = exc
            elif age > green.RETENTION_SECONDS:
                error = _expired(record, age, item)
            elif item is None or item.get("code") == green.PROCESSING:
                counts["pending"] += 1
                continue
            else:
                error = green.task_error(item, request_id)
            try:
                _count(counts, finish(storage, record, settings, runtime, outcome=outcome, error=error,
                                      require_pending=False))
            except FcocrError as exc:  # a storage fault: this task waits for the next tick, the others go on
                logs.log(logging.WARNING, "task not finished", requestId=runtime.request_id, bucket=storage.bucket,
                         key=record.key, taskId=record.task_id, errorCode=exc.code)
                counts["errors"] += 1


def _finish_viapi(storage: Storage, record: tasks.TaskRecord, settings: Settings, runtime: Runtime,
                  counts: Counter) -> None:
    from .recognizers.aliyun import poll_async_job

    try:
        outcome = poll_async_job(settings, runtime, record.task_id, wait=False)
    except PermanentError as exc:
        _count(counts, finish(storage, record, settings, runtime, error=exc, require_pending=False))
        return
    if outcome is None:
        counts["pending"] += 1
        return
    _count(counts, finish(storage, record, settings, runtime, outcome=outcome, require_pending=False))


def _count(counts: Counter, what: str) -> None:
    counts["finished" if what == WRITTEN else what] += 1


def reconcile_bucket(storage: Storage, settings: Settings, runtime: Runtime, now: float) -> dict[str, int]:
    """Finish what can be finished of one bucket's task records; counts of what happened."""
    from .recognizers import green

    counts: Counter = Counter()
    counts["receiptsDropped"] = _drop_old_receipts(storage, now)
    due_green: list[tuple[tasks.TaskRecord, float]] = []
    for record in tasks.pending(storage):
        submitted = epoch(record.submitted_at)
        age = now - submitted if submitted is not None else float("inf")
        if age < settings.reconcile_after:
            counts["waiting"] += 1
            continue
        if not _time_left(runtime):
            counts["deferred"] += 1
            continue
        try:
            if record.kind == "green" and not record.task_id:
                # Saved, but the submission never completed (the function died in between): after an hour,
                # nobody is going to complete it.
                if age > green.RETENTION_SECONDS:
                    error = TransientError("the scan was never submitted: the upload function stopped between "
                                           "saving the task and submitting it; process the object again",
                                           code="Green.NotSubmitted")
                    _count(counts, finish(storage, record, settings, runtime, error=error, require_pending=False))
                else:
                    counts["waiting"] += 1
            elif record.kind == "green" and age > green.QUERY_WINDOW_SECONDS:
                _count(counts, finish(storage, record, settings, runtime, error=_expired(record, age, None),
                                      require_pending=False))
            elif record.kind == "green":
                due_green.append((record, age))
            elif record.kind == "aliyun-async":
                _finish_viapi(storage, record, settings, runtime, counts)
            else:
                counts["unknown"] += 1
        except FcocrError as exc:
            logs.log(logging.WARNING, "task not finished", requestId=runtime.request_id, bucket=storage.bucket,
                     key=record.key, taskId=record.task_id, errorCode=exc.code)
            counts["errors"] += 1
    _finish_green(storage, due_green, settings, runtime, counts)
    return {k: v for k, v in counts.items() if v}


def _drop_old_receipts(storage: Storage, now: float) -> int:
    dropped = 0
    for info in storage.list(tasks.TASK_PREFIX):
        if not info.key.endswith(RECEIPT_SUFFIX):
            continue
        try:
            receipt = json.loads(storage.read(info.key, tasks.MAX_RECORD_BYTES))
            finalized = epoch(receipt.get("finalizedAt")) if isinstance(receipt, dict) else None
        except (FcocrError, ValueError):
            continue
        if finalized is None or now - finalized > RECEIPT_SECONDS:
            storage.delete(info.key)
            dropped += 1
    return dropped


def run(settings: Settings, runtime: Runtime, *, now: float | None = None) -> dict[str, Any]:
    """Every bucket of FCOCR_RECONCILE_BUCKETS; a fault in one bucket does not stop the others."""
    now = time.time() if now is None else now
    buckets: dict[str, Any] = {}
    for bucket in settings.reconcile_buckets:
        try:
            buckets[bucket] = reconcile_bucket(open_storage(bucket, runtime, settings), settings, runtime, now)
        except Exception as exc:  # FcocrError, or oss2's own from a listing: the other buckets go on
            code = exc.code if isinstance(exc, FcocrError) else getattr(exc, "code", None) or type(exc).__name__
            logs.log(logging.WARNING, "bucket not reconciled", requestId=runtime.request_id, bucket=bucket,
                     errorCode=code)
            buckets[bucket] = {"error": code}
    logs.log(logging.INFO, "reconciled", requestId=runtime.request_id, buckets=buckets)
    return {"requestId": runtime.request_id, "buckets": buckets}


def handle_timer_event(event: Any = None, context: Any = None, settings: Settings | None = None) -> dict[str, Any]:
    """The scan_reconcile function: the timer's payload carries nothing fcocr needs."""
    settings = settings or Settings.from_env()
    logs.configure(settings.log_level)
    return run(settings, Runtime.from_context(context))


__all__ = ["finish", "run", "handle_timer_event", "load_receipt", "WRITTEN", "ALREADY_FINAL", "NOT_READY", "STALE"]
