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
from ..errors import FcocrError, PermanentError, TransientError, vendor_text
from ..model import Capability, Line, Outcome
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


def run(capability: Capability, row: Row, job: Any, options: Mapping[str, Any],
        call: Callable[[Part, float], Reply], family: str) -> Outcome:
    """Prepare the input, call the vendor once per part (retrying transient faults), build the Outcome."""
    policy = RetryPolicy.from_settings(job.settings)
    document = job.source_document()
    replies: list[tuple[Part, Reply]] = []
    warnings: list[str] = []
    for part in fit(document, capability.limits):
        if part.note:
            warnings.append(f"page {part.page + 1}: {part.note}" if document.page_count > 1 else part.note)

        def attempt(timeout: float, part: Part = part) -> Reply:
            return call(part, timeout)

        def on_retry(n: int, exc: FcocrError, pause: float) -> None:
            logs.log(logging.WARNING, "vendor retry", recognizer=capability.id, attempt=n, errorCode=exc.code,
                     pauseMs=round(pause * 1000), requestId=job.runtime.request_id)

        replies.append((part, policy.call(attempt, job.runtime, on_retry=on_retry)))
        del part  # one encoded part alive at a time
    if document.page_count > document.pages_to_read and not replies[0][0].original:
        warnings.append(f"only the first {document.pages_to_read} of {document.page_count} pages were recognized")
    return outcome_from(row, replies, options, warnings, family)


def outcome_from(row: Row, replies: list[tuple[Part, Reply]], options: Mapping[str, Any], warnings: list[str],
                 family: str) -> Outcome:
    pages: list[dict[str, Any]] = []
    lines: list[Line] | None = [] if row.lines else None
    first_fields: dict[str, Any] | None = None
    for part, reply in replies:
        fields, field_warnings = read_fields(row, reply.payload, options)
        warnings.extend(field_warnings)
        if fields is not None:
            empty = all(v in (None, [], "") for k, v in fields.items() if k != "side")
            if empty:
                raise PermanentError(f"{family} answered, but every field of the {row.document_type} is empty "
                                     "(not that kind of document, or unreadable)", code=f"{family.capitalize()}.NoFields",
                                     vendorRequestId=reply.request_id)
        if first_fields is None:
            first_fields = fields
        if row.lines and lines is not None:
            lines.extend(row.lines(reply.payload, part.page))
        page: dict[str, Any] = {"index": part.page}
        if part.width and part.height:
            page.update(width=part.width, height=part.height)
        if fields is not None and len(replies) > 1:
            page["fields"] = fields
        if reply.request_id:
            page["vendorRequestId"] = reply.request_id
        pages.append(page)
    raws = [reply.raw for _, reply in replies]
    payload_fields = first_fields
    if payload_fields is None and lines is None:
        # A capability with no normalized set and no text lines: its own fields, as the vendor named them.
        payload_fields = replies[0][1].payload if len(replies) == 1 else {"pages": [r.payload for _, r in replies]}
        if not isinstance(payload_fields, dict):
            payload_fields = {"value": payload_fields}
    return Outcome(
        lines=lines, fields=payload_fields, raw=raws[0] if len(raws) == 1 else raws, pages=pages,
        vendor_request_id=replies[0][1].request_id, warnings=warnings, document_type=row.document_type,
    )


def network_error(family: str, exc: BaseException) -> TransientError:
    return TransientError(f"{family} unreachable or timed out: {type(exc).__name__}: {vendor_text(exc)}",
                          code=f"{family.capitalize()}.NetworkError")
