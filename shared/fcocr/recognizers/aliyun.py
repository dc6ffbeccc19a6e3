"""``aliyun.<Action>``: Alibaba Cloud Vision Intelligence OCR, API 2019-12-30 (seed 000).

The 26 recognizers and GetAsyncJobResult are rows of ``ACTIONS``: the action, the URL parameter
the service downloads, the documented limits, the options (named as the wire parameters), and
the map onto the normalized fields. One small client sends any row through the official generic
Alibaba OpenAPI client (alibabacloud-tea-openapi, RPC style, signed ACS3-HMAC-SHA256).

The service only downloads URLs, and only from Shanghai-region OSS. The source object is given as
a short-lived presigned URL when it already fits the action's limits and its bucket is in
cn-shanghai; otherwise the prepared input (converted, scaled, recompressed) is staged in
``FCOCR_VIAPI_STAGING`` (or ``.fcocr-staging/`` of a Shanghai source bucket) and deleted after
the call. Staged objects carry no image suffix, so they cannot trigger the upload function.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from .. import tasks
from ..config import env_int, env_oss_location, env_url
from ..errors import ConfigError, FcocrError, PermanentError, TransientError
from ..fields import Field, end_date_or_period, taxi_fields
from ..model import Capability, Limits, Line, OptionSpec, OssLocation, Outcome, vendor_options
from ..prepare import Part
from ..reconcile import count, not_finished, time_left
from ..results import utc_now
from ..retry import RetryPolicy, VendorFault, classify
from ..storage import STAGING_PREFIX, delete_staged, open_storage, put_staged, staged_ref
from . import Job, Packaging
from .cloud import (
    ClientCache,
    Reply,
    Row,
    box_lines,
    loads,
    network_error,
    number,
    rotated_rect,
    run,
    split_by,
)

NAME = "aliyun"
VERSION = "2019-12-30"
REGION = "cn-shanghai"
MiB = 1024 * 1024
PRESIGN_SECONDS = 15 * 60  # the call downloads at once; async jobs may start later
ASYNC_PRESIGN_SECONDS = 2 * 3600
TASK_KIND = "aliyun-async"  # the kind written in task records of TrimDocument / RecognizeVideoCharacter jobs
# Common error codes (seed 000 §10): throttling, timeouts, system errors. InvalidImage.Download is the service
# failing to fetch our presigned URL: a fresh attempt (and URL) usually works. SignatureNonceUsed and
# InvalidTimeStamp.Expired refuse one signed request, not the input: the SDK signs every attempt afresh (a new
# nonce, the current time), so the retry goes through.
TRANSIENT_CODES = frozenset({"Throttling", "Throttling.User", "Throttling.Api", "Timeout", "InternalError",
                             "ServiceUnavailable", "InvalidImage.Download", "SignatureNonceUsed",
                             "InvalidTimeStamp.Expired"})
DEFAULT_POLL_SECONDS = 300.0  # how long to poll an async job when the function's deadline is unknown
ASYNC_FINAL = {"PROCESS_SUCCESS", "PROCESS_FAILED", "TIMEOUT_FAILED", "LIMIT_RETRY_FAILED"}
# Seed 000's common errors that refuse the account (credentials, RAM permission, the service not purchased).
ACCOUNT_CODES = frozenset({"InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive", "SignatureDoesNotMatch",
                           "InvalidApi.NotPurchase", "InvalidSecurityToken.Expired", "InvalidSecurityToken.Malformed",
                           "InvalidSecurityToken.MismatchWithAccessKey", "MissingSecurityToken", "Forbidden."})

_COMMON = frozenset({"jpeg", "png", "bmp", "gif"})
_STD = Limits(formats=_COMMON, max_bytes=3 * MiB)  # "resolution unrestricted (5 s timeout)"
_BOUNDED = Limits(formats=_COMMON, max_bytes=3 * MiB, min_side=15, max_side=4096)
_BOUNDED_4M = Limits(formats=_COMMON, max_bytes=4 * MiB, min_side=15, max_side=4096)
_NO_GIF_4M = Limits(formats=frozenset({"jpeg", "png", "bmp"}), max_bytes=4 * MiB, min_side=15, max_side=4096)



@dataclass(frozen=True)
class AliyunSettings:
    ENVIRONMENT = {
        "FCOCR_ALIYUN_OCR_ENDPOINT": "Vision Intelligence OCR endpoint as a full URL (default https://ocr.cn-shanghai.aliyuncs.com).",
        "FCOCR_VIAPI_STAGING": "oss://bucket/prefix in cn-shanghai where inputs are staged for aliyun.* when the source bucket "
                               "is elsewhere or the input must be converted (default: <source bucket>/.fcocr-staging/ for "
                               "Shanghai buckets).",
        "FCOCR_VIAPI_STAGING_ENDPOINT": "OSS endpoint of the staging bucket (default https://oss-cn-shanghai.aliyuncs.com: "
                                        "a function outside Shanghai cannot use that region's internal endpoint).",
        "FCOCR_VIAPI_POLL_MS": "Interval between GetAsyncJobResult polls for TrimDocument and RecognizeVideoCharacter "
                               "(default 2000).",
    }
    endpoint: str = "https://ocr.cn-shanghai.aliyuncs.com"
    staging: OssLocation | None = None
    staging_endpoint: str = "https://oss-cn-shanghai.aliyuncs.com"
    poll_ms: int = 2000

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "AliyunSettings":
        return cls(endpoint=env_url(env, "FCOCR_ALIYUN_OCR_ENDPOINT") or cls.endpoint,
                   staging=env_oss_location(env, "FCOCR_VIAPI_STAGING"),
                   staging_endpoint=env_url(env, "FCOCR_VIAPI_STAGING_ENDPOINT") or cls.staging_endpoint,
                   poll_ms=env_int(env, "FCOCR_VIAPI_POLL_MS", cls.poll_ms, 1, 60_000))


SETTINGS = AliyunSettings

SIDE = {"Side": OptionSpec(str, default="face", choices=("face", "back"), description="face 人像面/首页; back 国徽面/副页")}


@dataclass(frozen=True)
class Action:
    action: str
    title: str
    input: str  # the URL parameter: ImageURL, FileURL, VideoURL or Tasks.1.ImageURL
    limits: Limits
    options: Mapping[str, OptionSpec] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)  # parameters with one possible value
    row: Row = Row()
    mode: str = "sync"  # sync | async (answered through GetAsyncJobResult) | poll (GetAsyncJobResult itself)
    batch: int = 1  # images one request may carry (Tasks.N.ImageURL): the pages of a document go together


_character_lines = box_lines("Results", "Text", "Probability", "TextRectangles", left="Left", top="Top",
                             width="Width", height="Height", angle="Angle")


def _pdf_lines(data: Any, page: int) -> list[Line]:
    lines = []
    for word in _as_list((data or {}).get("WordsInfo")):
        points = [(number(p.get("X")), number(p.get("Y"))) for p in _as_list(word.get("Positions"))]
        if len(points) != 4:
            x, y, w, h = (number(word.get(k)) for k in ("X", "Y", "Width", "Height"))
            points = list(rotated_rect(x, y, w, h, 0))
        index = int(number((data or {}).get("PageIndex"), page + 1)) - 1
        lines.append(Line(str(word.get("Word", "")), None, tuple(points), max(index, page)))
    return lines


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _taxi(data: Any, warnings: list[str]) -> Any:
    invoice = _as_list((data or {}).get("Invoices"))
    texts = [item.get("Text") for item in _as_list(invoice[0].get("Items"))] if invoice else []
    return taxi_fields(texts)


def _taxi_row(name: str) -> Any:
    return lambda data, warnings: _taxi(data, warnings).get(name)


ID_FACE = {"name": Field("FrontResult.Name"), "gender": Field("FrontResult.Gender"),
           "ethnicity": Field("FrontResult.Nationality"), "birthDate": Field("FrontResult.BirthDate", "date"),
           "address": Field("FrontResult.Address"), "idNumber": Field("FrontResult.IDNumber", "id")}
ID_BACK = {"issueAuthority": Field("BackResult.Issue"), "validFrom": Field("BackResult.StartDate", "date"),
           "validTo": Field("BackResult.EndDate", "date")}
VAT = {
    "invoiceCode": Field("Content.InvoiceCode", "id"), "invoiceNumber": Field("Content.InvoiceNo", "id"),
    "invoiceDate": Field("Content.InvoiceDate", "date"), "checkCode": Field("Content.AntiFakeCode", "id"),
    "totalAmount": Field("Content.WithoutTaxAmount", "amount"), "totalTax": Field("Content.TaxAmount", "amount"),
    "amountWithTax": Field("Content.InvoiceAmount", "amount"), "amountWithTaxInWords": Field("Content.SumAmount"),
    # Content: Payer = 购买方 (buyer), Payee = 销售方 (seller); the Box descriptions say otherwise (a seed error).
    "sellerName": Field("Content.PayeeName"), "sellerTaxId": Field("Content.PayeeRegisterNo", "id"),
    "sellerAddressPhone": Field("Content.PayeeAddress"), "sellerBankAccount": Field("Content.PayeeBankName"),
    "buyerName": Field("Content.PayerName"), "buyerTaxId": Field("Content.PayerRegisterNo", "id"),
    "buyerAddressPhone": Field("Content.PayerAddress"), "buyerBankAccount": Field("Content.PayerBankName"),
    "payee": Field("Content.Payee"), "reviewer": Field("Content.Checker"), "drawer": Field("Content.Clerk"),
}
ROLL_TICKET = {
    "invoiceType": Field("Results.Type"), "invoiceCode": Field("Results.Content.InvoiceCode", "id"),
    "invoiceNumber": Field("Results.Content.InvoiceNumber|Results.Content.InvoiceNo", "id"),
    "invoiceDate": Field("Results.Content.InvoiceDate", "date"), "checkCode": Field("Results.Content.AntiFakeCode", "id"),
    "amountWithTax": Field("Results.Content.SumAmount", "amount"),
    "sellerName": Field("Results.Content.PayeeName"), "sellerTaxId": Field("Results.Content.PayeeRegisterNo", "id"),
    "buyerName": Field("Results.Content.PayerName"), "buyerTaxId": Field("Results.Content.PayerRegisterNo", "id"),
}
DRIVER_FACE = {"name": Field("FaceResult.Name"), "gender": Field("FaceResult.Gender"),
               "licenseNumber": Field("FaceResult.LicenseNumber", "id"), "address": Field("FaceResult.Address"),
               "vehicleClass": Field("FaceResult.VehicleType"), "issueDate": Field("FaceResult.IssueDate", "date"),
               "validFrom": Field("FaceResult.StartDate", "date"), "validTo": end_date_or_period("FaceResult.EndDate", "validTo"),
               "validPeriod": end_date_or_period("FaceResult.EndDate", "validPeriod"), "issuingAuthority": Field("FaceResult.IssueUnit")}
DRIVER_BACK = {"name": Field("BackResult.Name"), "licenseNumber": Field("BackResult.CardNumber", "id"),
               "archiveNumber": Field("BackResult.ArchiveNumber", "id"), "record": Field("BackResult.Record")}
VEHICLE_FACE = {"plateNumber": Field("FaceResult.PlateNumber"), "vehicleType": Field("FaceResult.VehicleType"),
                "owner": Field("FaceResult.Owner"), "address": Field("FaceResult.Address"),
                "useCharacter": Field("FaceResult.UseCharacter"), "model": Field("FaceResult.Model"),
                "vin": Field("FaceResult.Vin", "id"), "engineNumber": Field("FaceResult.EngineNumber", "id"),
                "registerDate": Field("FaceResult.RegisterDate", "date"), "issueDate": Field("FaceResult.IssueDate", "date")}
VEHICLE_BACK = {"plateNumber": Field("BackResult.PlateNumber"), "fileNumber": Field("BackResult.FileNumber", "id"),
                "approvedPassengers": Field("BackResult.ApprovedPassengerCapacity"),
                "grossMass": Field("BackResult.GrossMass"), "unladenMass": Field("BackResult.UnladenMass"),
                "approvedLoad": Field("BackResult.ApprovedLoad"), "tractionMass": Field("BackResult.TractionMass"),
                "overallDimension": Field("BackResult.OverallDimension"),
                "inspectionRecord": Field("BackResult.InspectionRecord"), "energyType": Field("BackResult.EnergyType")}

_B = bool
ACTIONS: tuple[Action, ...] = (
    Action("RecognizeIdentityCard", "身份证识别 ID card", "ImageURL", _BOUNDED, SIDE,
           row=Row("idcard", {"face": ID_FACE, "back": ID_BACK}, side_option="Side")),
    Action("RecognizeAccountPage", "户口页识别 household register page", "ImageURL", _STD),
    Action("RecognizeBankCard", "银行卡识别 bank card", "ImageURL", _STD,
           row=Row("bank_card", {"cardNumber": Field("CardNumber", "id"), "bankName": Field("BankName"),
                                 "validDate": Field("ValidDate")})),
    Action("RecognizeBusinessCard", "名片识别 business card", "ImageURL", _STD),
    Action("RecognizeQrCode", "二维码识别 QR codes", "Tasks.1.ImageURL",
           Limits(formats=_COMMON | {"webp"}, max_bytes=10 * MiB), batch=10),  # "最多支持10个元素"
    Action("RecognizeChinapassport", "中国护照识别 Chinese passport", "ImageURL",
           Limits(formats=_COMMON, max_bytes=2 * MiB // 4 * 3)),  # "base64 of the image ≤ 2 MB"
    Action("RecognizePassportMRZ", "护照MRZ码识别 passport MRZ", "ImageURL",
           Limits(formats=frozenset({"jpeg", "png"}), max_bytes=10 * MiB)),
    Action("RecognizeBusinessLicense", "营业执照识别 business license", "ImageURL", _STD,
           row=Row("business_license", {
               "creditCode": Field("RegisterNumber", "id"), "companyName": Field("Name"), "companyType": Field("Type"),
               "legalRepresentative": Field("LegalPerson"), "address": Field("Address"),
               "registeredCapital": Field("Capital"), "businessScope": Field("Business"),
               "establishDate": Field("EstablishDate", "date"), "validTo": Field("ValidPeriod", "date")})),
    Action("RecognizeStamp", "公章识别 official stamps", "ImageURL", _STD),
    Action("RecognizeCharacter", "通用文字识别 general text", "ImageURL", _BOUNDED,
           {"MinHeight": OptionSpec(int, default=10, minimum=1, description="minimum text height in pixels"),
            "OutputProbability": OptionSpec(_B, default=True, description="return each line's probability")},
           row=Row(lines=_character_lines)),
    Action("RecognizeTable", "表格识别 tables", "ImageURL", _STD,
           {"OutputFormat": OptionSpec(str, default="json", choices=("json", "html", "xlsx")),
            "UseFinanceModel": OptionSpec(_B, default=False, description="financial statement model"),
            "AssureDirection": OptionSpec(_B, default=False, description="the image is certainly upright"),
            # The wire name is inverted: HasLine=true means the table has NO lines (seed 000 §5.2).
            "HasLine": OptionSpec(_B, default=False, description="true = the table has no (vertical) lines"),
            "SkipDetection": OptionSpec(_B, default=False, description="skip table detection")}),
    Action("TrimDocument", "文档结构化还原识别 document structure (async)", "FileURL",
           Limits(formats=frozenset({"pdf"}), max_bytes=10 * MiB, max_pages=2),
           {"OutputType": OptionSpec(str, default="html", choices=("html", "json"))}, {"FileType": "pdf"}, mode="async"),
    Action("DetectCardScreenshot", "证件翻拍识别 card screenshot detection", "ImageURL",
           Limits(formats=frozenset({"jpeg", "png", "bmp"}), max_bytes=3 * MiB, min_side=100, max_side=3000)),
    Action("RecognizePoiName", "门头照识别 shop signs", "ImageURL",
           Limits(formats=frozenset({"jpeg", "png", "bmp"}), max_bytes=10 * MiB, min_side=15, max_side=4096)),
    Action("RecognizePdf", "PDF识别 PDF text", "FileURL",
           Limits(formats=frozenset({"pdf"}), max_bytes=10 * MiB, max_pages=5), row=Row(lines=_pdf_lines)),
    Action("RecognizeVideoCharacter", "视频文字识别 video text (async)", "VideoURL",
           Limits(formats=frozenset({"mp4", "avi", "h264"}), max_bytes=20 * MiB - 1), mode="async"),
    Action("RecognizeDriverLicense", "驾驶证识别 driver license", "ImageURL", _BOUNDED_4M, SIDE,
           row=Row("driver_license", {"face": DRIVER_FACE, "back": DRIVER_BACK}, side_option="Side")),
    Action("RecognizeDrivingLicense", "行驶证识别 vehicle license", "ImageURL", _STD, SIDE,
           row=Row("vehicle_license", {"face": VEHICLE_FACE, "back": VEHICLE_BACK}, side_option="Side")),
    Action("RecognizeLicensePlate", "车牌识别 license plates", "ImageURL", _BOUNDED_4M),
    Action("RecognizeVINCode", "VIN码识别 VIN code", "ImageURL", _STD),
    Action("RecognizeTaxiInvoice", "出租车发票识别 taxi ticket", "ImageURL", _STD,
           row=Row("taxi_ticket", {name: _taxi_row(name) for name in (
               "invoiceCode", "invoiceNumber", "plateNumber", "date", "boardingTime", "alightingTime", "mileage",
               "amount")}, documents=split_by("Invoices"))),
    Action("RecognizeVATInvoice", "增值税发票识别 VAT invoice (JPG only)", "FileURL",
           Limits(formats=frozenset({"jpeg"}), max_bytes=3 * MiB, min_side=15, max_side=4096), fixed={"FileType": "jpg"},
           row=Row("vat_invoice", VAT)),
    Action("RecognizeTrainTicket", "火车票识别 train ticket", "ImageURL", _STD,
           row=Row("train_ticket", {"trainNumber": Field("Number"), "departureStation": Field("DepartureStation"),
                                    "arrivalStation": Field("Destination"), "departureTime": Field("Date"),
                                    "seat": Field("Seat"), "seatClass": Field("Level"),
                                    "price": Field("Price", "amount"), "passengerName": Field("Name")})),
    Action("RecognizeTakeoutOrder", "外卖单识别 takeout order (饿了么)", "ImageURL",
           Limits(formats=frozenset({"jpeg", "png", "bmp"}), max_bytes=10 * MiB)),
    Action("RecognizeQuotaInvoice", "定额发票识别 quota invoice", "ImageURL", _NO_GIF_4M),
    Action("RecognizeTicketInvoice", "增值税发票卷票识别 VAT roll ticket", "ImageURL", _NO_GIF_4M,
           row=Row("vat_invoice", ROLL_TICKET, documents=split_by("Results"))),  # Count tickets, one per Index
    Action("GetAsyncJobResult", "查询异步任务结果 async job result (used to finish TrimDocument and "
           "RecognizeVideoCharacter; not routable)", "JobId", Limits(), mode="poll"),
)
BY_ACTION = {a.action: a for a in ACTIONS}


# --------------------------------------------------------------------------------------- client
class ViapiClient:
    """One call of any action through the generic OpenAPI client; vendor faults become VendorFault."""

    _clients = ClientCache()

    def __init__(self, endpoint_url: str, credentials: Any) -> None:
        if not credentials:
            raise ConfigError("aliyun.* needs Alibaba Cloud credentials (the FC role, or ALIBABA_CLOUD_ACCESS_KEY_ID/"
                              "ALIBABA_CLOUD_ACCESS_KEY_SECRET)", code="NoCredentials")
        url = urlsplit(endpoint_url)

        def make() -> Any:
            from alibabacloud_tea_openapi.client import Client
            from alibabacloud_tea_openapi.models import Config

            return Client(Config(access_key_id=credentials.access_key_id,
                                 access_key_secret=credentials.access_key_secret,
                                 security_token=credentials.security_token, endpoint=url.netloc,
                                 protocol=url.scheme or "https", region_id=REGION))

        key = (url.scheme, url.netloc, credentials.access_key_id, credentials.access_key_secret,
               credentials.security_token)
        self._client = self._clients.get(key, make)

    def call(self, action: str, params: Mapping[str, Any], timeout: float) -> tuple[dict, str | None]:
        """The answer's JSON object and its RequestId; VendorFault/TransientError on failure."""
        from alibabacloud_tea_openapi import exceptions as tea_errors
        from alibabacloud_tea_openapi.utils_models import OpenApiRequest, Params
        from darabonba.runtime import RuntimeOptions

        request = OpenApiRequest(body=dict(params))
        api = Params(action=action, version=VERSION, protocol="HTTPS", pathname="/", method="POST", auth_type="AK",
                     style="RPC", req_body_type="formData", body_type="string")
        millis = max(1000, int(timeout * 1000))
        runtime = RuntimeOptions(autoretry=False, connect_timeout=min(millis, 5000), read_timeout=millis)
        try:
            answer = self._client.call_api(api, request, runtime)
        except tea_errors.AlibabaCloudException as exc:
            data = getattr(exc, "data", None) or {}
            message = data.get("Message") if isinstance(data, dict) else None
            raise classify(VendorFault(NAME, getattr(exc, "status_code", None), str(getattr(exc, "code", "") or ""),
                                       str(message or getattr(exc, "message", "") or exc),
                                       (data.get("RequestId") if isinstance(data, dict) else None)
                                       or getattr(exc, "request_id", None))) from None
        except ValueError as exc:  # an error status whose body is not JSON (a gateway page)
            raise classify(VendorFault(NAME, 502, "MalformedResponse", f"an error answer that is not JSON: {exc}")) from None
        except Exception as exc:  # connection refused/reset, timeouts: darabonba's and requests' own classes
            raise network_error(NAME, exc) from None
        body = loads(answer.get("body") or "", NAME, answer.get("statusCode"))
        if not isinstance(body, dict):
            raise classify(VendorFault(NAME, 200, "MalformedResponse", "the answer is not a JSON object"))
        return body, body.get("RequestId")


# -------------------------------------------------------------------------------------- provider
def _split_elements(body: dict[str, Any], count: int, request_id: str | None) -> list[Reply]:
    """One Reply per task of a batched request, each shaped as the answer to a request of that task alone."""
    data = body.get("Data") if isinstance(body.get("Data"), dict) else {}
    elements = data.get("Elements") if isinstance(data.get("Elements"), list) else []
    replies = []
    for index in range(count):
        own = {**data, "Elements": elements[index:index + 1]}  # Elements come in the order of the tasks
        replies.append(Reply(own, {**body, "Data": own}, request_id))
    return replies


def _input_value(action: Action, url: str) -> dict[str, Any]:
    return {action.input: url}


def _params(action: Action, options: Mapping[str, Any]) -> dict[str, Any]:
    params = dict(action.fixed)
    for name, value in vendor_options(options).items():
        params[name] = value  # option names are the wire parameter names
    return params


# RecognizeVideoCharacter's limits beside format and bytes (seed 000 §5.7): under 60 s, at most 35 fps, each
# side over 20 and under 4096 px.
VIDEO_MAX_SECONDS = 60
VIDEO_MAX_FPS = 35
VIDEO_SIDES = (20, 4096)


def check_video(document: Any) -> None:
    """An InputError when the video's header says it is outside RecognizeVideoCharacter's limits; what the header
    does not say (a raw H.264 stream, a damaged box) is left to the service."""
    from ..errors import InputError
    from ..videoinfo import video_info

    info = video_info(document.data, document.format)
    if info.duration_seconds is not None and info.duration_seconds >= VIDEO_MAX_SECONDS:
        raise InputError(f"the video lasts {info.duration_seconds:.1f} s; RecognizeVideoCharacter takes videos "
                         f"under {VIDEO_MAX_SECONDS} s", code="VideoTooLong")
    if info.frame_rate is not None and info.frame_rate > VIDEO_MAX_FPS + 0.01:
        raise InputError(f"the video has {info.frame_rate:.1f} frames a second; RecognizeVideoCharacter takes at "
                         f"most {VIDEO_MAX_FPS}", code="VideoFrameRateTooHigh")
    low, high = VIDEO_SIDES
    if info.width is not None and info.height is not None and not (
            low < min(info.width, info.height) and max(info.width, info.height) < high):
        raise InputError(f"the video is {info.width}×{info.height}; RecognizeVideoCharacter needs each side over "
                         f"{low} and under {high} px", code="ImageSizeOutOfRange")


class _Staging:
    """Where a prepared input goes so the Shanghai-only service can download it."""

    def __init__(self, job: Any) -> None:
        self.job = job
        settings: AliyunSettings = job.settings.family(NAME)
        if settings.staging:
            if job.settings.local_root:
                raise PermanentError("FCOCR_VIAPI_STAGING needs OSS; FCOCR_LOCAL_ROOT is set", code="Aliyun.RegionNotSupported")
            self.storage = open_storage(settings.staging.bucket, job.runtime, job.settings, REGION,
                                        endpoint=settings.staging_endpoint)
            self.prefix = settings.staging.prefix
        elif job.region == REGION:
            self.storage, self.prefix = job.storage, STAGING_PREFIX
        else:
            where = f"in {job.region}" if job.region else "in local storage"
            raise PermanentError(
                f"aliyun.* (Vision Intelligence) downloads its input from Shanghai-region OSS only, and the bucket is "
                f"{where}: set FCOCR_VIAPI_STAGING=oss://<bucket in cn-shanghai>/<prefix> so fcocr can stage inputs "
                "there (they are deleted after use), or route this prefix to another recognizer",
                code="Aliyun.RegionNotSupported")

    def put(self, part: Part) -> str:
        return put_staged(self.storage, part.data, part.mime, self.prefix)


class AliyunFamily:
    name = NAME
    transient_codes = TRANSIENT_CODES
    account_codes = ACCOUNT_CODES  # refusals of the account, not the input: a route may fall back (fcocr.fallback)
    packaging = Packaging(
        requirements=("alibabacloud-tea-openapi",),
        verify=("fcocr.recognizers.aliyun", "alibabacloud_tea_openapi.client", "alibabacloud_tea_openapi.models",
                "alibabacloud_tea_openapi.exceptions", "alibabacloud_tea_openapi.utils_models", "darabonba.runtime"))
    task_kinds = (TASK_KIND,)
    # Injectable (tests): the pause between polls and the clock that bounds them.
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    clock: Callable[[], float] = staticmethod(time.monotonic)
    capabilities = {
        f"{NAME}.{a.action}": Capability(id=f"{NAME}.{a.action}", title=a.title, limits=a.limits,
                                           options=a.options, mode=a.mode, document_type=a.row.document_type,
                                           routable=a.mode != "poll")
        for a in ACTIONS
    }

    @staticmethod
    def input_modes(capability: Capability) -> str:
        action = BY_ACTION[capability.id.split(".", 1)[1]]
        return f"`{action.input}`: presigned URL of the object (same region) or of a staged copy"

    def client(self, job: Any) -> ViapiClient:
        return ViapiClient(job.settings.family(NAME).endpoint, job.runtime.credentials)

    def recognize(self, capability: Capability, job: Job, options: dict) -> Outcome:
        action = BY_ACTION[capability.id.split(".", 1)[1]]
        if action.mode == "poll":
            raise ConfigError("aliyun.GetAsyncJobResult is not a recognizer to route to: fcocr calls it to finish "
                              "TrimDocument and RecognizeVideoCharacter jobs")
        client = self.client(job)
        params = _params(action, options)
        staged: list[tuple[Any, str]] = []
        same_region = job.region == REGION

        def url_of(part: Part) -> str:
            if part.original and same_region:
                return job.presigned_url(ASYNC_PRESIGN_SECONDS if action.mode == "async" else PRESIGN_SECONDS)
            staging = _Staging(job)
            key = staging.put(part)
            staged.append((staging.storage, key))
            return staging.storage.presign_get(key, ASYNC_PRESIGN_SECONDS if action.mode == "async" else PRESIGN_SECONDS)

        def call(part: Part, timeout: float) -> Reply:
            body, request_id = client.call(action.action, {**params, **_input_value(action, url_of(part))}, timeout)
            return Reply(body.get("Data"), body, request_id)

        def call_batch(parts: list[Part], timeout: float) -> list[Reply]:
            tasks_params = {f"Tasks.{n}.ImageURL": url_of(part) for n, part in enumerate(parts, 1)}
            body, request_id = client.call(action.action, {**params, **tasks_params}, timeout)
            return _split_elements(body, len(parts), request_id)

        try:
            if action.mode == "async":
                return self._submit_and_wait(capability, action, job, options, call, staged)
            if action.batch > 1:
                return run(capability, action.row, job, options, call_batch, NAME, batch=action.batch)
            return run(capability, action.row, job, options, call, NAME)
        finally:
            if action.mode != "async":
                self._drop_staging(job, staged)

    def _submit_and_wait(self, capability: Capability, action: Action, job: Any, options: Mapping[str, Any],
                         call: Any, staged: list) -> Outcome:
        """Submit the async job and record its JobId at once; then poll GetAsyncJobResult while the function has
        time. A job still running, or a poll that faulted, leaves the document pending: the reconcile timer
        finishes it from the task record, so the job (paid for) is never submitted a second time."""
        policy = RetryPolicy.from_settings(job.settings)
        document = job.source_document()
        from ..prepare import fit

        if action.action == "RecognizeVideoCharacter":
            check_video(document)  # billed per input second: refuse what the service would, before paying
        parts = list(fit(document, capability.limits))
        reply = policy.call(lambda timeout: call(parts[0], timeout), job.runtime)
        job_id = reply.request_id
        if not job_id:
            raise TransientError("the async job was submitted but no RequestId came back", code="Aliyun.NoJobId")
        extra: dict[str, Any] = {"action": action.action}
        if staged:
            storage, key = staged[0]
            extra["staging"] = staged_ref(storage, key)
        remaining = job.runtime.remaining_seconds()
        # The reconcile timer leaves the job to this invocation while it may still be polling.
        extra["pollSeconds"] = round(remaining if remaining is not None else DEFAULT_POLL_SECONDS)
        record = tasks.TaskRecord(
            data_id=tasks.data_id_for(job.source.bucket, job.source.key, job.source.etag), kind=TASK_KIND,
            task_id=job_id, bucket=job.source.bucket, key=job.source.key, etag=job.source.etag,
            recognizer=capability.id, submitted_at=utc_now(), size=job.source.size, options=dict(options), extra=extra)
        tasks.save(job.storage, record)  # before the first poll: whatever happens next, the JobId is kept
        pending = Outcome(task=record.ref, vendor_request_id=job_id, raw=reply.raw, billed_calls=1)
        try:
            outcome = poll_async_job(job.settings, job.runtime, job_id, wait=True, sleep=self.sleep, clock=self.clock)
        except TransientError as exc:
            pending.warnings.append(f"polling the job failed ({exc.code}); the reconcile timer finishes it")
            return pending
        except PermanentError:  # the job ended failed: that is its final answer
            self._close(job, record, staged)
            raise
        if outcome is None:  # still running
            return pending
        self._close(job, record, staged)
        outcome.billed_calls = 1
        return outcome

    def _close(self, job: Any, record: tasks.TaskRecord, staged: list) -> None:
        try:
            tasks.delete(job.storage, record)
        except FcocrError:  # a leftover record is finished (as already final) by the reconcile timer
            pass
        self._drop_staging(job, staged)

    @staticmethod
    def _drop_staging(job: Any, staged: list) -> None:
        for storage, key in staged:
            delete_staged(staged_ref(storage, key), job.storage, job.runtime, job.settings)

    @staticmethod
    def finish_due(storage: Any, due: list[tuple[tasks.TaskRecord, float]], settings: Any, runtime: Any,
                   counts: Counter) -> None:
        """The reconcile timer's part: ``GetAsyncJobResult`` once per due job; a job still running waits for the
        next tick, a finished or failed one gets its final result."""
        for record, age in due:
            if not time_left(runtime):
                counts["deferred"] += 1
                continue
            if age < float(record.extra.get("pollSeconds") or 0):  # the submitting invocation may still be polling
                counts["waiting"] += 1
                continue
            try:
                try:
                    outcome = poll_async_job(settings, runtime, record.task_id, wait=False)
                except PermanentError as exc:
                    count(counts, tasks.finish(storage, record, settings, runtime, error=exc, require_pending=False))
                    continue
                if outcome is None:
                    counts["pending"] += 1
                    continue
                count(counts, tasks.finish(storage, record, settings, runtime, outcome=outcome, require_pending=False))
            except FcocrError as exc:  # a storage or vendor fault: this job waits for the next tick
                not_finished(storage, record, runtime, exc, counts)


def poll_async_job(settings: Any, runtime: Any, job_id: str, *, wait: bool,
                   sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.monotonic) -> Outcome | None:
    """GetAsyncJobResult until a final status: an Outcome, a PermanentError, or None (still running).

    With ``wait`` it polls every FCOCR_VIAPI_POLL_MS while the function has time left (keeping the
    retry policy's reserve); without, it asks once (the reconcile function's way). A fault that outlives the
    retries raises TransientError: the caller keeps the job pending, it never submits again.
    """
    client = ViapiClient(settings.family(NAME).endpoint, runtime.credentials)
    policy = RetryPolicy.from_settings(settings)
    interval = settings.family(NAME).poll_ms / 1000.0
    deadline = clock() + DEFAULT_POLL_SECONDS  # outside FC (no deadline known): give up waiting after 5 minutes
    while True:
        body, request_id = policy.call(lambda t: client.call("GetAsyncJobResult", {"JobId": job_id}, t), runtime,
                                       sleep=sleep)
        data = body.get("Data") or {}
        status = str(data.get("Status") or "")
        if status == "PROCESS_SUCCESS":  # decide by Status, not by ErrorCode (the seed shows both together)
            payload = decode_result(data.get("Result"))
            return Outcome(fields=payload if isinstance(payload, dict) else {"value": payload}, raw=body,
                           vendor_request_id=job_id)
        if status in ASYNC_FINAL:
            raise PermanentError(f"the async job {job_id} ended {status}: {data.get('ErrorCode') or ''} "
                                 f"{data.get('ErrorMessage') or ''}".strip(), code=f"Aliyun.{status}",
                                 vendorCode=data.get("ErrorCode") or None, vendorMessage=data.get("ErrorMessage") or None,
                                 vendorRequestId=job_id)
        if not wait:
            return None
        remaining = runtime.remaining_seconds()
        left = remaining - policy.reserve - policy.min_call_timeout if remaining is not None else deadline - clock()
        if left < interval:
            return None
        sleep(interval)  # the service's own pace: nothing to synchronise with, only to wait for


def decode_result(result: Any) -> Any:
    """``GetAsyncJobResult``'s ``Data.Result`` in each form seed 000 shows: a JSON object already, a JSON string
    (``"{\"Content\": ...}"``), or its printed form with the quotes still backslash-escaped
    (``{\\"Content\\":...}``), decoded as often as it takes. Text that is no JSON at all is kept as it is."""
    value = result
    for _ in range(4):
        if not isinstance(value, str):
            return value
        text = value.strip()
        try:
            value = json.loads(text, strict=False)
            continue
        except ValueError:
            pass
        if '\\"' in text:
            try:  # the escaped form is the body of a JSON string literal: unescape it once
                value = json.loads(f'"{text}"', strict=False)
                continue
            except ValueError:
                pass
        return text
    return value


FAMILY = AliyunFamily()
