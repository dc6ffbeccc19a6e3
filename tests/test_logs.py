"""Logs carry identifiers and outcomes, never credentials or what was read off a document."""

import json
from types import SimpleNamespace

from fcocr.events import oss_event

from .conftest import REPO, event_bytes, load_function, put_local
from .emulators.oss import OssEmulator

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
