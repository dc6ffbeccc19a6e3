"""The viapi OCR (2019-12-30) emulator, driven through the real generic Alibaba Cloud client.

Calls go through ``alibabacloud_tea_openapi.client.Client.call_api`` exactly as the product makes
them (RPC style, form body, JSON reply), so what is checked is what that SDK puts on the wire and
how it surfaces each answer. Requests the SDK cannot be made to send (a replayed nonce, a body
changed after signing) are crafted by hand with a signer written independently from Alibaba
Cloud's documentation, which is itself pinned to the documentation's published signatures.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import io
import json
import threading
import uuid
from urllib.parse import quote, urlencode

import oss2
import pytest
import requests
from alibabacloud_tea_openapi import utils_models as open_api_util_models
from alibabacloud_tea_openapi.client import Client
from alibabacloud_tea_openapi.exceptions import (
    ClientException,
    ServerException,
    ThrottlingException,
)
from alibabacloud_tea_openapi.utils import Utils
from darabonba.exceptions import RetryError, UnretryableException
from darabonba.request import DaraRequest
from darabonba.runtime import RuntimeOptions
from PIL import Image

from tests.emulators import viapi as viapi_module
from tests.emulators.oss import OssEmulator
from tests.emulators.viapi import Fetch, ViapiEmulator

AK, SK = "ak-test", "sk-test"
STS_AK, STS_SK, STS_TOKEN = "STS.viapi-ak", "sts-secret", "sts-token"
OSS_AK, OSS_SK, OSS_TOKEN = "STS.test-ak", "test-secret", "test-token"
BUCKET = "ocr-input"
VERSION = "2019-12-30"


# --------------------------------------------------------------------------------------------
# Fixtures and helpers

def image_bytes(width=64, height=48, fmt="JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(out, fmt)
    return out.getvalue()


def pdf_bytes(pages: int) -> bytes:
    import pypdfium2

    pdf = pypdfium2.PdfDocument.new()
    for _ in range(pages):
        pdf.new_page(200, 300)
    out = io.BytesIO()
    pdf.save(out)
    pdf.close()
    return out.getvalue()


MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64


@pytest.fixture
def oss():
    with OssEmulator() as emulator:
        emulator.create_bucket(BUCKET)
        yield emulator


@pytest.fixture
def viapi(oss):
    with ViapiEmulator({AK: (SK, None), STS_AK: (STS_SK, STS_TOKEN)}, oss=oss) as emulator:
        yield emulator


def upload(oss, key, data, expires=300) -> str:
    """Put `data` in the input bucket through oss2; a presigned GET URL for it."""
    bucket = oss2.Bucket(oss2.StsAuth(OSS_AK, OSS_SK, OSS_TOKEN), oss.endpoint, BUCKET)
    bucket.put_object(key, data)
    return bucket.sign_url("GET", key, expires)


@pytest.fixture
def jpg_url(oss):
    return upload(oss, "card.jpg", image_bytes())


def make_client(viapi, ak=AK, secret=SK, token=None, **config) -> Client:
    return Client(open_api_util_models.Config(access_key_id=ak, access_key_secret=secret,
                                              security_token=token, endpoint=viapi.host,
                                              protocol="http", **config))


def call(client, action, query=None, body=None, runtime=None) -> dict:
    params = open_api_util_models.Params(
        action=action, version=VERSION, protocol="HTTP", method="POST", auth_type="AK",
        style="RPC", pathname="/", req_body_type="formData", body_type="json")
    request = open_api_util_models.OpenApiRequest(query=query, body=body)
    return client.call_api(params, request, runtime or RuntimeOptions())


def call_error(client, action, query=None, body=None, runtime=None):
    with pytest.raises((ClientException, ServerException, UnretryableException)) as info:
        call(client, action, query, body, runtime)
    return info.value


def utc(delta_seconds=0) -> str:
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta_seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# An ACS3 signer written from Alibaba Cloud's "V3 request structure and signature" page, sharing
# no code with the emulator or the SDK; test_v3_signer_matches_the_documented_example pins it.

def _rfc3986(text: str) -> str:
    return quote(text, safe="-_.~")


def doc_v3_authorization(ak, secret, method, path, query, headers, body: bytes) -> str:
    hashed_payload = hashlib.sha256(body).hexdigest()
    canonical_query = "&".join("%s=%s" % pair for pair in sorted(
        (_rfc3986(k), _rfc3986(v)) for k, v in query.items()))
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    names = sorted(lowered)
    canonical_headers = "".join("%s:%s\n" % (name, lowered[name]) for name in names)
    signed_headers = ";".join(names)
    canonical_request = "\n".join([method, path, canonical_query, canonical_headers,
                                   signed_headers, hashed_payload])
    string_to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(
        canonical_request.encode("utf-8")).hexdigest()
    signature = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"),
                         hashlib.sha256).hexdigest()
    return "ACS3-HMAC-SHA256 Credential=%s,SignedHeaders=%s,Signature=%s" % (
        ak, signed_headers, signature)


def doc_rpc_signature(method, params, secret) -> str:
    canonical = "&".join("%s=%s" % pair for pair in sorted(
        (_rfc3986(k), _rfc3986(v)) for k, v in params.items()))
    string_to_sign = "%s&%s&%s" % (method, _rfc3986("/"), _rfc3986(canonical))
    return base64.b64encode(hmac.new((secret + "&").encode("utf-8"),
                                     string_to_sign.encode("utf-8"), hashlib.sha1).digest()
                            ).decode("ascii")


def raw_acs3(viapi, action, query=None, form=None, *, ak=AK, secret=SK, token=None, date=None,
             nonce=None, send_body=None, extra_signed=None, extra_unsigned=None,
             version=VERSION):
    """A hand-signed ACS3 POST; `send_body` replaces the body after signing."""
    query = dict(query or {})
    body = urlencode(form).encode("ascii") if form else b""
    headers = {"host": viapi.host, "x-acs-action": action, "x-acs-version": version,
               "x-acs-date": date or utc(), "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
               "x-acs-content-sha256": hashlib.sha256(body).hexdigest()}
    if form:
        headers["content-type"] = "application/x-www-form-urlencoded"
    if token:
        headers["x-acs-security-token"] = token
    headers.update(extra_signed or {})
    headers["Authorization"] = doc_v3_authorization(ak, secret, "POST", "/", query, headers, body)
    headers.update(extra_unsigned or {})
    url = viapi.endpoint + "/" + ("?" + urlencode(query) if query else "")
    return requests.post(url, data=body if send_body is None else send_body, headers=headers,
                         timeout=10)


def sdk_codes(exc):
    return exc.code, exc.status_code


# --------------------------------------------------------------------------------------------
# Signature verifier self-checks

# Alibaba Cloud's V3 signature page signs this request with AccessKeySecret "YourAccessKeySecret"
# and publishes the resulting Authorization header.
DOC_V3 = dict(
    query={"ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
           "RegionId": "cn-shanghai"},
    headers={"host": "ecs.cn-shanghai.aliyuncs.com", "x-acs-action": "RunInstances",
             "x-acs-version": "2014-05-26", "x-acs-date": "2023-10-26T10:22:32Z",
             "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
             "x-acs-content-sha256":
                 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    signature="06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0",
)
# Alibaba Cloud's RPC (SignatureVersion 1.0) signature page: DescribeRegions signed with
# "testsecret" over GET.
DOC_RPC = dict(
    params={"Timestamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid",
            "Action": "DescribeRegions", "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "Version": "2014-05-26",
            "SignatureVersion": "1.0"},
    signature="OLeaidS1JvxuMvnyHOwuJ+uX5qY=",
)


def test_v3_signer_matches_the_documented_example():
    """Three independent implementations agree with the documented signature: the test's own
    signer, the emulator's verifier and the SDK's signer."""
    expected = ("ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;"
                "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
                "Signature=" + DOC_V3["signature"])
    assert doc_v3_authorization("YourAccessKeyId", "YourAccessKeySecret", "POST", "/",
                                DOC_V3["query"], DOC_V3["headers"], b"") == expected

    names = sorted(DOC_V3["headers"])
    canonical = viapi_module.acs3_canonical_request(
        "POST", "/", list(DOC_V3["query"].items()),
        [(n, DOC_V3["headers"][n]) for n in names], ";".join(names),
        DOC_V3["headers"]["x-acs-content-sha256"])
    signature, string_to_sign = viapi_module.acs3_signature("YourAccessKeySecret", canonical)
    assert signature == DOC_V3["signature"]
    assert string_to_sign == ("ACS3-HMAC-SHA256\n"
                              "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259")

    request = DaraRequest()
    request.method, request.pathname = "POST", "/"
    request.query, request.headers = dict(DOC_V3["query"]), dict(DOC_V3["headers"])
    assert Utils.get_authorization(request, "ACS3-HMAC-SHA256",
                                   DOC_V3["headers"]["x-acs-content-sha256"], "YourAccessKeyId",
                                   "YourAccessKeySecret") == expected


def test_rpc_signer_matches_the_documented_example():
    assert doc_rpc_signature("GET", DOC_RPC["params"], "testsecret") == DOC_RPC["signature"]
    assert viapi_module.rpc_signature("GET", DOC_RPC["params"], "testsecret")[0] == \
        DOC_RPC["signature"]
    assert Utils.get_rpcsignature(DOC_RPC["params"], "GET", "testsecret") == DOC_RPC["signature"]


def test_independently_signed_request_with_awkward_characters_is_accepted(viapi, oss):
    # A key needing percent-encoding, plus values with space, '*', '~', '+' and '%': the query is
    # form-encoded on the wire, canonicalised RFC 3986 style by both sides.
    url = upload(oss, "dir/a b+c~d*e%20.jpg", image_bytes())
    resp = raw_acs3(viapi, "RecognizeIdentityCard",
                    {"ImageURL": url, "Side": "face", "Note": "a b*c~d+e%f/g"})
    assert resp.status_code == 200, resp.text
    assert viapi.requests[-1].params["Note"] == "a b*c~d+e%f/g"
    assert viapi.requests[-1].fetched[0].status == 200


# --------------------------------------------------------------------------------------------
# Authentication

def test_signed_call_gets_the_documented_example(viapi, jpg_url):
    reply = call(make_client(viapi), "RecognizeIdentityCard", {"ImageURL": jpg_url,
                                                               "Side": "face"})
    body = reply["body"]
    example = ViapiEmulator.example("RecognizeIdentityCard")
    request_id = body.pop("RequestId")
    assert request_id != example.pop("RequestId")
    assert body == example
    # The documented trap survives the trip: a number, with the precision already lost.
    assert body["Data"]["FrontResult"]["IDNumber"] == 310228199601115400
    assert reply["headers"]["content-type"] == "application/json;charset=utf-8"
    assert reply["headers"]["x-acs-request-id"] == request_id

    record = viapi.requests[-1]
    assert (record.action, record.auth, record.status, record.error_code) == (
        "RecognizeIdentityCard", "acs3", 200, None)
    assert record.params == {"ImageURL": jpg_url, "Side": "face"}
    assert record.request_id == request_id
    assert record.fetched == (Fetch(jpg_url, 200, len(image_bytes()), "JPEG"),)


def test_reply_text_keeps_number_typed_ids_verbatim_and_unindented(viapi, oss):
    url = upload(oss, "vat.jpg", image_bytes())
    resp = raw_acs3(viapi, "RecognizeVATInvoice", {"FileURL": url, "FileType": "jpg"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json;charset=utf-8"
    text = resp.content.decode("utf-8")
    assert '"InvoiceNo":3753869,' in text and '"InvoiceCode":33002000411,' in text
    assert "\n" not in text and ": " not in text.split('"Data"')[0]
    assert text.startswith('{"RequestId":"%s"' % resp.headers["x-acs-request-id"])


def test_every_action_answers_its_example(viapi, oss):
    urls = {"img": upload(oss, "x.jpg", image_bytes(200, 200)), "pdf": upload(oss, "x.pdf", pdf_bytes(1)),
            "mp4": upload(oss, "x.mp4", MP4)}
    extra = {
        "RecognizeIdentityCard": {"Side": "back"}, "RecognizeDriverLicense": {"Side": "face"},
        "RecognizeDrivingLicense": {"Side": "back"},
        "RecognizeCharacter": {"MinHeight": "10", "OutputProbability": "true"},
        "RecognizeTable": {"OutputFormat": "json", "UseFinanceModel": "false",
                           "AssureDirection": "false", "HasLine": "false",
                           "SkipDetection": "false"},
        "RecognizeVATInvoice": {"FileType": "jpg"},
    }
    client = make_client(viapi)
    for action, spec in viapi_module.ACTIONS.items():
        if action == "GetAsyncJobResult" or spec.is_async:
            continue
        if spec.url_param == "Tasks":
            query = {"Tasks.1.ImageURL": urls["img"]}
        else:
            query = {spec.url_param: urls["pdf" if "PDF" in spec.formats else "img"]}
        query.update(extra.get(action, {}))
        body = call(client, action, query)["body"]
        example = ViapiEmulator.example(action)
        body.pop("RequestId"), example.pop("RequestId")
        assert body == example, action
    assert all(r.status == 200 for r in viapi.requests)


def test_params_may_come_in_the_form_body_or_split_between_query_and_body(viapi, jpg_url):
    client = make_client(viapi)
    call(client, "RecognizeIdentityCard", body={"ImageURL": jpg_url, "Side": "face"})
    call(client, "RecognizeIdentityCard", query={"Side": "face"}, body={"ImageURL": jpg_url})
    assert [r.params for r in viapi.requests] == [{"ImageURL": jpg_url, "Side": "face"}] * 2
    assert [r.status for r in viapi.requests] == [200, 200]


def test_wrong_secret_is_signature_does_not_match(viapi, jpg_url):
    exc = call_error(make_client(viapi, secret="wrong"), "RecognizeIdentityCard",
                     {"ImageURL": jpg_url, "Side": "face"})
    assert isinstance(exc, ClientException)
    assert sdk_codes(exc) == ("SignatureDoesNotMatch", 400)
    assert exc.data["HostId"] == "ocr.cn-shanghai.aliyuncs.com"
    assert set(exc.data) == {"RequestId", "HostId", "Code", "Message", "statusCode"}
    record = viapi.requests[-1]
    assert (record.auth, record.status, record.error_code, record.fetched) == (
        "acs3", 400, "SignatureDoesNotMatch", ())


def test_unknown_access_key_is_not_found(viapi, jpg_url):
    exc = call_error(make_client(viapi, ak="nobody"), "RecognizeBankCard", {"ImageURL": jpg_url})
    assert sdk_codes(exc) == ("InvalidAccessKeyId.NotFound", 404)


def test_sts_token_is_required_and_checked(viapi, jpg_url):
    query = {"ImageURL": jpg_url}
    assert call(make_client(viapi, STS_AK, STS_SK, STS_TOKEN), "RecognizeBankCard",
                query)["statusCode"] == 200
    assert sdk_codes(call_error(make_client(viapi, STS_AK, STS_SK), "RecognizeBankCard",
                                query)) == ("MissingSecurityToken", 400)
    assert sdk_codes(call_error(make_client(viapi, STS_AK, STS_SK, "other-token"),
                                "RecognizeBankCard", query)) == (
        "InvalidSecurityToken.MismatchWithAccessKey", 400)
    # A long-term key does not come with a token.
    assert sdk_codes(call_error(make_client(viapi, AK, SK, "a-token"), "RecognizeBankCard",
                                query))[0] == "InvalidSecurityToken.MismatchWithAccessKey"
    # The token header is signed: swapping it after signing breaks the signature.
    resp = raw_acs3(viapi, "RecognizeBankCard", query, ak=STS_AK, secret=STS_SK, token=STS_TOKEN,
                    extra_unsigned={"x-acs-security-token": "swapped"})
    assert resp.json()["Code"] == "InvalidSecurityToken.MismatchWithAccessKey"


def test_stale_or_malformed_x_acs_date_is_rejected(viapi, jpg_url, monkeypatch):
    client = make_client(viapi)
    query = {"ImageURL": jpg_url}
    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: utc(-16 * 60)))
    assert sdk_codes(call_error(client, "RecognizeBankCard", query)) == (
        "InvalidTimeStamp.Expired", 400)
    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: utc(16 * 60)))
    assert call_error(client, "RecognizeBankCard", query).code == "InvalidTimeStamp.Expired"
    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: utc(-14 * 60)))
    assert call(client, "RecognizeBankCard", query)["statusCode"] == 200
    resp = raw_acs3(viapi, "RecognizeBankCard", query, date="2023-10-26 10:22:32")
    assert resp.json()["Code"] == "InvalidTimeStamp.Format"


def test_reused_nonce_is_rejected(viapi, jpg_url):
    query = {"ImageURL": jpg_url}
    # A request that fails authentication does not use its nonce up...
    bad = raw_acs3(viapi, "RecognizeBankCard", query, nonce="nonce-1", secret="wrong")
    assert bad.json()["Code"] == "SignatureDoesNotMatch"
    first = raw_acs3(viapi, "RecognizeBankCard", query, nonce="nonce-1")
    assert first.status_code == 200
    # ...a served one does, even for a differently signed request.
    again = raw_acs3(viapi, "RecognizeBankCard", {"ImageURL": jpg_url, "X": "1"},
                     nonce="nonce-1")
    assert (again.status_code, again.json()["Code"]) == (400, "SignatureNonceUsed")
    assert raw_acs3(viapi, "RecognizeBankCard", query, nonce="nonce-2").status_code == 200


def test_body_changed_after_signing_is_rejected(viapi, jpg_url):
    form = {"ImageURL": jpg_url}
    assert raw_acs3(viapi, "RecognizeBankCard", form=form).status_code == 200
    tampered = urlencode({"ImageURL": jpg_url + "&x=1"}).encode("ascii")
    resp = raw_acs3(viapi, "RecognizeBankCard", form=form, send_body=tampered)
    assert (resp.status_code, resp.json()["Code"]) == (400, "SignatureDoesNotMatch")
    assert "x-acs-content-sha256" in resp.json()["Message"]
    # Fixing the payload hash too is not enough: the hash is signed.
    resp = raw_acs3(viapi, "RecognizeBankCard", form=form, send_body=tampered,
                    extra_unsigned={"x-acs-content-sha256": hashlib.sha256(tampered).hexdigest()})
    assert resp.json()["Code"] == "SignatureDoesNotMatch"
    assert "StringToSign" in resp.json()["Message"]
    assert viapi.requests[-1].fetched == ()


def test_unsigned_acs_header_is_rejected(viapi, jpg_url):
    resp = raw_acs3(viapi, "RecognizeBankCard", {"ImageURL": jpg_url},
                    extra_unsigned={"x-acs-extra": "1"})
    assert (resp.status_code, resp.json()["Code"]) == (400, "IncompleteSignature")
    resp = raw_acs3(viapi, "RecognizeBankCard", {"ImageURL": jpg_url},
                    extra_signed={"x-acs-extra": "1"})
    assert resp.status_code == 200


def test_version_action_and_anonymous_requests(viapi, jpg_url):
    resp = raw_acs3(viapi, "RecognizeBankCard", {"ImageURL": jpg_url}, version="2021-07-07")
    assert resp.json()["Code"] == "InvalidVersion"
    exc = call_error(make_client(viapi), "RecognizeEverything", {"ImageURL": jpg_url})
    assert sdk_codes(exc) == ("UnsupportedOperation", 400)
    assert exc.data["Message"] == "The specified action is not supported."
    resp = requests.post(viapi.endpoint + "/?" + urlencode({"Action": "RecognizeBankCard",
                                                             "ImageURL": jpg_url}), timeout=10)
    assert (resp.status_code, resp.json()["Code"]) == (400, "MissingAccessKeyId")


def test_legacy_rpc_signature_via_the_sdk(viapi, jpg_url):
    client = make_client(viapi, signature_algorithm="v2")   # SignatureVersion 1.0, HMAC-SHA1
    call(client, "RecognizeIdentityCard", {"ImageURL": jpg_url, "Side": "face"})
    call(client, "RecognizeIdentityCard", body={"ImageURL": jpg_url, "Side": "face"})
    assert [(r.auth, r.status) for r in viapi.requests] == [("rpc-v1", 200)] * 2
    exc = call_error(make_client(viapi, secret="wrong", signature_algorithm="v2"),
                     "RecognizeIdentityCard", {"ImageURL": jpg_url, "Side": "face"})
    assert sdk_codes(exc) == ("SignatureDoesNotMatch", 400)
    sts = make_client(viapi, STS_AK, STS_SK, STS_TOKEN, signature_algorithm="v2")
    assert call(sts, "RecognizeBankCard", {"ImageURL": jpg_url})["statusCode"] == 200


def test_legacy_rpc_get_url_like_the_seed_example(viapi, jpg_url):
    params = {"Action": "RecognizeBankCard", "ImageURL": jpg_url, "AccessKeyId": AK,
              "Format": "JSON", "RegionId": "cn-shanghai", "SignatureMethod": "HMAC-SHA1",
              "SignatureNonce": str(uuid.uuid4()), "SignatureVersion": "1.0",
              "Timestamp": utc(), "Version": VERSION}
    params["Signature"] = doc_rpc_signature("GET", params, SK)
    url = viapi.endpoint + "/?" + urlencode(params)
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["Data"]["CardNumber"] == "6212262315007683105"
    assert requests.get(url, timeout=10).json()["Code"] == "SignatureNonceUsed"
    params["Signature"] = doc_rpc_signature("POST", params, SK)   # signed for the wrong method
    assert requests.get(viapi.endpoint + "/?" + urlencode(params),
                        timeout=10).json()["Code"] == "SignatureDoesNotMatch"


# --------------------------------------------------------------------------------------------
# Parameters

TABLE_FLAGS = {"OutputFormat": "json", "UseFinanceModel": "true", "AssureDirection": "false",
               "HasLine": "false", "SkipDetection": "false"}


def _without(mapping, name):
    return {k: v for k, v in mapping.items() if k != name}


PARAM_CASES = [
    ("RecognizeIdentityCard", {"Side": "face"}, "MissingImageURL"),
    ("RecognizeIdentityCard", {"ImageURL": "URL"}, "MissingSide"),
    ("RecognizeIdentityCard", {"ImageURL": "URL", "Side": "front"}, "InvalidSide"),
    ("RecognizeDriverLicense", {"ImageURL": "URL"}, "MissingSide"),
    ("RecognizeDrivingLicense", {"ImageURL": "URL", "Side": "Face"}, "InvalidSide"),
    ("RecognizeCharacter", {"ImageURL": "URL", "OutputProbability": "true"}, "MissingMinHeight"),
    ("RecognizeCharacter", {"ImageURL": "URL", "MinHeight": "10"}, "MissingOutputProbability"),
    ("RecognizeCharacter", {"ImageURL": "URL", "MinHeight": "ten", "OutputProbability": "true"},
     "InvalidMinHeight"),
    ("RecognizeCharacter", {"ImageURL": "URL", "MinHeight": "10", "OutputProbability": "yes"},
     "InvalidOutputProbability"),
    ("RecognizeTable", {"ImageURL": "URL", **_without(TABLE_FLAGS, "OutputFormat")},
     "MissingOutputFormat"),
    ("RecognizeTable", {"ImageURL": "URL", **TABLE_FLAGS, "OutputFormat": "pdf"},
     "InvalidOutputFormat"),
    ("RecognizeTable", {"ImageURL": "URL", **_without(TABLE_FLAGS, "UseFinanceModel")},
     "MissingUseFinanceModel"),
    ("RecognizeTable", {"ImageURL": "URL", **_without(TABLE_FLAGS, "AssureDirection")},
     "MissingAssureDirection"),
    ("RecognizeTable", {"ImageURL": "URL", **_without(TABLE_FLAGS, "HasLine")},
     "MissingHasLine"),
    ("RecognizeTable", {"ImageURL": "URL", **_without(TABLE_FLAGS, "SkipDetection")},
     "MissingSkipDetection"),
    ("RecognizeVATInvoice", {"ImageURL": "URL", "FileType": "jpg"}, "MissingFileURL"),
    ("RecognizeVATInvoice", {"FileURL": "URL"}, "MissingFileType"),
    ("RecognizeVATInvoice", {"FileURL": "URL", "FileType": "png"}, "InvalidFileType"),
    ("TrimDocument", {"FileURL": "URL", "OutputType": "json"}, "MissingFileType"),
    ("TrimDocument", {"FileURL": "URL", "FileType": "pdf"}, "MissingOutputType"),
    ("TrimDocument", {"FileURL": "URL", "FileType": "pdf", "OutputType": "xml"},
     "InvalidOutputType"),
    ("RecognizePdf", {"ImageURL": "URL"}, "MissingFileURL"),
    ("RecognizeVideoCharacter", {"ImageURL": "URL"}, "MissingVideoURL"),
    ("RecognizeQrCode", {"ImageURL": "URL"}, "MissingImageURL"),
    ("RecognizeQrCode", {"Tasks.%d.ImageURL" % i: "URL" for i in range(1, 12)},
     "InvalidParameter"),
    ("RecognizeQrCode", {"Tasks.2.ImageURL": "URL"}, "InvalidParameter"),
    ("GetAsyncJobResult", {}, "MissingJobId"),
]


@pytest.mark.parametrize("action,query,code", PARAM_CASES)
def test_required_parameters_are_validated_before_any_download(viapi, jpg_url, action, query,
                                                               code):
    query = {k: jpg_url if v == "URL" else v for k, v in query.items()}
    exc = call_error(make_client(viapi), action, query)
    assert sdk_codes(exc) == (code, 400)
    assert viapi.requests[-1].fetched == ()


def test_sdk_flattens_tasks_and_stringifies_booleans_in_the_body(viapi, oss, jpg_url):
    second = upload(oss, "qr.png", image_bytes(300, 300, "PNG"))
    client = make_client(viapi)
    call(client, "RecognizeQrCode", body={"Tasks": [{"ImageURL": jpg_url}, {"ImageURL": second}]})
    record = viapi.requests[-1]
    assert record.params == {"Tasks.1.ImageURL": jpg_url, "Tasks.2.ImageURL": second}
    assert [f.format for f in record.fetched] == ["JPEG", "PNG"]
    call(client, "RecognizeTable", body={"ImageURL": jpg_url, "OutputFormat": "json",
                                         "UseFinanceModel": True, "AssureDirection": False,
                                         "HasLine": False, "SkipDetection": False})
    assert viapi.requests[-1].params["UseFinanceModel"] == "True"   # str(True), accepted
    call(client, "RecognizeCharacter", body={"ImageURL": jpg_url, "MinHeight": 10,
                                             "OutputProbability": True})
    assert viapi.requests[-1].status == 200


def test_sdk_cannot_sign_non_string_query_values(viapi, jpg_url):
    # Only the body goes through the SDK's flattening; query values must already be strings.
    exc = call_error(make_client(viapi), "RecognizeCharacter",
                     {"ImageURL": jpg_url, "MinHeight": 10, "OutputProbability": "true"})
    assert isinstance(exc, UnretryableException) and isinstance(exc.inner_exception, TypeError)
    assert viapi.requests == []


# --------------------------------------------------------------------------------------------
# Input URLs and files

def test_non_shanghai_oss_is_invalid_region_without_a_download(jpg_url):
    with OssEmulator(region="cn-hangzhou") as oss:
        oss.create_bucket(BUCKET)
        url = upload(oss, "card.jpg", image_bytes())
        with ViapiEmulator(oss=oss) as viapi:
            exc = call_error(make_client(viapi), "RecognizeBankCard", {"ImageURL": url})
            assert sdk_codes(exc) == ("InvalidImage.Region", 400)
            assert viapi.requests[-1].fetched == ()


def test_oss_hostname_of_another_region_is_invalid_region(viapi):
    url = "https://bucket.oss-cn-beijing.aliyuncs.com/a.jpg"
    assert call_error(make_client(viapi), "RecognizeBankCard",
                      {"ImageURL": url}).code == "InvalidImage.Region"


def test_url_with_chinese_characters_is_invalid_but_percent_encoded_keys_work(viapi, oss):
    url = upload(oss, "证件/身份证.jpg", image_bytes())
    assert "身份证" not in url   # oss2 percent-encodes the key
    client = make_client(viapi)
    assert call(client, "RecognizeBankCard", {"ImageURL": url})["statusCode"] == 200
    raw = url.replace(quote("证件/身份证.jpg", safe=""), "证件/身份证.jpg")
    assert raw != url
    assert sdk_codes(call_error(client, "RecognizeBankCard", {"ImageURL": raw})) == (
        "InvalidImage.URL", 400)
    assert call_error(client, "RecognizeBankCard",
                      {"ImageURL": "ftp://example.com/a.jpg"}).code == "InvalidImage.URL"


def test_download_failures(viapi, oss, jpg_url):
    client = make_client(viapi)
    missing = jpg_url.replace("card.jpg", "missing.jpg")
    for url, status in [(missing, 403), (jpg_url.split("?")[0], 403)]:
        exc = call_error(client, "RecognizeBankCard", {"ImageURL": url})
        assert sdk_codes(exc) == ("InvalidImage.Download", 400)
        assert viapi.requests[-1].fetched[0][:2] == (url, status)
    gone = upload(oss, "gone.jpg", image_bytes())
    oss2.Bucket(oss2.StsAuth(OSS_AK, OSS_SK, OSS_TOKEN), oss.endpoint, BUCKET).delete_object(
        "gone.jpg")
    assert call_error(client, "RecognizeBankCard", {"ImageURL": gone}).code == \
        "InvalidImage.Download"
    assert viapi.requests[-1].fetched[0].status == 404
    with socket_closed_port() as port:
        url = "http://127.0.0.1:%d/a.jpg" % port
        assert call_error(client, "RecognizeBankCard", {"ImageURL": url}).code == \
            "InvalidImage.Download"
    assert viapi.requests[-1].fetched == (Fetch(url, 0, 0, None),)


class socket_closed_port:
    """A local port nothing listens on."""

    def __enter__(self):
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        return self.port

    def __exit__(self, *exc):
        return False


def test_vat_invoice_takes_jpg_only(viapi, oss):
    client = make_client(viapi)
    png = upload(oss, "vat.png", image_bytes(fmt="PNG"))
    exc = call_error(client, "RecognizeVATInvoice", {"FileURL": png, "FileType": "jpg"})
    assert sdk_codes(exc) == ("InvalidImageType", 400)
    assert viapi.requests[-1].fetched[0].format == "PNG"
    jpg = upload(oss, "vat.jpg", image_bytes())
    body = call(client, "RecognizeVATInvoice", {"FileURL": jpg, "FileType": "jpg"})["body"]
    assert body["Data"]["Content"]["InvoiceNo"] == 3753869


def test_size_pixel_and_decode_limits(viapi, oss):
    client = make_client(viapi)

    def code(action, data, **query):
        url = upload(oss, "f-%s" % uuid.uuid4().hex, data)
        try:
            call(client, action, {"ImageURL": url, **query})
        except ClientException as exc:
            return exc.code, exc.status_code
        return 200

    card = dict(Side="face")
    assert code("RecognizeIdentityCard", image_bytes(16, 16), **card) == 200
    assert code("RecognizeIdentityCard", image_bytes(15, 40), **card) == ("InvalidParameter", 400)
    assert code("RecognizeIdentityCard", image_bytes(4096, 16), **card) == (
        "InvalidParameter.TooLarge", 400)
    assert code("RecognizeIdentityCard", image_bytes(4095, 16), **card) == 200
    assert code("RecognizeBankCard", image_bytes(4096, 16)) == 200   # unrestricted resolution
    assert code("DetectCardScreenshot", image_bytes(100, 200)) == ("InvalidParameter", 400)
    assert code("RecognizeBankCard", image_bytes(fmt="WEBP")) == ("InvalidImageType", 400)
    assert code("RecognizeBankCard", image_bytes(fmt="TIFF")) == ("InvalidImageType", 400)
    assert code("DetectCardScreenshot", image_bytes(200, 200, "GIF")) == ("InvalidImageType", 400)
    assert code("RecognizeBankCard", b"\x89PNG\r\n\x1a\n" + bytes(3 * 1024 * 1024)) == (
        "InvalidParameter.TooLarge", 400)
    assert code("RecognizeBankCard", b"plain text, not an image") == (
        "InvalidImage.UnsupportedMediaType", 415)
    assert code("RecognizeBankCard", image_bytes(400, 400)[:300]) == (
        "InvalidImage.UnsupportedMediaType", 415)
    assert code("RecognizeBankCard", b"GIF89a" + b"\x00" * 40) == ("InvalidImage.Gif", 400)
    # The passport limit is on the base64 encoding: 1.6 MB of bytes is 2.13 MB of base64.
    assert code("RecognizeChinapassport", b"\xff\xd8\xff" + bytes(1_600_000)) == (
        "InvalidParameter.TooLarge", 400)


def test_pdf_page_limits(viapi, oss):
    client = make_client(viapi)

    def pdf_call(action, pages, **query):
        url = upload(oss, "doc-%d.pdf" % pages, pdf_bytes(pages))
        try:
            return call(client, action, {"FileURL": url, **query})["statusCode"]
        except ClientException as exc:
            return exc.code

    assert pdf_call("RecognizePdf", 5) == 200
    assert pdf_call("RecognizePdf", 6) == "InvalidParameter.TooLarge"
    trim = dict(FileType="pdf", OutputType="html")
    assert pdf_call("TrimDocument", 2, **trim) == 200
    assert pdf_call("TrimDocument", 3, **trim) == "InvalidParameter.TooLarge"
    jpg = upload(oss, "page.jpg", image_bytes())
    assert call_error(client, "RecognizePdf", {"FileURL": jpg}).code == "InvalidImageType"
    broken = upload(oss, "broken.pdf", b"%PDF-1.7\nnot really")
    assert call_error(client, "RecognizePdf", {"FileURL": broken}).code == \
        "InvalidImage.UnsupportedMediaType"


def test_video_container_and_size(viapi, oss):
    client = make_client(viapi)
    assert call(client, "RecognizeVideoCharacter",
                {"VideoURL": upload(oss, "v.mp4", MP4)})["statusCode"] == 200
    assert viapi.requests[-1].fetched[0].format == "MP4"
    assert call_error(client, "RecognizeVideoCharacter",
                      {"VideoURL": upload(oss, "v.jpg", image_bytes())}).code == "InvalidImageType"


# --------------------------------------------------------------------------------------------
# Async jobs

def _poll(client, job_id):
    return call(client, "GetAsyncJobResult", {"JobId": job_id})["body"]


def test_trim_document_async_flow(viapi, oss):
    client = make_client(viapi)
    url = upload(oss, "doc.pdf", pdf_bytes(2))
    body = call(client, "TrimDocument", {"FileURL": url, "FileType": "pdf",
                                         "OutputType": "html"})["body"]
    assert list(body) == ["RequestId"]
    job_id = body["RequestId"]
    assert viapi.jobs() == {job_id: "TrimDocument"}

    first = _poll(client, job_id)
    assert first["Data"] == {"Status": "QUEUING", "JobId": job_id}
    done = _poll(client, job_id)["Data"]
    assert done["Status"] == "PROCESS_SUCCESS" and done["JobId"] == job_id
    assert isinstance(done["Result"], str)   # double-encoded, as documented
    assert json.loads(done["Result"]) == ViapiEmulator.example("TrimDocument")["Data"]
    # The documented example's error fields ride along with success: decide by Status.
    assert done["ErrorCode"] == "InvalidParameter"
    assert _poll(client, job_id)["Data"]["Status"] == "PROCESS_SUCCESS"


def test_async_polls_before_done_and_video_result(viapi, oss):
    viapi.async_polls_before_done = 3
    client = make_client(viapi)
    job_id = call(client, "RecognizeVideoCharacter",
                  {"VideoURL": upload(oss, "v.mp4", MP4)})["body"]["RequestId"]
    statuses = [_poll(client, job_id)["Data"]["Status"] for _ in range(5)]
    assert statuses == ["QUEUING", "PROCESSING", "PROCESSING", "PROCESS_SUCCESS",
                        "PROCESS_SUCCESS"]
    result = json.loads(_poll(client, job_id)["Data"]["Result"])
    assert result["Frames"][0]["Timestamp"] == 6124533574


def test_failed_async_job(viapi, oss):
    client = make_client(viapi)
    url = upload(oss, "doc.pdf", pdf_bytes(1))
    query = {"FileURL": url, "FileType": "pdf", "OutputType": "json"}
    viapi.fail_async_job(code="InvalidFile", message="the file is damaged")
    failing = call(client, "TrimDocument", query)["body"]["RequestId"]
    working = call(client, "TrimDocument", query)["body"]["RequestId"]
    assert _poll(client, failing)["Data"]["Status"] == "QUEUING"
    assert _poll(client, failing)["Data"] == {"Status": "PROCESS_FAILED",
                                              "ErrorMessage": "the file is damaged",
                                              "ErrorCode": "InvalidFile", "JobId": failing}
    _poll(client, working)
    assert _poll(client, working)["Data"]["Status"] == "PROCESS_SUCCESS"

    viapi.fail_async_job("TIMEOUT_FAILED", times=None)
    jobs = [call(client, "TrimDocument", query)["body"]["RequestId"] for _ in range(2)]
    viapi.async_polls_before_done = 0
    assert [_poll(client, j)["Data"]["Status"] for j in jobs] == ["TIMEOUT_FAILED"] * 2


def test_async_result_override(viapi, oss):
    viapi.async_polls_before_done = 0
    viapi.set_async_result("TrimDocument", {"Content": "{\"blocks\": []}"})
    client = make_client(viapi)
    job_id = call(client, "TrimDocument", {"FileURL": upload(oss, "d.pdf", pdf_bytes(1)),
                                           "FileType": "pdf", "OutputType": "json"}
                  )["body"]["RequestId"]
    assert json.loads(_poll(client, job_id)["Data"]["Result"]) == {"Content": "{\"blocks\": []}"}


def test_unknown_job_id_is_invalid_parameter(viapi):
    exc = call_error(make_client(viapi), "GetAsyncJobResult", {"JobId": str(uuid.uuid4())})
    assert sdk_codes(exc) == ("InvalidParameter", 400)


# --------------------------------------------------------------------------------------------
# Overrides and faults

def test_set_response_overrides_the_example(viapi, jpg_url):
    client = make_client(viapi)
    query = {"ImageURL": jpg_url}
    viapi.set_response("RecognizeBankCard", {"Data": {"CardNumber": "0123"}})
    body = call(client, "RecognizeBankCard", query)["body"]
    assert body["Data"] == {"CardNumber": "0123"}
    assert body["RequestId"] == viapi.requests[-1].request_id
    viapi.set_response("RecognizeBankCard", '{"RequestId":"R","Data":{"CardNumber":0123}}')
    exc = call_error(client, "RecognizeBankCard", query)   # a leading zero is not JSON
    assert isinstance(exc, UnretryableException)
    viapi.set_response("RecognizeBankCard", {"Code": "InvalidResult", "Message": "OCR failed",
                                             "HostId": "ocr.cn-shanghai.aliyuncs.com"},
                       status=400)
    exc = call_error(client, "RecognizeBankCard", query)
    assert sdk_codes(exc) == ("InvalidResult", 400)
    assert viapi.requests[-1].error_code == "InvalidResult"
    viapi.set_response("RecognizeBankCard", '{"RequestId":"R","Data":{}}',
                       content_type="application/json; charset=utf-8")
    assert call(client, "RecognizeBankCard", query)["body"] == {"RequestId": "R", "Data": {}}
    viapi.set_response("RecognizeBankCard", None)
    assert call(client, "RecognizeBankCard", query)["body"]["Data"]["BankName"] == "中国工商银行"


def test_error_faults_use_the_documented_body(viapi, jpg_url):
    client = make_client(viapi)
    query = {"ImageURL": jpg_url}
    viapi.inject_fault(status=400, code="Throttling.User", times=2)
    for _ in range(2):
        exc = call_error(client, "RecognizeBankCard", query)
        assert isinstance(exc, ClientException)
        assert sdk_codes(exc) == ("Throttling.User", 400)
        assert exc.data["RequestId"] == exc.request_id
    assert call(client, "RecognizeBankCard", query)["statusCode"] == 200
    viapi.inject_fault(status=503, code="ServiceUnavailable")
    exc = call_error(client, "RecognizeBankCard", query)
    assert isinstance(exc, ServerException)
    assert sdk_codes(exc) == ("ServiceUnavailable", 503)
    viapi.inject_fault(status=400, code="Throttling.User", retry_after=2)
    with pytest.raises(ThrottlingException) as info:
        call(client, "RecognizeBankCard", query)
    assert info.value.retry_after == 2
    assert [(r.status, r.error_code, r.fault) for r in viapi.requests] == [
        (400, "Throttling.User", "error"), (400, "Throttling.User", "error"), (200, None, None),
        (503, "ServiceUnavailable", "error"), (400, "Throttling.User", "error")]


def test_faults_follow_their_action_and_fire_only_after_authentication(viapi, jpg_url):
    viapi.inject_fault("RecognizeBankCard", code="InternalError")
    client = make_client(viapi)
    assert call(client, "RecognizeVINCode", {"ImageURL": jpg_url})["statusCode"] == 200
    bad = call_error(make_client(viapi, secret="wrong"), "RecognizeBankCard",
                     {"ImageURL": jpg_url})
    assert bad.code == "SignatureDoesNotMatch"
    exc = call_error(client, "RecognizeBankCard", {"ImageURL": jpg_url})
    assert sdk_codes(exc) == ("InternalError", 500)
    viapi.inject_fault(code="InternalError", times=5)
    viapi.clear_faults()
    assert call(client, "RecognizeBankCard", {"ImageURL": jpg_url})["statusCode"] == 200


def test_drop_fault_closes_the_connection(viapi, jpg_url):
    viapi.inject_fault(kind="drop")
    exc = call_error(make_client(viapi), "RecognizeBankCard", {"ImageURL": jpg_url})
    assert isinstance(exc, UnretryableException)
    assert isinstance(exc.inner_exception, RetryError)
    assert (viapi.requests[-1].status, viapi.requests[-1].error_code) == (0, "ConnectionDropped")


def test_delay_fault_times_the_client_out(viapi, jpg_url):
    viapi.inject_fault(kind="delay", delay=30)
    exc = call_error(make_client(viapi), "RecognizeBankCard", {"ImageURL": jpg_url},
                     runtime=RuntimeOptions(read_timeout=200))
    assert isinstance(exc, UnretryableException)
    assert "Read timed out" in str(exc.inner_exception)
    assert viapi.wait_until_held(1)
    viapi.release_delayed()
    assert viapi.wait_for_requests(1)   # served, late, to a client that has gone
    assert viapi.requests[-1].fault == "delay"


def test_delay_fault_released_then_answered(viapi, jpg_url):
    viapi.inject_fault("RecognizeBankCard", kind="delay", delay=30)
    outcome = {}

    def slow_call():
        outcome["body"] = call(make_client(viapi), "RecognizeBankCard", {"ImageURL": jpg_url})

    worker = threading.Thread(target=slow_call)
    worker.start()
    assert viapi.wait_until_held(1)
    assert viapi.requests == []
    viapi.release_delayed()
    worker.join(10)
    assert outcome["body"]["body"]["Data"]["CardNumber"] == "6212262315007683105"


def test_malformed_fault_is_a_200_that_is_not_json(viapi, jpg_url):
    viapi.inject_fault(kind="malformed")
    exc = call_error(make_client(viapi), "RecognizeBankCard", {"ImageURL": jpg_url})
    assert isinstance(exc, UnretryableException)
    assert isinstance(exc.inner_exception, RuntimeError)
    assert "Failed to parse the value as json" in str(exc.inner_exception)
    assert (viapi.requests[-1].status, viapi.requests[-1].fault) == (200, "malformed")


def test_html_fault_is_the_gateway_page(viapi, jpg_url):
    viapi.inject_fault(kind="html")
    exc = call_error(make_client(viapi), "RecognizeBankCard", {"ImageURL": jpg_url})
    # Not a ServerException: the SDK cannot parse the page, so the 502 surfaces as a parse error.
    assert isinstance(exc, UnretryableException)
    assert "502 Bad Gateway" in str(exc.inner_exception)
    viapi.inject_fault(kind="html")
    resp = raw_acs3(viapi, "RecognizeBankCard", {"ImageURL": jpg_url})
    assert resp.status_code == 502 and resp.headers["Content-Type"] == "text/html"
    assert viapi.requests[-1].status == 502


def test_inject_fault_rejects_unknown_kinds(viapi):
    with pytest.raises(ValueError):
        viapi.inject_fault(kind="explode")
    with pytest.raises(ValueError):
        viapi.inject_fault(times=0)


def test_examples_file_holds_every_action_verbatim():
    examples = viapi_module.load_examples()
    assert set(examples) == set(viapi_module.ACTIONS)
    text = examples["RecognizeIdentityCard"]
    assert '"IDNumber": 310228199601115400' in text
    assert '"AntiFakeCode": 81931914902643030000' in examples["RecognizeTicketInvoice"]
    assert json.loads(examples["RecognizeTicketInvoice"])["Data"]["Results"]["Content"][
        "AntiFakeCode"] == 81931914902643030000
