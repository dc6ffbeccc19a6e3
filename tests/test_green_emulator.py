"""The Content Security (green) emulator, driven through the official old-style SDK.

Every call goes through ``aliyunsdkcore.client.AcsClient`` with the real
``aliyunsdkgreen.request.v20180509`` request classes (or, to tamper with what the SDK would send,
through ``requests`` with headers the SDK signed), so what is checked is the wire protocol the
product code will speak: ROA signatures, Content-MD5, STS tokens, error mapping into
``ServerException`` / ``ClientException``, presigned-URL downloads and callback checksums.
"""

from __future__ import annotations

import copy
import hashlib
import http.server
import io
import json
import socket
import threading
import time
import uuid
from urllib.parse import parse_qs

import oss2
import pytest
import requests
from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.auth.credentials import StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.utils import parameter_helper
from aliyunsdkgreen.request.v20180509.ImageAsyncScanRequest import ImageAsyncScanRequest
from aliyunsdkgreen.request.v20180509.ImageAsyncScanResultsRequest import ImageAsyncScanResultsRequest

from fcocr.recognizers.green.checksum import callback_checksum, verify_callback
from tests.emulators.green import CARDS, GreenEmulator, load_examples
from tests.emulators.oss import OssEmulator

AK, SECRET = "ak-green", "sk-green"
STS_AK, STS_SECRET, STS_TOKEN = "STS.green-ak", "sts-secret", "sts-token-value"
UID = "1234567890123456"
OSS_AK, OSS_SECRET, OSS_TOKEN = "STS.test-ak", "test-secret", "test-token"
BUCKET = "in-bucket"


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (16, 16), "white").save(out, "PNG")
    return out.getvalue()


PNG = _png()


@pytest.fixture
def oss():
    with OssEmulator() as emulator:
        emulator.create_bucket(BUCKET)
        emulator.put(BUCKET, "a.png", PNG)
        emulator.put(BUCKET, "票据/b c.png", PNG)
        emulator.put(BUCKET, "not-an-image.txt", b"hello, I am text")
        yield emulator


@pytest.fixture
def green():
    with GreenEmulator(credentials={AK: (SECRET, None), STS_AK: (STS_SECRET, STS_TOKEN)},
                       uid=UID) as emulator:
        yield emulator


def presign(oss, key, expires=600):
    bucket = oss2.Bucket(oss2.StsAuth(OSS_AK, OSS_SECRET, OSS_TOKEN), oss.endpoint, BUCKET)
    return bucket.sign_url("GET", key, expires)


def make_client(ak=AK, secret=SECRET, token=None):
    if token is not None:
        return AcsClient(region_id="cn-shanghai", credential=StsTokenCredential(ak, secret, token))
    return AcsClient(ak, secret, "cn-shanghai")


def make_request(cls, green, body):
    request = cls()
    request.set_endpoint(green.endpoint)
    request.set_accept_format("JSON")
    request.set_content_type("application/json")
    request.set_content(json.dumps(body, ensure_ascii=False).encode("utf-8"))
    return request


def submit(green, body, client=None):
    raw = (client or make_client()).do_action_with_exception(
        make_request(ImageAsyncScanRequest, green, body))
    return json.loads(raw)


def query(green, task_ids, client=None):
    raw = (client or make_client()).do_action_with_exception(
        make_request(ImageAsyncScanResultsRequest, green, task_ids))
    return json.loads(raw)


def scan_body(urls, card="invoice", **extra):
    body = {"scenes": ["ocr"], "extras": {"card": card},
            "tasks": [{"dataId": "data-%d" % i, "url": url} for i, url in enumerate(urls)]}
    body.update(extra)
    return body


def server_error(call):
    with pytest.raises(ServerException) as info:
        call()
    return info.value


def signed_raw(green, body_signed: bytes, *, ak=AK, secret=SECRET, extra_headers=None,
               cls=ImageAsyncScanRequest):
    """(url, headers) exactly as the SDK would send `body_signed`, for tampering tests."""
    request = cls()
    request.set_accept_format("JSON")
    request.set_content_type("application/json")
    request.set_content(body_signed)
    for name, value in (extra_headers or {}).items():
        request.add_header(name, value)
    headers = request.get_signed_header("cn-shanghai", ak, secret)
    url = green.endpoint + request.get_url("cn-shanghai", ak, secret)
    return url, dict(headers)


# ---- endpoint override --------------------------------------------------------------------

def test_submit_through_the_sdk(green, oss):
    url = presign(oss, "a.png")
    answer = submit(green, scan_body([url]))
    assert answer["code"] == 200 and answer["msg"] == "OK"
    assert len(answer["requestId"]) == 36
    [item] = answer["data"]
    assert item["code"] == 200 and item["msg"] == "OK"
    assert item["dataId"] == "data-0" and item["url"] == url
    assert item["taskId"].startswith("img") and item["extras"] == {"card": "invoice"}

    # The image was fetched through the presigned URL, as the real service would.
    [fetch] = [r for r in oss.requests if r.method == "GET"]
    assert fetch.auth == "presign-v1" and fetch.status == 200
    [download] = green.downloads
    assert download.code == 200 and download.size == len(PNG)

    [record] = green.requests
    assert record.path == "/green/image/asyncscan" and record.ak == AK and record.auth_ok
    assert record.status == 200 and record.error_code is None
    assert record.body["tasks"][0]["url"] == url


def test_endpoint_with_scheme_wins_even_over_https(green, oss):
    # set_endpoint("http://127.0.0.1:PORT") keeps its scheme and port even when the product code
    # asks for HTTPS (as it should in the cloud): the SDK only adds a scheme to a bare host.
    request = make_request(ImageAsyncScanRequest, green, scan_body([presign(oss, "a.png")]))
    request.set_protocol_type("https")
    answer = json.loads(make_client().do_action_with_exception(request))
    assert answer["code"] == 200


def test_endpoint_through_add_endpoint(green, oss):
    client = make_client()
    client.add_endpoint("cn-shanghai", "Green", green.endpoint)
    request = ImageAsyncScanRequest()
    request.set_content_type("application/json")
    request.set_content(json.dumps(scan_body([presign(oss, "a.png")])).encode())
    assert json.loads(client.do_action_with_exception(request))["code"] == 200


def test_endpoint_as_bare_host_and_port(green, oss):
    request = make_request(ImageAsyncScanRequest, green, scan_body([presign(oss, "a.png")]))
    request.set_endpoint("%s:%d" % (green.host, green.port))  # protocol stays the default http
    assert json.loads(make_client().do_action_with_exception(request))["code"] == 200


# ---- authentication -----------------------------------------------------------------------

def test_sts_credentials(green, oss):
    client = make_client(STS_AK, STS_SECRET, STS_TOKEN)
    assert submit(green, scan_body([presign(oss, "a.png")]), client)["code"] == 200
    assert green.requests[-1].ak == STS_AK

    exc = server_error(lambda: submit(green, scan_body(["http://x/a.png"]),
                                      make_client(STS_AK, STS_SECRET)))
    assert (exc.get_error_code(), exc.get_http_status()) == ("MissingSecurityToken", 400)
    exc = server_error(lambda: submit(green, scan_body(["http://x/a.png"]),
                                      make_client(STS_AK, STS_SECRET, "other-token")))
    assert exc.get_error_code() == "InvalidSecurityToken.MismatchWithAccessKey"
    exc = server_error(lambda: submit(green, scan_body(["http://x/a.png"]),
                                      make_client(AK, SECRET, "a-token")))
    assert exc.get_error_code() == "InvalidSecurityToken.Malformed"


def test_wrong_secret(green):
    exc = server_error(lambda: submit(green, scan_body(["http://x/a.png"]),
                                      make_client(AK, "not-the-secret")))
    assert (exc.get_error_code(), exc.get_http_status()) == ("SignatureDoesNotMatch", 400)
    assert exc.get_request_id() == green.requests[-1].request_id
    assert "server string to sign is:POST\napplication/json\n" in exc.get_error_msg()
    assert not green.requests[-1].auth_ok and green.task_ids() == []


def test_unknown_access_key(green):
    exc = server_error(lambda: submit(green, scan_body(["http://x/a.png"]),
                                      make_client("ak-nobody", SECRET)))
    assert (exc.get_error_code(), exc.get_http_status()) == ("InvalidAccessKeyId.NotFound", 404)


def test_tampered_body_fails_content_md5(green, oss):
    good = json.dumps(scan_body([presign(oss, "a.png")])).encode()
    evil = json.dumps(scan_body([presign(oss, "a.png")] * 2)).encode()
    url, headers = signed_raw(green, good)

    # Signed body as signed: accepted (the raw path is faithful to the SDK).
    assert requests.post(url, data=good, headers=headers).json()["code"] == 200
    # Same headers, other body: the signature still matches, Content-MD5 does not.
    resp = requests.post(url, data=evil, headers=headers)
    assert resp.status_code == 400 and resp.json()["Code"] == "ContentMD5NotMatched"
    assert set(resp.json()) == {"RequestId", "HostId", "Code", "Message"}
    # Fixing Content-MD5 breaks the signature instead.
    headers["Content-MD5"] = parameter_helper.md5_sum(evil)
    resp = requests.post(url, data=evil, headers=headers)
    assert resp.status_code == 400 and resp.json()["Code"] == "SignatureDoesNotMatch"
    # A Content-MD5 that is not base64 of 16 bytes.
    headers["Content-MD5"] = "not base64!"
    assert requests.post(url, data=evil, headers=headers).json()["Code"] == "SignatureDoesNotMatch"
    assert len(green.task_ids()) == 1


def test_tampered_query_and_headers(green):
    body = json.dumps(scan_body(["http://x/a.png"])).encode()
    url, headers = signed_raw(green, body)
    resp = requests.post(url.replace("RegionId=cn-shanghai", "RegionId=cn-hangzhou"), data=body,
                         headers=headers)
    assert resp.json()["Code"] == "SignatureDoesNotMatch"
    resp = requests.post(url, data=body, headers={**headers, "x-acs-region-id": "cn-hangzhou"})
    assert resp.json()["Code"] == "SignatureDoesNotMatch"
    resp = requests.post(url, data=body, headers={**headers, "Accept": "application/xml"})
    assert resp.json()["Code"] == "SignatureDoesNotMatch"
    # Unsigned extra headers (not x-acs-*) do not matter.
    resp = requests.post(url, data=body, headers={**headers, "X-Trace": "1"})
    assert resp.json()["code"] == 200


@pytest.mark.parametrize("change, code", [
    ({"Authorization": None}, "IncompleteSignature"),
    ({"Authorization": "Bearer abc"}, "IncompleteSignature"),
    ({"x-acs-signature-method": "HMAC-SHA256"}, "InvalidSignatureMethod"),
    ({"x-acs-signature-version": "2.0"}, "InvalidSignatureVersion"),
    ({"x-acs-version": None}, "MissingVersion"),
    ({"Date": None}, "InvalidTimeStamp.Format"),
    ({"Date": "yesterday"}, "InvalidTimeStamp.Format"),
])
def test_malformed_signing_headers(green, change, code):
    body = b'{"scenes":["ocr"]}'
    url, headers = signed_raw(green, body)
    for name, value in change.items():
        headers.pop(name, None)
        if value is not None:
            headers[name] = value
    resp = requests.post(url, data=body, headers=headers)
    assert resp.status_code == 400 and resp.json()["Code"] == code


def test_wrong_api_version(green):
    request = make_request(ImageAsyncScanRequest, green, scan_body(["http://x/a.png"]))
    request.set_version("2017-01-12")
    exc = server_error(lambda: make_client().do_action_with_exception(request))
    assert (exc.get_error_code(), exc.get_http_status()) == ("InvalidVersion", 400)


def test_unknown_api(green):
    body = b"[]"
    url, headers = signed_raw(green, body)
    resp = requests.post(url.replace("/asyncscan", "/syncscan"), data=body, headers=headers)
    assert resp.status_code == 404 and resp.json()["Code"] == "InvalidApi.NotFound"
    resp = requests.get(url, headers=headers)
    assert resp.status_code == 404 and resp.json()["Code"] == "InvalidApi.NotFound"


@pytest.mark.parametrize("minutes, ok", [(14, True), (16, False), (-14, True), (-16, False)])
def test_date_window(green, oss, monkeypatch, minutes, ok):
    when = time.time() - minutes * 60
    monkeypatch.setattr(parameter_helper, "get_rfc_2616_date",
                        lambda: time.strftime(parameter_helper.FORMAT_RFC_2616, time.gmtime(when)))
    call = lambda: submit(green, scan_body([presign(oss, "a.png")]))  # noqa: E731
    if ok:
        assert call()["code"] == 200
    else:
        exc = server_error(call)
        assert (exc.get_error_code(), exc.get_http_status()) == ("InvalidTimeStamp.Expired", 400)


def test_signature_nonce_cannot_be_reused(green, oss):
    # aliyunsdkcore 2.16 sends no x-acs-signature-nonce for ROA; when one is sent (it is an
    # x-acs-* header, so it is signed) the gateway refuses to see it twice.
    nonce = uuid.uuid4().hex
    body = scan_body([presign(oss, "a.png")])
    first = make_request(ImageAsyncScanRequest, green, body)
    first.add_header("x-acs-signature-nonce", nonce)
    assert json.loads(make_client().do_action_with_exception(first))["code"] == 200
    again = make_request(ImageAsyncScanRequest, green, body)
    again.add_header("x-acs-signature-nonce", nonce)
    exc = server_error(lambda: make_client().do_action_with_exception(again))
    assert (exc.get_error_code(), exc.get_http_status()) == ("SignatureNonceUsed", 400)
    fresh = make_request(ImageAsyncScanRequest, green, body)
    fresh.add_header("x-acs-signature-nonce", uuid.uuid4().hex)
    assert json.loads(make_client().do_action_with_exception(fresh))["code"] == 200


# ---- submit validation --------------------------------------------------------------------

def test_more_than_100_tasks(green, oss):
    url = presign(oss, "a.png")
    exc = server_error(lambda: submit(green, scan_body([url] * 101)))
    # Green's own errors are {"code","msg","requestId"}: the SDK finds no "Code" in them.
    assert (exc.get_error_code(), exc.get_http_status()) == ("SDK.UnknownServerError", 400)
    assert exc.get_request_id() is None
    body = json.loads(exc.get_error_msg()[len("ServerResponseBody: "):])
    assert body["code"] == 400 and "100" in body["msg"]
    assert green.requests[-1].error_code == "BAD_REQUEST" and green.task_ids() == []

    answer = submit(green, scan_body([url] * 100))
    assert [item["code"] for item in answer["data"]] == [200] * 100
    assert len({item["taskId"] for item in answer["data"]}) == 100


def test_business_errors_with_http_200(oss):
    with GreenEmulator(business_http_status=200) as green:
        answer = submit(green, scan_body(["http://x/a.png"] * 101))
        assert answer["code"] == 400 and answer["msg"].startswith("BAD_REQUEST")


@pytest.mark.parametrize("seed", ["a" * 65, "bad-seed", "bad seed", "种子", "a.b"])
def test_bad_seed(green, seed):
    exc = server_error(lambda: submit(green, scan_body(
        ["http://x/a.png"], callback="http://127.0.0.1:1/cb", seed=seed)))
    assert exc.get_http_status() == 400 and "seed" in exc.get_error_msg()


@pytest.mark.parametrize("change, word", [
    ({"callback": "http://127.0.0.1:1/cb"}, "seed"),                       # seed is mandatory
    ({"callback": "http://127.0.0.1:1/cb", "seed": ""}, "seed"),
    ({"callback": "ftp://127.0.0.1/cb", "seed": "abc"}, "callback"),
    ({"cryptType": "MD5"}, "cryptType"),
    ({"cryptType": "sha256"}, "cryptType"),
    ({"scenes": ["porn"]}, "scenes"),
    ({"scenes": ["ocr", "porn"]}, "scenes"),
    ({"scenes": None}, "scenes"),
    ({"extras": {"card": "id-card"}}, "card"),
    ({"extras": None}, "card"),
    ({"tasks": []}, "tasks"),
    ({"tasks": [{"dataId": "x", "url": "http://x/1.png"}, {"dataId": "x", "url": "http://x/2.png"}]},
     "dataId"),
])
def test_submit_validation(green, change, word):
    body = scan_body(["http://x/a.png"])
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    exc = server_error(lambda: submit(green, body))
    assert exc.get_http_status() == 400 and word in exc.get_error_msg()
    assert green.task_ids() == []


def test_seed_limits_that_pass(green, oss):
    url = presign(oss, "a.png")
    for seed in ["a" * 64, "A_1", "_"]:
        body = scan_body([url], callback="http://127.0.0.1:1/cb", seed=seed, cryptType="SM3")
        assert submit(green, body)["code"] == 200


def test_body_that_is_not_json(green):
    request = ImageAsyncScanRequest()
    request.set_endpoint(green.endpoint)
    request.set_content(b"\xff not json")
    exc = server_error(lambda: make_client().do_action_with_exception(request))
    assert exc.get_http_status() == 400 and "JSON" in exc.get_error_msg()


def test_a_task_with_a_bad_url_fails_alone(green, oss):
    body = scan_body([presign(oss, "a.png"), "file:///etc/passwd"])
    answer = submit(green, body)
    first, second = answer["data"]
    assert first["code"] == 200 and "taskId" in first
    assert second["code"] == 400 and "taskId" not in second and second["dataId"] == "data-1"


# ---- results ------------------------------------------------------------------------------

@pytest.mark.parametrize("card", CARDS)
def test_results_are_the_documented_examples(green, oss, card):
    url = presign(oss, "票据/b c.png")
    task_id = submit(green, scan_body([url], card=card))["data"][0]["taskId"]
    answer = query(green, [task_id])
    assert answer["code"] == 200 and answer["msg"] == "OK"
    [item] = answer["data"]
    example = load_examples()["results"][card]["data"][0]
    assert item["code"] == 200 and item["taskId"] == task_id and item["url"] == url
    assert item["dataId"] == "data-0"
    assert item["results"] == example["results"]
    if card == "invoice":
        # The example's extras.md5 becomes the MD5 of the image actually downloaded.
        assert item["extras"] == {"md5": hashlib.md5(PNG).hexdigest()}
        info = item["results"][0]["invoiceInfo"]
        assert info["invoice_id"] == "110015****" and info["invoice_totalamount"] == "4222.22"
        assert len(info["invoice_detail"]) == 2
    else:
        assert item["extras"] == {}
        assert "invoiceInfo" not in item["results"][0]
    if card == "quota-account-permit":
        serial = item["results"][0]["ocrCardInfo"]["invoiceSerial"]
        assert isinstance(serial, dict) and serial["batchNumber"] == "01"
        assert item["results"][0]["ocrCardInfo"]["type"] == "quota-invoice"


def test_taxi_table_spelling_variant(green, oss):
    variant = load_examples()["variants"]["taxi-ticket-table-spelling"]
    green.set_card_results(variant["card"], variant["results"])
    task_id = submit(green, scan_body([presign(oss, "a.png")], card="taxi-ticket"))["data"][0]["taskId"]
    info = query(green, [task_id])["data"][0]["results"][0]["ocrCardInfo"]
    assert info["invoiceNumbe"] == "5485G0****" and "invoiceNumber" not in info


def test_task_without_data_id(green, oss):
    body = {"scenes": ["ocr"], "extras": {"card": "train-ticket"},
            "tasks": [{"url": presign(oss, "a.png")}]}
    [item] = submit(green, body)["data"]
    assert "dataId" not in item
    [result] = query(green, [item["taskId"]])["data"]
    assert result["code"] == 200 and "dataId" not in result


def test_results_query_rules(green, oss):
    task_id = submit(green, scan_body([presign(oss, "a.png")]))["data"][0]["taskId"]
    answer = query(green, ["img-never-issued", task_id])
    assert [(i["code"], i["taskId"]) for i in answer["data"]] == [(404, "img-never-issued"),
                                                                   (200, task_id)]
    for bad in ([], [task_id] * 101, {"taskId": task_id}, [1, 2]):
        exc = server_error(lambda bad=bad: query(green, bad))
        assert exc.get_http_status() == 400
    assert len(query(green, [task_id] * 100)["data"]) == 100


def test_processing_then_done_then_expired(oss):
    with GreenEmulator(processing_delay=30) as green:
        task_id = submit(green, scan_body([presign(oss, "a.png")]))["data"][0]["taskId"]
        [item] = query(green, [task_id])["data"]
        assert (item["code"], item["msg"]) == (280, "PROCESSING") and "results" not in item
        green.advance_clock(30)
        assert query(green, [task_id])["data"][0]["code"] == 200
        green.advance_clock(3590)                    # kept for an hour after it was done...
        assert query(green, [task_id])["data"][0]["code"] == 200
        green.advance_clock(11)                      # ...and not a second longer
        [item] = query(green, [task_id])["data"]
        assert (item["code"], item["msg"], item["taskId"]) == (594, "EXPIRED", task_id)
        assert "results" not in item


def test_download_failures_become_task_results(green, oss):
    slow = _SlowServer()
    green.download_timeout = 0.2
    try:
        urls = [presign(oss, "missing.png"),                 # 404 from OSS
                presign(oss, "a.png", expires=-10),          # expired presigned URL: 403
                presign(oss, "a.png").replace("Signature=", "Signature=X"),  # bad signature
                presign(oss, "not-an-image.txt"),
                "http://127.0.0.1:%d/a.png" % _closed_port(),
                slow.url]
        answer = submit(green, scan_body(urls))
        assert [i["code"] for i in answer["data"]] == [200] * len(urls)  # accepted...
        ids = [i["taskId"] for i in answer["data"]]
        codes = [(i["code"], i["msg"]) for i in query(green, ids)["data"]]
        assert codes == [(480, "DOWNLOAD_FAILED")] * 3 + [(590, "BAD_FORMAT"),
                                                           (480, "DOWNLOAD_FAILED"),
                                                           (592, "DOWNLOAD_TIMEOUT")]
        # (Downloads run concurrently: match the records to tasks by id.)
        statuses = {d.task_id: d.status for d in green.downloads}
        assert [statuses[i] for i in ids[:4]] == [404, 403, 403, 200]
        assert statuses[ids[4]] == 0
    finally:
        slow.close()


# ---- callbacks ----------------------------------------------------------------------------

class _CallbackServer:
    """A tiny callback endpoint: answers with the queued statuses (then 200), records posts."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.posts = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append((dict(self.headers), body))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/green/callback?x=1" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()

    def form(self, index=-1):
        headers, body = self.posts[index]
        assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        fields = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        assert set(fields) == {"checksum", "content"}
        return fields["checksum"][0], fields["content"][0]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callback_server():
    server = _CallbackServer()
    yield server
    server.close()


class _SlowServer:
    """Accepts a download and answers only when closed: slower than any download timeout, on any machine."""

    def __init__(self):
        self.released = released = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                released.wait(30)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(PNG)))
                    self.end_headers()
                    self.wfile.write(PNG)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d/slow.png" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()

    def close(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def _closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.mark.parametrize("crypt", ["SHA256", "SM3"])
def test_callback_checksum_verifies(green, oss, callback_server, crypt):
    url = presign(oss, "a.png")
    body = scan_body([url], card="train-ticket", callback=callback_server.url, seed="aabbcc123",
                     cryptType=crypt)
    task_id = submit(green, body)["data"][0]["taskId"]
    [attempt] = green.deliver_callbacks()
    assert (attempt.task_id, attempt.attempt, attempt.status) == (task_id, 1, 200)

    checksum, content = callback_server.form()
    assert verify_callback(UID, "aabbcc123", content, checksum, crypt)
    assert checksum == callback_checksum(UID, "aabbcc123", content, crypt)
    assert not verify_callback("9999999999999999", "aabbcc123", content, checksum, crypt)
    assert not verify_callback(UID, "aabbcc123", content.replace("G0000", "G0001"), checksum, crypt)
    other = "SM3" if crypt == "SHA256" else "SHA256"
    assert not verify_callback(UID, "aabbcc123", content, checksum, other)

    item = json.loads(content)  # by default one data[] element of the results response
    assert item["code"] == 200 and item["taskId"] == task_id and item["dataId"] == "data-0"
    assert item["results"][0]["ocrCardInfo"]["seatType"] == "二等座"
    assert "二等座" in content  # sent as UTF-8 text, not \u escapes
    # Acknowledged with 200: never pushed again, and still queryable.
    assert green.deliver_callbacks() == []
    assert query(green, [task_id])["data"][0]["code"] == 200


def test_callback_envelope_shape(oss, callback_server):
    with GreenEmulator(callback_content="envelope") as green:
        body = scan_body([presign(oss, "a.png")], callback=callback_server.url, seed="s")
        task_id = submit(green, body)["data"][0]["taskId"]
        green.deliver_callbacks()
        checksum, content = callback_server.form()
        envelope = json.loads(content)
        assert envelope["code"] == 200 and envelope["data"][0]["taskId"] == task_id
        assert verify_callback(green.uid, "s", content, checksum, "SHA256")


def test_callback_repushed_after_non_200(green, oss, callback_server):
    callback_server.statuses = [500, 204, 404]
    body = scan_body([presign(oss, "a.png")], callback=callback_server.url, seed="abc")
    task_id = submit(green, body)["data"][0]["taskId"]
    rounds = [[(a.attempt, a.status) for a in green.deliver_callbacks()] for _ in range(5)]
    assert rounds == [[(1, 500)], [(2, 204)], [(3, 404)], [(4, 200)], []]
    assert [(a.task_id, a.attempt, a.status) for a in green.callback_attempts] == [
        (task_id, 1, 500), (task_id, 2, 204), (task_id, 3, 404), (task_id, 4, 200)]
    # Every push carries the same content and checksum.
    assert len({callback_server.form(i) for i in range(4)}) == 1


def test_callback_gives_up_after_the_first_push_and_16_re_pushes(green, oss, callback_server):
    callback_server.statuses = [503] * 100
    body = scan_body([presign(oss, "a.png")], callback=callback_server.url, seed="abc",
                     cryptType="SM3")
    submit(green, body)
    for _ in range(20):
        green.deliver_callbacks()
    assert [a.attempt for a in green.callback_attempts] == list(range(1, 18))
    assert len(callback_server.posts) == 17


def test_callback_unreachable_counts_as_failure(green, oss):
    url = "http://127.0.0.1:%d/cb" % _closed_port()
    submit(green, scan_body([presign(oss, "a.png")], callback=url, seed="abc"))
    [attempt] = green.deliver_callbacks()
    assert attempt.status == 0 and attempt.error
    assert len(green.deliver_callbacks()) == 1


def test_callback_waits_for_processing_and_reports_failures(oss, callback_server):
    with GreenEmulator(processing_delay=10) as green:
        body = scan_body([presign(oss, "a.png"), presign(oss, "missing.png")],
                         callback=callback_server.url, seed="abc")
        submit(green, body)
        assert green.deliver_callbacks() == []            # not done yet
        green.advance_clock(10)
        assert len(green.deliver_callbacks()) == 2
        items = sorted((json.loads(callback_server.form(i)[1]) for i in range(2)),
                       key=lambda item: item["dataId"])
        assert [(i["code"], i["dataId"]) for i in items] == [(200, "data-0"), (480, "data-1")]
        assert "results" not in items[1]


def test_no_callback_without_callback_url(green, oss):
    submit(green, scan_body([presign(oss, "a.png")], seed="abc"))
    assert green.deliver_callbacks() == []


# ---- throttling and faults ----------------------------------------------------------------

def test_qps_limit_per_access_key(oss):
    clock = [1000.0]
    with GreenEmulator(credentials={AK: (SECRET, None), "ak-two": ("sk-two", None)},
                       qps_limit=3, rate_clock=lambda: clock[0]) as green:
        url = presign(oss, "a.png")
        task_id = submit(green, scan_body([url]))["data"][0]["taskId"]
        submit(green, scan_body([url]))
        submit(green, scan_body([url]))
        exc = server_error(lambda: submit(green, scan_body([url])))
        assert (exc.get_error_code(), exc.get_http_status()) == ("Throttling.User", 400)
        # Each API has its own budget, and so has each AccessKey.
        assert query(green, [task_id])["code"] == 200
        assert submit(green, scan_body([url]), make_client("ak-two", "sk-two"))["code"] == 200
        clock[0] += 0.999  # still inside the one-second window
        assert server_error(lambda: submit(green, scan_body([url]))).get_error_code() == "Throttling.User"
        clock[0] += 0.001  # the window has moved past the first three calls
        assert submit(green, scan_body([url]))["code"] == 200


def test_default_qps_limit_is_10(green):
    assert green.qps_limit == 10


def test_fault_error(green, oss):
    green.inject_fault("/green/image/asyncscan")
    exc = server_error(lambda: submit(green, scan_body([presign(oss, "a.png")])))
    assert (exc.get_error_code(), exc.get_http_status()) == ("InternalError", 500)
    # One-shot, path-specific, and the SDK does not retry green calls by itself.
    assert [r.status for r in green.requests] == [500]
    assert submit(green, scan_body([presign(oss, "a.png")]))["code"] == 200


def test_fault_error_custom(green, oss):
    green.inject_fault(kind="error", status=503, code="ServiceUnavailable", times=2)
    for _ in range(2):
        exc = server_error(lambda: query(green, ["x"]))
        assert (exc.get_error_code(), exc.get_http_status()) == ("ServiceUnavailable", 503)
    assert query(green, ["x"])["data"][0]["code"] == 404


def test_fault_drop(green, oss):
    green.inject_fault(kind="drop")
    with pytest.raises(ClientException) as info:
        submit(green, scan_body([presign(oss, "a.png")]))
    assert info.value.get_error_code() == "SDK.HttpError"
    assert green.requests[-1].status == 0 and green.task_ids() == []


def test_fault_malformed(green):
    green.inject_fault("/green/image/results", kind="malformed")
    raw = make_client().do_action_with_exception(
        make_request(ImageAsyncScanResultsRequest, green, ["x"]))
    with pytest.raises(ValueError):
        json.loads(raw)


def test_fault_business_exceed_quota(green, oss):
    green.inject_fault(kind="business", status=588, code="EXCEED_QUOTA")
    exc = server_error(lambda: submit(green, scan_body([presign(oss, "a.png")])))
    assert exc.get_http_status() == 588 and exc.get_error_code() == "SDK.UnknownServerError"
    assert '"EXCEED_QUOTA"' in exc.get_error_msg()


def test_faults_fire_only_after_authentication(green, oss):
    green.inject_fault()
    server_error(lambda: submit(green, scan_body(["http://x/a.png"]), make_client(AK, "wrong")))
    exc = server_error(lambda: submit(green, scan_body([presign(oss, "a.png")])))
    assert exc.get_error_code() == "InternalError"


def test_examples_file_is_the_seed_verbatim():
    examples = load_examples()
    assert set(examples["results"]) == set(CARDS)
    assert examples["results_request"] == ["img5A@k7a@B4q@6K@d9nfKgOs-1s****"]
    assert examples["asyncscan"]["request"]["extras"] == {"card": "invoice"}
    taxi = examples["results"]["taxi-ticket"]["data"][0]["results"][0]["ocrCardInfo"]
    assert taxi["invoiceNumber"] == "5485G0****" and taxi["date"] == "2008109月16日"
    quota = examples["results"]["quota-account-permit"]["data"][0]["results"][0]["ocrCardInfo"]
    assert quota["amountInFigures"] == "" and quota["invoiceSerial"]["invoiceIndustryCode"] == "None"
    # Every leaf value in the examples is a string except rate and the codes.
    def leaves(node, path=()):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from leaves(value, path + (key,))
        elif isinstance(node, list):
            for value in node:
                yield from leaves(value, path)
        else:
            yield path, node
    for card in CARDS:
        for path, value in leaves(examples["results"][card]):
            if path[-1] in ("code", "rate"):
                assert isinstance(value, (int, float)), path
            else:
                assert isinstance(value, str), path


def test_card_results_are_copied_not_shared(green, oss):
    url = presign(oss, "a.png")
    first = submit(green, scan_body([url]))["data"][0]["taskId"]
    results = copy.deepcopy(green.card_results["invoice"])
    results[0]["suggestion"] = "pass"
    green.set_card_results("invoice", results)
    second = submit(green, scan_body([url]))["data"][0]["taskId"]
    got = {i["taskId"]: i["results"][0]["suggestion"] for i in query(green, [first, second])["data"]}
    assert got == {first: "review", second: "pass"}
