"""``tencent.VatInvoiceOCR``: Tencent Cloud OCR 2018-11-19, VAT invoices (seed 004).

Sent through the slim official SDK (tencentcloud-sdk-python-ocr + -common), TC3-HMAC-SHA256.
The file goes as ``ImageBase64`` within the 7 MB-*after-base64* limit (re-encoded or scaled down
when over), or as ``ImageUrl`` (a presigned URL of the source) with ``FCOCR_TENCENT_INPUT=url``.
A PDF is recognized page by page (``IsPdf``, ``PdfPageNumber``), one result per page.

The SDK raises on an error body only when the reply's Content-Type is exactly
``application/json``; with ``application/json; charset=utf-8`` it hands the error back as if it
were an answer. So fcocr reads the raw body itself, looks for ``Response.Error`` always, and an
answer whose fields are all empty is a failure, never a silent success.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from ..config import env_choice, env_secret, env_url
from ..errors import ConfigError
from ..fields import Field, items_from
from ..model import Capability, Limits, Outcome
from ..prepare import Part, base64_limit
from ..retry import VendorFault, classify
from . import Job, Packaging
from .cloud import ClientCache, Reply, Row, call_pages, loads, network_error, outcome_from, run

NAME = "tencent"
ACTION, VERSION = "VatInvoiceOCR", "2018-11-19"
MiB = 1024 * 1024
REGIONS = ("ap-beijing", "ap-guangzhou", "ap-hongkong", "ap-shanghai", "na-toronto")
# Common and VatInvoiceOCR codes (seed 004) that mean "try again later": limits, internal errors, downloads.
TRANSIENT_CODES = frozenset({"RequestLimitExceeded", "RequestLimitExceeded.UinLimitExceeded",
                             "RequestLimitExceeded.GlobalRegionUinLimitExceeded", "InternalError",
                             "ResourceUnavailable", "FailedOperation.UnKnowError", "FailedOperation.DownLoadError",
                             "ClientNetworkError", "ServerNetworkError"})
# Seed 004's refusals of the account: authentication, permissions, arrears, the service not opened.
ACCOUNT_CODES = frozenset({"AuthFailure.", "UnauthorizedOperation.", "ResourceUnavailable.InArrears",
                           "ResourceUnavailable.ResourcePackageRunOut", "ResourceInsufficient.ChargeResourceExhaust",
                           "FailedOperation.ArrearsError", "FailedOperation.UnOpenError"})


@dataclass(frozen=True)
class TencentSettings:
    ENVIRONMENT = {
        "TENCENTCLOUD_SECRET_ID": "Tencent Cloud SecretId for tencent.VatInvoiceOCR (secret).",
        "TENCENTCLOUD_SECRET_KEY": "Tencent Cloud SecretKey (secret).",
        "TENCENTCLOUD_REGION": "Tencent region: ap-beijing, ap-guangzhou, ap-hongkong, ap-shanghai (default) or na-toronto.",
        "FCOCR_TENCENT_ENDPOINT": "Tencent OCR endpoint as a full URL (default https://ocr.tencentcloudapi.com).",
        "FCOCR_TENCENT_INPUT": "How tencent.VatInvoiceOCR receives the file: base64 (default) or url (a presigned OSS URL).",
    }
    secret_id: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    region: str = "ap-shanghai"
    endpoint: str = "https://ocr.tencentcloudapi.com"
    input: str = "base64"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "TencentSettings":
        return cls(secret_id=env_secret(env, "TENCENTCLOUD_SECRET_ID"), secret_key=env_secret(env, "TENCENTCLOUD_SECRET_KEY"),
                   region=env_choice(env, "TENCENTCLOUD_REGION", REGIONS, cls.region),
                   endpoint=env_url(env, "FCOCR_TENCENT_ENDPOINT") or cls.endpoint,
                   input=env_choice(env, "FCOCR_TENCENT_INPUT", ("base64", "url"), cls.input))


SETTINGS = TencentSettings
QPS = 10  # VatInvoiceOCR's default request rate limit: 10 per second (Capability.qps)
PRESIGN_SECONDS = 15 * 60
LIMITS = Limits(formats=frozenset({"png", "jpeg", "pdf"}), max_bytes=base64_limit(7 * MiB), min_side=19,
                max_side=10001)


def _info(name: str) -> str:
    return f"VatInvoiceInfos[Name={name}].Value"


VAT = {
    "invoiceType": Field(f"{_info('发票类型')}|{_info('发票名称')}"),
    "invoiceCode": Field(_info("发票代码"), "id"), "invoiceNumber": Field(_info("发票号码"), "number"),
    "invoiceDate": Field(_info("开票日期"), "date"), "checkCode": Field(_info("校验码"), "id"),
    "machineNumber": Field(_info("机器编号"), "id"),
    "totalAmount": Field(_info("合计金额"), "amount"), "totalTax": Field(_info("合计税额"), "amount"),
    "amountWithTax": Field(_info("小写金额"), "amount"), "amountWithTaxInWords": Field(_info("价税合计(大写)")),
    "sellerName": Field(_info("销售方名称")), "sellerTaxId": Field(_info("销售方识别号"), "id"),
    "sellerAddressPhone": Field(_info("销售方地址、电话")), "sellerBankAccount": Field(_info("销售方开户行及账号")),
    "buyerName": Field(_info("购买方名称")), "buyerTaxId": Field(_info("购买方识别号"), "id"),
    "buyerAddressPhone": Field(_info("购买方地址、电话")), "buyerBankAccount": Field(_info("购买方开户行及账号")),
    "payee": Field(_info("收款人")), "reviewer": Field(_info("复核")), "drawer": Field(_info("开票人")),
    "remarks": Field(_info("备注")),
    "items": items_from("Items", {
        "name": Field("Name"), "spec": Field("Spec"), "unit": Field("Unit"), "quantity": Field("Quantity"),
        "unitPrice": Field("UnitPrice", "amount"), "amount": Field("AmountWithoutTax", "amount"),
        "taxRate": Field("TaxRate"), "tax": Field("TaxAmount", "amount")}),
}
ROW = Row("vat_invoice", VAT)
CAPABILITY = Capability(id=f"{NAME}.{ACTION}", title="增值税发票识别 VAT invoice (images and PDFs, every page)",
                        limits=LIMITS, document_type="vat_invoice", qps=QPS)

_CLIENTS = ClientCache()


def _client(settings: TencentSettings, timeout: float) -> Any:
    if not (settings.secret_id and settings.secret_key):
        raise ConfigError("tencent.VatInvoiceOCR needs TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY",
                          code="NoCredentials")
    url = urlsplit(settings.endpoint)
    seconds = max(1, int(timeout))
    key = (url.scheme, url.netloc, settings.secret_id, settings.secret_key, settings.region,
           seconds)

    def make() -> Any:
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.ocr.v20181119 import ocr_client

        # HttpProfile wants host[:port] and the scheme apart (FCOCR_TENCENT_ENDPOINT is a full URL).
        http = HttpProfile(protocol=url.scheme or "https", endpoint=url.netloc, reqTimeout=seconds)
        return ocr_client.OcrClient(credential.Credential(settings.secret_id, settings.secret_key),
                                    settings.region, ClientProfile(httpProfile=http))

    return _CLIENTS.get(key, make)


def call_vat_invoice(settings: TencentSettings, params: dict[str, Any], timeout: float) -> Reply:
    """One VatInvoiceOCR call: the ``Response`` object, or VendorFault/TransientError."""
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

    client = _client(settings, timeout)
    try:
        content = client.call(ACTION, params)
    except TencentCloudSDKException as exc:
        raise classify(VendorFault(NAME, None, str(exc.code or "ClientError"), str(exc.message or "")[:300],
                                   exc.requestId or None)) from None
    except ValueError as exc:  # the SDK json-decodes an application/json body itself, before we see it
        raise classify(VendorFault(NAME, 200, "MalformedResponse", f"the answer is not JSON: {exc}")) from None
    except Exception as exc:  # requests' own exceptions when the SDK does not wrap them
        raise network_error(NAME, exc) from None
    body = loads(content, NAME, 200)
    response = body.get("Response") if isinstance(body, dict) else None
    if not isinstance(response, dict):
        raise classify(VendorFault(NAME, 200, "MalformedResponse", "the answer has no Response object"))
    error = response.get("Error")
    if error:  # whatever the Content-Type said
        raise classify(VendorFault(NAME, 200, str(error.get("Code") or "UnknownError"), str(error.get("Message") or ""),
                                   response.get("RequestId")))
    page_count = response.get("PdfPageSize")
    return Reply(response, body, response.get("RequestId"), page_count if isinstance(page_count, int) else None)


class TencentFamily:
    name = NAME
    capabilities = {CAPABILITY.id: CAPABILITY}

    @staticmethod
    def input_modes(capability: Capability) -> str:
        return "`ImageBase64`, or `ImageUrl` (presigned URL) with FCOCR_TENCENT_INPUT=url"
    transient_codes = TRANSIENT_CODES
    account_codes = ACCOUNT_CODES  # refusals of the account, not the input: a route may fall back (fcocr.fallback)
    packaging = Packaging(
        requirements=("tencentcloud-sdk-python-common", "tencentcloud-sdk-python-ocr"),
        verify=("fcocr.recognizers.tencent", "tencentcloud.common.credential", "tencentcloud.ocr.v20181119.ocr_client",
                "tencentcloud.common.profile.client_profile", "tencentcloud.common.profile.http_profile",
                "tencentcloud.common.exception.tencent_cloud_sdk_exception"))
    task_kinds: tuple[str, ...] = ()

    def recognize(self, capability: Capability, job: Job, options: dict) -> Outcome:
        settings = job.settings.family(NAME)

        def params_for(part: Part, page_number: int | None = None) -> dict[str, Any]:
            if part.original and settings.input == "url":
                params: dict[str, Any] = {"ImageUrl": job.presigned_url(PRESIGN_SECONDS)}
            else:
                params = {"ImageBase64": base64.b64encode(part.data).decode("ascii")}
            if part.format == "pdf":
                params.update(IsPdf=True, PdfPageNumber=page_number or 1)
            return params

        document = job.source_document()
        if document.format != "pdf" or len(document.data) > LIMITS.max_bytes:
            # Images, and PDFs too large to send whole (rendered page by page, as JPEG, by prepare.fit).
            return run(capability, ROW, job, options, lambda part, timeout: call_vat_invoice(
                settings, params_for(part), timeout), NAME)
        # A PDF that fits: the service renders it; one call per page (PdfPageNumber), up to FCOCR_MAX_PAGES, each
        # page's answer checkpointed before the next is sent.
        pages = document.pages_to_read
        whole = Part(document.data, "pdf", 0, original=True)

        def call(part: Part, timeout: float) -> Reply:
            return call_vat_invoice(settings, params_for(whole, part.page + 1), timeout)

        answers = call_pages(capability, job, (Part(b"", "pdf", n, original=True) for n in range(pages)), call,
                             pages=document.page_count)
        warnings = []
        if document.page_count > pages:
            warnings.append(f"only the first {pages} of {document.page_count} pages were recognized (FCOCR_MAX_PAGES)")
        reported = next((a.reply.page_count for a in answers if a.reply is not None), None)
        if reported and reported != document.page_count:
            warnings.append(f"Tencent reported {reported} pages; the PDF has {document.page_count}")
        return outcome_from(ROW, answers, options, warnings, NAME)


FAMILY = TencentFamily()
