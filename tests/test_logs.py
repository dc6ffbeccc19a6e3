"""Logs carry identifiers and outcomes, never credentials or what was read off a document."""

import json
import logging
import threading
from types import SimpleNamespace

import pytest

from fcocr import pipeline
from fcocr.errors import FcocrError
from fcocr.events import oss_event
from fcocr.tools import cli

from .cloud import AK, BUCKET, SK, TOKEN, image, result, upload
from .conftest import REPO, event_bytes, load_function, put_local
from .emulators.green import GreenEmulator
from .emulators.market import MarketEmulator, response_text
from .emulators.oss import OssEmulator
from .emulators.tencent import TencentEmulator
from .emulators.viapi import ViapiEmulator

handler = load_function("ocr_upload").handler


def log_lines(text):
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines, "no JSON log lines captured"
    return lines


def test_a_document_log_line_has_the_identifiers_and_no_recognized_text(local_root, monkeypatch, capsys):
    monkeypatch.setenv("FCOCR_LOG_LEVEL", "DEBUG")
    put_local(local_root, "id/card.png", (REPO / "shared/fcocr/samples/idcard_front.png").read_bytes())
    handler(event_bytes(oss_event("bucket", "id/card.png")), SimpleNamespace(request_id="req-log"))
    captured = capsys.readouterr()
    doc = json.loads((local_root / "bucket/id/card.png.ocr.json").read_text())
    assert "990000199001011230" in doc["text"] and "张示例" in doc["text"]  # the engine did read them...
    for line in doc["text"].splitlines():  # ...and none of it reaches the logs
        if len(line) >= 2:
            assert line not in captured.err and line not in captured.out
    (entry,) = [e for e in log_lines(captured.err) if e["event"] == "document"]
    assert entry["requestId"] == "req-log" and entry["key"] == "id/card.png" and entry["status"] == "succeeded"
    assert entry["recognizer"] == "local.text" and isinstance(entry["durationMs"], int)


def test_credentials_never_reach_the_logs_even_when_oss_refuses_them(monkeypatch, capsys):
    with OssEmulator(credentials={"STS.log-ak": ("log-secret-value", "log-token-value")}) as oss:
        oss.create_bucket("log-bucket")
        oss.put("log-bucket", "a.png", b"\x89PNG\r\n\x1a\n")
        monkeypatch.setenv("FCOCR_OSS_ENDPOINT", oss.endpoint)
        monkeypatch.setenv("FCOCR_LOG_LEVEL", "DEBUG")
        bad = SimpleNamespace(access_key_id="STS.log-ak", access_key_secret="wrong-secret-value",
                              security_token="log-token-value")
        try:
            handler(event_bytes(oss_event("log-bucket", "a.png")), SimpleNamespace(request_id="r", credentials=bad))
        except Exception:
            pass
    err = capsys.readouterr().err
    assert log_lines(err)
    for secret in ("wrong-secret-value", "log-secret-value", "log-token-value"):
        assert secret not in err


# ------------------------------------------------------------------------------------------ every vendor, end to end
APPCODE = "0123456789abcdef0123456789abcdef"
TENCENT_ID, TENCENT_KEY = "AKIDlogcheck", "tencent-secret-for-logs"
GREEN_UID, GREEN_SEED = "1234567890123456", "green_seed_for_logs_42"
# What vendors read off the documents: the viapi example's card, and a card of our own for market.idcard.
VIAPI_NAME, VIAPI_ID = "张三", "310228199601115400"
MARKET_NAME, MARKET_ID = "李示例", "110101199003074514"


@pytest.fixture
def every_log_record(monkeypatch):
    """Every logging record at the level FC ships (INFO and up from any logger; fcocr's own at DEBUG)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep(logging.DEBUG)
    root, ours = logging.getLogger(), logging.getLogger("fcocr")
    monkeypatch.setattr(root, "level", logging.INFO)  # FC's Python runtime logs INFO and above
    root.addHandler(keep)
    ours.addHandler(keep)
    yield records
    root.removeHandler(keep)
    ours.removeHandler(keep)


def record_text(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), json.dumps(getattr(record, "fields", {}), ensure_ascii=False, default=str)]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def test_no_secret_or_recognized_value_reaches_any_log(oss, monkeypatch, capfd, every_log_record):
    served = cli.callback_server()  # the scan_callback function, as `fcocr serve callback` serves it
    threading.Thread(target=served.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    with ViapiEmulator(credentials={AK: (SK, TOKEN)}, oss=oss) as viapi, MarketEmulator(appcode=APPCODE) as market, \
            TencentEmulator(credentials={TENCENT_ID: TENCENT_KEY}) as tencent, \
            GreenEmulator(credentials={AK: (SK, TOKEN)}, uid=GREEN_UID, random_seed=3) as green:
        env = {"FCOCR_LOG_LEVEL": "DEBUG", "FCOCR_ALIYUN_OCR_ENDPOINT": viapi.endpoint,
               "ALIYUN_MARKET_APPCODE": APPCODE, "FCOCR_MARKET_URL_IDCARD": market.url_for("idcard"),
               "TENCENTCLOUD_SECRET_ID": TENCENT_ID, "TENCENTCLOUD_SECRET_KEY": TENCENT_KEY,
               "FCOCR_TENCENT_ENDPOINT": tencent.endpoint, "FCOCR_GREEN_ENDPOINT": green.endpoint,
               "GREEN_UID": GREEN_UID, "GREEN_SEED": GREEN_SEED, "GREEN_CALLBACK_URL": served.url,
               # the served callback has no FC context: it takes the environment's key (python3.12's way)
               "ALIBABA_CLOUD_ACCESS_KEY_ID": AK, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SK,
               "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN,
               "FCOCR_ROUTES": json.dumps({"routes": [
                   {"match": "id/aliyun/**", "recognizer": "aliyun.RecognizeIdentityCard", "options": {"Side": "face"}},
                   {"match": "id/market/**", "recognizer": "market.idcard"},
                   {"match": "invoices/**", "recognizer": "tencent.VatInvoiceOCR"},
                   {"match": "tickets/**", "recognizer": "green.invoice"}]})}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        pipeline.reset_app()
        card = json.loads(response_text("idcard", "face"))
        card.update(name=MARKET_NAME, num=MARKET_ID)
        market.set_response("idcard", card)

        outcomes = {key: upload(oss, key, image())["records"][0]["status"]
                    for key in ("id/aliyun/a.jpg", "id/market/b.jpg", "invoices/c.jpg", "tickets/d.jpg")}
        [delivered] = green.deliver_callbacks()  # the scan's result comes back through the callback function
        docs = {key: result(oss, key) for key in outcomes}
        # Failures too: a refused APPCODE, a vendor that keeps failing (its retries and the raised error are logged).
        monkeypatch.setenv("ALIYUN_MARKET_APPCODE", "ffffffffffffffffffffffffffffffff")
        pipeline.reset_app()
        outcomes["id/market/refused.jpg"] = upload(oss, "id/market/refused.jpg", image())["records"][0]["status"]
        monkeypatch.setenv("ALIYUN_MARKET_APPCODE", APPCODE)
        pipeline.reset_app()
        market.inject_fault("idcard", kind="status", status=503, times=10)
        with pytest.raises(FcocrError):
            upload(oss, "id/market/down.jpg", image())
        # An answer cut off halfway (the card's name and number in what arrived): retried, then raised, and FC
        # writes what the handler raised into the function's log.
        cut = json.dumps({"name": MARKET_NAME, "num": MARKET_ID, **card}, ensure_ascii=False)[:100]
        market.clear_faults()
        market.inject_fault("idcard", kind="malformed", body=cut, times=10)
        with pytest.raises(FcocrError) as raised:
            upload(oss, "id/market/cut.jpg", image())
        assert raised.value.code == "Market.MalformedResponse"
    served.shutdown()
    served.server_close()

    assert outcomes == {"id/aliyun/a.jpg": "succeeded", "id/market/b.jpg": "succeeded", "invoices/c.jpg": "succeeded",
                        "tickets/d.jpg": "pending", "id/market/refused.jpg": "failed"}
    assert delivered.status == 200 and docs["tickets/d.jpg"]["status"] == "succeeded"
    # The vendors did read the names and ID numbers (so their absence below means something) ...
    aliyun_card, market_card = docs["id/aliyun/a.jpg"]["fields"], docs["id/market/b.jpg"]["fields"]
    assert (aliyun_card["idNumber"], aliyun_card["name"]) == (VIAPI_ID, VIAPI_NAME)
    assert (market_card["idNumber"], market_card["name"]) == (MARKET_ID, MARKET_NAME)
    assert next(r for r in green.requests if r.path == "/green/image/asyncscan").body["seed"] == GREEN_SEED

    out, err = capfd.readouterr()
    texts = [record_text(r) for r in every_log_record] + err.splitlines() + out.splitlines() + [str(raised.value)]
    # ... and none of it, nor any credential, is in a log line: stderr (fcocr's JSON lines, anything an SDK
    # printed) or any logging record.
    forbidden = {"secret": SK, "STS token": TOKEN, "APPCODE": APPCODE, "refused APPCODE": "f" * 32,
                 "Tencent SecretId": TENCENT_ID, "Tencent SecretKey": TENCENT_KEY, "green seed": GREEN_SEED,
                 "green uid": GREEN_UID, "name": VIAPI_NAME, "ID number": VIAPI_ID, "market name": MARKET_NAME,
                 "market ID number": MARKET_ID}
    leaks = {what: text for text in texts for what, value in forbidden.items() if value in text}
    assert leaks == {}
    # One document line per processed upload, with the identifiers; the vendor's request id where it answered.
    lines = log_lines(err)
    documents = {e["key"]: e for e in lines if e["event"] == "document"}
    assert set(documents) == set(outcomes) | {"id/market/down.jpg", "id/market/cut.jpg"}
    for key, entry in documents.items():
        assert entry["requestId"] == "fc-cloud-1" and entry["bucket"] == BUCKET and isinstance(entry["durationMs"], int)
        assert entry["recognizer"] == next(r for p, r in (("id/aliyun", "aliyun.RecognizeIdentityCard"),
                                                          ("id/market", "market.idcard"),
                                                          ("invoices", "tencent.VatInvoiceOCR"),
                                                          ("tickets", "green.invoice")) if key.startswith(p))
    assert documents["id/aliyun/a.jpg"]["vendorRequestId"] == docs["id/aliyun/a.jpg"]["vendorRequestId"]
    assert documents["invoices/c.jpg"]["vendorRequestId"] == docs["invoices/c.jpg"]["vendorRequestId"]
    assert documents["id/market/down.jpg"]["status"] == "failed" and documents["id/market/down.jpg"]["errorCode"]
    assert any(e["event"] == "vendor retry" for e in lines)
