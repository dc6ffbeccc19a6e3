"""viapi async jobs are never submitted twice; Result decoded in every documented form; re-signed retries.

Against the viapi emulator (which checks ACS3 signatures, nonces and timestamps itself); calls counted from its
request log. Sleeps and clocks are injected.
"""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import pytest

from fcocr import reconcile, tasks
from fcocr.config import Settings
from fcocr.recognizers import aliyun
from fcocr.runtime import Runtime

from .cloud import BUCKET, fc_context, image, pdf, result, route, upload, viapi_emulator
from .emulators.viapi import ViapiEmulator

SEED_PRINTED_RESULT = r'{\"Content\":\"<div > <h2 > 2017 年 3 ⽉ 40 多家陶企上榜失信被执⾏⼈名单 </h2></div>\"}'


@pytest.fixture
def viapi(monkeypatch, oss):
    with viapi_emulator(monkeypatch, oss) as emulator:
        monkeypatch.setattr(aliyun.FAMILY, "sleep", lambda seconds: None)  # no real pauses between polls
        yield emulator


def calls(viapi, action):
    return [r for r in viapi.requests if r.action == action]


def record_for(oss, doc) -> tasks.TaskRecord | None:
    from fcocr.storage import open_storage

    storage = open_storage(BUCKET, Runtime.from_context(fc_context()), Settings.from_env())
    return tasks.load(storage, doc["task"]["dataId"])


def reconcile_at(monkeypatch, seconds_after_submit: float, record: tasks.TaskRecord) -> dict:
    monkeypatch.setenv("FCOCR_RECONCILE_BUCKETS", BUCKET)
    now = tasks.epoch(record.submitted_at) + seconds_after_submit
    return reconcile.run(Settings.from_env(), Runtime.from_context(fc_context()), now=now)["buckets"][BUCKET]


# ---------------------------------------------------------------------------------- the JobId is kept
def test_the_job_id_is_recorded_before_the_first_poll(monkeypatch, oss, viapi):
    route(monkeypatch, "aliyun.TrimDocument")
    viapi.inject_fault("GetAsyncJobResult", kind="delay")  # the first poll is held
    out: list[dict] = []
    worker = threading.Thread(target=lambda: out.append(upload(oss, "docs/held.pdf", pdf(1))))
    worker.start()
    assert viapi.wait_until_held(1, timeout=60)
    records = [k for k in oss.keys(BUCKET) if k.startswith(tasks.TASK_PREFIX) and k.endswith(".json")]
    [job_id] = viapi.jobs()
    assert len(records) == 1 and json.loads(oss.get(BUCKET, records[0]))["task_id"] == job_id
    viapi.release_delayed()
    worker.join()
    assert out[0]["records"][0]["status"] == "succeeded"
    assert [k for k in oss.keys(BUCKET) if k.startswith(tasks.TASK_PREFIX)] == []  # final: the record is gone
    assert result(oss, "docs/held.pdf")["billedCalls"] == {"aliyun.TrimDocument": 1}


def test_a_poll_fault_leaves_the_job_pending_and_the_timer_finishes_it_without_resubmitting(monkeypatch, oss, viapi):
    route(monkeypatch, "aliyun.TrimDocument")
    viapi.async_polls_before_done = 0  # done at the first poll that gets through
    viapi.inject_fault("GetAsyncJobResult", status=503, code="ServiceUnavailable", times=4)  # past the 4 attempts
    out = upload(oss, "docs/poll-fault.pdf", pdf(1))  # returns normally: nothing for FC to retry
    assert out["records"][0]["status"] == "pending"
    doc = result(oss, "docs/poll-fault.pdf")
    [job_id] = viapi.jobs()
    assert doc["task"]["id"] == job_id and any("reconcile timer" in w for w in doc["warnings"])
    record = record_for(oss, doc)
    assert record.task_id == job_id
    # While the submitting invocation could still be polling (its 120 s), the timer leaves the job alone.
    polls = len(calls(viapi, "GetAsyncJobResult"))
    assert reconcile_at(monkeypatch, 90, record).get("waiting") == 1
    assert len(calls(viapi, "GetAsyncJobResult")) == polls
    assert reconcile_at(monkeypatch, 10_000, record)["finished"] == 1
    final = result(oss, "docs/poll-fault.pdf")
    assert final["status"] == "succeeded" and final["fields"] == ViapiEmulator.example("TrimDocument")["Data"]
    assert len(calls(viapi, "TrimDocument")) == 1  # submitted (and paid for) once
    assert final["billedCalls"] == doc["billedCalls"] == {"aliyun.TrimDocument": 1}


def test_an_fc_retry_of_a_pending_job_does_not_submit_again(monkeypatch, oss, viapi):
    route(monkeypatch, "aliyun.TrimDocument")
    viapi.inject_fault("GetAsyncJobResult", status=503, code="ServiceUnavailable", times=4)
    upload(oss, "docs/again.pdf", pdf(1))
    from fcocr.events import oss_event

    from .cloud import handler
    from .conftest import event_bytes

    again = json.loads(handler(event_bytes(oss_event(BUCKET, "docs/again.pdf")), fc_context()))
    assert again["records"][0]["status"] == "skipped" and len(calls(viapi, "TrimDocument")) == 1


# ------------------------------------------------------------------------------------ Result's forms
def test_result_as_a_json_object():
    assert aliyun.decode_result({"Content": "<div>x</div>"}) == {"Content": "<div>x</div>"}


@pytest.mark.parametrize("form,stored", [
    ("json string", json.dumps({"Content": "<div > 多家陶企 </div>"}, ensure_ascii=False)),
    ("seed 000 printed form", SEED_PRINTED_RESULT),
])
def test_result_as_sent_is_decoded_end_to_end(monkeypatch, oss, viapi, form, stored):
    route(monkeypatch, "aliyun.TrimDocument")
    viapi.set_async_result("TrimDocument", stored)
    out = upload(oss, "docs/form.pdf", pdf(1))
    doc = result(oss, "docs/form.pdf")
    assert out["records"][0]["status"] == "succeeded", doc.get("error")
    assert doc["fields"]["Content"].startswith("<div > ") and "陶企" in doc["fields"]["Content"]
    assert len(calls(viapi, "TrimDocument")) == 1


def test_the_seed_printed_form_decodes_to_the_object():
    assert aliyun.decode_result(SEED_PRINTED_RESULT) == {
        "Content": "<div > <h2 > 2017 年 3 ⽉ 40 多家陶企上榜失信被执⾏⼈名单 </h2></div>"}
    assert aliyun.decode_result(json.dumps(json.dumps({"a": 1}))) == {"a": 1}  # encoded twice
    assert aliyun.decode_result("not json") == "not json"  # kept, never a fault that resubmits


# ------------------------------------------------------------------------- polling: injected clock
def test_polling_outside_fc_is_bounded_by_the_injected_clock(monkeypatch, oss, viapi):
    viapi.async_polls_before_done = 10_000
    route(monkeypatch, "aliyun.TrimDocument")
    ticks = iter([0.0, 0.0, aliyun.DEFAULT_POLL_SECONDS + 1])
    pauses: list[float] = []
    monkeypatch.setattr(aliyun.FAMILY, "clock", lambda: next(ticks))
    monkeypatch.setattr(aliyun.FAMILY, "sleep", pauses.append)
    oss.put(BUCKET, "docs/no-deadline.pdf", pdf(1))
    from fcocr import pipeline
    from fcocr.events import oss_event

    from .conftest import event_bytes

    no_deadline = SimpleNamespace(request_id="r-local", credentials=fc_context().credentials, region="cn-shanghai")
    out = pipeline.handle_oss_event(event_bytes(oss_event(BUCKET, "docs/no-deadline.pdf")), no_deadline)
    assert out["records"][0]["status"] == "pending"
    assert pauses == [0.005] and len(calls(viapi, "GetAsyncJobResult")) == 2


# --------------------------------------------------------------------------- re-signed retries
def test_a_replayed_nonce_is_retried_with_a_fresh_signature(monkeypatch, oss, viapi):
    from alibabacloud_tea_openapi.utils import Utils

    fresh = Utils.get_nonce
    handed: list[str] = []

    def nonce() -> str:  # the first two requests carry one nonce: the second is refused as a replay
        value = "replayed-nonce" if len(handed) < 2 else fresh()
        handed.append(value)
        return value

    monkeypatch.setattr(Utils, "get_nonce", staticmethod(nonce))
    route(monkeypatch, "aliyun.RecognizeVINCode")
    upload(oss, "vin/1.jpg", image())
    upload(oss, "vin/2.jpg", image(color=(1, 2, 3)))
    assert [r.error_code for r in viapi.requests] == [None, "SignatureNonceUsed", None]
    assert result(oss, "vin/2.jpg")["status"] == "succeeded"


def test_an_expired_timestamp_is_retried_with_a_fresh_signature(monkeypatch, oss, viapi):
    from alibabacloud_tea_openapi.utils import Utils

    current = Utils.get_timestamp
    stamps: list[str] = []

    def timestamp() -> str:  # the first request is signed with a clock 20 minutes behind
        value = "2020-01-01T00:00:00Z" if not stamps else current()
        stamps.append(value)
        return value

    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(timestamp))
    route(monkeypatch, "aliyun.RecognizeVINCode")
    upload(oss, "vin/t.jpg", image())
    assert [r.error_code for r in viapi.requests] == ["InvalidTimeStamp.Expired", None]
    assert result(oss, "vin/t.jpg")["status"] == "succeeded"
