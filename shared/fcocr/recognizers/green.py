"""``green.<card>``: Alibaba Cloud Content Security 2018-05-09, image async scan, scene ``ocr`` (seed 003).

Structured ticket OCR: ``invoice`` (增值税发票), ``quota-account-permit`` (定额发票), ``train-ticket`` (火车票)
and ``taxi-ticket`` (出租车票). The scan is asynchronous: ``recognize`` writes a task record (``fcocr.tasks``)
*before* it submits, so a result that comes back at once already finds its source; it then submits
``/green/image/asyncscan`` through the official SDK (aliyun-python-sdk-green on aliyunsdkcore's ``AcsClient``,
ROA-signed) and leaves a ``pending`` result. The result arrives later by the callback (``fcocr.callback``) or is
fetched by the reconcile timer (``fcocr.reconcile``) with ``/green/image/results``; both turn it into the final
document with ``final_outcome`` below.

The ``dataId`` is ``tasks.data_id_for(bucket, key, etag)``: it names the task record and nothing else, so a
callback finds the source without trusting anything else it says, and a replay for an older ETag of the key
finds no record. The service downloads a presigned GET URL of the source (2 h, for a late download); an input
beyond its limits (20 MB, 30,000 px a side, 250 Mpx; PNG/JPG/BMP/GIF/WEBP) is prepared by ``prepare.fit`` and
the prepared copy staged under ``.fcocr-staging/`` of the source bucket until the task is final.

Both APIs allow 10 QPS per user and at most 100 tasks (or taskIds) per call: ``RateLimiter`` keeps this
process under the first, ``submit_batch`` and ``query_results`` under the second.
"""

from __future__ import annotations

import collections
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .. import tasks
from ..errors import ConfigError, FcocrError, InputError, PermanentError, TransientError
from ..fields import Field, FieldMap, extract, items_from
from ..prepare import fit
from ..results import Outcome, utc_now
from ..storage import put_staged
from ..retry import RetryPolicy, VendorFault, classify
from . import Capability, Limits
from .cloud import ClientCache, loads, network_error

FAMILY = "green"
API_VERSION = "2018-05-09"
REGION = "cn-shanghai"
MiB = 1024 * 1024
PRESIGN_SECONDS = 2 * 3600  # the service may download late; the URL must outlive the queue
MAX_TASKS = 100  # tasks per asyncscan, taskIds per results query
QPS = 10  # per user, for each of the two APIs
RETENTION_SECONDS = 3600  # "检测结果最长保留一小时"
QUERY_WINDOW_SECONDS = 4 * 3600  # "最长不能超出4个小时"
PROCESSING = 280  # a task's code while it is still being scanned
# The service's limits. prepare's max_side bound is exclusive: sides up to 30,000 px pass untouched.
LIMITS = Limits(formats=frozenset({"png", "jpeg", "bmp", "gif", "webp"}), max_bytes=20 * MiB, max_side=30_001,
                max_pixels=250_000_000)


# ----------------------------------------------------------------------------------- field maps
def _passenger_name(data: Any, warnings: list[str]) -> str | None:
    """``passengerInfo`` is the ID number (masked or not) followed by the name: keep the name only."""
    value = data.get("passengerInfo") if isinstance(data, dict) else None
    if not isinstance(value, str):
        return None
    name = re.sub(r"^[0-9Xx*]{6,}", "", value.strip()).strip()
    return name or None


def _mileage(data: Any, warnings: list[str]) -> str | None:
    value = data.get("mileage") if isinstance(data, dict) else None
    if value is None or value == "":
        return None
    text = str(value).strip()
    return re.sub(r"\s*(公里|km|KM)$", "", text) or None


VAT: FieldMap = {
    "invoiceType": Field("invoice_name"), "invoiceCode": Field("invoice_id", "id"),
    "invoiceNumber": Field("invoice_number", "id"), "invoiceDate": Field("invoice_date", "date"),
    "totalAmount": Field("invoice_totalamount", "amount"), "totalTax": Field("invoice_totaltax", "amount"),
    "amountWithTax": Field("invoice_totalamountlower", "amount"),
    "amountWithTaxInWords": Field("invoice_totalamountupper"),
    "sellerName": Field("invoice_scompany"), "sellerTaxId": Field("invoice_scode", "id"),
    "sellerAddressPhone": Field("invoice_saddress"), "sellerBankAccount": Field("invoice_saccount"),
    "buyerName": Field("invoice_bcompany"), "buyerTaxId": Field("invoice_bcode", "id"),
    "buyerAddressPhone": Field("invoice_baddress"), "buyerBankAccount": Field("invoice_baccount"),
    "payee": Field("invoice_payee"), "reviewer": Field("invoice_reviewer"), "drawer": Field("invoice_drawer"),
    "remarks": Field("invoice_remark"),
    "items": items_from("invoice_detail", {
        "name": Field("detail_name"), "spec": Field("detail_type"), "unit": Field("detail_unit"),
        "quantity": Field("detail_count"), "unitPrice": Field("detail_unitprice", "amount"),
        "amount": Field("detail_amount", "amount"), "taxRate": Field("detail_rate"),
        "tax": Field("detail_tax", "amount")}),
}
TRAIN: FieldMap = {
    "trainNumber": Field("trainNumber"), "departureStation": Field("departure"),
    "arrivalStation": Field("destination"), "departureTime": Field("departureTime"), "seat": Field("seatNumber"),
    "seatClass": Field("seatType"), "price": Field("price", "amount"), "passengerName": _passenger_name,
    "ticketNumber": Field("ticketNumber", "id"),
}
TAXI: FieldMap = {
    # The table spells the key invoiceNumbe, the example invoiceNumber: both are read.
    "invoiceCode": Field("invoiceCode", "id"), "invoiceNumber": Field("invoiceNumber|invoiceNumbe", "id"),
    "plateNumber": Field("carNumber"), "date": Field("date", "date"), "boardingTime": Field("boardingTime"),
    "alightingTime": Field("getOffTime"), "mileage": _mileage,
    "amount": Field("totalAmount|actualCollection|amount", "amount"),
}


@dataclass(frozen=True)
class Card:
    """One capability row: the ``extras.card`` value, where its answer is, and its normalized fields."""

    card: str
    title: str
    info: str  # the results[] member holding the ticket: invoiceInfo or ocrCardInfo
    document_type: str | None = None
    field_map: FieldMap | None = None


CARDS: tuple[Card, ...] = (
    Card("invoice", "增值税发票 VAT invoice (async)", "invoiceInfo", "vat_invoice", VAT),
    Card("quota-account-permit", "定额发票 quota invoice (async)", "ocrCardInfo"),
    Card("train-ticket", "火车票 train ticket (async)", "ocrCardInfo", "train_ticket", TRAIN),
    Card("taxi-ticket", "出租车票 taxi ticket (async)", "ocrCardInfo", "taxi_ticket", TAXI),
)
BY_CARD = {c.card: c for c in CARDS}


# --------------------------------------------------------------------------------------- pacing
class RateLimiter:
    """At most ``calls`` calls in any ``period`` seconds from this process (green: 10 QPS per API and user).

    A sliding window rather than a bursty bucket, because that is how the limit is counted; ``margin`` absorbs
    the difference between when we send and when the service counts. Clock and sleep are injectable.
    """

    def __init__(self, calls: int = QPS, period: float = 1.0, margin: float = 0.1,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.calls, self.period, self.margin = calls, period, margin
        self.clock, self.sleep = clock, sleep
        self._stamps: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            while True:
                now = self.clock()
                while self._stamps and now - self._stamps[0] >= self.period + self.margin:
                    self._stamps.popleft()
                if len(self._stamps) < self.calls:
                    self._stamps.append(now)
                    return
                self.sleep(self._stamps[0] + self.period + self.margin - now)


LIMITERS = {"submit": RateLimiter(), "results": RateLimiter()}


# --------------------------------------------------------------------------------------- client
def _server_fault(exc: Any) -> VendorFault:
    """A ServerException as the vendor's facts. Green's own envelope ({"code","msg"}) with a non-200 HTTP status
    reaches the SDK as SDK.UnknownServerError with the body in the message: read the envelope back out of it."""
    code, message = str(exc.get_error_code() or ""), str(exc.get_error_msg() or "")
    status, request_id = exc.get_http_status(), exc.get_request_id()
    if code == "SDK.UnknownServerError" and "ServerResponseBody: " in message:
        try:
            envelope = json.loads(message.split("ServerResponseBody: ", 1)[1])
        except ValueError:
            envelope = None
        if isinstance(envelope, dict) and envelope.get("msg"):
            msg = str(envelope["msg"])
            return VendorFault(FAMILY, status, msg.split(":", 1)[0].strip(), msg, envelope.get("requestId") or request_id)
    return VendorFault(FAMILY, status, code, message[:300], request_id)


class GreenClient:
    """The two ROA calls through aliyunsdkcore's AcsClient; vendor faults become fcocr errors by ``classify``."""

    _clients = ClientCache()

    def __init__(self, endpoint: str, credentials: Any) -> None:
        if not credentials:
            raise ConfigError("green.* needs Alibaba Cloud credentials (the FC role, or ALIBABA_CLOUD_ACCESS_KEY_ID/"
                              "ALIBABA_CLOUD_ACCESS_KEY_SECRET)", code="NoCredentials")

        def make() -> Any:
            from aliyunsdkcore.auth.credentials import AccessKeyCredential, StsTokenCredential
            from aliyunsdkcore.client import AcsClient

            if credentials.security_token:
                credential: Any = StsTokenCredential(credentials.access_key_id, credentials.access_key_secret,
                                                     credentials.security_token)
            else:
                credential = AccessKeyCredential(credentials.access_key_id, credentials.access_key_secret)
            # fcocr's retry policy decides about retries; the SDK's own would retry blind.
            return AcsClient(region_id=REGION, credential=credential, auto_retry=False)

        key = (credentials.access_key_id, credentials.access_key_secret, credentials.security_token)
        self._client = self._clients.get(key, make)
        self.endpoint = endpoint  # a full URL: the SDK keeps its scheme and port

    def call(self, api: str, body: Any, timeout: float) -> tuple[dict, str | None]:
        """POST ``body`` to asyncscan (``api="submit"``) or results: the answer's envelope and requestId."""
        from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException

        if api == "submit":
            from aliyunsdkgreen.request.v20180509.ImageAsyncScanRequest import ImageAsyncScanRequest as Request
        else:
            from aliyunsdkgreen.request.v20180509.ImageAsyncScanResultsRequest import \
                ImageAsyncScanResultsRequest as Request
        request = Request()
        request.set_endpoint(self.endpoint)
        request.set_protocol_type("https")
        request.set_accept_format("JSON")
        request.set_content_type("application/json")
        request.set_content(json.dumps(body, ensure_ascii=False).encode("utf-8"))
        request.set_connect_timeout(min(timeout, 5.0))
        request.set_read_timeout(timeout)
        LIMITERS[api].acquire()
        try:
            answer = self._client.do_action_with_exception(request)
        except ServerException as exc:
            raise classify(_server_fault(exc)) from None
        except ClientException as exc:
            if exc.get_error_code() == "SDK.HttpError":  # refused, reset, timed out
                raise network_error(FAMILY, exc) from None
            raise PermanentError(f"the green SDK refused the request: {exc.get_error_code()}: {exc.get_error_msg()}",
                                 code="Green.ClientError") from None
        envelope = loads(answer, FAMILY, 200)
        if not isinstance(envelope, dict) or not isinstance(envelope.get("data", []), list):
            raise classify(VendorFault(FAMILY, 200, "MalformedResponse", "the answer is not green's JSON envelope"))
        request_id = envelope.get("requestId") or None
        code = envelope.get("code")
        if code != 200:  # a business error answered with HTTP 200
            msg = str(envelope.get("msg") or code)
            status = code if isinstance(code, int) and not isinstance(code, bool) else 200
            raise classify(VendorFault(FAMILY, status, msg.split(":", 1)[0].strip(), msg, request_id))
        return envelope, request_id


def client_for(settings: Any, runtime: Any) -> GreenClient:
    return GreenClient(settings.green_endpoint, runtime.credentials)


# ------------------------------------------------------------------------------------- submitting
def _prepare(job: Any) -> tuple[str, dict | None, list[str]]:
    """The URL the service downloads, the staged copy to delete later (or None), and what was changed."""
    document = job.source_document()
    if document.page_count > 1:
        raise InputError(f"green.* scans one image; this {document.format.upper()} has {document.page_count} pages "
                         "(route it to a recognizer that reads every page)", code="TooManyPages")
    part = next(iter(fit(document, LIMITS)))
    if part.original:
        return job.presigned_url(PRESIGN_SECONDS), None, []
    key = put_staged(job.storage, part.data, part.mime)
    try:
        url = job.storage.presign_get(key, PRESIGN_SECONDS)
    except Exception:
        job.storage.delete(key)
        raise
    return url, {"bucket": job.storage.bucket, "key": key}, [part.note] if part.note else []


def _drop(job: Any, record: tasks.TaskRecord) -> None:
    """Forget a task that was never accepted: its record and its staged copy."""
    for key in (record.record_key, (record.extra.get("staging") or {}).get("key")):
        if key:
            try:
                job.storage.delete(key)
            except FcocrError:
                pass  # a leftover is harmless: reconcile drops records nobody submitted


def submit_batch(jobs: Sequence[Any], card: str, *, client: GreenClient | None = None) -> list[Outcome | FcocrError]:
    """Submit ``jobs`` (``pipeline.Job``s) as ``card`` scans, up to 100 tasks per asyncscan call, 10 calls a second.

    One answer per job, in order: an Outcome with the pending task, or the FcocrError that job met (bad input,
    storage, a refused task). The whole call is retried by the retry policy; a task the service refuses alone
    fails alone. Backfill uses this directly; ``recognize`` is the batch of one.
    """
    row = BY_CARD[card]
    if not jobs:
        return []
    settings, runtime = jobs[0].settings, jobs[0].runtime
    client = client or client_for(settings, runtime)
    policy = RetryPolicy.from_settings(settings)
    ids = [tasks.data_id_for(job.source.bucket, job.source.key, job.source.etag) for job in jobs]
    first = {data_id: index for index, data_id in reversed(list(enumerate(ids)))}  # the same object twice: one task
    answers: dict[int, Outcome | FcocrError] = {}
    prepared: list[tuple[int, tasks.TaskRecord, str]] = []
    for index in sorted(first.values()):
        job = jobs[index]
        staging: dict | None = None
        try:
            url, staging, warnings = _prepare(job)
            extra: dict[str, Any] = {"card": card}
            if staging:
                extra["staging"] = staging
            if warnings:
                extra["warnings"] = warnings
            record = tasks.TaskRecord(data_id=ids[index], kind=FAMILY, task_id="", bucket=job.source.bucket,
                                      key=job.source.key, etag=job.source.etag, recognizer=f"{FAMILY}.{row.card}",
                                      submitted_at=utc_now(), size=job.source.size, extra=extra)
            # Before submitting: a result that comes back at once must find its source.
            tasks.save(job.storage, record)
        except FcocrError as exc:
            if staging:  # prepared and staged, but the record could not be saved: nothing will ever delete it
                try:
                    job.storage.delete(staging["key"])
                except FcocrError:
                    pass
            answers[index] = exc
            continue
        prepared.append((index, record, url))
    for start in range(0, len(prepared), MAX_TASKS):
        chunk = prepared[start:start + MAX_TASKS]
        body: dict[str, Any] = {"scenes": ["ocr"], "extras": {"card": card},
                                "tasks": [{"dataId": record.data_id, "url": url} for _, record, url in chunk]}
        if settings.green_callback_url:
            body.update(callback=settings.green_callback_url, seed=settings.green_seed,
                        cryptType=settings.green_crypt_type)
        try:
            envelope, request_id = policy.call(lambda timeout, body=body: client.call("submit", body, timeout), runtime)
        except FcocrError as exc:
            for index, record, _ in chunk:
                _drop(jobs[index], record)
                answers[index] = exc
            continue
        items = {item.get("dataId"): item for item in envelope.get("data") or [] if isinstance(item, dict)}
        for index, record, _ in chunk:
            answers[index] = _accepted(jobs[index], record, items.get(record.data_id), request_id)
    return [answers[first[data_id]] for data_id in ids]


def _accepted(job: Any, record: tasks.TaskRecord, item: Any, request_id: str | None) -> Outcome | FcocrError:
    """The pending Outcome for a task the service answered about, or the error it met."""
    error: FcocrError | None = None
    if not isinstance(item, dict):
        error = TransientError("the service answered without this task", code="Green.NoAnswer",
                               vendorRequestId=request_id)
    elif item.get("code") != 200 or not isinstance(item.get("taskId"), str) or not item["taskId"]:
        error = task_error(item, request_id)
    if error is not None:
        _drop(job, record)
        return error
    record.task_id = item["taskId"]
    try:
        tasks.save(job.storage, record)
    except FcocrError as exc:
        return exc
    task = {"id": record.task_id, "kind": FAMILY, "dataId": record.data_id, "submittedAt": record.submitted_at}
    return Outcome(task=task, vendor_request_id=request_id, warnings=list(record.extra.get("warnings") or []))


# ------------------------------------------------------------------------------------- the answer
def task_error(item: Any, request_id: str | None = None) -> FcocrError:
    """The error a task's non-200 ``code`` stands for (green's public codes: 480 DOWNLOAD_FAILED, 589 TOO_LARGE, ...)."""
    item = item if isinstance(item, dict) else {}
    code = item.get("code")
    status = code if isinstance(code, int) and not isinstance(code, bool) else None
    msg = str(item.get("msg") or (code if code is not None else "no code"))
    return classify(VendorFault(FAMILY, status, msg.split(":", 1)[0].strip(), f"task {code}: {msg}", request_id))


def _strings(value: Any) -> Any:
    """The vendor's own fields with every scalar as a string (numbers would lose digits and zeros)."""
    if isinstance(value, dict):
        return {k: _strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strings(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    return str(value)


def _empty(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    if isinstance(value, list):
        return all(_empty(v) for v in value)
    return value is None or value == ""


def final_outcome(record: tasks.TaskRecord, item: dict, raw: Any, request_id: str | None = None) -> Outcome:
    """A finished task's results[] as the final Outcome; a failed task raises its error.

    ``item`` is one ``data[]`` element (code, taskId, dataId, results); ``raw`` is kept verbatim as the
    document's ``raw`` (the callback's content, or the query's element).
    """
    if item.get("code") != 200:
        raise task_error(item, request_id)
    row = BY_CARD.get(str(record.extra.get("card") or record.recognizer.split(".", 1)[-1]))
    if row is None:
        raise PermanentError(f"the task record names no green card: {record.recognizer}", code="BadTaskRecord")
    results = item.get("results")
    info = next((r[row.info] for r in results if isinstance(r, dict) and isinstance(r.get(row.info), dict)), None) \
        if isinstance(results, list) else None
    warnings = list(record.extra.get("warnings") or [])
    if row.document_type is not None and row.field_map is not None:
        fields, field_warnings = extract(row.document_type, info or {}, row.field_map)
        warnings.extend(field_warnings)
        empty = all(v in (None, [], "") for v in fields.values())
    else:
        fields = _strings(info or {})
        empty = _empty(fields)
    if empty:
        label = next((r.get("label") for r in results if isinstance(r, dict)), None) if isinstance(results, list) else None
        raise PermanentError(f"green answered, but every field of the {row.card} is empty "
                             f"(label {label!r}: not that kind of ticket, or unreadable)", code="Green.NoFields",
                             vendorRequestId=request_id)
    task = {"id": record.task_id, "kind": FAMILY, "dataId": record.data_id, "submittedAt": record.submitted_at}
    return Outcome(fields=fields, raw=raw, document_type=row.document_type, vendor_request_id=request_id,
                   warnings=warnings, task=task)


def query_results(settings: Any, runtime: Any, task_ids: Sequence[str], *,
                  client: GreenClient | None = None) -> tuple[dict[str, dict], str | None]:
    """``/green/image/results`` for up to 100 taskIds: {taskId: data[] element} and the answer's requestId."""
    if len(task_ids) > MAX_TASKS:
        raise ValueError(f"at most {MAX_TASKS} taskIds per query")
    client = client or client_for(settings, runtime)
    policy = RetryPolicy.from_settings(settings)
    envelope, request_id = policy.call(lambda timeout: client.call("results", list(task_ids), timeout), runtime)
    found = {item["taskId"]: item for item in envelope.get("data") or []
             if isinstance(item, dict) and isinstance(item.get("taskId"), str)}
    return found, request_id


# -------------------------------------------------------------------------------------- provider
class GreenProvider:
    name = FAMILY
    capabilities = {
        f"{FAMILY}.{c.card}": Capability(id=f"{FAMILY}.{c.card}", title=c.title, limits=LIMITS, mode="async",
                                         document_type=c.document_type, qps=QPS, qps_scope="green.asyncscan")
        for c in CARDS
    }

    def recognize(self, capability: Capability, job: Any, options: dict) -> Outcome:
        [answer] = submit_batch([job], capability.id.split(".", 1)[1])
        if isinstance(answer, FcocrError):
            raise answer
        return answer


PROVIDER = GreenProvider()
