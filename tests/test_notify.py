"""Notifications (FCOCR_NOTIFY): a final result is announced to an MNS topic (the MNS SDK, checked by the MNS
emulator's signature verification) or to a webhook signed with HMAC-SHA256 (checked by a loopback receiver);
a failed notification is retried and never loses or changes the result."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from fcocr import notify
from fcocr.config import Settings
from fcocr.errors import ConfigError
from fcocr.model import Outcome, SourceRef, TaskRef
from fcocr.results import ResultDocument, ResultWriter, utc_now
from fcocr.runtime import Runtime
from fcocr.storage import open_storage

from .cloud import AK, BUCKET, SK, TOKEN, fc_context, image, result, route, upload, viapi_emulator
from .emulators.mns import MnsEmulator, WebhookReceiver

ID_NUMBER = "310228199601115400"
SECRET = "webhook-secret"
MESSAGE_KEYS = {"event", "id", "sentAt", "bucket", "key", "etag", "status", "documentType", "resultKey", "errorCode"}


@pytest.fixture
def viapi(monkeypatch, oss):
    with viapi_emulator(monkeypatch, oss, poll_ms=None) as emulator:
        route(monkeypatch, "aliyun.RecognizeIdentityCard", {"Side": "face"})
        yield emulator


@pytest.fixture
def webhook(monkeypatch):
    with WebhookReceiver(SECRET) as receiver:
        monkeypatch.setenv("FCOCR_NOTIFY", receiver.url)
        monkeypatch.setenv("FCOCR_NOTIFY_SECRET", SECRET)
        yield receiver


@pytest.fixture
def mns(monkeypatch):
    with MnsEmulator(credentials={AK: (SK, TOKEN)}, topics=["fcocr-results"]) as emulator:
        monkeypatch.setenv("FCOCR_NOTIFY", "mns:topic/fcocr-results")
        monkeypatch.setenv("FCOCR_MNS_ENDPOINT", emulator.endpoint)
        yield emulator


def test_a_final_result_is_announced_to_a_signed_webhook_without_field_values(oss, viapi, webhook):
    upload(oss, "id/front.jpg", image())
    [message] = webhook.received
    assert set(message) == MESSAGE_KEYS and message["event"] == "fcocr.result"
    doc = result(oss, "id/front.jpg")
    assert message["bucket"] == BUCKET and message["key"] == "id/front.jpg" and message["etag"] == doc["source"]["etag"]
    assert message["status"] == "succeeded" and message["documentType"] == "idcard"
    assert message["resultKey"] == "id/front.jpg.ocr.json" and message["errorCode"] is None
    assert ID_NUMBER not in json.dumps(message)
    assert webhook.headers[0]["x-fcocr-signature"].startswith("sha256=") and webhook.rejected == 0


def test_a_failing_webhook_is_retried_and_delivered_once(oss, viapi, webhook):
    webhook.fail_next(2, 503)
    upload(oss, "id/front.jpg", image())
    assert len(webhook.received) == 1 and result(oss, "id/front.jpg")["status"] == "succeeded"


def test_a_notification_that_keeps_failing_never_loses_or_changes_the_result(oss, viapi, webhook, capsys):
    webhook.fail_next(100, 500)
    out = upload(oss, "id/front.jpg", image())
    assert out["records"][0]["status"] == "succeeded" and webhook.received == []
    doc = result(oss, "id/front.jpg")
    assert doc["status"] == "succeeded" and doc["fields"]["idNumber"] == ID_NUMBER
    assert '"notification not sent"' in capsys.readouterr().err


def test_a_webhook_that_refuses_is_not_retried(oss, viapi, webhook, monkeypatch):
    monkeypatch.setenv("FCOCR_NOTIFY_SECRET", "not-the-receivers")
    upload(oss, "id/front.jpg", image())
    assert webhook.received == [] and webhook.rejected == 1  # 401: permanent, asked once
    assert result(oss, "id/front.jpg")["status"] == "succeeded"


def test_the_receiver_refuses_a_tampered_or_replayed_message(webhook):
    body = json.dumps({"id": "a" * 32, "sentAt": int(webhook.clock()), "status": "succeeded"}).encode()
    headers = {"X-Fcocr-Signature": notify.sign(SECRET, body), "X-Fcocr-Timestamp": str(json.loads(body)["sentAt"])}

    def post(data: bytes) -> int:
        request = urllib.request.Request(webhook.url, data=data, method="POST", headers=headers)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert post(body.replace(b"succeeded", b"failed\x20\x20\x20")) == 401  # tampered
    assert post(body) == 204
    assert post(body) == 401  # the same message again: a replay
    assert notify.verify(SECRET, body, headers["X-Fcocr-Signature"], now=webhook.clock())
    assert not notify.verify(SECRET, body, headers["X-Fcocr-Signature"], now=webhook.clock() + 3600)


def test_a_final_result_is_published_to_an_mns_topic_with_the_sdk(oss, viapi, mns):
    upload(oss, "id/front.jpg", image())
    [(topic, text)] = mns.messages  # the emulator verified the SDK's signature and the STS token
    message = json.loads(text)
    assert topic == "fcocr-results" and set(message) == MESSAGE_KEYS
    assert message["key"] == "id/front.jpg" and message["status"] == "succeeded" and ID_NUMBER not in text


def test_mns_faults_are_retried_and_a_missing_topic_is_not(oss, viapi, mns, monkeypatch):
    mns.fail_next(2, 503, "ServiceUnavailable")
    upload(oss, "id/front.jpg", image())
    assert len(mns.messages) == 1 and mns.rejected == ["ServiceUnavailable"] * 2
    monkeypatch.setenv("FCOCR_NOTIFY", "mns:topic/no-such-topic")
    from fcocr import pipeline

    pipeline.reset_app()
    upload(oss, "id/back.jpg", image())
    assert mns.rejected[2:] == ["TopicNotExist"] and result(oss, "id/back.jpg")["status"] == "succeeded"


def test_pending_and_retryable_results_are_not_announced(oss, webhook):
    oss.put(BUCKET, "a.png", b"png")
    settings = Settings.from_env()
    runtime = Runtime.from_context(fc_context())
    writer = ResultWriter.for_settings(open_storage(BUCKET, runtime, settings, "cn-shanghai"), settings, runtime)
    common = dict(source=SourceRef(BUCKET, "a.png", "E", 3), recognizer="green.idcard", started_at=utc_now(),
                  finished_at=utc_now(), duration_ms=1)
    writer.write(ResultDocument.from_outcome(Outcome(task=TaskRef("t", "green", "d", utc_now())), **common))
    from fcocr.errors import TransientError

    writer.write(ResultDocument.from_error(TransientError("later", code="Busy"), **common))
    assert webhook.received == []
    writer.write(ResultDocument.from_outcome(Outcome(lines=[], raw={}), **common))
    assert [m["status"] for m in webhook.received] == ["succeeded"]


@pytest.mark.parametrize("env,fragment", [
    ({"FCOCR_NOTIFY": "http://hooks.example.com/x", "FCOCR_NOTIFY_SECRET": "s"}, "https://"),
    ({"FCOCR_NOTIFY": "https://hooks.example.com/x"}, "FCOCR_NOTIFY_SECRET"),
    ({"FCOCR_NOTIFY": "mns:queue/x", "FCOCR_MNS_ENDPOINT": "https://1.mns.cn-shanghai.aliyuncs.com"}, "mns:topic"),
    ({"FCOCR_NOTIFY": "mns:topic/fcocr"}, "FCOCR_MNS_ENDPOINT"),
])
def test_bad_notification_settings_stop_the_cold_start(env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_env(env)
