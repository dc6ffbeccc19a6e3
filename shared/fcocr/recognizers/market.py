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
* ``multipart`` (002 text API): the file as the multipart part ``file``
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
from ..model import Capability, Limits, Line, OptionSpec, Outcome, vendor_options
from ..prepare import Part
from ..retry import VendorFault, classify
from . import Job, Packaging
from .cloud import Reply, Row, box_lines, loads, network_error, number, rotated_rect, run, split_by

NAME = "market"
MiB = 1024 * 1024
# Seed 001: 450 "queue full, just retry", 469 internal parse errors; the gateway's flow control.
TRANSIENT_CODES = frozenset({"450", "469", "Throttled", "ThrottledByAppFlowControl", "ThrottledByApiFlowControl",
                             "ThrottledByUserFlowControl"})
QPS = 5  # the Cloud Market OCR APIs' stated rate limit, per API and purchase (Capability.qps)
# 001: "keep images within 1.5 MB"; 002: requests over 2 MB get 413. Larger inputs are recompressed first.
LIMITS_001 = Limits(formats=frozenset({"jpeg", "png", "bmp", "tiff"}), max_bytes=3 * MiB // 2)
LIMITS_002 = Limits(formats=frozenset({"jpeg", "png", "bmp"}), max_bytes=3 * MiB // 2)
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
    Api("text", "通用文本识别 general text (multipart)", "multipart", LIMITS_002, row=Row(lines=_text_lines)),
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

        def call(part: Part, timeout: float) -> Reply:
            import requests

            try:
                if api.style == "multipart":
                    response = _session().post(url, headers=headers, timeout=(min(5.0, timeout), timeout),
                                               files={"file": (f"page{part.page + 1}.{part.format}", part.data, part.mime)})
                else:
                    response = _session().post(url, headers={**headers, "Content-Type": "application/json; charset=UTF-8"},
                                               data=_json_body(api, part, options), timeout=(min(5.0, timeout), timeout))
            except requests.RequestException as exc:
                raise network_error(NAME, exc) from None
            request_id = response.headers.get("X-Ca-Request-Id")
            if response.status_code != 200:
                raise _error_from_http(response)
            body = loads(response.content, NAME, 200, request_id)
            payload = _payload(api, body, request_id)
            return Reply(payload, body, request_id or _vendor_id(payload))

        return run(capability, api.row, job, options, call, NAME)


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
