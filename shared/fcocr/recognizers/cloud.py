"""What every cloud family shares: one vendor call per prepared part, retried by the one policy,
and the answers turned into an Outcome (normalized fields, lines, pages, raw kept verbatim).

A family module supplies a table of capability rows and a ``call(row, part, options, timeout)``
that sends one payload and returns a ``Reply``; everything else is here.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .. import fields as fieldsets
from .. import logs
from ..checkpoints import PageCheckpoints
from ..errors import FcocrError, PermanentError, TransientError, vendor_text
from ..model import AnswerUnusable, Capability, Line, Outcome
from ..prepare import Part, fit
from ..retry import RetryPolicy, VendorFault, classify

LinesReader = Callable[[Any, int], list[Line]]


@dataclass
class Reply:
    """One vendor answer: the payload fields are read from, the whole answer, its request id."""

    payload: Any
    raw: Any
    request_id: str | None = None
    page_count: int | None = None  # a vendor that reports the PDF's page count (Tencent PdfPageSize)


@dataclass(frozen=True)
class Row:
    """The family-independent part of a capability row."""

    document_type: str | None = None
    field_map: Mapping[str, Any] | None = None  # a FieldMap, or {"face": FieldMap, "back": FieldMap}
    lines: LinesReader | None = None
    side_option: str | None = None  # the option whose value picks the field map (Side / side)
    # For answers that may hold several documents (tickets, receipts) in one image: the answer split into one
    # payload per document, each readable through ``field_map`` (see ``split_by``).
    documents: Callable[[Any], list[Any]] | None = None


def split_by(key: str) -> Callable[[Any], list[Any]]:
    """A ``Row.documents`` splitter for answers listing their documents under ``key`` (an array, or one object
    where the vendor's example shows one): one payload per document, the rest of the answer kept beside it."""

    def split(payload: Any) -> list[Any]:
        if not isinstance(payload, dict):
            return [payload]
        items = payload.get(key)
        if isinstance(items, list) and len(items) > 1:
            return [{**payload, key: [item]} for item in items]
        return [payload]

    return split


class ClientCache:
    """Vendor SDK clients, reused per key (endpoint, credentials, ...) while an FC instance is warm.
    Bounded: STS credentials rotate, and every rotation is a new key."""

    def __init__(self, limit: int = 32) -> None:
        self._clients: dict[tuple, Any] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def get(self, key: tuple, make: Callable[[], Any]) -> Any:
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                if len(self._clients) >= self._limit:
                    self._clients.clear()
                client = self._clients[key] = make()
            return client


def loads(text: str | bytes, family: str, status: int | None = None, request_id: str | None = None) -> Any:
    """A vendor's JSON body; a body that is not JSON is a vendor fault, never an empty success."""
    try:
        return json.loads(text)
    except (ValueError, TypeError, RecursionError):
        # Say what it looked like, never what it said: a cut-off answer holds what was read off the document,
        # and this message reaches FC's log when the fault outlives its retries.
        head = (text[:1] if isinstance(text, str) else bytes(text[:1]).decode("latin-1")) if text else ""
        looks = {"{": "cut-off JSON", "[": "cut-off JSON", "<": "an HTML page"}.get(head, "not JSON")
        raise classify(VendorFault(family, status or 200, "MalformedResponse",
                                   f"the answer is not JSON: {len(text or '')} bytes, {looks}", request_id),
                       code_prefix=family.capitalize()) from None


def read_fields(row: Row, payload: Any, options: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    if row.document_type is None or row.field_map is None:
        return None, []
    field_map = row.field_map
    fixed: dict[str, Any] = {}
    if row.side_option:
        side = str(options.get(row.side_option) or "face")
        field_map = field_map[side]
        fixed["side"] = "back" if side == "back" else "front"
    return fieldsets.extract(row.document_type, payload, field_map, **fixed)


def rotated_rect(left: float, top: float, width: float, height: float, angle: float) -> tuple[tuple[float, float], ...]:
    """The 4 corners (TL, TR, BR, BL) of a ``left/top/width/height`` box rotated ``angle``° about its centre."""
    cx, cy = left + width / 2.0, top + height / 2.0
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    corners = ((-width / 2, -height / 2), (width / 2, -height / 2), (width / 2, height / 2), (-width / 2, height / 2))
    return tuple((cx + c * x - s * y, cy + s * x + c * y) for x, y in corners)


def box_lines(items_key: str, text: str, probability: str, box: str, *, left: str, top: str, width: str,
              height: str, angle: str) -> LinesReader:
    """A lines reader for answers listing text boxes as left/top/width/height/angle with a 0–1 probability
    (viapi RecognizeCharacter, market general): the key names are the vendor's."""

    def read(payload: Any, page: int) -> list[Line]:
        items = (payload or {}).get(items_key) or []
        lines = []
        for item in items if isinstance(items, list) else [items]:
            rect = item.get(box) or {}
            polygon = rotated_rect(number(rect.get(left)), number(rect.get(top)), number(rect.get(width)),
                                   number(rect.get(height)), number(rect.get(angle)))
            prob = item.get(probability)
            lines.append(Line(str(item.get(text, "")), None if prob is None else number(prob) * 100, polygon, page))
        return lines

    return read


def number(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


@dataclass
class PageAnswer:
    """What one part (page) of a document came to: the vendor's reply, or why it failed."""

    part: Part
    reply: Reply | None = None
    error: FcocrError | None = None
    billed: bool = False  # the vendor answered this page: it was charged for


def run(capability: Capability, row: Row, job: Any, options: Mapping[str, Any], call: Callable[..., Any],
        family: str, batch: int = 0) -> Outcome:
    """Prepare the input, call the vendor once per part (retrying transient faults), build the Outcome.

    With ``batch``, for an API taking several images per request: up to ``batch`` parts per vendor call, ``call``
    taking a list of parts and giving one Reply per part, so a many-page document costs fewer calls."""
    document = job.source_document()
    warnings: list[str] = []

    def parts() -> Any:
        for part in fit(document, capability.limits):
            if part.note:
                warnings.append(f"page {part.page + 1}: {part.note}" if document.page_count > 1 else part.note)
            yield part

    if batch:
        answers = call_batches(capability, job, parts(), call, pages=document.page_count, size=batch)
    else:
        answers = call_pages(capability, job, parts(), call, pages=document.page_count)
    if document.page_count > document.pages_to_read and not answers[0].part.original:
        warnings.append(f"only the first {document.pages_to_read} of {document.page_count} pages were recognized")
    return outcome_from(row, answers, options, warnings, family)


def call_batches(capability: Capability, job: Any, parts: Any, call: Callable[[list[Part], float], list[Reply]], *,
                 pages: int, size: int) -> list[PageAnswer]:
    """``call_pages`` with up to ``size`` parts per call: pages answered by an earlier invocation are read back from
    their checkpoints, the others sent together, and each page's answer checkpointed once its batch is answered."""
    policy = RetryPolicy.from_settings(job.settings)
    saved = PageCheckpoints(job.storage, job.source, capability.id) if pages > 1 else None
    answers: list[PageAnswer] = []
    batch: list[Part] = []

    def send() -> None:
        sent = list(batch)
        batch.clear()
        try:
            replies = policy.call(lambda timeout: call(sent, timeout), job.runtime)
            got = [PageAnswer(part, reply=reply, billed=True) for part, reply in zip(sent, replies, strict=True)]
        except PermanentError as exc:
            if saved is None:
                raise
            got = [PageAnswer(part, error=exc) for part in sent]
        for answer in got:
            if saved is not None:
                saved.save(answer.part.page, _checkpoint(answer))
            answers.append(answer)

    for part in parts:
        kept = saved.load(part.page) if saved is not None else None
        if kept is not None:
            answers.append(_answer_from(part, kept))
            continue
        batch.append(part)
        if len(batch) >= size:
            send()
    if batch:
        send()
    answers.sort(key=lambda a: a.part.page)
    return answers


def call_pages(capability: Capability, job: Any, parts: Any, call: Callable[[Part, float], Reply], *,
               pages: int) -> list[PageAnswer]:
    """One vendor call per part, each retried by the one policy. For a document of several ``pages``, every
    page's answer (or permanent failure) is checkpointed before the next is sent, and pages answered by an
    earlier invocation of the same object version are read back instead of being paid for again."""
    policy = RetryPolicy.from_settings(job.settings)
    saved = PageCheckpoints(job.storage, job.source, capability.id) if pages > 1 else None
    answers: list[PageAnswer] = []
    for part in parts:
        kept = saved.load(part.page) if saved is not None else None
        if kept is not None:
            answers.append(_answer_from(part, kept))
            continue

        def attempt(timeout: float, part: Part = part) -> Reply:
            return call(part, timeout)

        def on_retry(n: int, exc: FcocrError, pause: float) -> None:
            logs.log(logging.WARNING, "vendor retry", recognizer=capability.id, attempt=n, errorCode=exc.code,
                     pauseMs=round(pause * 1000), requestId=job.runtime.request_id)

        try:
            answer = PageAnswer(part, reply=policy.call(attempt, job.runtime, on_retry=on_retry), billed=True)
        except PermanentError as exc:
            if saved is None:
                raise
            answer = PageAnswer(part, error=exc)  # this page is lost; the others may still be read
        if saved is not None:
            saved.save(part.page, _checkpoint(answer))
        answers.append(answer)
        del part  # one encoded part alive at a time
    return answers


def _checkpoint(answer: PageAnswer) -> dict[str, Any]:
    body: dict[str, Any] = {"billed": answer.billed}
    if answer.reply is not None:
        r = answer.reply
        body["reply"] = {"payload": r.payload, "raw": r.raw, "requestId": r.request_id, "pageCount": r.page_count}
    if answer.error is not None:
        body["error"] = error_json(answer.error)
    return body


def _answer_from(part: Part, kept: dict[str, Any]) -> PageAnswer:
    reply = kept.get("reply")
    error = kept.get("error")
    answer = PageAnswer(part, billed=bool(kept.get("billed")))
    if isinstance(reply, dict):
        answer.reply = Reply(reply.get("payload"), reply.get("raw"), reply.get("requestId"), reply.get("pageCount"))
    elif isinstance(error, dict):
        details = {k: v for k, v in error.items() if k not in {"code", "message", "retryable"}}
        answer.error = PermanentError(str(error.get("message") or "failed"), code=str(error.get("code") or "PageFailed"),
                                      **details)
    return answer


def error_json(error: FcocrError) -> dict[str, Any]:
    """An error as result documents show it (``error``, ``pages[i].error``)."""
    return {"code": error.code, "message": error.message, "retryable": error.retryable, **error.details}


def outcome_from(row: Row, answers: list[PageAnswer], options: Mapping[str, Any], warnings: list[str],
                 family: str) -> Outcome:
    """The Outcome of a document's answers. Pages that failed say why in ``pages[i].error``; when some pages
    produced a result the document succeeds with ``partial`` (unless the route sets ``requireAllPages``); when
    none did, ``AnswerUnusable`` carries every paid answer into the failed result."""
    pages: list[dict[str, Any]] = []
    lines: list[Line] | None = [] if row.lines else None
    first_fields: dict[str, Any] | None = None
    answered: list[PageAnswer] = []
    failed: list[PageAnswer] = []
    documents: list[dict[str, Any]] = []
    several = len(answers) > 1
    for answer in answers:
        part, reply = answer.part, answer.reply
        page: dict[str, Any] = {"index": part.page}
        if part.width and part.height:
            page.update(width=part.width, height=part.height)
        if reply is not None and reply.request_id:
            page["vendorRequestId"] = reply.request_id
        pages.append(page)
        fields: dict[str, Any] | None = None
        if answer.error is None and reply is not None:
            fields, field_warnings, found = read_documents(row, reply.payload, options)
            for document in found:
                documents.append({**document, "page": part.page})
            if fields is not None and all(v in (None, [], "") for k, v in fields.items() if k != "side"):
                answer.error = PermanentError(
                    f"{family} answered, but every field of the {row.document_type} is empty (not that kind of "
                    "document, or unreadable)", code=f"{family.capitalize()}.NoFields", vendorRequestId=reply.request_id)
            else:
                warnings.extend(field_warnings)
        if answer.error is not None or reply is None:
            page["error"] = error_json(answer.error or PermanentError("no answer", code="NoAnswer"))
            failed.append(answer)
            continue
        answered.append(answer)
        if first_fields is None:
            first_fields = fields
        if row.lines and lines is not None:
            lines.extend(row.lines(reply.payload, part.page))
        if fields is not None and several:
            page["fields"] = fields
    raws = [a.reply.raw if a.reply is not None else None for a in answers]
    raw = raws[0] if not several else raws
    billed = sum(1 for a in answers if a.billed)
    request_id = next((a.reply.request_id for a in answers if a.reply is not None and a.reply.request_id), None)
    problems = [f"page {page['index'] + 1}: {page['error']['code']}: {page['error']['message']}"
                for page in pages if "error" in page] if several else []
    if not answered or (failed and options.get("requireAllPages")):
        first = failed[0].error or PermanentError("no answer", code="NoAnswer")
        if not several:
            message = first.message
        elif not answered:
            message = f"none of the {len(answers)} pages produced a result: " + "; ".join(problems)
        else:
            message = "a page failed and the route sets requireAllPages: " + "; ".join(problems)
        kept = Outcome(raw=raw if any(r is not None for r in raws) else None, pages=pages if several else [],
                       vendor_request_id=request_id, warnings=warnings, billed_calls=billed)
        raise AnswerUnusable(message, outcome=kept, code=first.code, **first.details)
    partial = bool(failed)
    if partial:
        warnings.extend(f"{problem} (the document is partial)" for problem in problems)
    payload_fields = first_fields
    if payload_fields is None and lines is None:
        # A capability with no normalized set and no text lines: its own fields, as the vendor named them.
        payloads = [a.reply.payload for a in answered if a.reply is not None]
        payload_fields = payloads[0] if len(answers) == 1 else {"pages": payloads}
        if not isinstance(payload_fields, dict):
            payload_fields = {"value": payload_fields}
    return Outcome(
        lines=lines, fields=payload_fields, raw=raw, pages=pages, vendor_request_id=request_id, warnings=warnings,
        document_type=row.document_type, partial=partial, billed_calls=billed,
        documents=[{**d, "index": i} for i, d in enumerate(documents)] if row.documents is not None else None,
    )


def read_documents(row: Row, payload: Any, options: Mapping[str, Any]
                   ) -> tuple[dict[str, Any] | None, list[str], list[dict[str, Any]]]:
    """The fields of an answer and, for a row whose answers may hold several documents, every document that has
    any field: (the first document's fields, warnings, [{documentType, fields}])."""
    if row.documents is None:
        fields, warnings = read_fields(row, payload, options)
        return fields, warnings, []
    found: list[dict[str, Any]] = []
    warnings: list[str] = []
    first: dict[str, Any] | None = None
    for part in row.documents(payload):
        fields, field_warnings = read_fields(row, part, options)
        if first is None:
            first = fields
        if fields is not None and any(v not in (None, [], "") for k, v in fields.items() if k != "side"):
            if not found:
                first = fields
            warnings.extend(field_warnings)
            found.append({"documentType": row.document_type, "fields": fields})
    return first, warnings, found


def network_error(family: str, exc: BaseException) -> TransientError:
    return TransientError(f"{family} unreachable or timed out: {type(exc).__name__}: {vendor_text(exc)}",
                          code=f"{family.capitalize()}.NetworkError")
