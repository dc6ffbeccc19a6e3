"""The same handler against OSS: real oss2 talking to the local OSS emulator, which checks every signature."""

import json
from types import SimpleNamespace

import pytest
import requests

from fcocr.config import Settings
from fcocr.errors import FcocrError, TransientError
from fcocr.events import oss_event
from fcocr.runtime import Credentials, Runtime
from fcocr.storage import OssStorage, open_storage

from .conftest import cloud_event, event_bytes, load_function, text_image
from .emulators.oss import OssEmulator

handler = load_function("ocr_upload").handler
BUCKET = "fcocr-test"
AK, SK, TOKEN = "STS.test-ak", "test-secret", "test-token"


def fc_context(ak=AK, sk=SK, token=TOKEN):
    """FC python3.10's context: STS credentials of the function's role."""
    creds = SimpleNamespace(access_key_id=ak, access_key_secret=sk, security_token=token)
    return SimpleNamespace(request_id="fc-req-1", credentials=creds, region="cn-shanghai",
                           function=SimpleNamespace(name="ocr_upload", timeout=120))


@pytest.fixture
def oss(monkeypatch):
    with OssEmulator(credentials={AK: (SK, TOKEN), "LTAIplain": ("plain-secret", None)}) as emulator:
        emulator.create_bucket(BUCKET)
        monkeypatch.setenv("FCOCR_OSS_ENDPOINT", emulator.endpoint)
        yield emulator


def result(oss, key):
    data = oss.get(BUCKET, key + ".ocr.json")
    return None if data is None else json.loads(data)


def requests_for(oss, key, method=None):
    return [r for r in oss.requests if r.key == key and (method is None or r.method == method)]


def test_upload_to_result_through_oss_with_v4_signatures(oss):
    etag = oss.put(BUCKET, "scans/发票 1+1.png", text_image(["OSS ROUND TRIP"]), content_type="image/png")
    out = json.loads(handler(event_bytes(oss_event(BUCKET, "scans/发票 1+1.png")), fc_context()))
    assert out["records"][0]["status"] == "succeeded"
    doc = result(oss, "scans/发票 1+1.png")
    assert doc["text"] == "OSS ROUND TRIP" and doc["source"]["etag"] == etag
    written = oss.head(BUCKET, "scans/发票 1+1.png.ocr.json")
    assert written["content_type"].startswith("application/json") and written["metadata"]["fcocr-kind"] == "result"
    auths = {r.auth for r in oss.requests}
    assert auths == {"v4"}  # every call signed, none anonymous
    assert all(r.status < 400 or r.error_code == "NoSuchKey" for r in oss.requests)


def test_python312_runtime_reads_credentials_from_the_environment(oss, monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)
    oss.put(BUCKET, "env.png", text_image(["ENV CREDENTIALS"]))
    context = SimpleNamespace(request_id="r312", function=SimpleNamespace(name="ocr_upload", timeout=60))
    handler(event_bytes(oss_event(BUCKET, "env.png")), context)
    assert result(oss, "env.png")["text"] == "ENV CREDENTIALS"


def test_an_eventbridge_oss_event_on_python312_writes_every_result(oss, monkeypatch):
    """FC 3.0, python3.12: one EventBridge trigger's CloudEvents (a batch, any letter case), no context.credentials."""
    for name in ("ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "SECURITY_TOKEN"):
        monkeypatch.setenv(f"ALIBABA_CLOUD_{name}", {"ACCESS_KEY_ID": AK, "ACCESS_KEY_SECRET": SK,
                                                     "SECURITY_TOKEN": TOKEN}[name])
    keys = ["inbox/IMG_0001.JPG", "inbox/scan.Png"]
    for key in keys:
        oss.put(BUCKET, key, text_image([key.split("/")[1].split(".")[0].upper().replace("_", " ")]))
    context = SimpleNamespace(request_id="r-eb", function=SimpleNamespace(name="fcocr-ocr_upload", timeout=60))
    out = json.loads(handler(json.dumps([cloud_event(BUCKET, k) for k in keys]).encode(), context))
    assert [r["status"] for r in out["records"]] == ["succeeded", "succeeded"]
    assert [result(oss, k)["text"] for k in keys] == ["IMG 0001", "SCAN"]
    assert {r.auth for r in oss.requests} == {"v4"}


def test_a_wrong_secret_is_rejected_by_the_emulator_and_surfaces(oss):
    oss.put(BUCKET, "a.png", text_image(["X"]))
    with pytest.raises(FcocrError) as info:
        handler(event_bytes(oss_event(BUCKET, "a.png")), fc_context(sk="wrong-secret"))
    assert "SignatureDoesNotMatch" in info.value.message
    assert result(oss, "a.png") is None
    assert any(r.error_code == "SignatureDoesNotMatch" for r in oss.requests)


def test_percent_encoded_event_key_is_decoded_once_after_a_miss(oss):
    oss.put(BUCKET, "报销 单/a+b.png", text_image(["DECODED KEY"]))
    handler(event_bytes(oss_event(BUCKET, "%E6%8A%A5%E9%94%80%20%E5%8D%95/a+b.png")), fc_context())
    assert result(oss, "报销 单/a+b.png")["text"] == "DECODED KEY"
    heads = [r.key for r in oss.requests if r.method == "HEAD"]
    assert heads[:2] == ["%E6%8A%A5%E9%94%80%20%E5%8D%95/a+b.png", "报销 单/a+b.png"]


def test_object_metadata_overrides_the_route(oss, monkeypatch):
    monkeypatch.setenv("FCOCR_ROUTES", '{"routes": [{"match": "none/**", "recognizer": "local.text"}]}')
    oss.put(BUCKET, "meta.png", text_image(["META ROUTE"]),
            metadata={"x-oss-meta-fcocr-recognizer": "local.text", "x-oss-meta-fcocr-options": '{"minConfidence": 90}'})
    oss.put(BUCKET, "unrouted.png", text_image(["NO ROUTE"]))
    handler(event_bytes(oss_event(BUCKET, "meta.png"), oss_event(BUCKET, "unrouted.png")), fc_context())
    doc = result(oss, "meta.png")
    assert doc["route"] == {"via": "metadata"} and doc["options"] == {"minConfidence": 90.0}
    assert doc["text"] == "META ROUTE"
    assert result(oss, "unrouted.png")["error"]["code"] == "NoRoute"


def test_put_symlink_reads_the_target_and_writes_beside_the_link(oss):
    oss.put(BUCKET, "real/doc.png", text_image(["BEHIND A SYMLINK"]))
    oss.put_symlink(BUCKET, "link.png", "real/doc.png")
    handler(event_bytes(oss_event(BUCKET, "link.png", event_name="ObjectCreated:PutSymlink")), fc_context())
    assert result(oss, "link.png")["text"] == "BEHIND A SYMLINK"
    assert result(oss, "real/doc.png") is None


def test_a_503_on_read_is_retried_by_fc_and_then_succeeds(oss):
    oss.put(BUCKET, "flaky.png", text_image(["AFTER A 503"]))
    oss.inject_fault(method="GET", key="flaky.png", status=503, code="ServiceUnavailable")
    with pytest.raises(TransientError):
        handler(event_bytes(oss_event(BUCKET, "flaky.png")), fc_context())
    doc = result(oss, "flaky.png")
    assert doc["status"] == "failed" and doc["error"]["retryable"] is True
    assert doc["error"]["vendorCode"] == "ServiceUnavailable" and doc["error"]["vendorRequestId"]
    handler(event_bytes(oss_event(BUCKET, "flaky.png")), fc_context())  # FC's async retry
    assert result(oss, "flaky.png")["text"] == "AFTER A 503"


def test_a_failed_result_write_raises_so_nothing_is_lost(oss):
    oss.put(BUCKET, "w.png", text_image(["WRITE FAULT"]))
    oss.inject_fault(method="PUT", key="w.png.ocr.json", status=500, code="InternalError")
    with pytest.raises(TransientError):
        handler(event_bytes(oss_event(BUCKET, "w.png")), fc_context())
    assert result(oss, "w.png") is None
    handler(event_bytes(oss_event(BUCKET, "w.png")), fc_context())
    assert result(oss, "w.png")["status"] == "succeeded"


def test_connection_drops_are_transient(oss):
    oss.put(BUCKET, "drop.png", text_image(["DROP"]))
    oss.inject_fault(method="HEAD", key="drop.png", status=0, times=10)
    with pytest.raises(TransientError) as info:
        handler(event_bytes(oss_event(BUCKET, "drop.png")), fc_context())
    assert info.value.code == "StorageUnavailable"


def test_duplicate_events_never_download_or_recognize_twice(oss):
    oss.put(BUCKET, "dup.png", text_image(["DUPLICATE"]))
    handler(event_bytes(oss_event(BUCKET, "dup.png")), fc_context())
    out = json.loads(handler(event_bytes(oss_event(BUCKET, "dup.png"), oss_event(BUCKET, "dup.png")), fc_context()))
    assert [r["status"] for r in out["records"]] == ["skipped", "skipped"]
    assert len(requests_for(oss, "dup.png", "GET")) == 1


def test_an_oversized_object_is_refused_from_head_without_download(oss, monkeypatch):
    monkeypatch.setenv("FCOCR_MAX_BYTES", "1000")
    oss.put(BUCKET, "big.png", text_image(["BIG"]))
    handler(event_bytes(oss_event(BUCKET, "big.png")), fc_context())
    assert result(oss, "big.png")["error"]["code"] == "InputTooLarge"
    assert requests_for(oss, "big.png", "GET") == []


def test_presigned_get_urls_work_for_a_plain_http_client(oss):
    oss.put(BUCKET, "shared/图 1.png", b"\x89PNG-bytes")
    runtime = Runtime("r", credentials=Credentials(AK, SK, TOKEN))
    storage = open_storage(BUCKET, runtime, Settings.from_env(), region="cn-shanghai")
    url = storage.presign_get("shared/图 1.png", 300)
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.content == b"\x89PNG-bytes"
    assert requests_for(oss, "shared/图 1.png")[-1].auth == "presign-v4"
    tampered = url.replace("x-oss-expires=300", "x-oss-expires=3000")
    assert requests.get(tampered, timeout=10).status_code == 403


@pytest.mark.parametrize("creds,expected_auth", [
    (Credentials(AK, SK, TOKEN), "v1"),
    (Credentials("LTAIplain", "plain-secret", None), "v1"),
])
def test_v1_signing_when_no_region_is_known(oss, creds, expected_auth):
    storage = OssStorage(BUCKET, endpoint=oss.endpoint, region="", credentials=creds)
    storage.write("v1/doc.json", b"{}", content_type="application/json", metadata={"fcocr-kind": "result"})
    assert storage.read("v1/doc.json", 100) == b"{}"
    assert storage.head("v1/doc.json").metadata == {"fcocr-kind": "result"}
    assert {r.auth for r in requests_for(oss, "v1/doc.json")} == {expected_auth}


def test_listing_pages_through_every_key(oss):
    keys = [f"list/{i:03d}.png" for i in range(25)]
    for key in keys:
        oss.put(BUCKET, key, b"x")
    storage = OssStorage(BUCKET, endpoint=oss.endpoint, region="cn-shanghai", credentials=Credentials(AK, SK, TOKEN))
    assert [o.key for o in storage.list("list/")] == keys


def test_idempotency_reads_the_result_metadata_not_the_document(oss):
    oss.put(BUCKET, "meta-idem.png", text_image(["IDEMPOTENT"]))
    handler(event_bytes(oss_event(BUCKET, "meta-idem.png")), fc_context())
    meta = oss.head(BUCKET, "meta-idem.png.ocr.json")["metadata"]
    assert meta["fcocr-status"] == "succeeded" and meta["fcocr-source-etag"] == oss.head(BUCKET, "meta-idem.png")["etag"]
    handler(event_bytes(oss_event(BUCKET, "meta-idem.png")), fc_context())
    assert requests_for(oss, "meta-idem.png.ocr.json", "GET") == []  # a HEAD settled it


def test_a_result_without_fcocr_metadata_is_read_to_decide(oss):
    etag = oss.put(BUCKET, "foreign.png", text_image(["FOREIGN"]))
    existing = {"status": "succeeded", "source": {"bucket": BUCKET, "key": "foreign.png", "etag": etag}}
    oss.put(BUCKET, "foreign.png.ocr.json", json.dumps(existing).encode())
    out = json.loads(handler(event_bytes(oss_event(BUCKET, "foreign.png")), fc_context()))
    assert out["records"][0]["status"] == "skipped"
    assert len(requests_for(oss, "foreign.png.ocr.json", "GET")) == 1
    # Same document for another ETag: the object changed, so it is recognized again.
    oss.put(BUCKET, "foreign.png", text_image(["CHANGED"]))
    handler(event_bytes(oss_event(BUCKET, "foreign.png")), fc_context())
    assert result(oss, "foreign.png")["text"] == "CHANGED"


def test_a_crc_mismatch_in_transit_is_transient(oss, monkeypatch):
    import oss2

    oss.put(BUCKET, "crc.png", text_image(["CRC"]))
    storage = OssStorage(BUCKET, endpoint=oss.endpoint, region="cn-shanghai", credentials=Credentials(AK, SK, TOKEN))

    def corrupted(*args, **kwargs):
        raise oss2.exceptions.InconsistentError("the crc of the response differs", "req-crc")

    monkeypatch.setattr(storage._bucket, "get_object", corrupted)
    with pytest.raises(TransientError) as info:
        storage.read("crc.png", 10_000_000)
    assert info.value.code == "StorageUnavailable"


def test_an_oss2_without_v4_signs_v1_and_still_works(oss, monkeypatch):
    """FC python3.10 ships oss2 2.16 (V1 only): a package that relies on the runtime's oss2 must still work."""
    import oss2

    from fcocr import storage

    real_bucket = oss2.Bucket

    def bucket_216(auth, endpoint, bucket_name, connect_timeout=None, **kwargs):
        assert "region" not in kwargs  # 2.16's Bucket has no region argument
        return real_bucket(auth, endpoint, bucket_name, connect_timeout=connect_timeout)

    monkeypatch.delattr(oss2, "ProviderAuthV4")
    monkeypatch.setattr(oss2, "Bucket", bucket_216)
    monkeypatch.setattr(storage, "_BUCKETS", {})
    oss.put(BUCKET, "v1.png", text_image(["SIGNED V1"]))
    handler(event_bytes(oss_event(BUCKET, "v1.png")), fc_context())
    assert result(oss, "v1.png")["text"] == "SIGNED V1"
    assert {r.auth for r in oss.requests if r.key.startswith("v1.png")} == {"v1"}
