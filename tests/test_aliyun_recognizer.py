"""aliyun.<Action> end to end: the real handler, the generic OpenAPI client (ACS3), presigned URLs fetched
from the OSS emulator by the viapi emulator, which answers with the seed's documented examples."""

from __future__ import annotations

import pytest

from fcocr import pipeline, tasks
from fcocr.errors import TransientError
from fcocr.recognizers import family as provider

from .cloud import AK, BUCKET, SK, TOKEN, frozen_time_left, image, pdf, result, route, upload, viapi_emulator
from .emulators.oss import OssEmulator
from .emulators.viapi import ViapiEmulator

ROUTABLE = sorted(c.split(".", 1)[1] for c, cap in provider("aliyun").capabilities.items() if cap.routable)
MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00\x00\x00\x08free" * 64


@pytest.fixture
def viapi(monkeypatch, oss):
    with viapi_emulator(monkeypatch, oss) as emulator:
        yield emulator


def input_for(action: str) -> tuple[str, bytes]:
    if action in ("RecognizePdf", "TrimDocument"):
        return "doc.pdf", pdf(2)
    if action == "RecognizeVideoCharacter":
        return "clip.mp4", MP4
    if action == "RecognizeVATInvoice":
        return "invoice.jpg", image()
    return "photo.png", image(fmt="PNG")


def calls(viapi, action):
    return [r for r in viapi.requests if r.action == action]


@pytest.mark.parametrize("action", ROUTABLE)
def test_every_action_is_called_as_documented_and_its_example_becomes_a_result(monkeypatch, oss, viapi, action):
    route(monkeypatch, f"aliyun.{action}")
    name, data = input_for(action)
    out = upload(oss, f"viapi/{action}/{name}", data)
    doc = result(oss, f"viapi/{action}/{name}")
    assert out["records"][0]["status"] == "succeeded", doc.get("error")
    [call] = calls(viapi, action)
    assert call.auth == "acs3" and call.status == 200 and call.fetched and call.fetched[0].status == 200
    assert call.fetched[0].size == len(data)  # the service downloaded the source itself, through its presigned URL
    example = ViapiEmulator.example(action)
    if action in ("TrimDocument", "RecognizeVideoCharacter"):
        assert doc["fields"] == example["Data"]  # from GetAsyncJobResult's Data.Result, decoded again
        assert len(calls(viapi, "GetAsyncJobResult")) == 2  # QUEUING, then PROCESS_SUCCESS
    else:
        assert doc["raw"]["Data"] == example["Data"]
        assert doc["vendorRequestId"] == call.request_id
    assert doc.get("fields") or doc.get("lines")


def test_id_card_numbers_sent_as_json_numbers_stay_strings_with_a_warning(monkeypatch, oss, viapi):
    route(monkeypatch, "aliyun.RecognizeIdentityCard", {"Side": "face"})
    upload(oss, "id/front.jpg", image())
    doc = result(oss, "id/front.jpg")
    assert doc["documentType"] == "idcard" and doc["fields"]["side"] == "front"
    assert doc["fields"]["idNumber"] == "310228199601115400" and doc["fields"]["birthDate"] == "1996-01-11"
    assert any("idNumber" in w and "leading zeros" in w for w in doc["warnings"])
    assert doc["raw"]["Data"]["FrontResult"]["IDNumber"] == 310228199601115400  # raw stays verbatim
    assert viapi.requests[0].params["Side"] == "face"


def test_vat_invoice_png_is_converted_staged_and_the_staged_copy_deleted(monkeypatch, oss, viapi):
    route(monkeypatch, "aliyun.RecognizeVATInvoice")
    upload(oss, "vat/scan.png", image(fmt="PNG"))
    doc = result(oss, "vat/scan.png")
    assert doc["status"] == "succeeded" and "converted from PNG" in " ".join(doc["warnings"])
    [call] = viapi.requests
    assert call.params["FileType"] == "jpg" and call.fetched[0].format.lower() == "jpeg"
    staged = [r.key for r in oss.requests if r.method == "PUT" and r.key.startswith(".fcocr-staging/")]
    assert len(staged) == 1 and not staged[0].endswith((".jpg", ".png"))  # cannot trigger the function
    assert oss.get(BUCKET, staged[0]) is None  # deleted after the call
    fields = doc["fields"]
    assert fields["sellerName"] == "三号技术有限责任公司" and fields["sellerTaxId"] == "91420200000123403"
    assert fields["invoiceNumber"] == "3753869" and fields["invoiceDate"] == "2020-12-15"
    assert fields["amountWithTax"] == "87" and fields["totalTax"] == "4.92"


def test_a_bucket_outside_shanghai_needs_a_staging_location(monkeypatch, oss, viapi):
    with OssEmulator(region="cn-hangzhou", credentials={AK: (SK, TOKEN)}) as hangzhou:
        hangzhou.create_bucket(BUCKET)
        monkeypatch.setenv("FCOCR_OSS_ENDPOINT", hangzhou.endpoint)
        monkeypatch.setenv("FCOCR_RETRY_BASE_MS", "1")
        route(monkeypatch, "aliyun.RecognizeBankCard")
        upload(hangzhou, "cards/a.jpg", image(), region="cn-hangzhou")
        error = result(hangzhou, "cards/a.jpg")["error"]
        assert error["code"] == "Aliyun.RegionNotSupported" and "FCOCR_VIAPI_STAGING" in error["message"]
        assert not viapi.requests  # nothing paid for
        # With a Shanghai staging bucket (the viapi emulator's OSS), the input is staged there and deleted after.
        monkeypatch.setenv("FCOCR_VIAPI_STAGING", "oss://staging-sh/fcocr/")
        monkeypatch.setenv("FCOCR_VIAPI_STAGING_ENDPOINT", oss.endpoint)  # the Shanghai emulator
        oss.create_bucket("staging-sh")
        pipeline.reset_app()  # settings are read once per process, as on a warm FC instance
        upload(hangzhou, "cards/b.jpg", image(), region="cn-hangzhou")
        doc = result(hangzhou, "cards/b.jpg")
        assert doc["status"] == "succeeded" and doc["fields"]["cardNumber"] == "6212262315007683105"
        assert oss.keys("staging-sh") == [] and any(r.bucket == "staging-sh" and r.method == "PUT" for r in oss.requests)


def test_an_async_job_still_running_leaves_a_pending_result_and_a_task_record(monkeypatch, oss, viapi):
    viapi.async_polls_before_done = 10_000
    monkeypatch.setenv("FCOCR_VIAPI_POLL_MS", "60000")
    route(monkeypatch, "aliyun.TrimDocument")
    frozen_time_left(monkeypatch, 50.0)  # time for the calls, not for another poll interval: give up polling
    out = upload(oss, "docs/long.pdf", pdf(1))
    assert out["records"][0]["status"] == "pending"
    doc = result(oss, "docs/long.pdf")
    job_id = calls(viapi, "TrimDocument")[0].request_id
    assert doc["task"]["id"] == job_id and doc["task"]["kind"] == "aliyun-async"
    record = tasks.load(open_oss(oss), doc["task"]["dataId"])
    assert record.task_id == job_id and record.key == "docs/long.pdf" and record.etag == doc["source"]["etag"]
    assert 1 <= len(calls(viapi, "GetAsyncJobResult"))


def open_oss(oss):
    from fcocr.runtime import Credentials
    from fcocr.storage import OssStorage

    return OssStorage(BUCKET, endpoint=oss.endpoint, region="cn-shanghai", credentials=Credentials(AK, SK, TOKEN))


def test_a_failed_async_job_is_a_permanent_failure_with_its_code(monkeypatch, oss, viapi):
    viapi.fail_async_job(status="PROCESS_FAILED", code="InvalidParameter", message="paramsIllegal")
    route(monkeypatch, "aliyun.TrimDocument")
    upload(oss, "docs/bad.pdf", pdf(1))
    error = result(oss, "docs/bad.pdf")["error"]
    assert error["code"] == "Aliyun.PROCESS_FAILED" and error["vendorCode"] == "InvalidParameter"


def test_limits_are_checked_before_paying(monkeypatch, oss, viapi):
    route(monkeypatch, "aliyun.TrimDocument")
    upload(oss, "docs/three.pdf", pdf(3))
    assert result(oss, "docs/three.pdf")["error"]["code"] == "TooManyPages" and not viapi.requests


@pytest.mark.parametrize("code,status,transient", [
    ("Throttling.User", 400, True), ("InternalError", 500, True), ("ServiceUnavailable", 503, True),
    ("InvalidImage.Content", 400, False), ("InvalidApi.NotPurchase", 403, False)])
def test_documented_errors_are_retried_or_recorded(monkeypatch, oss, viapi, code, status, transient):
    route(monkeypatch, "aliyun.RecognizeVINCode")
    viapi.inject_fault("RecognizeVINCode", status=status, code=code, times=1)
    out = upload(oss, "vin/a.jpg", image())
    doc = result(oss, "vin/a.jpg")
    if transient:
        assert out["records"][0]["status"] == "succeeded" and len(viapi.requests) == 2
    else:
        assert doc["error"]["code"] == f"Aliyun.{code}" and doc["error"]["vendorCode"] == code
        assert doc["error"]["vendorRequestId"] and len(viapi.requests) == 1


@pytest.mark.parametrize("kind", ["drop", "malformed", "html"])
def test_broken_answers_are_transient_and_end_in_a_retryable_failure(monkeypatch, oss, viapi, kind):
    route(monkeypatch, "aliyun.RecognizeVINCode")
    viapi.inject_fault("RecognizeVINCode", kind=kind, times=10)
    with pytest.raises(TransientError):
        upload(oss, "vin/b.jpg", image())
    assert result(oss, "vin/b.jpg")["error"]["retryable"] is True and len(viapi.requests) == 4


def test_a_wrong_secret_is_refused_by_the_signature_check(monkeypatch, oss):
    with ViapiEmulator(credentials={AK: ("another-secret", TOKEN)}, oss=oss) as strict:
        monkeypatch.setenv("FCOCR_ALIYUN_OCR_ENDPOINT", strict.endpoint)
        route(monkeypatch, "aliyun.RecognizeVINCode")
        upload(oss, "vin/c.jpg", image())
        assert result(oss, "vin/c.jpg")["error"]["vendorCode"] == "SignatureDoesNotMatch"
        assert [r.error_code for r in strict.requests] == ["SignatureDoesNotMatch"]
