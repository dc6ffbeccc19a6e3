"""The Content Security callback: verify, then write the final result, then answer 200.

The endpoint is anonymous on the internet, so it trusts nothing it has not verified:

1. **The edge** (``read_environ`` for the FC 2.0 WSGI trigger, ``read_fc3_event`` for the FC 3.0 HTTP event)
   turns the request into a ``CallbackRequest`` once: POST only (405), ``application/x-www-form-urlencoded``
   only (415), at most ``MAX_BODY`` bytes (413, by Content-Length and by what is read), UTF-8, and exactly one
   ``checksum`` and one ``content`` form field (``Checksum``/``Content``/``ReqId``, the 2.0 casing, too).
2. **Verify before parsing**: ``checksum`` must be ``SHA256|SM3(GREEN_UID + GREEN_SEED + content)`` over the
   form-decoded content exactly as received (403 otherwise). Nothing before this point imports storage, OSS or
   a vendor SDK, so a flood of forged requests costs a cold start almost nothing.
3. **Parse** the content (one results ``data[]`` element, or the whole envelope), 400 when malformed; each
   element's ``dataId`` names a task record (``fcocr.tasks``) in the bucket it names: 404 when there is none,
   409 when the record is for another taskId (an older submission of the same object).
4. **Write** the final result with ``tasks.finish`` and only then answer 200. A task already final (a
   duplicate, a late re-push) answers 200 and writes nothing; a storage fault answers 503 so the service pushes
   again (it does so up to 16 times), and so does a callback that overtook the upload function's own pending
   document.

Logs say what was decided and why, with identifiers only: never the content, the checksum, the seed or the UID.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl

from ... import logs
from ...config import Settings
from ...errors import FcocrError, PermanentError, TransientError
from ...runtime import Runtime
from .checksum import verify_callback
from .settings import GreenSettings

FAMILY_NAME = "green"

MAX_BODY = 1024 * 1024  # far above a real result (a few KB), far below what would hurt the function
MAX_FIELDS = 16
MAX_ITEMS = 100  # a results envelope holds at most 100 tasks
FORM_TYPE = "application/x-www-form-urlencoded"
FIELD_NAMES = {"checksum": "checksum", "Checksum": "checksum", "content": "content", "Content": "content",
               "ReqId": "req_id", "reqId": "req_id"}

_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 411: "Length Required", 413: "Payload Too Large", 415: "Unsupported Media Type",
            500: "Internal Server Error", 503: "Service Unavailable"}


class Rejected(Exception):
    """A request refused with an HTTP status and a short reason (never echoing what was sent)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Reply:
    status: int
    reason: str

    @property
    def status_line(self) -> str:
        return f"{self.status} {_REASONS.get(self.status, 'Error')}"

    def body(self) -> bytes:
        return json.dumps({"status": self.status, "reason": self.reason}).encode("utf-8")

    def headers(self) -> list[tuple[str, str]]:
        headers = [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(self.body())))]
        if self.status == 405:
            headers.append(("Allow", "POST"))
        return headers


@dataclass(frozen=True, repr=False)
class CallbackRequest:
    """A callback as the service sends it, typed once at the edge."""

    checksum: str
    content: str
    req_id: str | None = None

    def __repr__(self) -> str:  # the content is a document's text and the checksum a secret's fingerprint
        return f"CallbackRequest(content={len(self.content)} chars, req_id={self.req_id!r})"


# ---------------------------------------------------------------------------------------- the edge
def _check_content_type(value: str | None) -> None:
    media, _, params = (value or "").partition(";")
    if media.strip().lower() != FORM_TYPE:
        raise Rejected(415, f"the body must be {FORM_TYPE}")
    for param in params.split(";"):
        name, _, charset = param.partition("=")
        if name.strip().lower() == "charset" and charset.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise Rejected(415, "the body must be UTF-8")


def parse_form(body: bytes) -> CallbackRequest:
    """The form fields of a body already size-checked; Rejected(400) for anything that is not a clean form."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), encoding="utf-8",
                          errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise Rejected(400, "the body is not valid UTF-8") from None
    except ValueError:  # a field without '=', too many fields
        raise Rejected(400, "the body is not a form") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        canonical = FIELD_NAMES.get(name)
        if canonical is None:
            continue  # fields the service may add later
        if canonical in fields:
            raise Rejected(400, f"the form has more than one {canonical} field")
        fields[canonical] = value
    for name in ("checksum", "content"):
        if name not in fields:
            raise Rejected(400, f"the form has no {name} field")
    return CallbackRequest(fields["checksum"], fields["content"], fields.get("req_id") or None)


def _declared_length(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        length = int(str(value).strip())
    except ValueError:
        raise Rejected(400, "Content-Length is not a number") from None
    if length < 0:
        raise Rejected(400, "Content-Length is negative")
    if length > MAX_BODY:
        raise Rejected(413, f"the body is over {MAX_BODY} bytes")
    return length


def read_environ(environ: Mapping[str, Any]) -> CallbackRequest:
    """A WSGI request (FC 2.0 HTTP trigger, or ``fcocr serve callback``) as a CallbackRequest, or Rejected."""
    if str(environ.get("REQUEST_METHOD", "")).upper() != "POST":
        raise Rejected(405, "only POST is accepted")
    _check_content_type(environ.get("CONTENT_TYPE"))
    length = _declared_length(environ.get("CONTENT_LENGTH"))
    stream = environ.get("wsgi.input")
    if length is None:
        if not environ.get("wsgi.input_terminated"):  # reading a socket to its end would wait forever
            raise Rejected(411, "Content-Length is required")
        length = MAX_BODY + 1
    body = stream.read(min(length, MAX_BODY + 1)) if stream is not None and length else b""
    if len(body) > MAX_BODY:
        raise Rejected(413, f"the body is over {MAX_BODY} bytes")
    return parse_form(body)


def read_fc3_event(event: Any) -> CallbackRequest:
    """An FC 3.0 HTTP trigger event (``body``, ``isBase64Encoded``, ``headers``) as a CallbackRequest, or Rejected."""
    if isinstance(event, (bytes, bytearray)):
        if len(event) > 2 * MAX_BODY:
            raise Rejected(413, f"the body is over {MAX_BODY} bytes")
        try:
            event = json.loads(bytes(event).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise Rejected(400, "the event is not JSON") from None
    elif isinstance(event, str):
        try:
            event = json.loads(event)
        except (ValueError, RecursionError):
            raise Rejected(400, "the event is not JSON") from None
    if not isinstance(event, dict):
        raise Rejected(400, "the event is not an HTTP trigger event")
    http = (event.get("requestContext") or {}).get("http") if isinstance(event.get("requestContext"), dict) else None
    method = (http or {}).get("method") if isinstance(http, dict) else None
    method = method or event.get("httpMethod") or event.get("method")
    if str(method or "").upper() != "POST":
        raise Rejected(405, "only POST is accepted")
    headers = event.get("headers") if isinstance(event.get("headers"), dict) else {}
    lower = {str(k).lower(): v for k, v in headers.items()}
    _check_content_type(lower.get("content-type") if isinstance(lower.get("content-type"), str) else None)
    body = event.get("body")
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise Rejected(400, "the event's body is not a string")
    if len(body) > (MAX_BODY * 4 // 3 + 4 if event.get("isBase64Encoded") else MAX_BODY):
        raise Rejected(413, f"the body is over {MAX_BODY} bytes")
    if event.get("isBase64Encoded") is True:
        import base64
        import binascii

        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise Rejected(400, "the body is not valid base64") from None
    else:
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            raise Rejected(400, "the body is not valid UTF-8") from None
    if len(raw) > MAX_BODY:
        raise Rejected(413, f"the body is over {MAX_BODY} bytes")
    return parse_form(raw)


# ------------------------------------------------------------------------------------- the content
@dataclass(frozen=True)
class Item:
    """One task's result from the content: its ids, and the element itself (read by recognizers.green)."""

    data_id: str
    task_id: str
    element: dict


def parse_content(content: str) -> tuple[Any, list[Item], str | None]:
    """(the parsed content, its task results, the envelope's requestId); Rejected(400) when malformed."""
    try:
        parsed = json.loads(content)
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")  # lone surrogates (\\ud800) cannot be stored
    except (ValueError, RecursionError, UnicodeEncodeError):
        raise Rejected(400, "content is not JSON") from None
    if not isinstance(parsed, dict):
        raise Rejected(400, "content is not a JSON object")
    request_id = None
    if "data" in parsed and "taskId" not in parsed:  # the whole results envelope
        if parsed.get("code") != 200:
            raise Rejected(400, "content reports an error, not a result")
        elements = parsed.get("data")
        request_id = parsed.get("requestId") if isinstance(parsed.get("requestId"), str) else None
        if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_ITEMS:
            raise Rejected(400, "content.data is not a list of 1 to 100 results")
    else:
        elements = [parsed]
    items = []
    for element in elements:
        if not isinstance(element, dict):
            raise Rejected(400, "a result in content is not an object")
        for name in ("dataId", "taskId"):
            value = element.get(name)
            if not isinstance(value, str) or not value or len(value) > 256:
                raise Rejected(400, f"a result in content has no {name}")
        code = element.get("code")
        if not isinstance(code, int) or isinstance(code, bool):
            raise Rejected(400, "a result in content has no code")
        items.append(Item(element["dataId"], element["taskId"], element))
    if len({item.data_id for item in items}) != len(items):
        raise Rejected(400, "content names a dataId twice")
    return parsed, items, request_id


# ----------------------------------------------------------------------------------------- handle
def _worst(replies: Iterable[Reply]) -> Reply:
    """One answer for several results: a fault the service should retry beats a refusal beats success."""
    def rank(reply: Reply) -> int:
        return 3 if reply.status >= 500 else 2 if reply.status >= 400 else 1

    return max(replies, key=rank)


def handle(request: CallbackRequest, runtime: Runtime, settings: Settings) -> Reply:
    """Verify ``request`` and write what it reports; the Reply to send."""
    green: GreenSettings = settings.family(FAMILY_NAME)
    if not (green.uid and green.seed):
        return Reply(503, "the callback is not configured (GREEN_UID, GREEN_SEED)")
    if not verify_callback(green.uid, green.seed, request.content, request.checksum, green.crypt_type):
        return Reply(403, "bad checksum")
    try:
        parsed, items, request_id = parse_content(request.content)
    except Rejected as exc:
        return Reply(exc.status, exc.reason)
    from ...tasks import parse_data_id

    if any(parse_data_id(item.data_id) is None for item in items):
        return Reply(404, "unknown dataId")
    return _worst(_settle(item, parsed, request_id, runtime, settings) for item in items)


def _settle(item: Item, raw: Any, request_id: str | None, runtime: Runtime, settings: Settings) -> Reply:
    """Find the task of one verified result and write its final document."""
    from ... import tasks
    from ...storage import open_storage
    from . import scan

    bucket, _ = tasks.parse_data_id(item.data_id) or ("", "")
    fields = dict(requestId=runtime.request_id, bucket=bucket, taskId=item.task_id, reqId=request_id)
    try:
        storage = open_storage(bucket, runtime, settings)
        record = tasks.load(storage, item.data_id)
        if record is None:
            receipt = tasks.load_receipt(storage, item.data_id)
            if receipt is None:
                return Reply(404, "unknown dataId")
            if receipt.get("taskId") != item.task_id:
                return Reply(409, "the task for this dataId was another one")
            return Reply(200, "already final")
        fields["key"] = record.key
        if record.kind != scan.TASK_KIND:
            return Reply(409, "the dataId is not a Content Security task")
        if not record.task_id or item.element.get("code") == scan.PROCESSING:
            return Reply(503, "the task is not ready yet")
        if record.task_id != item.task_id:
            return Reply(409, "the task for this dataId is another one")
        try:
            outcome, error = scan.final_outcome(record, item.element, raw, request_id), None
        except FcocrError as exc:
            outcome, error = None, exc
        done = tasks.finish(storage, record, settings, runtime, outcome=outcome, error=error, require_pending=True,
                            receipt=True)
    except TransientError as exc:
        logs.log(logging.WARNING, "callback not stored", errorCode=exc.code, **fields)
        return Reply(503, "storage is unavailable")
    except PermanentError as exc:
        if exc.code == "NoSuchBucket":
            return Reply(404, "unknown dataId")
        logs.log(logging.ERROR, "callback not stored", errorCode=exc.code, **fields)
        return Reply(500, "storage error")
    if done == tasks.NOT_READY:
        return Reply(503, "the task is not ready yet")
    if done == tasks.STALE:
        return Reply(200, "the object has changed since; nothing written")
    return Reply(200, "already final" if done == tasks.ALREADY_FINAL else "stored")


def _respond(reply: Reply, runtime: Runtime, content_chars: int | None = None) -> Reply:
    level = logging.INFO if reply.status == 200 else logging.ERROR if reply.status >= 500 else logging.WARNING
    logs.log(level, "callback", requestId=runtime.request_id, status=reply.status, reason=reply.reason,
             contentChars=content_chars)
    return reply


def _serve(read: Any, source: Any, context: Any, settings: Settings | None) -> Reply:
    runtime = Runtime.from_context(context)
    try:
        # The core's settings and green's only: the rejection path loads no other family.
        settings = settings or Settings.from_env(families=(FAMILY_NAME,))
        logs.configure(settings.log_level)
        request = read(source)
    except Rejected as exc:
        return _respond(Reply(exc.status, exc.reason), runtime)
    except FcocrError as exc:  # a bad setting: the deployment's fault; the service will push again
        logs.log(logging.ERROR, "callback not configured", requestId=runtime.request_id, errorCode=exc.code)
        return Reply(503, "the callback is misconfigured")
    try:
        reply = handle(request, runtime, settings)
    except Exception as exc:  # a bug: never a stack trace to the caller, never the content in the log
        logs.log(logging.ERROR, "callback failed", requestId=runtime.request_id, exc_info=exc)
        reply = Reply(500, "internal error")
    return _respond(reply, runtime, len(request.content))


def handle_wsgi(environ: Mapping[str, Any], start_response: Any, settings: Settings | None = None) -> list[bytes]:
    """The WSGI application: FC 2.0's HTTP trigger (``environ['fc.context']``) and ``fcocr serve callback``."""
    reply = _serve(read_environ, environ, environ.get("fc.context"), settings)
    start_response(reply.status_line, reply.headers())
    return [reply.body()]


def handle_fc3_event(event: Any, context: Any = None, settings: Settings | None = None) -> dict[str, Any]:
    """The same callback for an FC 3.0 HTTP trigger: the event in, ``{statusCode, headers, body}`` out."""
    reply = _serve(read_fc3_event, event, context, settings)
    return {"statusCode": reply.status, "headers": dict(reply.headers()), "body": reply.body().decode("utf-8"),
            "isBase64Encoded": False}
