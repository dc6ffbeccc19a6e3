"""The Tencent Cloud OCR emulator, driven through the real tencentcloud SDK.

Calls go through ``OcrClient`` (``call_json`` and the typed ``VatInvoiceOCR``), so what is checked
is what the SDK puts on the wire and what it makes of each answer. Requests the SDK cannot be
made to send (a tampered body, a wrong credential scope...) are signed by the SDK's own request
builder and altered afterwards, so the verifier is never only checked against itself.
"""

import base64
import io
import json
import socket
import threading
import time

import oss2
import pytest
import requests
from PIL import Image
from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.http.request import RequestInternal
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.common.retry import StandardRetryer
from tencentcloud.common.sign import Sign
from tencentcloud.ocr.v20181119 import models
from tencentcloud.ocr.v20181119.ocr_client import OcrClient

from tests.emulators.oss import OssEmulator
from tests.emulators.tencent import (
    ALLOWED_REGIONS,
    MAX_BASE64_BYTES,
    MAX_RAW_BYTES,
    TencentEmulator,
    TencentError,
    example_response,
    tc3_signature,
    verify_tc3,
)

SECRET_ID, SECRET_KEY = "AKIDtest", "secret-test"


# ---- helpers --------------------------------------------------------------------------------

def image(fmt="PNG", size=(120, 80), **save):
    buf = io.BytesIO()
    Image.new("RGB", size, "white").save(buf, fmt, **save)
    return buf.getvalue()


def pdf(pages):
    frames = [Image.new("RGB", (200, 100), "white") for _ in range(pages)]
    buf = io.BytesIO()
    frames[0].save(buf, "PDF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def b64(data):
    return base64.b64encode(data).decode("ascii")


def padded_png(total):
    """A valid PNG of exactly `total` bytes: readers stop at IEND and ignore what follows."""
    data = image()
    return data + b"\0" * (total - len(data))


PNG = image()
PNG_B64 = b64(PNG)


def make_client(tc, secret_id=SECRET_ID, secret_key=SECRET_KEY, region="ap-guangzhou",
                token=None, timeout=10, retryer=None):
    http = HttpProfile(endpoint=tc.host, protocol="http", reqTimeout=timeout)
    return OcrClient(credential.Credential(secret_id, secret_key, token), region,
                     ClientProfile(httpProfile=http, retryer=retryer))


def error_of(call, *args):
    with pytest.raises(TencentCloudSDKException) as got:
        call(*args)
    return got.value


def code_of(tc, params, **client_kw):
    return error_of(make_client(tc, **client_kw).call_json, "VatInvoiceOCR", params).code


def infos(response):
    return {i["Name"]: i["Value"] for i in response["Response"]["VatInvoiceInfos"]}


def sdk_signed(tc, params, unsigned_payload=False, **client_kw):
    """(headers, body) exactly as the SDK would send VatInvoiceOCR, without sending it."""
    client = make_client(tc, **client_kw)
    client.profile.unsignedPayload = unsigned_payload
    req = RequestInternal(tc.host, "POST", "/", header={})
    client._build_req_inter("VatInvoiceOCR", params, req)
    return dict(req.header), req.data.encode("utf-8")


def post_raw(tc, headers, body):
    resp = requests.post(tc.endpoint + "/", data=body, headers=headers, timeout=10)
    assert resp.status_code == 200
    return resp.json()["Response"]


@pytest.fixture
def tc():
    with TencentEmulator() as emulator:
        yield emulator


@pytest.fixture
def oss():
    with OssEmulator() as emulator:
        emulator.create_bucket("invoices")
        yield emulator


def presigned(oss, key, data=None):
    """A presigned GET URL for `key` (stored first unless `data` is None)."""
    if data is not None:
        oss.put("invoices", key, data)
    bucket = oss2.Bucket(oss2.StsAuth("STS.test-ak", "test-secret", "test-token"), oss.endpoint,
                         "invoices")
    return bucket.sign_url("GET", key, 60)


# ---- the signature algorithm ------------------------------------------------------------------

# Tencent's published example ("签名方法 v3"). The SecretId is written in two pieces only so the
# repository's scan for committed AKID... keys does not flag this documentation value.
WORKED = dict(
    secret_id="AKIDz8krbs" + "J5yKBZQpn74WFkmLPx3EXAMPLE", secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
    timestamp=1551113065, host="cvm.tencentcloudapi.com",
    content_type="application/json; charset=utf-8",
    # Exactly the bytes of the documented payload: json.dumps of the dict, \u escapes included.
    payload=b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}',
    signature="72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")


def worked_headers(**changes):
    headers = {
        "content-type": WORKED["content_type"], "host": WORKED["host"],
        "x-tc-action": "DescribeInstances", "x-tc-timestamp": str(WORKED["timestamp"]),
        "x-tc-version": "2017-03-12", "x-tc-region": "ap-guangzhou",
        "authorization": "TC3-HMAC-SHA256 Credential=%s/2019-02-25/cvm/tc3_request, "
                         "SignedHeaders=content-type;host, Signature=%s"
                         % (WORKED["secret_id"], WORKED["signature"])}
    headers.update(changes)
    return headers


def test_tencent_v3_worked_example_signature():
    result = tc3_signature(
        WORKED["secret_key"], method="POST", uri="/", query="",
        headers={"content-type": WORKED["content_type"], "host": WORKED["host"]},
        signed_headers=["content-type", "host"], payload=WORKED["payload"],
        timestamp=WORKED["timestamp"], service="cvm")
    assert result.canonical_request == (
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
        "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064")
    assert result.string_to_sign == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031")
    assert result.signature == WORKED["signature"]
    # The SDK's own signer agrees on the same string to sign.
    assert Sign.sign_tc3(WORKED["secret_key"], "2019-02-25", "cvm",
                         result.string_to_sign) == WORKED["signature"]


def test_verifier_accepts_the_worked_example_and_rejects_any_change():
    creds = {WORKED["secret_id"]: WORKED["secret_key"]}

    def verify(headers=None, body=WORKED["payload"], now=WORKED["timestamp"] + 10):
        return verify_tc3(method="POST", path="/", query="", headers=headers or worked_headers(),
                          body=body, credentials=creds, now=now, service="cvm")

    assert verify() == WORKED["secret_id"]
    # Header values are lower-cased before signing, so case changes do not matter...
    assert verify(worked_headers(host="CVM.tencentcloudapi.com"))
    failures = [
        dict(body=WORKED["payload"].replace(b"1", b"2", 1)),                 # payload
        dict(headers=worked_headers(host="cvm.tencentcloudapi.com:443")),     # signed header
        dict(headers=worked_headers(**{"content-type": "application/json"})),
        dict(headers=worked_headers(**{"x-tc-timestamp": "1551113066"})),     # string to sign
    ]
    for change in failures:
        with pytest.raises(TencentError) as got:
            verify(**change)
        assert got.value.code == "AuthFailure.SignatureFailure", change
    for now, code in [(WORKED["timestamp"] + 301, "AuthFailure.SignatureExpire"),
                      (WORKED["timestamp"] - 301, "AuthFailure.SignatureExpire")]:
        with pytest.raises(TencentError) as got:
            verify(now=now)
        assert got.value.code == code
    assert verify(now=WORKED["timestamp"] + 300)
    with pytest.raises(TencentError) as got:
        verify_tc3(method="POST", path="/", query="", headers=worked_headers(),
                   body=WORKED["payload"], credentials=creds, now=WORKED["timestamp"],
                   service="ocr")
    assert got.value.code == "AuthFailure.SignatureFailure"


# ---- the SDK's correctly signed calls ----------------------------------------------------------

def test_call_json_returns_the_documented_example(tc):
    out = make_client(tc).call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})
    response = out["Response"]
    assert set(response) == {"VatInvoiceInfos", "Items", "PdfPageSize", "Angle", "RequestId"}
    assert response["PdfPageSize"] == 0 and response["Angle"] == 0
    values = infos(out)
    assert values["发票号码"] == "No63591128"
    assert values["发票代码"] == "012001900311"         # a string, leading zero kept
    assert values["合计金额"] == "¥87.28" and values["小写金额"] == "¥89.90"
    assert values["是否有公司印章"] == "0"
    assert response["Items"][0]["UnitPrice"] == "87.28"
    seller = response["VatInvoiceInfos"][0]
    assert seller["Polygon"]["LeftTop"] == {"X": 374, "Y": 824}
    assert response["VatInvoiceInfos"][-1]["Polygon"] is None

    (record,) = tc.requests
    assert (record.action, record.region, record.secret_id, record.status, record.error_code) == (
        "VatInvoiceOCR", "ap-guangzhou", SECRET_ID, 200, None)
    assert record.params == {"ImageBase64": PNG_B64}
    assert (record.source, record.input_bytes, record.file_type) == ("base64", len(PNG), "PNG")
    assert record.request_id == response["RequestId"]
    assert abs(record.timestamp - time.time()) < 60


def test_typed_client_method_deserialises_the_example(tc):
    req = models.VatInvoiceOCRRequest()
    req.ImageBase64 = b64(image("JPEG", quality=90))
    resp = make_client(tc).VatInvoiceOCR(req)
    assert len(resp.VatInvoiceInfos) == 50
    assert resp.VatInvoiceInfos[0].Polygon.RightBottom.X == 614
    assert resp.Items[0].TaxRate == "3%"
    assert resp.RequestId == tc.requests[0].request_id
    assert tc.requests[0].file_type == "JPEG"


@pytest.mark.parametrize("region", ALLOWED_REGIONS)
def test_every_documented_region_is_accepted(tc, region):
    assert make_client(tc, region=region).call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})


def test_unsigned_payload_is_accepted_and_leaves_the_body_unsigned(tc):
    client = make_client(tc)
    client.profile.unsignedPayload = True
    assert client.call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})
    headers, _ = sdk_signed(tc, {"ImageBase64": PNG_B64}, unsigned_payload=True)
    assert headers["X-TC-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    other = json.dumps({"ImageBase64": b64(image(size=(121, 80)))}).encode()
    assert "VatInvoiceInfos" in post_raw(tc, headers, other)     # the body is not covered


def test_temporary_keys_need_their_token():
    with TencentEmulator(credentials={"AKIDtmp": ("tmp-secret", "tmp-token")}) as tc:
        assert make_client(tc, "AKIDtmp", "tmp-secret", token="tmp-token").call_json(
            "VatInvoiceOCR", {"ImageBase64": PNG_B64})
        assert code_of(tc, {"ImageBase64": PNG_B64}, secret_id="AKIDtmp",
                       secret_key="tmp-secret") == "AuthFailure.TokenFailure"
        assert code_of(tc, {"ImageBase64": PNG_B64}, secret_id="AKIDtmp",
                       secret_key="tmp-secret", token="other") == "AuthFailure.TokenFailure"


# ---- authentication and routing failures ------------------------------------------------------

def test_wrong_key_and_unknown_id(tc):
    err = error_of(make_client(tc, secret_key="wrong").call_json, "VatInvoiceOCR",
                   {"ImageBase64": PNG_B64})
    assert err.code == "AuthFailure.SignatureFailure"
    assert err.requestId == tc.requests[-1].request_id and err.requestId
    assert code_of(tc, {"ImageBase64": PNG_B64}, secret_id="AKIDnobody") == \
        "AuthFailure.SecretIdNotFound"
    assert [r.error_code for r in tc.requests] == ["AuthFailure.SignatureFailure",
                                                   "AuthFailure.SecretIdNotFound"]
    assert tc.requests[1].secret_id == "AKIDnobody"


def test_timestamp_more_than_five_minutes_off_is_expired(tc):
    base = time.time
    for shift in (301, -301):
        tc.clock = lambda shift=shift: base() + shift
        assert code_of(tc, {"ImageBase64": PNG_B64}) == "AuthFailure.SignatureExpire"
    tc.clock = lambda: base() + 290
    assert make_client(tc).call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})


def test_stale_timestamp_in_a_raw_request(tc):
    headers, body = sdk_signed(tc, {"ImageBase64": PNG_B64})
    tc.clock = lambda: int(headers["X-TC-Timestamp"]) + 301
    assert post_raw(tc, headers, body)["Error"]["Code"] == "AuthFailure.SignatureExpire"
    tc.clock = lambda: int(headers["X-TC-Timestamp"]) + 299
    assert "VatInvoiceInfos" in post_raw(tc, headers, body)


@pytest.mark.parametrize("region, code", [
    ("ap-chengdu", "UnsupportedRegion"),
    ("eu-frankfurt", "UnsupportedRegion"),
    ("Guangzhou!", "InvalidParameterValue"),
    ("", "MissingParameter"),          # the SDK leaves X-TC-Region out for an empty region
])
def test_bad_region(tc, region, code):
    assert code_of(tc, {"ImageBase64": PNG_B64}, region=region) == code


def test_wrong_action_and_version(tc):
    client = make_client(tc)
    assert error_of(client.call_json, "GeneralBasicOCR", {"ImageBase64": PNG_B64}).code == \
        "InvalidAction"
    common = CommonClient("ocr", "2020-01-01", credential.Credential(SECRET_ID, SECRET_KEY),
                          "ap-guangzhou",
                          ClientProfile(httpProfile=HttpProfile(endpoint=tc.host, protocol="http")))
    assert error_of(common.call_json, "VatInvoiceOCR", {"ImageBase64": PNG_B64}).code == \
        "NoSuchVersion"


def test_tampered_requests_are_rejected(tc):
    params = {"ImageBase64": PNG_B64}
    headers, body = sdk_signed(tc, params)
    assert "VatInvoiceInfos" in post_raw(tc, headers, body)       # untouched: accepted

    def code(headers=headers, body=body):
        return post_raw(tc, headers, body)["Error"]["Code"]

    tampered = json.dumps({"ImageBase64": b64(image(size=(121, 80)))}).encode()
    assert code(body=tampered) == "AuthFailure.SignatureFailure"
    assert code(body=body + b" ") == "AuthFailure.SignatureFailure"
    assert code(headers={**headers, "Host": "127.0.0.1:1"}) == "AuthFailure.SignatureFailure"
    assert code(headers={**headers, "Content-Type": "application/json; charset=utf-8"}) == \
        "AuthFailure.SignatureFailure"
    auth = headers["Authorization"]
    date = auth.split("/")[1]
    assert code(headers={**headers, "Authorization": auth.replace("/ocr/", "/cvm/")}) == \
        "AuthFailure.SignatureFailure"
    assert code(headers={**headers, "Authorization": auth.replace(date, "2001-01-01")}) == \
        "AuthFailure.SignatureFailure"
    assert code(headers={**headers, "Authorization": auth.replace("content-type;host", "host")}) \
        == "AuthFailure.InvalidAuthorization"
    assert code(headers={**headers, "Authorization": auth.replace("TC3-HMAC-SHA256", "HMAC")}) \
        == "AuthFailure.InvalidAuthorization"
    del_auth = {k: v for k, v in headers.items() if k != "Authorization"}
    assert code(headers=del_auth) == "AuthFailure.InvalidAuthorization"
    assert code(headers={**headers, "X-TC-Action": "vatInvoiceOCR"}) == "InvalidAction"
    assert code(headers={**headers, "X-TC-Version": "2018-11-20"}) == "NoSuchVersion"
    assert tc.requests[0].status == 200 and tc.requests[1].error_code == \
        "AuthFailure.SignatureFailure"


def test_get_and_form_requests_are_not_implemented(tc):
    client = make_client(tc)
    client.profile.httpProfile.reqMethod = "GET"
    err = error_of(client.call_json, "VatInvoiceOCR", {"ImageBase64": PNG_B64})
    assert err.code == "ServerNetworkError" and b"POST with a JSON body only" in err.message
    assert tc.requests[-1].status == 501


# ---- input rules --------------------------------------------------------------------------------

def test_image_url_wins_over_image_base64(tc, oss):
    url = presigned(oss, "invoice.png", PNG)
    out = make_client(tc).call_json("VatInvoiceOCR", {
        "ImageBase64": b64(image("GIF")), "ImageUrl": url})    # the GIF alone would be refused
    assert infos(out)["发票号码"] == "No63591128"
    record = tc.requests[-1]
    assert (record.source, record.fetched_url, record.fetched_bytes, record.file_type) == (
        "url", url, len(PNG), "PNG")
    assert oss.requests[-1].status == 200


def test_seven_megabytes_after_base64_for_base64_input(tc):
    client = make_client(tc)
    fits, over = padded_png(MAX_RAW_BYTES), padded_png(MAX_RAW_BYTES + 1)
    assert len(b64(fits)) == MAX_BASE64_BYTES == 7 * 1024 * 1024
    assert len(b64(over)) > MAX_BASE64_BYTES
    assert client.call_json("VatInvoiceOCR", {"ImageBase64": b64(fits)})
    assert error_of(client.call_json, "VatInvoiceOCR", {"ImageBase64": b64(over)}).code == \
        "FailedOperation.ImageSizeTooLarge"


def test_seven_megabytes_after_base64_for_downloads(tc, oss):
    client = make_client(tc)
    assert client.call_json("VatInvoiceOCR",
                            {"ImageUrl": presigned(oss, "fits.png", padded_png(MAX_RAW_BYTES))})
    assert tc.requests[-1].fetched_bytes == MAX_RAW_BYTES
    err = error_of(client.call_json, "VatInvoiceOCR",
                   {"ImageUrl": presigned(oss, "over.png", padded_png(MAX_RAW_BYTES + 1))})
    assert err.code == "FailedOperation.ImageSizeTooLarge"


@pytest.mark.parametrize("data, code", [
    (image("GIF"), "FailedOperation.ImageDecodeFailed"),
    (image("BMP"), "FailedOperation.ImageDecodeFailed"),
    (b"just some bytes", "FailedOperation.ImageDecodeFailed"),
    (PNG[:60], "FailedOperation.ImageDecodeFailed"),                     # truncated PNG
    (pdf(1), "FailedOperation.ImageDecodeFailed"),                       # PDF without IsPdf
    (image(size=(19, 100)), "InvalidParameter.EngineImageDecodeFailed"),  # under 20 px
    (image(size=(10001, 20)), "FailedOperation.ImageSizeTooLarge"),       # over 10000 px
])
def test_refused_files(tc, data, code):
    assert code_of(tc, {"ImageBase64": b64(data)}) == code


def test_pixel_bounds_are_inclusive(tc):
    client = make_client(tc)
    for size in [(20, 20), (10000, 20), (20, 10000)]:
        assert client.call_json("VatInvoiceOCR", {"ImageBase64": b64(image(size=size))})


def test_gif_is_refused_from_a_url_too(tc, oss):
    url = presigned(oss, "a.gif", image("GIF"))
    assert code_of(tc, {"ImageUrl": url}) == "FailedOperation.ImageDecodeFailed"
    assert tc.requests[-1].file_type == "GIF"


@pytest.mark.parametrize("params, code", [
    ({}, "FailedOperation.EmptyImageError"),
    ({"ImageUrl": "", "ImageBase64": ""}, "FailedOperation.EmptyImageError"),
    ({"ImageBase64": "data:image/png;base64," + PNG_B64}, "FailedOperation.ImageDecodeFailed"),
    ({"ImageBase64": PNG_B64[:-1]}, "FailedOperation.ImageDecodeFailed"),
    ({"lmageUrl": "http://127.0.0.1/a.jpg"}, "UnknownParameter"),    # the seed's OCR typo
    ({"ImageBase64": PNG_B64, "IsPdf": "true"}, "InvalidParameter"),
    ({"ImageBase64": PNG_B64, "PdfPageNumber": "2"}, "InvalidParameter"),
    ({"ImageBase64": PNG_B64, "PdfPageNumber": 0}, "InvalidParameterValue"),
    ({"ImageUrl": 7}, "InvalidParameter"),
])
def test_parameter_errors(tc, params, code):
    assert code_of(tc, params) == code


def test_download_failures(oss):
    with TencentEmulator(download_timeout=0.3) as tc:
        assert code_of(tc, {"ImageUrl": presigned(oss, "missing.png")}) == \
            "FailedOperation.DownLoadError"
        assert (oss.requests[-1].status, oss.requests[-1].error_code) == (404, "NoSuchKey")
        assert code_of(tc, {"ImageUrl": "file:///etc/passwd"}) == "FailedOperation.DownLoadError"
        refused = socket.socket()
        refused.bind(("127.0.0.1", 0))
        port = refused.getsockname()[1]
        refused.close()                                       # nothing listens there now
        assert code_of(tc, {"ImageUrl": "http://127.0.0.1:%d/a.png" % port}) == \
            "FailedOperation.DownLoadError"
        with socket.socket() as silent:                       # accepts (backlog), never answers
            silent.bind(("127.0.0.1", 0))
            silent.listen(1)
            url = "http://127.0.0.1:%d/a.png" % silent.getsockname()[1]
            started = time.monotonic()
            assert code_of(tc, {"ImageUrl": url}) == "FailedOperation.DownLoadError"
            assert 0.25 < time.monotonic() - started < 3
        assert code_of(tc, {"ImageUrl": presigned(oss, "empty.png", b"")}) == \
            "FailedOperation.EmptyImageError"


# ---- PDFs -----------------------------------------------------------------------------------------

def test_pdf_pages(tc):
    client = make_client(tc)
    doc = b64(pdf(3))
    first = client.call_json("VatInvoiceOCR", {"ImageBase64": doc, "IsPdf": True})
    second = client.call_json("VatInvoiceOCR", {"ImageBase64": doc, "IsPdf": True,
                                                "PdfPageNumber": 2})
    assert first["Response"]["PdfPageSize"] == second["Response"]["PdfPageSize"] == 3
    assert infos(first)["发票号码"] == "No63591128"
    assert infos(second)["发票号码"] == "No63591129"
    assert (tc.requests[1].pdf_page, tc.requests[1].pdf_page_size) == (2, 3)
    err = error_of(client.call_json, "VatInvoiceOCR",
                   {"ImageBase64": doc, "IsPdf": True, "PdfPageNumber": 4})
    assert err.code == "InvalidParameterValue.InvalidParameterValueLimit"
    # IsPdf also takes images; PdfPageSize stays 0 and PdfPageNumber is ignored for them.
    image_out = client.call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64, "IsPdf": True,
                                                   "PdfPageNumber": 9})
    assert image_out["Response"]["PdfPageSize"] == 0
    assert code_of(tc, {"ImageBase64": b64(b"%PDF-1.4 broken"), "IsPdf": True}) == \
        "FailedOperation.ImageDecodeFailed"


def test_pdf_from_a_url(tc, oss):
    out = make_client(tc).call_json("VatInvoiceOCR", {
        "ImageUrl": presigned(oss, "inv.pdf", pdf(2)), "IsPdf": True, "PdfPageNumber": 2})
    assert out["Response"]["PdfPageSize"] == 2
    assert infos(out)["发票号码"] == "No63591129"


def test_set_response_per_page_and_verbatim(tc):
    client = make_client(tc)
    tc.set_response({"VatInvoiceInfos": [{"Name": "发票号码", "Value": "P2", "Polygon": None}],
                     "Items": [], "Angle": 1.5}, page=2)
    tc.set_response({"Response": {"VatInvoiceInfos": [], "Items": [], "Angle": 0,
                                  "RequestId": "fixed-id"}})
    doc = b64(pdf(2))
    page2 = client.call_json("VatInvoiceOCR", {"ImageBase64": doc, "IsPdf": True,
                                               "PdfPageNumber": 2})["Response"]
    assert page2["VatInvoiceInfos"][0]["Value"] == "P2" and page2["Angle"] == 1.5
    assert page2["PdfPageSize"] == 2 and page2["RequestId"] == tc.requests[-1].request_id
    page1 = client.call_json("VatInvoiceOCR", {"ImageBase64": doc, "IsPdf": True})["Response"]
    assert page1 == {"VatInvoiceInfos": [], "Items": [], "Angle": 0, "RequestId": "fixed-id",
                     "PdfPageSize": 2}
    tc.set_response('{"Response": {"RequestId": "r", "VatInvoiceInfos": [{"Value": 3753869}]}}')
    assert client.call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})["Response"][
        "VatInvoiceInfos"][0]["Value"] == 3753869
    tc.reset_responses()
    assert infos(client.call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64}))["发票号码"] == \
        "No63591128"


def test_example_response_is_a_fresh_copy():
    a = example_response()
    a["VatInvoiceInfos"].clear()
    assert len(example_response()["VatInvoiceInfos"]) == 50
    assert {i["Name"]: i["Value"] for i in example_response(3)["VatInvoiceInfos"]}[
        "发票号码"] == "No63591130"


# ---- faults, and what the SDK makes of them --------------------------------------------------

@pytest.mark.parametrize("code", ["RequestLimitExceeded", "InternalError",
                                  "FailedOperation.ImageBlur", "FailedOperation.UnOpenError"])
def test_error_fault_raises_sdk_exception_with_the_code(tc, code):
    tc.inject_fault(code=code, message="boom")
    err = error_of(make_client(tc).call_json, "VatInvoiceOCR", {"ImageBase64": PNG_B64})
    assert (err.code, err.message, err.requestId) == (code, "boom", tc.requests[-1].request_id)
    assert tc.requests[-1].fault == "error"
    assert make_client(tc).call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})   # used up


def test_faults_skip_requests_that_fail_authentication_and_count_down(tc):
    tc.inject_fault(times=2)
    assert code_of(tc, {"ImageBase64": PNG_B64}, secret_key="bad") == \
        "AuthFailure.SignatureFailure"
    assert code_of(tc, {"ImageBase64": PNG_B64}) == "RequestLimitExceeded"
    assert code_of(tc, {"ImageBase64": PNG_B64}) == "RequestLimitExceeded"
    assert make_client(tc).call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})
    tc.inject_fault(times=5)
    tc.clear_faults()
    assert make_client(tc).call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})
    assert [r.fault for r in tc.requests] == [None, "error", "error", None, None]


def test_sdk_standard_retryer_raises_even_when_a_retry_succeeds(tc):
    """tencentcloud-sdk-python-common 3.1.19x: StandardRetryer never clears the error of a
    failed attempt, so after one RequestLimitExceeded it keeps retrying successful answers until
    max_attempts and then raises the old error. Product code must do its own retrying."""
    tc.inject_fault(code="RequestLimitExceeded", times=1)
    client = make_client(tc, retryer=StandardRetryer(max_attempts=3, backoff_fn=lambda n: 0))
    err = error_of(client.call_json, "VatInvoiceOCR", {"ImageBase64": PNG_B64})
    assert err.code == "RequestLimitExceeded"
    assert [r.error_code for r in tc.requests] == ["RequestLimitExceeded", None, None]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_fault_is_server_network_error_with_the_raw_body(tc, status):
    tc.inject_fault(kind="http", status=status)
    err = error_of(make_client(tc).call_json, "VatInvoiceOCR", {"ImageBase64": PNG_B64})
    assert err.code == "ServerNetworkError"
    assert isinstance(err.message, bytes) and b"%d" % status in err.message
    assert err.requestId is None
    assert (tc.requests[-1].status, tc.requests[-1].error_code) == (status, "HTTP %d" % status)


def test_error_body_with_non_200_status_is_also_server_network_error(tc):
    tc.inject_fault(kind="error", code="InternalError", status=500)
    err = error_of(make_client(tc).call_json, "VatInvoiceOCR", {"ImageBase64": PNG_B64})
    assert err.code == "ServerNetworkError"
    assert json.loads(err.message)["Response"]["Error"]["Code"] == "InternalError"


def test_drop_is_client_network_error(tc):
    tc.inject_fault(kind="drop")
    err = error_of(make_client(tc).call_json, "VatInvoiceOCR", {"ImageBase64": PNG_B64})
    assert err.code == "ClientNetworkError"
    assert "Connection aborted" in err.message or "RemoteDisconnected" in err.message
    assert (tc.requests[-1].status, tc.requests[-1].error_code) == (0, "ConnectionDropped")
    assert make_client(tc).call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})


def test_delay_past_the_sdk_timeout_is_client_network_error(tc):
    tc.inject_fault(kind="delay")                      # held until released
    try:
        err = error_of(make_client(tc, timeout=0.3).call_json, "VatInvoiceOCR",
                       {"ImageBase64": PNG_B64})
        assert err.code == "ClientNetworkError" and "Read timed out" in err.message
        assert tc.delay_started.is_set()
    finally:
        tc.release_delayed()


def test_delay_released_then_answers_normally(tc):
    tc.inject_fault(kind="delay")
    result = {}

    def call():
        result["out"] = make_client(tc).call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})

    worker = threading.Thread(target=call)
    worker.start()
    assert tc.delay_started.wait(5)
    assert "out" not in result
    tc.release_delayed()
    worker.join(5)
    assert infos(result["out"])["发票号码"] == "No63591128"
    assert tc.requests[-1].fault == "delay" and tc.requests[-1].status == 200


def test_malformed_json(tc):
    client = make_client(tc)
    tc.inject_fault(kind="malformed")
    # call_json: the SDK's json.loads error escapes as is, not as TencentCloudSDKException.
    with pytest.raises(json.JSONDecodeError):
        client.call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})
    # The typed method wraps it: code is the exception's class name.
    tc.inject_fault(kind="malformed")
    req = models.VatInvoiceOCRRequest()
    req.ImageBase64 = PNG_B64
    assert error_of(client.VatInvoiceOCR, req).code == "JSONDecodeError"
    # Valid JSON without a Response object: KeyError from the SDK's error check.
    tc.inject_fault(kind="malformed", body='{"Result": {}}')
    with pytest.raises(KeyError):
        client.call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})
    # Non-JSON labelled text/html: the error check is skipped, call_json's json.loads fails.
    tc.inject_fault(kind="malformed", body="<html>oops</html>", content_type="text/html")
    with pytest.raises(json.JSONDecodeError):
        client.call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})
    assert [r.fault for r in tc.requests] == ["malformed"] * 4


def test_error_body_with_charset_content_type_is_returned_not_raised(tc):
    client = make_client(tc)
    tc.inject_fault(kind="content-type", code="FailedOperation.ImageBlur")
    out = client.call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})
    assert out["Response"]["Error"]["Code"] == "FailedOperation.ImageBlur"
    assert "VatInvoiceInfos" not in out["Response"]
    # The typed method "succeeds" too, with every result field None.
    tc.inject_fault(kind="content-type", code="FailedOperation.ImageBlur")
    req = models.VatInvoiceOCRRequest()
    req.ImageBase64 = PNG_B64
    resp = client.VatInvoiceOCR(req)
    assert resp.VatInvoiceInfos is None and resp.Items is None
    assert resp.RequestId == tc.requests[-1].request_id
    # Exactly application/json or text/plain is needed for the SDK to raise.
    for content_type in ("application/json", "text/plain"):
        tc.inject_fault(kind="content-type", code="InternalError", content_type=content_type)
        assert error_of(client.call_json, "VatInvoiceOCR", {"ImageBase64": PNG_B64}).code == \
            "InternalError"


def test_empty_fault(tc):
    tc.inject_fault(kind="empty")
    out = make_client(tc).call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})["Response"]
    assert (out["VatInvoiceInfos"], out["Items"], out["PdfPageSize"], out["Angle"]) == (
        [], [], 0, 0)
    assert out["RequestId"] == tc.requests[-1].request_id


def test_inject_fault_validates_arguments(tc):
    with pytest.raises(ValueError):
        tc.inject_fault(kind="nope")
    with pytest.raises(ValueError):
        tc.inject_fault(times=0)


def test_rate_limit_when_enabled():
    with TencentEmulator(rate_limit=2) as tc:
        client = make_client(tc)
        client.call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})
        client.call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})
        assert error_of(client.call_json, "VatInvoiceOCR", {"ImageBase64": PNG_B64}).code == \
            "RequestLimitExceeded"


def test_stop_is_idempotent_and_frees_held_requests():
    tc = TencentEmulator().start()
    tc.inject_fault(kind="delay")
    outcome = {}

    def call():
        try:
            make_client(tc).call_json("VatInvoiceOCR", {"ImageBase64": PNG_B64})
        except TencentCloudSDKException as exc:
            outcome["code"] = exc.code

    worker = threading.Thread(target=call)
    worker.start()
    assert tc.delay_started.wait(5)
    tc.stop()
    tc.stop()
    worker.join(5)
    assert not worker.is_alive()  # the held request was let go, not left to its client's timeout
    assert outcome == {"code": "ClientNetworkError"}
    assert tc.wait_for_requests(1) and tc.requests[-1].error_code == "ConnectionDropped"


def test_raw_call_behaves_like_call_json_before_decoding(tc):
    """AbstractClient.call (bytes back) runs the same status and error checks as call_json."""
    client = make_client(tc)
    assert json.loads(client.call("VatInvoiceOCR", {"ImageBase64": PNG_B64}))["Response"][
        "VatInvoiceInfos"]
    tc.inject_fault(kind="content-type", code="FailedOperation.ImageBlur")
    raw = client.call("VatInvoiceOCR", {"ImageBase64": PNG_B64})
    assert isinstance(raw, bytes)
    assert json.loads(raw)["Response"]["Error"]["Code"] == "FailedOperation.ImageBlur"
    # A malformed body labelled application/json fails inside the SDK's error check, before
    # call() returns: a bare JSONDecodeError, not TencentCloudSDKException.
    tc.inject_fault(kind="malformed")
    with pytest.raises(json.JSONDecodeError):
        client.call("VatInvoiceOCR", {"ImageBase64": PNG_B64})
    # Labelled anything else, call() hands the bytes back undecoded.
    tc.inject_fault(kind="malformed", content_type="text/html", body="<html>oops</html>")
    assert client.call("VatInvoiceOCR", {"ImageBase64": PNG_B64}) == b"<html>oops</html>"
