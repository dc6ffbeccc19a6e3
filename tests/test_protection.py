"""Encryption at rest (FCOCR_SSE on every object fcocr writes, checked by the OSS emulator) and masking
(FCOCR_MASK, FCOCR_KEEP_RAW: masked values never reach a stored result or a log line)."""

from __future__ import annotations

import json

import pytest

from fcocr import tasks
from fcocr.config import Settings
from fcocr.errors import ConfigError, PermanentError
from fcocr.masking import Masking, mask_value
from fcocr.model import Line, Outcome, SourceRef
from fcocr.results import ResultDocument, ResultWriter, utc_now
from fcocr.runtime import Credentials, Runtime
from fcocr.storage import OssStorage, open_storage, put_staged
from fcocr.tools.cli import main as fcocr_main

from .cloud import AK, BUCKET, SK, TOKEN, fc_context, image, result, route, upload, viapi_emulator
from .conftest import VALIDATOR
from .emulators.viapi import ViapiEmulator

ID_NUMBER = "310228199601115400"  # the viapi example's, which it sends as a JSON number


@pytest.fixture
def viapi(monkeypatch, oss):
    with viapi_emulator(monkeypatch, oss, poll_ms=None) as emulator:
        yield emulator


# ------------------------------------------------------------------------------------------ encryption
@pytest.mark.parametrize("value,expected", [
    ("AES256", {"x-oss-server-side-encryption": "AES256"}),
    ("KMS", {"x-oss-server-side-encryption": "KMS"}),
    ("kms:key-7f3a", {"x-oss-server-side-encryption": "KMS", "x-oss-server-side-encryption-key-id": "key-7f3a"}),
])
def test_every_object_fcocr_writes_carries_the_configured_encryption(monkeypatch, oss, viapi, value, expected):
    monkeypatch.setenv("FCOCR_SSE", value)
    route(monkeypatch, "aliyun.RecognizeIdentityCard", {"Side": "face"})
    upload(oss, "id/front.jpg", image())
    assert oss.head(BUCKET, "id/front.jpg.ocr.json")["encryption"] == expected  # the result
    assert "encryption" not in oss.head(BUCKET, "id/front.jpg")  # the user's own upload is not ours to change
    settings = Settings.from_env()
    store = open_storage(BUCKET, Runtime.from_context(fc_context()), settings, "cn-shanghai")
    staged = put_staged(store, b"copy", "image/png")  # a staged copy
    record = tasks.TaskRecord(data_id=tasks.data_id_for(BUCKET, "id/front.jpg", "E"), kind="green", task_id="t",
                              bucket=BUCKET, key="id/front.jpg", etag="E", recognizer="green.idcard",
                              submitted_at=utc_now())
    tasks.save(store, record)  # a task record
    assert oss.head(BUCKET, record.record_key)["encryption"] == expected
    tasks.close(store, record, settings, Runtime.from_context(fc_context()), "succeeded", receipt=True)  # a receipt
    for key in (staged, tasks.receipt_key(record.data_id)):
        assert oss.head(BUCKET, key)["encryption"] == expected, key


def test_without_the_setting_nothing_asks_for_encryption(monkeypatch, oss, viapi):
    route(monkeypatch, "aliyun.RecognizeIdentityCard", {"Side": "face"})
    upload(oss, "id/front.jpg", image())
    assert "encryption" not in oss.head(BUCKET, "id/front.jpg.ocr.json")


@pytest.mark.parametrize("headers,code", [
    ({"x-oss-server-side-encryption": "AES128"}, "Oss.InvalidEncryptionAlgorithmError"),
    ({"x-oss-server-side-encryption": "AES256", "x-oss-server-side-encryption-key-id": "k"}, "Oss.InvalidArgument"),
])
def test_the_oss_emulator_refuses_encryption_headers_oss_refuses(oss, headers, code):
    store = OssStorage(BUCKET, endpoint=oss.endpoint, region="cn-shanghai", credentials=Credentials(AK, SK, TOKEN),
                       encryption=headers)
    with pytest.raises(PermanentError) as caught:
        store.write("x.json", b"{}", content_type="application/json", metadata={})
    assert caught.value.code == code and oss.head(BUCKET, "x.json") is None


@pytest.mark.parametrize("value", ["AES", "KMS:", "AES256:key-1", "KMS:bad key"])
def test_a_bad_encryption_setting_stops_the_cold_start(value):
    with pytest.raises(ConfigError, match="FCOCR_SSE"):
        Settings.from_env({"FCOCR_SSE": value})


# --------------------------------------------------------------------------------------------- masking
@pytest.mark.parametrize("text,masked", [
    ("310210199001015411", "3102**********5411"), ("6222020200112233", "6222********2233"), ("张三", "张*"),
    ("张三丰", "张*丰"), ("欧阳娜娜", "欧**娜"), ("X", "*"), ("1234567", "1*****7"), ("12345678", "12****78"),
])
def test_a_masked_value_keeps_its_first_and_last_characters(text, masked):
    assert mask_value(text) == masked


def test_masked_fields_appear_nowhere_in_the_stored_result_nor_in_the_logs(monkeypatch, oss, viapi, capsys):
    monkeypatch.setenv("FCOCR_MASK", "idNumber,name")
    route(monkeypatch, "aliyun.RecognizeIdentityCard", {"Side": "face"})
    upload(oss, "id/front.jpg", image())
    stored = oss.get(BUCKET, "id/front.jpg.ocr.json").decode("utf-8")
    doc = json.loads(stored)
    VALIDATOR.validate(doc)
    name = ViapiEmulator.example("RecognizeIdentityCard")["Data"]["FrontResult"]["Name"]
    assert doc["fields"]["idNumber"] == mask_value(ID_NUMBER) and doc["fields"]["name"] == mask_value(name)
    assert doc["raw"]["Data"]["FrontResult"]["IDNumber"] == mask_value(ID_NUMBER)  # the raw number too
    assert doc["masked"] == ["idNumber", "name"]
    assert doc["fields"]["birthDate"] == "1996-01-11"  # fields not named stay whole
    assert ID_NUMBER not in stored and name not in stored
    logged = capsys.readouterr()
    assert ID_NUMBER not in logged.err + logged.out and name not in logged.err + logged.out


def test_checks_see_the_unmasked_value_before_the_writer_masks_it(local_root):
    # The writer masks in render(), its last step: the document object a check reads is never changed.
    (local_root / "bucket" / "id.png").write_bytes(b"png")
    from fcocr.storage import LocalStorage

    writer = ResultWriter(LocalStorage(str(local_root), "bucket"), ".ocr.json", masking=Masking(("idNumber",)))
    doc = ResultDocument.from_outcome(
        Outcome(fields={"idNumber": ID_NUMBER}, raw={"id": ID_NUMBER, "n": int(ID_NUMBER)}, document_type="idcard",
                lines=[Line(f"公民身份号码 {ID_NUMBER}", 99.0, ((0, 0), (9, 0), (9, 9), (0, 9)))]),
        source=SourceRef("bucket", "id.png", "E", 3), recognizer="local.text", started_at=utc_now(),
        finished_at=utc_now(), duration_ms=1)
    writer.write(doc)
    assert doc.outcome.fields["idNumber"] == ID_NUMBER
    stored = json.loads((local_root / "bucket" / "id.png.ocr.json").read_text("utf-8"))
    assert stored["raw"] == {"id": mask_value(ID_NUMBER), "n": mask_value(ID_NUMBER)}
    assert stored["text"] == f"公民身份号码 {mask_value(ID_NUMBER)}" == stored["lines"][0]["text"]


def test_keep_raw_false_drops_the_raw_answer(monkeypatch, oss, viapi):
    monkeypatch.setenv("FCOCR_KEEP_RAW", "false")
    route(monkeypatch, "aliyun.RecognizeIdentityCard", {"Side": "face"})
    upload(oss, "id/front.jpg", image())
    doc = result(oss, "id/front.jpg")
    VALIDATOR.validate(doc)
    assert doc["raw"] is None and doc["fields"]["idNumber"] == ID_NUMBER  # nothing masked unless named


@pytest.mark.parametrize("env,fragment", [
    ({"FCOCR_MASK": "idNumber,id-number"}, "FCOCR_MASK"),
    ({"FCOCR_KEEP_RAW": "maybe"}, "FCOCR_KEEP_RAW"),
    ({"FCOCR_DELETE_WITH_SOURCE": "sometimes"}, "FCOCR_DELETE_WITH_SOURCE"),
])
def test_bad_privacy_settings_stop_the_cold_start(env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_env(env)


def test_fcocr_check_accepts_the_new_settings(monkeypatch, local_root, capsys):
    for name, value in {"FCOCR_SSE": "KMS:key-1", "FCOCR_MASK": "idNumber", "FCOCR_KEEP_RAW": "false",
                        "FCOCR_NOTIFY": "https://hooks.example.com/fcocr", "FCOCR_NOTIFY_SECRET": "s"}.items():
        monkeypatch.setenv(name, value)
    assert fcocr_main(["check"]) == 0
