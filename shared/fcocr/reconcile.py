"""The reconcile timer: task records that waited long enough are handed to the family that finishes them.

The timer (``functions/scan_reconcile``) walks ``FCOCR_RECONCILE_BUCKETS``. Every task record older than
``FCOCR_RECONCILE_AFTER`` seconds is due; due records are grouped by the family whose ``task_kinds`` name their
kind, and that family's ``finish_due`` finishes what it can from the vendor's own answer (through
``tasks.finish``). Claims whose claimant died without a result are finished by ``claims.sweep``. Receipts older
than ``RECEIPT_SECONDS`` are dropped; records older than ``TASK_RECORD_SECONDS`` are finished as failed
(TaskExpired) and removed. A fault in one bucket or task does not
stop the others; the timer keeps ``TIME_RESERVE`` seconds of its run to record what was finished.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from . import claims, logs, tasks
from .config import Settings
from .errors import FcocrError, PermanentError
from .recognizers import family_for_task
from .runtime import Runtime
from .storage import Storage, open_storage

RECEIPT_SECONDS = 4 * 3600  # no service pushes or answers queries about a task for longer than this
# A task record this old has outlived every vendor's result window (4 hours at most): its task is finished as
# failed (TaskExpired) and the record removed, so neither a pending result nor the record stays for ever.
TASK_RECORD_SECONDS = 24 * 3600
TIME_RESERVE = 10.0  # seconds of the timer's run kept back to record what was finished


def time_left(runtime: Runtime) -> bool:
    remaining = runtime.remaining_seconds()
    return remaining is None or remaining > TIME_RESERVE


def count(counts: Counter, what: str) -> None:
    """Count what ``tasks.finish`` did."""
    counts["finished" if what == tasks.WRITTEN else what] += 1


def not_finished(storage: Storage, record: tasks.TaskRecord, runtime: Runtime, exc: FcocrError, counts: Counter) -> None:
    """A task that could not be finished this tick (a storage or vendor fault): logged, counted, left for the next."""
    logs.log(logging.WARNING, "task not finished", requestId=runtime.request_id, bucket=storage.bucket,
             key=record.key, taskId=record.task_id, errorCode=exc.code)
    counts["errors"] += 1


def expire(storage: Storage, record: tasks.TaskRecord, settings: Settings, runtime: Runtime, counts: Counter) -> None:
    """A record past TASK_RECORD_SECONDS: its result says so (unless final already, or the source is gone)."""
    error = PermanentError("the asynchronous task's result never arrived and the vendor no longer keeps it",
                           code="TaskExpired")
    try:
        what = tasks.finish(storage, record, settings, runtime, error=error, require_pending=False)
    except FcocrError as exc:
        not_finished(storage, record, runtime, exc, counts)
        return
    counts["expired" if what == tasks.WRITTEN else what] += 1


def reconcile_bucket(storage: Storage, settings: Settings, runtime: Runtime, now: float) -> dict[str, int]:
    """Finish what can be finished of one bucket's task records; counts of what happened."""
    counts: Counter = Counter()
    counts["receiptsDropped"] = tasks.drop_old_receipts(storage, now, RECEIPT_SECONDS)
    due: dict[str, tuple[Any, list[tuple[tasks.TaskRecord, float]]]] = {}
    for record in tasks.pending(storage):
        submitted = tasks.epoch(record.submitted_at)
        age = now - submitted if submitted is not None else float("inf")
        if age > TASK_RECORD_SECONDS:
            expire(storage, record, settings, runtime, counts)
            continue
        if age < settings.reconcile_after:
            counts["waiting"] += 1
            continue
        family = family_for_task(record.kind)
        if family is None:
            counts["unknown"] += 1
            continue
        due.setdefault(family.name, (family, []))[1].append((record, age))
    for family, records in due.values():
        if not time_left(runtime):
            counts["deferred"] += len(records)
            continue
        try:
            family.finish_due(storage, records, settings, runtime, counts)
        except FcocrError as exc:
            logs.log(logging.WARNING, "tasks not finished", requestId=runtime.request_id, bucket=storage.bucket,
                     family=family.name, errorCode=exc.code, tasks=len(records))
            counts["errors"] += len(records)
    if time_left(runtime):
        claims.sweep(storage, settings, runtime, now, counts)
    return {k: v for k, v in counts.items() if v}


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


__all__ = ["run", "handle_timer_event", "reconcile_bucket"]
