"""``green.<card>``: Alibaba Cloud Content Security 2018-05-09, image async scan, scene ``ocr`` (seed 003).

Structured ticket OCR: ``invoice`` (增值税发票), ``quota-account-permit`` (定额发票), ``train-ticket`` (火车票)
and ``taxi-ticket`` (出租车票). The scan is asynchronous: ``recognize`` writes a task record (``fcocr.tasks``)
*before* it submits, so a result that comes back at once already finds its source; it then submits
``/green/image/asyncscan`` through the official SDK (aliyun-python-sdk-green on aliyunsdkcore's ``AcsClient``,
ROA-signed) and leaves a ``pending`` result. The result arrives later by the callback (``fcocr.callback``) or is
fetched by the reconcile timer (``fcocr.reconcile``) with ``/green/image/results``; both turn it into the final
document with ``final_outcome`` below; the timer hands this family its due records (``finish_due``).

The ``dataId`` is ``tasks.data_id_for(bucket, key, etag)``: it names the task record and nothing else, so a
callback finds the source without trusting anything else it says, and a replay for an older ETag of the key
finds no record. The service downloads a presigned GET URL of the source (2 h, for a late download); an input
beyond its limits (20 MB, 30,000 px a side, 250 Mpx; PNG/JPG/BMP/GIF/WEBP) is prepared by ``prepare.fit`` and
the prepared copy staged under ``.fcocr-staging/`` of the source bucket until the task is final.

Both APIs allow 10 QPS per user and at most 100 tasks (or taskIds) per call: a ``TokenBucket`` per API keeps
this process under the first, ``submit_batch`` and ``query_results`` under the second.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from ... import logs, tasks
from ...errors import ConfigError, FcocrError, InputError, PermanentError, TransientError
from ...fields import Field, FieldMap, extract, items_from
from ...model import Capability, Limits, OptionSpec, Outcome
from ...prepare import fit
from ...ratelimit import TokenBucket
from ...reconcile import count, not_finished, time_left
from ...results import utc_now
from ...retry import RetryPolicy, VendorFault, classify
from ...storage import delete_staged, put_staged, staged_ref
from .. import Job, Packaging
from ..cloud import ClientCache, loads, network_error
from .settings import GreenSettings

NAME = "green"
API_VERSION = "2018-05-09"
REGION = "cn-shanghai"
MiB = 1024 * 1024
PRESIGN_SECONDS = 2 * 3600  # the service may download late; the URL must outlive the queue
MAX_TASKS = 100  # tasks per asyncscan, taskIds per results query
QPS = 10  # per user, for each of the two APIs
RETENTION_SECONDS = 3600  # "检测结果最长保留一小时"
QUERY_WINDOW_SECONDS = 4 * 3600  # "最长不能超出4个小时"
PROCESSING = 280  # a task's code while it is still being scanned
TASK_KIND = NAME  # the kind written in green task records
# The gateway's codes, then green's own per-task msg names (its public error codes: 580-592 are the service's
# faults, 588 its rate quota, 480/592 a failed or slow download of our presigned URL).
TRANSIENT_CODES = frozenset({"Throttling", "Throttling.User", "InternalError", "ServiceUnavailable", "Timeout",
                             "GENERAL_ERROR", "DB_FAILED", "TIMEOUT", "CACHE_FAILED", "ALGO_FAILED", "MQ_FAILED",
                             "EXCEED_QUOTA", "CONNECTION_POOL_FULL", "DOWNLOAD_FAILED", "DOWNLOAD_TIMEOUT"})
# The service's limits. prepare's max_side bound is exclusive: sides up to 30,000 px pass untouched.
LIMITS = Limits(formats=frozenset({"png", "jpeg", "bmp", "gif", "webp"}), max_bytes=20 * MiB, max_side=30_001,
                max_pixels=250_000_000)
# asyncscan's bizType: a business scene created in the Content Security console (自定义机审标准); unset, the
# service uses its own ("default"). Sent only when a route sets it.
OPTIONS = {"bizType": OptionSpec(str, description="business scene (业务场景) created in the Content Security console; "
                                                  "the service's default when unset")}


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
# One call at a time, 1/QPS apart (a small margin for when the service counts arrivals): no sliding second holds
# more than QPS calls from this process.
LIMITERS = {"submit": TokenBucket(QPS * 0.98), "results": TokenBucket(QPS * 0.98)}


# --------------------------------------------------------------------------------------- client
def _server_fault(exc: Any) -> VendorFault:
    """A ServerException as the vendor's facts. Green's own envelope ({"code","msg"}) with a non-200 HTTP status
    reaches the SDK as SDK.UnknownServerError with the body in the message: read the envelope back out of it."""
    code, message = str(exc.get_error_code() or ""), str(exc.get_error_msg() or "")
    status, request_id = exc.get_http_status(), exc.get_request_id()
    if code == "SDK.UnknownServerError" and "ServerResponseBody: " in message:
        try:
            envelope = json.loads(message.split("ServerResponseBody: ", 1)[1])
        except (ValueError, RecursionError):
            envelope = None
        if isinstance(envelope, dict) and envelope.get("msg"):
            msg = str(envelope["msg"])
            return VendorFault(NAME, status, msg.split(":", 1)[0].strip(), msg, envelope.get("requestId") or request_id)
    return VendorFault(NAME, status, code, message[:300], request_id)


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
            from aliyunsdkgreen.request.v20180509.ImageAsyncScanResultsRequest import (
                ImageAsyncScanResultsRequest as Request,
            )
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
                raise network_error(NAME, exc) from None
            raise PermanentError(f"the green SDK refused the request: {exc.get_error_code()}: {exc.get_error_msg()}",
                                 code="Green.ClientError") from None
        envelope = loads(answer, NAME, 200)
        if not isinstance(envelope, dict) or not isinstance(envelope.get("data", []), list):
            raise classify(VendorFault(NAME, 200, "MalformedResponse", "the answer is not green's JSON envelope"))
        request_id = envelope.get("requestId") or None
        code = envelope.get("code")
        if code != 200:  # a business error answered with HTTP 200
            msg = str(envelope.get("msg") or code)
            status = code if isinstance(code, int) and not isinstance(code, bool) else 200
            raise classify(VendorFault(NAME, status, msg.split(":", 1)[0].strip(), msg, request_id))
        return envelope, request_id


def client_for(settings: Any, runtime: Any) -> GreenClient:
    return GreenClient(settings.family(NAME).endpoint, runtime.credentials)


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
    return url, staged_ref(job.storage, key), [part.note] if part.note else []


def _drop(job: Any, record: tasks.TaskRecord) -> None:
    """Forget a task that was never accepted: its record and its staged copy."""
    try:
        tasks.delete(job.storage, record)
    except FcocrError:
        pass  # a leftover is harmless: reconcile drops records nobody submitted
    delete_staged(record.extra.get("staging") or {}, job.storage, job.runtime, job.settings)


def submit_batch(jobs: Sequence[Any], card: str, *, client: GreenClient | None = None,
                 biz_type: str | None = None) -> list[Outcome | FcocrError]:
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
            record = tasks.TaskRecord(data_id=ids[index], kind=TASK_KIND, task_id="", bucket=job.source.bucket,
                                      key=job.source.key, etag=job.source.etag, recognizer=f"{NAME}.{row.card}",
                                      submitted_at=utc_now(), size=job.source.size, extra=extra)
            # Before submitting: a result that comes back at once must find its source.
            tasks.save(job.storage, record)
        except FcocrError as exc:
            if staging:  # prepared and staged, but the record could not be saved: nothing will ever delete it
                delete_staged(staging, job.storage, job.runtime, job.settings)
            answers[index] = exc
            continue
        prepared.append((index, record, url))
    for start in range(0, len(prepared), MAX_TASKS):
        chunk = prepared[start:start + MAX_TASKS]
        body: dict[str, Any] = {"scenes": ["ocr"], "extras": {"card": card},
                                "tasks": [{"dataId": record.data_id, "url": url} for _, record, url in chunk]}
        if biz_type:
            body["bizType"] = biz_type
        green: GreenSettings = settings.family(NAME)
        if green.callback_url:
            body.update(callback=green.callback_url, seed=green.seed, cryptType=green.crypt_type)
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
    return Outcome(task=record.ref, vendor_request_id=request_id, warnings=list(record.extra.get("warnings") or []))


# ------------------------------------------------------------------------------------- the answer
def task_error(item: Any, request_id: str | None = None) -> FcocrError:
    """The error a task's non-200 ``code`` stands for (green's public codes: 480 DOWNLOAD_FAILED, 589 TOO_LARGE, ...)."""
    item = item if isinstance(item, dict) else {}
    code = item.get("code")
    status = code if isinstance(code, int) and not isinstance(code, bool) else None
    msg = str(item.get("msg") or (code if code is not None else "no code"))
    return classify(VendorFault(NAME, status, msg.split(":", 1)[0].strip(), f"task {code}: {msg}", request_id))


def _strings(value: Any) -> Any:
    """The vendor's own fields with every scalar a string, as the README says: numbers as their digits (they
    would lose digits and zeros), booleans as ``"true"``/``"false"``; objects and arrays keep their shape."""
    if isinstance(value, dict):
        return {str(k): _strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strings(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, str):
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
    return Outcome(fields=fields, raw=raw, document_type=row.document_type, vendor_request_id=request_id,
                   warnings=warnings, task=record.ref)


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


# ------------------------------------------------------------------------------- finishing due tasks
def _expired(record: tasks.TaskRecord, age: float, item: dict | None) -> PermanentError:
    said = f" (the service said {item.get('code')} {item.get('msg')})" if item else ""
    return PermanentError(f"no result for task {record.task_id}{said}: it was submitted {int(age)} s ago, the service "
                          "keeps results for 1 h and no callback delivered it (check GREEN_CALLBACK_URL and the "
                          "scan_callback function's logs)", code="Green.Expired",
                          vendorCode=str(item.get("msg")) if item and item.get("msg") else None)


def _finish(storage: Any, record: tasks.TaskRecord, settings: Any, runtime: Any, counts: Counter, *,
            outcome: Outcome | None = None, error: FcocrError | None = None) -> None:
    count(counts, tasks.finish(storage, record, settings, runtime, outcome=outcome, error=error,
                               require_pending=False, receipt=True))


def finish_due(storage: Any, due: list[tuple[tasks.TaskRecord, float]], settings: Any, runtime: Any,
               counts: Counter) -> None:
    """The reconcile timer's part: results of due tasks from ``/green/image/results``, 100 taskIds a call.

    The service keeps a result for 1 h and answers queries for 4 h: a task with no result past the hour is
    recorded failed (``Green.Expired``) with that reason, and one past 4 h is not even asked about. A record saved
    but never submitted (the upload function stopped in between) is failed after an hour."""
    to_query: list[tuple[tasks.TaskRecord, float]] = []
    for record, age in due:
        try:
            if not record.task_id:
                if age > RETENTION_SECONDS:
                    _finish(storage, record, settings, runtime, counts, error=TransientError(
                        "the scan was never submitted: the upload function stopped between saving the task and "
                        "submitting it; process the object again", code="Green.NotSubmitted"))
                else:
                    counts["waiting"] += 1
            elif age > QUERY_WINDOW_SECONDS:
                _finish(storage, record, settings, runtime, counts, error=_expired(record, age, None))
            else:
                to_query.append((record, age))
        except FcocrError as exc:
            not_finished(storage, record, runtime, exc, counts)
    for start in range(0, len(to_query), MAX_TASKS):
        if not time_left(runtime):
            counts["deferred"] += len(to_query) - start
            return
        chunk = to_query[start:start + MAX_TASKS]
        try:
            found, request_id = query_results(settings, runtime, [r.task_id for r, _ in chunk])
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
                    outcome = final_outcome(record, item, raw=item, request_id=request_id)
                except FcocrError as exc:
                    error = exc
            elif age > RETENTION_SECONDS:
                error = _expired(record, age, item)
            elif item is None or item.get("code") == PROCESSING:
                counts["pending"] += 1
                continue
            else:
                error = task_error(item, request_id)
            try:
                _finish(storage, record, settings, runtime, counts, outcome=outcome, error=error)
            except FcocrError as exc:  # a storage fault: this task waits for the next tick, the others go on
                not_finished(storage, record, runtime, exc, counts)


# -------------------------------------------------------------------------------------- the family
class GreenFamily:
    name = NAME
    capabilities = {
        f"{NAME}.{c.card}": Capability(id=f"{NAME}.{c.card}", title=c.title, limits=LIMITS, mode="async",
                                       options=OPTIONS, document_type=c.document_type, qps=QPS, qps_scope="green.asyncscan")
        for c in CARDS
    }
    transient_codes = TRANSIENT_CODES
    packaging = Packaging(
        requirements=("aliyun-python-sdk-core", "aliyun-python-sdk-green"),
        verify=("fcocr.recognizers.green.scan", "fcocr.recognizers.green.callback", "aliyunsdkcore.client",
                "aliyunsdkcore.auth.credentials", "aliyunsdkcore.acs_exception.exceptions",
                "aliyunsdkgreen.request.v20180509.ImageAsyncScanRequest",
                "aliyunsdkgreen.request.v20180509.ImageAsyncScanResultsRequest"))
    task_kinds = (TASK_KIND,)

    @staticmethod
    def input_modes(capability: Capability) -> str:
        return "`tasks[].url`: presigned URL (2 h) of the object or of a staged copy"

    def recognize(self, capability: Capability, job: Job, options: dict) -> Outcome:
        [answer] = submit_batch([job], capability.id.split(".", 1)[1], biz_type=options.get("bizType"))
        if isinstance(answer, FcocrError):
            raise answer
        return answer

    finish_due = staticmethod(finish_due)


FAMILY = GreenFamily()
