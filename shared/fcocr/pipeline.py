"""The upload flow: an OSS record becomes a result document beside its object.

    guard      an event we ignore? a result object?              -> skip, log
    storage    open_storage(bucket)                               OSS via oss2 | local directory
    locate     head(key), once more percent-decoded if not found
    idempotent a final result for this ETag already?              -> skip (never pay twice)
    route      router.route_for(key, metadata)                    -> recognizer + options
    claim      claims.acquire(source version)                     held by another invocation -> skip
    recognize  family.recognize(capability, job, options)         -> Outcome (lines, fields, raw | task)
    re-check   the source's ETag still the one recognized?        replaced since -> drop, skip
    write      ResultWriter.write(ResultDocument)                 atomic, the one writer; then the claim goes

Permanent failures become ``failed`` documents and the handler returns normally, so FC does
not retry them. Transient ones are recorded as ``failed`` with ``retryable: true`` (so the
upload is never left without a document) and then raised, so FC's async retry runs; the
retry does not treat that document as final.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import unquote

from . import checkpoints, claims, fallback, imaging, logs
from .config import MiB, Settings
from .errors import FcocrError, InputError, ObjectNotFound, PermanentError, TransientError, vendor_text
from .events import REMOVE, RESOLVE_SYMLINK, InvalidEvent, Upload, parse_oss_event
from .imaging import Document
from .model import ALL_FORMATS, MAX_KEY_BYTES, Capability, Limits, SourceRef
from .recognizers import family
from .results import ResultDocument, ResultWriter, fits_beside, is_result_key, is_result_object, result_key, utc_now
from .routing import Router
from .runtime import Runtime
from .storage import ObjectInfo, Storage, open_storage

# What any recognizer may be given, before its own limits: fcocr's own byte, pixel and page limits apply.
SOURCE_LIMITS = Limits(formats=ALL_FORMATS)


@dataclass
class App:
    """What a process builds once, at start-up: validated settings and routes."""

    settings: Settings
    router: Router
    clock: Callable[[], float] = time.time  # wall-clock seconds: claim leases are compared across instances

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "App":
        settings = Settings.from_env(env)
        logs.configure(settings.log_level)
        return cls(settings, Router.load(settings.routes))


_APP: App | None = None
_APP_LOCK = threading.Lock()


def app() -> App:
    """The process-wide App, built on first use (FC's cold start) and reused while warm."""
    global _APP
    with _APP_LOCK:
        if _APP is None:
            _APP = App.from_env()
        return _APP


def warm_up() -> App:
    """FC's initializer: check settings and routes, and load what the routed providers need.

    A bad routes file then fails the instance's start, before any upload is touched, and the
    offline engine's models load before the first request rather than during it.
    """
    application = app()
    for name in sorted({cap.family for route in application.router.routes for _, _, cap in route.chain}):
        warm = getattr(family(name), "warm_up", None)
        if warm is not None:
            warm(application.settings)
    return application


def reset_app() -> None:
    """Forget the cached App (the environment changed: tests, the CLI)."""
    global _APP
    with _APP_LOCK:
        _APP = None


@dataclass
class Job:
    """One object to recognize, as a recognizer sees it: where it is, and how to get its content."""

    source: SourceRef  # the key the result sits beside
    content_key: str  # where the bytes are (differs for a symlink)
    info: ObjectInfo
    storage: Storage
    runtime: Runtime
    settings: Settings
    region: str = ""  # the source bucket's region ("" for local storage)

    def source_document(self) -> Document:
        """The content, read once and checked against fcocr's own limits only; ``prepare.fit`` does the rest."""
        return self._read(SOURCE_LIMITS)

    def document(self, capability: Capability) -> Document:
        """The content, read once and checked against the capability's limits and ours."""
        return self._read(capability.limits)

    def _read(self, limits: Limits) -> Document:
        limit = min(self.settings.max_bytes, limits.max_bytes or self.settings.max_bytes)
        if self.info.size > limit:  # refuse before downloading 1 GB to say so
            raise InputError(f"the object is {self.info.size} bytes, over the {limit}-byte limit",
                                     code="InputTooLarge")
        data = self.storage.read(self.content_key, limit)
        return imaging.inspect(data, limits, max_bytes=limit, max_pixels=self.settings.max_pixels,
                               max_pages=self.settings.max_pages, pdf_dpi=self.settings.pdf_dpi,
                               page_memory=self.settings.page_memory_mb * MiB)

    def presigned_url(self, expires_seconds: int) -> str:
        return self.storage.presign_get(self.content_key, expires_seconds)


@dataclass
class Report:
    """What happened to one record: for the handler's return value, the CLI table and logs."""

    bucket: str
    key: str
    status: str  # succeeded | failed | pending | skipped | removed (the source's derived objects deleted)
    reason: str = ""
    recognizer: str | None = None
    result_key: str | None = None
    duration_ms: int = 0
    error_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}


def _locate(storage: Storage, key: str) -> tuple[str, ObjectInfo]:
    """HEAD the key as given; if absent and it has '%', once more percent-decoded ('+' stays '+')."""
    try:
        return key, storage.head(key)
    except ObjectNotFound:
        decoded = unquote(key)
        if "%" not in key or decoded == key:
            raise
        return decoded, storage.head(decoded)


def process(upload: Upload, runtime: Runtime, application: App | None = None, *, force: bool = False) -> Report:
    """Process one OSS record to the end: a result document, or a logged reason to skip. ``force`` (the operator's
    ``--force``) recognizes again even when a final result exists, though never beside a task in flight."""
    application = application or app()
    settings = application.settings
    base: dict[str, Any] = dict(bucket=upload.bucket, key=upload.key)

    def skip(reason: str) -> Report:
        logs.log(logging.INFO, "skipped", requestId=runtime.request_id, reason=reason, eventName=upload.event_name, **base)
        return Report(upload.bucket, upload.key, "skipped", reason=reason)

    if upload.action is None:
        return skip(f"event {upload.event_name} is not one fcocr acts on")
    if is_result_key(upload.key, settings.result_suffix):
        return skip("the object is an fcocr result (recursion guard)")
    if upload.key.endswith("/"):
        return skip("the object is a folder marker")

    if upload.action == REMOVE:
        from .removal import source_removed

        return source_removed(upload, runtime, settings)

    try:
        storage = open_storage(upload.bucket, runtime, settings, upload.region)
    except PermanentError as exc:  # no such bucket can exist (a bad name): nowhere to write a result either
        logs.log(logging.WARNING, "no storage", requestId=runtime.request_id, errorCode=exc.code, reason=exc.message,
                 **base)
        return Report(upload.bucket, upload.key, "failed", reason=exc.message, error_code=exc.code)
    writer = ResultWriter.for_settings(storage, settings, runtime)
    started_at, t0 = utc_now(), time.monotonic()
    key = upload.key
    recognizer: str | None = None
    options: dict[str, Any] = {}
    route: dict[str, Any] | None = None
    # The ETag is only known once HEAD finds the object: a "not found" result must not settle a later upload.
    source = SourceRef(upload.bucket, key, "", upload.size)
    content_key = key
    claim: claims.Claim | None = None
    outcome = None
    attempts: list[dict[str, Any]] = []
    billed: dict[str, int] = {}
    try:
        key, info = _locate(storage, upload.key)
        content_key = key
        if upload.action == RESOLVE_SYMLINK:
            content_key = storage.symlink_target(key)
            info = storage.head(content_key)
        source = SourceRef(upload.bucket, key, info.etag, info.size)
        if is_result_object(content_key, info.metadata, settings.result_suffix):
            return skip("the object is an fcocr result (recursion guard)")
        if writer.settled(key, info.etag) and (not force or writer.in_flight(key, info.etag)):
            return skip("a final result already exists for this ETag")
        if not fits_beside(key, settings.result_suffix):  # refused before any recognizer is paid
            raise PermanentError(
                f"the key ({len(key.encode('utf-8'))} bytes) is too long for a result beside it: with "
                f"{settings.result_suffix!r} it would be over OSS's {MAX_KEY_BYTES}-byte key limit or the 255-byte "
                f"file name limit; this result is at {result_key(key, settings.result_suffix)}", code="KeyTooLong")
        decision = application.router.route_for(key, info.metadata)
        recognizer, options, route = decision.recognizer, decision.options, decision.describe()
        claim = claims.acquire(storage, source, runtime, application.clock(), recognizer=recognizer)
        if not claim.ours:
            return skip(f"another invocation is recognizing this version ({claim.describe()})")
        if not force and writer.settled(key, info.etag):  # finished by the claimant before ours, between our check and claim
            claims.release(storage, claim)
            return skip("a final result already exists for this ETag")
        job = Job(source, content_key, info, storage, runtime, settings, storage.region)
        attempted = fallback.recognize(decision.chain, job, decision.fallback_after_billed)
        recognizer, options, attempts, billed = (attempted.recognizer, attempted.options, attempted.attempts,
                                                 attempted.billed)
        if attempted.error is not None:
            raise attempted.error
        outcome = attempted.outcome
        error: FcocrError | None = None
    except FcocrError as exc:
        error = exc
    except Exception as exc:  # a bug or an unforeseen library error: record it, then let FC retry
        error = TransientError(f"unexpected {type(exc).__name__}: {vendor_text(exc)}", code="InternalError")
        logs.log(logging.ERROR, "internal error", requestId=runtime.request_id, exc_info=exc, **base)
    try:
        return _finish(upload, runtime, storage, writer, source, content_key, recognizer, options, route,
                       started_at, t0, outcome if error is None else None, error, attempts, billed)
    finally:
        if claim is not None:
            claims.release(storage, claim)


def _replaced(storage: Storage, content_key: str, etag: str) -> bool:
    """Has the object changed since it was recognized (another ETag, or deleted)?"""
    try:
        return storage.head(content_key).etag != etag
    except ObjectNotFound:
        return True
    except FcocrError:  # cannot tell: write, rather than lose an answer that was paid for
        return False


def _drop_checkpoints(storage: Storage, source: SourceRef, runtime: Runtime) -> None:
    """The page answers kept for a version that no longer exists: no retry will use them, and what was read
    from a document leaves with it. A storage fault here does not fail the event: the log line names the
    object, and its checkpoints stay."""
    try:
        checkpoints.clear(storage, source)
    except FcocrError as exc:
        logs.log(logging.WARNING, "checkpoints not cleared", requestId=runtime.request_id, bucket=storage.bucket,
                 key=source.key, errorCode=exc.code)


def _finish(upload: Upload, runtime: Runtime, storage: Storage, writer: ResultWriter, source: SourceRef,
            content_key: str, recognizer: str | None, options: dict[str, Any], route: dict[str, Any] | None,
            started_at: str, t0: float, outcome: Any, error: FcocrError | None,
            attempts: list[dict[str, Any]], billed: dict[str, int]) -> Report:
    """Write the result document of one record (unless the object was replaced meanwhile) and report it."""
    if source.etag and _replaced(storage, content_key, source.etag):
        # The newest version wins: its own event writes its result; ours is for bytes that no longer exist.
        reason = "the object was replaced or deleted while it was recognized: this result is dropped"
        logs.log(logging.WARNING, "stale result dropped", requestId=runtime.request_id, bucket=upload.bucket,
                 key=source.key, etag=source.etag, recognizer=recognizer)
        _drop_checkpoints(storage, source, runtime)
        return Report(upload.bucket, source.key, "skipped", reason=reason, recognizer=recognizer)
    if error is not None and error.retryable and source.etag and writer.settled(source.key, source.etag):
        # A fault of ours (a claim lost to a storage fault, say) never replaces a final result another wrote.
        return Report(upload.bucket, source.key, "skipped", reason="a final result already exists for this ETag",
                      recognizer=recognizer, error_code=error.code)

    common = dict(source=source, recognizer=recognizer, options=options, route=route, started_at=started_at,
                  finished_at=utc_now(), duration_ms=round((time.monotonic() - t0) * 1000),
                  request_id=runtime.request_id)
    doc = ResultDocument.from_error(error, **common) if error else ResultDocument.from_outcome(outcome, **common)
    if recognizer is not None:
        doc.billed_calls = {**billed, recognizer: billed.get(recognizer, 0) + fallback.billed_calls(recognizer, doc.outcome)}
    doc.attempts = attempts or None
    report = Report(bucket=upload.bucket, key=source.key, status=doc.status, recognizer=recognizer,
                    duration_ms=doc.duration_ms, error_code=error.code if error else None,
                    reason=error.message if error else "")
    vendor_request_id = (doc.outcome.vendor_request_id if doc.outcome else None) or (doc.error or {}).get("vendorRequestId")
    fields: dict[str, Any] = dict(requestId=runtime.request_id, bucket=upload.bucket, key=source.key, recognizer=recognizer,
                  durationMs=doc.duration_ms, errorCode=report.error_code, vendorRequestId=vendor_request_id,
                  billedCalls=doc.billed_calls)
    try:
        report.result_key = writer.write(doc)
    except FcocrError as write_error:
        # No document could be written: raise, so FC retries and finally hands the event to OnFailure.
        logs.log(logging.ERROR, "result not written", status=doc.status, writeError=write_error.code, **fields)
        raise write_error from None
    if report.result_key is None:  # the source is gone (deleted, or never there): nothing to sit beside
        report.status, report.reason = "skipped", "the source no longer exists: no result written"
        logs.log(logging.INFO, "skipped", reason=report.reason, **fields)
        _drop_checkpoints(storage, source, runtime)
        return report
    logs.log(logging.WARNING if error else logging.INFO, "document", status=doc.status, **fields)
    if error is not None and error.retryable:
        raise error  # the page checkpoints stay: FC's retry resumes at the first unanswered page
    if doc.outcome is None or len(doc.outcome.pages) > 1:  # a failure may have come after some pages were kept
        checkpoints.clear(storage, source)
    return report


def handle_oss_event(event: bytes | str | dict, context: Any = None, application: App | None = None) -> dict[str, Any]:
    """The ocr_upload function: every record of the event, then one transient error re-raised if any.

    Records stand alone: a malformed one is reported (and logged) as failed, and a bug met on one is raised
    only after every other record has had its turn, so the valid records beside either always get a result.
    """
    application = application or app()
    runtime = Runtime.from_context(context)
    rejected: list[InvalidEvent] = []
    uploads = parse_oss_event(event, rejected)
    reports: list[Report] = []
    for invalid in rejected:
        logs.log(logging.WARNING, "malformed record", requestId=runtime.request_id, errorCode=invalid.code,
                 reason=invalid.message, index=invalid.details.get("index"))
        reports.append(Report("", "", "failed", reason=invalid.message, error_code=invalid.code))
    raised: list[FcocrError] = []
    for upload in uploads:
        try:
            reports.append(process(upload, runtime, application))
        except FcocrError as exc:
            # Finish the other records first; the retry skips whatever is already final.
            raised.append(exc)
        except Exception as exc:  # a bug outside process's own net: the other records still run
            logs.log(logging.ERROR, "internal error", requestId=runtime.request_id, exc_info=exc,
                     bucket=upload.bucket, key=upload.key)
            raised.append(TransientError(f"unexpected {type(exc).__name__}", code="InternalError"))
    if raised:
        raise raised[0]
    return {"requestId": runtime.request_id, "records": [r.to_json() for r in reports]}
