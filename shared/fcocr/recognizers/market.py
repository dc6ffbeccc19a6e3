"""``market.<id>``: Alibaba Cloud Market (云市场) OCR APIs bought with an APPCODE (seeds 001 and 002).

Each API is a row of ``APIS``: its request style, its ``configure`` options (named as the wire
keys), limits and field map. Each API's URL comes with the user's purchase, so it is configured
per id (``FCOCR_MARKET_URL_<ID>``); the APPCODE (``ALIYUN_MARKET_APPCODE``) is sent as
``Authorization: APPCODE <code>``, a plain header, so ``requests`` is the client.

Three request styles:
* ``json``    (001, most APIs): ``{"image": <base64, no data: prefix>, "configure": <JSON string>}``
* ``inputs``  (001 legacy, bank and business cards): ``{"inputs": [{"image": {"dataType": 50,
              "dataValue": ...}}]}``, answered with ``outputs[0].outputValue.dataValue``, a JSON string
              to decode again
* ``multipart`` (002 text API): the image as the part ``file``, ``imgUrl`` (a presigned URL of the source object:
              the bytes never pass through the function) or ``imgBase64`` (a ``data:image/...;base64,`` URI), chosen
              by the route option ``input`` (``auto``: a URL for originals of ``URL_FROM_BYTES`` or more when the
              storage can presign, else ``file``; base64 costs a third more bytes, so only a route asks for it)

Sizes: 002 documents a 2 MB request limit, so its image is recompressed before sending when the request would pass
it. 001 only advises 1.5 MB and names no limit, so the original is sent; when the gateway answers 413 (a refused
request is not billed) the image is recompressed and sent again, and the refused size is remembered per API URL for
the process, so later inputs that large are recompressed first. The result's warnings say when that happened.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..config import env_secret, env_url
from ..errors import PermanentError
from ..fields import MISSING, Field, end_date_or_period, lookup, taxi_fields
from ..model import AnswerUnusable, Capability, Limits, Line, OptionSpec, Outcome, vendor_options
from ..prepare import Part, base64_limit, encode_to_fit
from ..retry import VendorFault, classify
from . import Job, Packaging
from .cloud import Reply, Row, box_lines, loads, network_error, number, rotated_rect, run, split_by

NAME = "market"
MiB = 1024 * 1024
# Seed 001: 450 "queue full, just retry", 469 internal parse errors; the gateway's flow control.
TRANSIENT_CODES = frozenset({"450", "469", "Throttled", "ThrottledByAppFlowControl", "ThrottledByApiFlowControl",
                             "ThrottledByUserFlowControl"})
QPS = 5  # the Cloud Market OCR APIs' stated rate limit, per API and purchase (Capability.qps)
# 001's 图片格式说明: BMP, JPEG, JPEG 2000, PNG, PBM/PGM/PPM, TIFF, sent as they are. No byte limit: 001 names
# none (see the module docstring); 002's is a limit on the whole request (TEXT_MAX_REQUEST), applied per input mode.
LIMITS_001 = Limits(formats=frozenset({"jpeg", "png", "bmp", "tiff", "jp2", "pnm"}))
LIMITS_002 = Limits(formats=frozenset({"jpeg", "png", "bmp"}))
ADVISED_001_BYTES = 3 * MiB // 2  # 001: "尽量保持图片在1.5M以内": the target once the gateway has refused a size
TEXT_MAX_REQUEST = 2_000_000  # 002: "413 客户发送的请求大小超过了2MB限制" (read as the smaller 2 MB, not 2 MiB)
REQUEST_OVERHEAD = 8 * 1024  # multipart boundaries and headers, the JSON keys and configure, with room to spare
URL_FROM_BYTES = 512 * 1024  # input=auto: originals this large go as imgUrl, not through the function
PRESIGN_SECONDS = 600  # the provider downloads imgUrl while answering the call
INPUT_MODES = ("auto", "file", "url", "base64")
TEXT_OPTIONS = {"input": OptionSpec(str, default="auto", choices=INPUT_MODES,
                                    description="how the image is sent: file part, imgUrl (presigned OSS URL; not in "
                                                "local mode), imgBase64 (data: URI), or auto (by size)")}
SIDE = {"side": OptionSpec(str, default="face", choices=("face", "back"), description="face / back of the card")}
# The gateway's 401 (bad APPCODE) and 403 (not purchased, quota used up): the account, not the input.
ACCOUNT_CODES = frozenset({"401", "403"})


@dataclass(frozen=True)
class Api:
    id: str
    title: str
    style: str  # json | inputs | multipart
    limits: Limits = LIMITS_001
    options: Mapping[str, OptionSpec] = field(default_factory=dict)  # the configure keys
    row: Row = Row()


_general_lines = box_lines("ret", "word", "prob", "rect", left="left", top="top", width="width", height="height",
                           angle="angle")


def _text_lines(payload: Any, page: int) -> list[Line]:
    lines = []
    for item in (payload or {}).get("data") or []:
        points = [(number(p.get("x")), number(p.get("y"))) for p in (item.get("polygon") or []) if isinstance(p, dict)]
        if len(points) != 4:  # "polygon may be null": fall back to the rotation-corrected box
            box = item.get("itemPolygon") or {}
            points = list(rotated_rect(number(box.get("x")), number(box.get("y")), number(box.get("width")),
                                       number(box.get("height")), 0))
        conf = item.get("confidence")
        lines.append(Line(str(item.get("value", "")), None if conf is None else max(0.0, min(100.0, number(conf))),
                          tuple(points), page))
    return lines


def _taxi(name: str) -> Any:
    def read(payload: Any, warnings: list[str]) -> Any:
        tickets = lookup(payload, "recipts")  # sic: the wire key
        tickets = tickets if isinstance(tickets, list) else [tickets] if isinstance(tickets, dict) else []
        texts = [item.get("txt") for item in (tickets[0].get("items") or [])] if tickets else []
        return taxi_fields(texts).get(name)

    return read


APIS: tuple[Api, ...] = (
    Api("idcard", "印刷文字识别-身份证识别 ID card", "json", options=SIDE, row=Row("idcard", {
        "face": {"name": Field("name"), "gender": Field("sex"), "ethnicity": Field("nationality"),
                 "birthDate": Field("birth", "date"), "address": Field("address"), "idNumber": Field("num", "id")},
        "back": {"issueAuthority": Field("issue"), "validFrom": Field("start_date", "date"),
                 "validTo": Field("end_date", "date")}}, side_option="side")),
    Api("driver-license", "印刷文字识别-驾驶证识别 driver license", "json", options=SIDE, row=Row("driver_license", {
        "face": {"name": Field("name"), "gender": Field("sex"), "licenseNumber": Field("num", "id"),
                 "address": Field("addr"), "vehicleClass": Field("vehicle_type"),
                 "validFrom": Field("start_date", "date"), "validTo": end_date_or_period("end_date", "validTo"),
                 "validPeriod": end_date_or_period("end_date", "validPeriod")},
        "back": {"archiveNumber": Field("archive_no", "id")}}, side_option="side")),
    Api("vehicle-license", "印刷文字识别-行驶证识别 vehicle license", "json", options=SIDE, row=Row("vehicle_license", {
        "face": {"plateNumber": Field("plate_num"), "vehicleType": Field("vehicle_type"), "owner": Field("owner"),
                 "address": Field("addr"), "useCharacter": Field("use_character"), "model": Field("model"),
                 "vin": Field("vin", "id"), "engineNumber": Field("engine_num", "id"),
                 "registerDate": Field("register_date", "date"), "issueDate": Field("issue_date", "date")},
        "back": {"plateNumber": Field("plate_num"), "fileNumber": Field("file_no", "id"),
                 "approvedPassengers": Field("appproved_passenger_capacity"),  # sic: three p's on the wire
                 "approvedLoad": Field("approved_load"), "grossMass": Field("gross_mass"),
                 "unladenMass": Field("unladen_mass"), "tractionMass": Field("traction_mass"),
                 "overallDimension": Field("overall_dimension"), "inspectionRecord": Field("inspection_record")}},
        side_option="side")),
    Api("business-license", "印刷文字识别-营业执照识别 business license", "json", row=Row("business_license", {
        "creditCode": Field("reg_num", "id"), "companyName": Field("name"), "legalRepresentative": Field("person"),
        "address": Field("address"), "registeredCapital": Field("captial"),  # sic
        "businessScope": Field("business"), "establishDate": Field("establish_date", "date"),
        "validTo": Field("valid_period", "date")})),
    Api("bank-card", "印刷文字识别-银行卡识别 bank card", "inputs", row=Row("bank_card", {
        "cardNumber": Field("card_num", "id")})),
    Api("business-card", "印刷文字识别-名片识别 business card", "inputs"),
    Api("general", "印刷文字识别-通用文字识别 general text", "json",
        options={"min_size": OptionSpec(int, default=16, minimum=1, description="minimum text height in pixels"),
                 "output_prob": OptionSpec(bool, default=True, description="return each line's probability")},
        row=Row(lines=_general_lines)),
    Api("passport", "印刷文字识别-护照识别 passport", "json"),
    Api("hukou", "户口页识别 household register page", "json"),
    Api("template", "自定义模板识别 custom template", "json",
        options={"template_id": OptionSpec(str, description="a published template's id"),
                 "template_list": OptionSpec(list, description="[{template_id, cond}] matched by keyword")}),
    Api("table", "表格识别 tables", "json",
        options={"format": OptionSpec(str, default="json", choices=("json", "html", "xlsx")),
                 "finance": OptionSpec(bool, default=False), "dir_assure": OptionSpec(bool, default=False),
                 "line_less": OptionSpec(bool, default=False, description="true = the table has no (vertical) lines")}),
    Api("stamp", "印刷文字识别-公章识别 official stamps", "json"),
    Api("taxi", "印刷文字识别-出租车机打发票识别 taxi ticket", "json", row=Row("taxi_ticket", {
        name: _taxi(name) for name in ("invoiceCode", "invoiceNumber", "plateNumber", "date", "boardingTime",
                                       "alightingTime", "mileage", "amount")}, documents=split_by("recipts"))),
    Api("train", "印刷文字识别-火车票识别 train ticket", "json", row=Row("train_ticket", {
        "trainNumber": Field("number"), "departureStation": Field("origin"), "arrivalStation": Field("destination"),
        "departureTime": Field("date"), "seat": Field("place"), "seatClass": Field("level"),
        "price": Field("price", "amount")})),
    Api("plate", "印刷文字识别-车牌识别 license plates", "json",
        options={"multi_crop": OptionSpec(bool, description="answer only when every crop agrees (confidence > 0.9)")}),
    Api("vin", "印刷文字识别-vin码识别 VIN code", "json"),
    Api("text", "通用文本识别 general text (multipart)", "multipart", LIMITS_002, options=TEXT_OPTIONS,
        row=Row(lines=_text_lines)),
)
BY_ID = {api.id: api for api in APIS}
IDS = tuple(api.id for api in APIS)


def url_variable(market_id: str) -> str:
    """Each API's URL comes with the user's purchase: one variable per API id."""
    return "FCOCR_MARKET_URL_" + market_id.upper().replace("-", "_")


@dataclass(frozen=True)
class MarketSettings:
    ENVIRONMENT = {
        "ALIYUN_MARKET_APPCODE": "APPCODE of your Alibaba Cloud Market purchases, sent as 'Authorization: APPCODE ...' "
                                 "(secret).",
        **{url_variable(i): f"URL of your market.{i} purchase (from its API page in the Cloud Market console)."
           for i in IDS},
    }
    appcode: str | None = field(default=None, repr=False)
    urls: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "MarketSettings":
        return cls(appcode=env_secret(env, "ALIYUN_MARKET_APPCODE"),
                   urls={i: u for i in IDS if (u := env_url(env, url_variable(i)))})


SETTINGS = MarketSettings

_SESSION = threading.local()


def _session():
    import requests

    session = getattr(_SESSION, "session", None)
    if session is None:
        session = _SESSION.session = requests.Session()
    return session


def _fault(status: int, message: str, request_id: str | None, code: str | None = None) -> Exception:
    return classify(VendorFault(NAME, status, code or str(status), message, request_id))


def _error_from_http(response: Any) -> Exception:
    """A non-200 answer: the gateway's X-Ca-Error-Message, or the provider's body, kept for the result."""
    headers = response.headers
    request_id = headers.get("X-Ca-Request-Id")
    message = headers.get("X-Ca-Error-Message") or ""
    code = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = message or str(body.get("message") or body.get("Message") or body.get("error_msg") or "")
        if body.get("code") not in (None, 0, "0"):
            code = str(body.get("code"))
    if not message:
        message = (response.text or response.reason or "").strip()[:200]
    if message.startswith("Throttled by"):  # the gateway's flow control: "Throttled by APP Flow Control" ...
        code = "Throttled"
    return _fault(response.status_code, message, request_id, code)


class MarketFamily:
    name = NAME
    transient_codes = TRANSIENT_CODES
    account_codes = ACCOUNT_CODES  # refusals of the account, not the input: a route may fall back (fcocr.fallback)
    packaging = Packaging(requirements=("requests",), verify=("fcocr.recognizers.market", "requests"))
    task_kinds: tuple[str, ...] = ()
    capabilities = {
        f"{NAME}.{api.id}": Capability(id=f"{NAME}.{api.id}", title=api.title, limits=api.limits,
                                         options=api.options, document_type=api.row.document_type, qps=QPS)
        for api in APIS
    }

    @staticmethod
    def input_modes(capability: Capability) -> str:
        return {"json": "`image` (base64) in a JSON body, options as `configure`",
                "inputs": "`inputs[0].image.dataValue` (base64), legacy JSON format",
                "multipart": "multipart `file`, `imgUrl` (presigned URL) or `imgBase64` (option `input`)"}[
                    BY_ID[capability.id.split(".", 1)[1]].style]

    @staticmethod
    def setting(capability: Capability) -> str:
        return url_variable(capability.id.split(".", 1)[1])

    def recognize(self, capability: Capability, job: Job, options: dict) -> Outcome:
        api = BY_ID[capability.id.split(".", 1)[1]]
        settings = job.settings.family(NAME)
        url = settings.urls.get(api.id)
        if not url:
            raise PermanentError(f"market.{api.id} has no URL: set {url_variable(api.id)} to the API address "
                                 "shown with your Cloud Market purchase", code="Market.NotConfigured")
        if not settings.appcode:
            raise PermanentError("market.* needs ALIYUN_MARKET_APPCODE (the APPCODE of your Cloud Market purchases)",
                                 code="Market.NoAppCode")
        if api.id == "template" and not (options.get("template_id") or options.get("template_list")):
            raise PermanentError("market.template needs the route option template_id or template_list "
                                 "(the service answers 452 without one)", code="Market.TemplateNotSet")
        headers = {"Authorization": f"APPCODE {settings.appcode}"}
        notes: list[tuple[int, str]] = []  # (page, what was done to its image), for the result's warnings

        def post(request: Mapping[str, Any], timeout: float) -> Any:
            import requests

            try:
                return _session().post(url, headers={**headers, **request.get("headers", {})},
                                       timeout=(min(5.0, timeout), timeout),
                                       **{k: v for k, v in request.items() if k != "headers"})
            except requests.RequestException as exc:
                raise network_error(NAME, exc) from None

        def call(part: Part, timeout: float) -> Reply:
            how = _input_mode(api, options, part, job, notes)
            if how == "url":  # the body carries a URL: no size rule of ours applies to the image
                response = post({"files": {"imgUrl": (None, job.presigned_url(PRESIGN_SECONDS))}}, timeout)
            else:
                request, size = _request(api, part, options, how)
                allowed = _allowed_body(api, url)
                shrunk = allowed is not None and size > allowed
                if shrunk:
                    part = _recompressed(api, job, part, _image_budget(api, allowed, how), notes,
                                         f"the request would be {size} bytes, over the API's {allowed}")
                    request, size = _request(api, part, options, how)
                response = post(request, timeout)
                if response.status_code == 413 and not shrunk:
                    # Refused before the provider saw it, so not billed: remember the size, recompress, send again.
                    _remember_refused(url, size)
                    part = _recompressed(api, job, part, _image_budget(api, size - 1, how), notes,
                                         f"the gateway refused a {size}-byte request (413, not billed)")
                    request, size = _request(api, part, options, how)
                    response = post(request, timeout)
            request_id = response.headers.get("X-Ca-Request-Id")
            if response.status_code != 200:
                raise _error_from_http(response)
            body = loads(response.content, NAME, 200, request_id)
            payload = _payload(api, body, request_id)
            return Reply(payload, body, request_id or _vendor_id(payload))

        try:
            outcome = run(capability, api.row, job, options, call, NAME)
        except AnswerUnusable as exc:
            exc.outcome.warnings.extend(_notes(notes, len(exc.outcome.pages)))
            raise
        outcome.warnings.extend(_notes(notes, len(outcome.pages)))
        return outcome


# The smallest request body (bytes) the gateway refused with 413, per API URL, for the life of the process: later
# inputs that large are recompressed before sending instead of being refused again.
_REFUSED: dict[str, int] = {}
_REFUSED_LOCK = threading.Lock()


def _remember_refused(url: str, size: int) -> None:
    with _REFUSED_LOCK:
        if size < _REFUSED.get(url, size + 1):
            _REFUSED[url] = size


def _allowed_body(api: Api, url: str) -> int | None:
    """The largest request body to send: 002's documented limit, or below a size this API's gateway refused."""
    with _REFUSED_LOCK:
        refused = _REFUSED.get(url)
    limits = [n for n in (TEXT_MAX_REQUEST if api.style == "multipart" else None,
                          None if refused is None else refused - 1) if n is not None]
    return min(limits) if limits else None


def _image_budget(api: Api, body_limit: int, how: str) -> int:
    """The image bytes that fit a request of ``body_limit`` bytes sent as ``how``; 001's advice caps it."""
    room = body_limit - REQUEST_OVERHEAD
    budget = room if how == "file" else base64_limit(room)
    return budget if api.style == "multipart" else min(budget, ADVISED_001_BYTES)


def _input_mode(api: Api, options: Mapping[str, Any], part: Part, job: Job, notes: list) -> str:
    """json (001), or how the 002 text API gets the image: url, file or base64."""
    if api.style != "multipart":
        return "json"
    mode = options.get("input") or "auto"
    if mode == "url" and not part.original:
        notes.append((part.page, "sent as a file part: only the stored object itself has a URL"))
        return "file"
    if mode == "auto":
        if not (part.original and len(part.data) >= URL_FROM_BYTES):
            return "file"
        try:
            job.presigned_url(PRESIGN_SECONDS)  # local storage cannot presign: then the bytes go as a file part
        except PermanentError:
            return "file"
        return "url"
    return mode


def _request(api: Api, part: Part, options: Mapping[str, Any], how: str) -> tuple[dict[str, Any], int]:
    """The ``requests`` arguments carrying ``part``, and (about) the body's size in bytes."""
    if how == "json":
        body = _json_body(api, part, options)
        return {"data": body, "headers": {"Content-Type": "application/json; charset=UTF-8"}}, len(body)
    if how == "base64":  # 002 requires the data: prefix (001 refuses it)
        uri = f"data:{part.mime};base64," + base64.b64encode(part.data).decode("ascii")
        return {"files": {"imgBase64": (None, uri)}}, len(uri) + 200
    return {"files": {"file": (f"page{part.page + 1}.{part.format}", part.data, part.mime)}}, len(part.data) + 300


def _recompressed(api: Api, job: Job, part: Part, max_bytes: int, notes: list, why: str) -> Part:
    """``part`` re-encoded under ``max_bytes`` (as prepare does for every family), its note saying why. Decoded
    within the same pixel and memory bounds the source was checked against."""
    from ..imaging import Document

    document = Document(part.data, part.format, 1, part.width, part.height, max_pixels=job.settings.max_pixels,
                        page_memory=job.settings.page_memory_mb * MiB)
    page = next(document.pages())
    smaller = encode_to_fit(page.image, Limits(formats=api.limits.formats, max_bytes=max_bytes), part.page)
    note = f"recompressed from {len(part.data)} to {len(smaller.data)} bytes: {why}"
    smaller.note = note + (f"; {smaller.note}" if smaller.note else "")
    notes.append((part.page, smaller.note))
    return smaller


def _notes(notes: list[tuple[int, str]], pages: int) -> list[str]:
    return [f"page {page + 1}: {note}" if pages > 1 else note for page, note in notes]


def _json_body(api: Api, part: Part, options: Mapping[str, Any]) -> bytes:
    image = base64.b64encode(part.data).decode("ascii")  # no data: prefix (001 refuses it)
    options = vendor_options(options)
    configure = json.dumps(options, ensure_ascii=False) if options else None
    if api.style == "inputs":
        item: dict[str, Any] = {"image": {"dataType": 50, "dataValue": image}}
        if configure:
            item["configure"] = {"dataType": 50, "dataValue": configure}
        body: dict[str, Any] = {"inputs": [item]}
    else:
        body = {"image": image}
        if configure:
            body["configure"] = configure
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _vendor_id(payload: Any) -> str | None:
    value = payload.get("request_id") or payload.get("serialNo") if isinstance(payload, dict) else None
    return None if value is None else str(value)


def _payload(api: Api, body: Any, request_id: str | None) -> Any:
    """The provider's answer inside the transport: ``success: false`` and 002's codes are errors, never results."""
    if not isinstance(body, dict):
        raise _fault(200, "the answer is not a JSON object", request_id, "MalformedResponse")
    if api.style == "inputs":
        value = lookup(body, "outputs.0.outputValue.dataValue")
        if value is MISSING:
            raise _fault(200, "the answer has no outputs[0].outputValue.dataValue", request_id, "MalformedResponse")
        body = loads(value, NAME, 200, request_id) if isinstance(value, str) else value
    elif api.style == "multipart":
        if body.get("code") not in (0, "0") or body.get("status") not in (200, "200"):
            status_text = str(body.get("status") or "")
            status = int(status_text) if status_text.isascii() and status_text.isdigit() else 400
            raise _fault(status, str(body.get("message") or "recognition failed"), request_id,
                         str(body.get("code") if body.get("code") is not None else status))
        return body
    if isinstance(body, dict) and body.get("success") is False:
        raise PermanentError("the market API answered success: false (nothing recognized)", code="Market.NotRecognized",
                             vendorRequestId=_vendor_id(body) or request_id)
    return body


FAMILY = MarketFamily()
