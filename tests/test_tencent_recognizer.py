"""tencent.VatInvoiceOCR end to end: the real handler, the real SDK, the emulator verifying TC3 signatures."""

from __future__ import annotations

import pytest

from fcocr.errors import TransientError

from .cloud import image, pdf, result, route, tencent_emulator, upload


@pytest.fixture
def tencent(monkeypatch, oss):
    with tencent_emulator(monkeypatch) as emulator:
        route(monkeypatch, "tencent.VatInvoiceOCR")
        yield emulator


def test_an_invoice_photo_becomes_normalized_fields_with_raw_kept(oss, tencent):
    out = upload(oss, "invoices/2024/票.jpg", image())
    assert out["records"][0]["status"] == "succeeded"
    doc = result(oss, "invoices/2024/票.jpg")
    assert doc["documentType"] == "vat_invoice" and doc["recognizer"] == "tencent.VatInvoiceOCR"
    fields = doc["fields"]
    assert fields["invoiceNumber"] == "63591128"  # "No63591128" on the wire
    assert fields["invoiceCode"] == "012001900311"  # the leading zero survives
    assert fields["invoiceDate"] == "2019-06-16"
    assert (fields["totalAmount"], fields["totalTax"], fields["amountWithTax"]) == ("87.28", "2.62", "89.90")
    assert fields["sellerTaxId"] == "911201103409033300" and fields["buyerName"] == "腾讯优图有限公司"
    assert fields["checkCode"] == "04656054380312409795"
    assert fields["items"] == [{"name": "客运服务费", "spec": "无", "unit": "次", "quantity": "1", "unitPrice": "87.28",
                                "amount": "87.28", "taxRate": "3%", "tax": "2.62"}]
    [call] = tencent.requests
    assert doc["raw"]["Response"]["RequestId"] == call.request_id == doc["vendorRequestId"]
    assert doc["raw"]["Response"]["VatInvoiceInfos"][0]["Name"] == "销售方识别号"  # verbatim
    assert call.source == "base64" and call.region == "ap-shanghai" and call.error_code is None


def test_every_page_of_a_pdf_is_recognized(oss, tencent):
    upload(oss, "invoices/two.pdf", pdf(2))
    doc = result(oss, "invoices/two.pdf")
    assert doc["status"] == "succeeded"
    assert [(r.pdf_page, r.params.get("IsPdf")) for r in tencent.requests] == [(1, True), (2, True)]
    numbers = [page["fields"]["invoiceNumber"] for page in doc["pages"]]
    assert len(set(numbers)) == 2 and doc["fields"]["invoiceNumber"] == numbers[0]
    assert len(doc["raw"]) == 2


def test_url_input_is_a_presigned_url_the_service_downloads(oss, tencent, monkeypatch):
    monkeypatch.setenv("FCOCR_TENCENT_INPUT", "url")
    upload(oss, "invoices/by-url.png", image(fmt="PNG"))
    [call] = tencent.requests
    assert call.source == "url" and "ImageBase64" not in call.params
    assert call.fetched_bytes == len(oss.get("fcocr-cloud", "invoices/by-url.png"))
    assert any(r.auth == "presign-v4" and r.key == "invoices/by-url.png" for r in oss.requests)
    assert result(oss, "invoices/by-url.png")["status"] == "succeeded"


def test_over_7mb_after_base64_is_recompressed_and_gif_is_converted(oss, tencent):
    big = image((2200, 1600), fmt="PNG", noise=True)
    assert len(big) > 5_505_024  # over Tencent's 7 MB once base64-encoded
    upload(oss, "invoices/big.png", big)
    doc = result(oss, "invoices/big.png")
    assert doc["status"] == "succeeded" and any("recompressed" in w or "converted" in w for w in doc["warnings"])
    assert tencent.requests[-1].input_bytes <= 5_505_024 and tencent.requests[-1].file_type == "JPEG"
    upload(oss, "invoices/anim.gif", image(fmt="GIF"))
    assert tencent.requests[-1].file_type in {"JPEG", "PNG"}
    assert result(oss, "invoices/anim.gif")["status"] == "succeeded"


def test_throttling_is_retried_and_then_succeeds(oss, tencent):
    tencent.inject_fault(kind="error", code="RequestLimitExceeded", times=2)
    upload(oss, "invoices/busy.jpg", image())
    assert [r.error_code for r in tencent.requests] == ["RequestLimitExceeded", "RequestLimitExceeded", None]
    assert result(oss, "invoices/busy.jpg")["status"] == "succeeded"


def test_a_blurred_image_is_a_permanent_failure_recorded_once(oss, tencent):
    tencent.inject_fault(kind="error", code="FailedOperation.ImageBlur", message="图片模糊", times=5)
    out = upload(oss, "invoices/blur.jpg", image())
    assert out["records"][0]["status"] == "failed" and len(tencent.requests) == 1
    error = result(oss, "invoices/blur.jpg")["error"]
    assert error["code"] == "Tencent.FailedOperation.ImageBlur" and error["retryable"] is False
    assert error["vendorMessage"] == "图片模糊" and error["vendorRequestId"] == tencent.requests[0].request_id


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "text/html"])
def test_an_error_with_any_content_type_is_an_error_never_an_empty_success(oss, tencent, content_type):
    tencent.inject_fault(kind="content-type", code="FailedOperation.ImageNoText", content_type=content_type, times=5)
    upload(oss, "invoices/notext.jpg", image())
    doc = result(oss, "invoices/notext.jpg")
    assert doc["status"] == "failed" and doc["error"]["vendorCode"] == "FailedOperation.ImageNoText"


def test_an_answer_with_every_field_empty_is_a_failure(oss, tencent):
    tencent.inject_fault(kind="empty", times=5)
    upload(oss, "invoices/empty.jpg", image())
    doc = result(oss, "invoices/empty.jpg")
    assert doc["status"] == "failed" and doc["error"]["code"] == "Tencent.NoFields"


@pytest.mark.parametrize("kind", ["http", "drop", "malformed"])
def test_faults_that_outlive_the_retries_leave_a_retryable_failure_and_raise(oss, tencent, kind):
    tencent.inject_fault(kind=kind, status=503, times=10)
    with pytest.raises(TransientError):
        upload(oss, f"invoices/{kind}.jpg", image())
    doc = result(oss, f"invoices/{kind}.jpg")
    assert doc["status"] == "failed" and doc["error"]["retryable"] is True
    assert len(tencent.requests) == 4  # FCOCR_RETRY_ATTEMPTS default


def test_a_timeout_is_retried(oss, tencent, monkeypatch):
    monkeypatch.setenv("FCOCR_CALL_TIMEOUT", "1")
    tencent.inject_fault(kind="delay", delay=3.0, times=1)
    upload(oss, "invoices/slow.jpg", image())
    assert result(oss, "invoices/slow.jpg")["status"] == "succeeded"
    tencent.release_delayed()
    assert len(tencent.requests) >= 1


def test_a_wrong_key_fails_permanently_with_the_vendors_code(oss, tencent, monkeypatch):
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", "not-the-key")
    out = upload(oss, "invoices/auth.jpg", image())
    assert out["records"][0]["status"] == "failed"
    assert result(oss, "invoices/auth.jpg")["error"]["vendorCode"] == "AuthFailure.SignatureFailure"


def test_missing_credentials_say_which_variables(oss, tencent, monkeypatch):
    monkeypatch.delenv("TENCENTCLOUD_SECRET_ID")
    upload(oss, "invoices/nocreds.jpg", image())
    error = result(oss, "invoices/nocreds.jpg")["error"]
    assert "TENCENTCLOUD_SECRET_ID" in error["message"] and not tencent.requests
