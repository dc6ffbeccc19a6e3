"""Hostile events and keys: wrongly typed records, neighbours of a bad record, keys too long for a result
beside them, symlinked results, options nested too deeply, vendor fields of the wrong JSON type.

The recognizer is a stand-in (the pipeline is what is tested here), so these tests stay fast.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from fcocr import pipeline, results
from fcocr.errors import FcocrError, PermanentError
from fcocr.events import InvalidEvent, oss_event, parse_oss_event
from fcocr.fields import Field, extract
from fcocr.recognizers.green import scan
from fcocr.routing import Router
from fcocr.storage import LONG_KEY_PREFIX, RESERVED_PREFIXES, LocalStorage
from fcocr.tasks import TaskRecord

from .conftest import event_bytes, put_local, read_result


def record(**oss_object) -> dict:
    event = oss_event("bucket", "ok.png")
    event["oss"]["object"].update(oss_object)
    return event


# ------------------------------------------------------------------------------ wrongly typed fields
WRONGLY_TYPED = [
    ({"oss": {"bucket": "e", "object": {"key": "ok.png"}}}, "bucket is not an object"),
    ({"oss": {"bucket": {"name": "bucket"}, "object": "ok.png"}}, "object is not an object"),
    ({"oss": {"bucket": {"name": "bucket"}, "object": {"key": "ok.png", "size": float("inf")}}}, "size"),
    ({"oss": {"bucket": {"name": "bucket"}, "object": {"key": "ok.png", "size": -1}}}, "size"),
    ({"oss": {"bucket": {"name": "bucket"}, "object": {"key": "ok.png", "size": True}}}, "size"),
    ({"oss": {"bucket": {"name": "bucket"}, "object": {"key": "ok.png", "size": 1.5}}}, "size"),
    ({"oss": {"bucket": {"name": "bucket"}, "object": {"key": "ok.png", "eTag": 5.5}}}, "eTag"),
    ({"oss": {"bucket": {"name": "bucket"}, "object": {"key": "ok.png"}}, "responseElements": "x"}, "responseElements"),
    ({"oss": {"bucket": {"name": "bucket"}, "object": {"key": "ok.png"}}, "region": ["cn-shanghai"]}, "region"),
    ({"oss": {"bucket": {"name": ["bucket"]}, "object": {"key": "ok.png"}}}, "bucket.name"),
]


@pytest.mark.parametrize("fields,fragment", WRONGLY_TYPED)
def test_a_wrongly_typed_field_is_an_invalid_event_not_a_python_error(fields, fragment):
    raw = {"eventName": "ObjectCreated:PutObject", **fields}
    with pytest.raises(InvalidEvent) as info:
        parse_oss_event({"events": [raw]})
    assert fragment in info.value.message and info.value.details["index"] == 0


def test_size_1e400_in_the_bytes_of_an_event_is_refused():
    payload = event_bytes(oss_event("bucket", "ok.png")).replace(b'"key": "ok.png"', b'"key": "ok.png", "size": 1e400')
    with pytest.raises(InvalidEvent, match="size"):
        parse_oss_event(payload)


def test_an_event_nested_deeper_than_the_stack_is_invalid_not_a_recursion_error():
    with pytest.raises(InvalidEvent):
        parse_oss_event(b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")


def test_sizes_as_digits_and_whole_floats_are_still_read():
    uploads = parse_oss_event({"events": [record(size="122539"), record(size=1e3)]})
    assert [u.size for u in uploads] == [122539, 1000]


def test_a_rejected_list_keeps_the_good_records_of_a_bad_event():
    rejected: list[InvalidEvent] = []
    uploads = parse_oss_event({"events": [oss_event("bucket", "a.png"), {"eventName": 1}, record(size="big"),
                                          oss_event("bucket", "b.png")]}, rejected)
    assert [u.key for u in uploads] == ["a.png", "b.png"]
    assert [r.details["index"] for r in rejected] == [1, 2]


# ------------------------------------------------------------------------------ one record per record
def test_a_malformed_record_fails_alone_and_its_neighbours_get_results(local_root, recognized, capsys):
    put_local(local_root, "a.png", b"x")
    put_local(local_root, "b.png", b"y")
    bad = {"eventName": "ObjectCreated:PutObject", "oss": {"bucket": "e", "object": "ok.png"}}
    out = pipeline.handle_oss_event(event_bytes(oss_event("bucket", "a.png"), bad, oss_event("bucket", "b.png")))
    statuses = sorted((r.get("key", ""), r["status"], r.get("error_code")) for r in out["records"])
    assert statuses == [("", "failed", "InvalidEvent"), ("a.png", "succeeded", None), ("b.png", "succeeded", None)]
    assert sorted(recognized) == ["a.png", "b.png"]
    assert read_result(local_root, "a.png")["status"] == read_result(local_root, "b.png")["status"] == "succeeded"
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert any(entry["event"] == "malformed record" and entry["index"] == 1 for entry in logged)


def test_a_bug_on_one_record_does_not_stop_the_next_and_only_fcocr_errors_leave(local_root, recognized, monkeypatch):
    put_local(local_root, "a.png", b"x")
    put_local(local_root, "b.png", b"y")
    original = pipeline.process

    def crash_on_a(upload, runtime, application=None):
        if upload.key == "a.png":
            raise KeyError("a bug")
        return original(upload, runtime, application)

    monkeypatch.setattr(pipeline, "process", crash_on_a)
    with pytest.raises(FcocrError) as info:
        pipeline.handle_oss_event(event_bytes(oss_event("bucket", "a.png"), oss_event("bucket", "b.png")))
    assert info.value.code == "InternalError" and info.value.retryable
    assert recognized == ["b.png"] and read_result(local_root, "b.png")["status"] == "succeeded"


def test_an_invalid_bucket_name_in_oss_mode_is_a_failed_record_not_an_oss2_error(monkeypatch, recognized):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIexample0001")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "example-secret-0001")
    monkeypatch.setenv("FCOCR_OSS_ENDPOINT", "http://127.0.0.1:9")  # never reached: refused before any request
    out = pipeline.handle_oss_event(event_bytes(oss_event("Bad_Bucket!", "ok.png"), oss_event("e", "ok.png")))
    assert [(r["status"], r["error_code"]) for r in out["records"]] == [("failed", "InvalidBucketName")] * 2
    assert recognized == []


# ------------------------------------------------------------------------------ keys too long for a result
DEEP_KEY = "/".join(["d" * 202] * 5) + ".png"  # 1018 bytes: an OSS key whose result would be over 1023 bytes


def test_result_key_beside_the_source_or_under_a_hash_in_a_reserved_prefix():
    assert results.result_key("a/b.png", ".ocr.json") == "a/b.png.ocr.json"
    long_name = "票" * 84 + ".png"  # 256 bytes with the suffix: over the 255-byte file name limit
    digest = hashlib.sha256(long_name.encode("utf-8")).hexdigest()
    assert results.result_key(long_name, ".ocr.json") == f"{LONG_KEY_PREFIX}{digest}.ocr.json"
    assert LONG_KEY_PREFIX in RESERVED_PREFIXES
    # OSS: a key of 1015-1023 bytes is allowed, its result would not be.
    deep = DEEP_KEY
    assert len(deep.encode()) <= 1023 < len((deep + ".ocr.json").encode())
    assert results.result_key(deep, ".ocr.json").startswith(LONG_KEY_PREFIX)
    assert results.is_result_object(results.result_key(deep, ".ocr.json"), {}, ".other.json")


@pytest.mark.parametrize("key", [
    "票" * 82 + ".png",  # 250-byte file name: fits the file system, its result name does not
    DEEP_KEY,
])
def test_a_key_without_room_for_its_result_is_refused_before_paying(local_root, recognized, key):
    put_local(local_root, key, b"x")
    out = pipeline.handle_oss_event(event_bytes(oss_event("bucket", key)))
    (report,) = out["records"]
    assert report["status"] == "failed" and report["error_code"] == "KeyTooLong"
    assert recognized == []  # nothing paid
    where = results.result_key(key, ".ocr.json")
    assert report["result_key"] == where and where in report["reason"]
    doc = json.loads((local_root / "bucket" / where).read_text("utf-8"))
    assert doc["source"]["key"] == key and doc["error"]["retryable"] is False
    # FC's retry (or a re-run) finds the final result and skips: no loop, no second attempt.
    again = pipeline.handle_oss_event(event_bytes(oss_event("bucket", key)))
    assert again["records"][0]["status"] == "skipped"
    # The hashed result is never taken for an upload.
    skipped = pipeline.handle_oss_event(event_bytes(oss_event("bucket", where)))
    assert skipped["records"][0]["status"] == "skipped" and recognized == []


def test_a_source_name_the_file_system_cannot_hold_is_a_permanent_failure(local_root, recognized):
    out = pipeline.handle_oss_event(event_bytes(oss_event("bucket", "x" * 300 + ".png")))
    (report,) = out["records"]
    assert report["status"] == "failed" and report["error_code"] == "UnsafeKey"


# ------------------------------------------------------------------------------ symlinks in local storage
def test_a_result_that_is_a_symlink_is_replaced_never_written_through(local_root, recognized):
    put_local(local_root, "a.png", b"x")
    precious = put_local(local_root, "precious.txt", b"keep me")
    os.symlink(precious, local_root / "bucket" / "a.png.ocr.json")
    out = pipeline.handle_oss_event(event_bytes(oss_event("bucket", "a.png")))
    assert out["records"][0]["status"] == "succeeded"
    assert precious.read_bytes() == b"keep me"
    result = local_root / "bucket" / "a.png.ocr.json"
    assert not result.is_symlink() and json.loads(result.read_text("utf-8"))["status"] == "succeeded"


def test_deleting_a_symlinked_key_removes_the_link_not_its_target(local_root):
    precious = put_local(local_root, "precious.txt", b"keep me")
    os.symlink(precious, local_root / "bucket" / "link.txt")
    LocalStorage(str(local_root), "bucket").delete("link.txt")
    assert precious.read_bytes() == b"keep me" and not (local_root / "bucket" / "link.txt").exists()


def test_a_write_that_the_file_system_refuses_is_an_fcocr_error(local_root):
    storage = LocalStorage(str(local_root), "bucket")
    (local_root / "bucket" / "dir.ocr.json").mkdir()
    with pytest.raises(FcocrError) as info:
        storage.write("dir.ocr.json", b"{}", content_type="application/json", metadata={})
    assert info.value.code == "StorageUnavailable"


# ------------------------------------------------------------------------------ options metadata
@pytest.mark.parametrize("options", ["[" * 100_000 + "]" * 100_000, '{"a": ' * 50_000 + "1" + "}" * 50_000,
                                     "1" * 5000])
def test_options_metadata_fcocr_cannot_read_is_a_bad_override_not_an_internal_error(options):
    router = Router.load(None)
    with pytest.raises(PermanentError) as info:
        router.route_for("a.png", {"fcocr-recognizer": "local.text", "fcocr-options": options})
    assert info.value.code == "BadRecognizerOverride" and not info.value.retryable


# ------------------------------------------------------------------------------ normalized fields are text
@pytest.mark.parametrize("value", [True, False, ["123"], {"a": "b"}, float("nan")])
def test_a_normalized_field_is_text_or_null_whatever_json_type_the_vendor_sent(value):
    fields, warnings = extract("bank_card", {"n": value}, {"cardNumber": Field("n", "id")})
    assert fields["cardNumber"] is None and warnings and "raw" in warnings[0]


def test_a_verified_callback_cannot_put_arrays_objects_or_booleans_into_fields():
    def finished(card: str, info: dict):
        rec = TaskRecord("bucket/" + "a" * 40, "green", "t", "bucket", "k.png", "E", f"green.{card}", "now",
                         extra={"card": card})
        item = {"code": 200, "taskId": "t", "dataId": rec.data_id, "results": [{"ocrCardInfo": info,
                                                                                 "invoiceInfo": info}]}
        return scan.final_outcome(rec, item, raw=item)

    hostile = {"invoiceNumber": ["1"], "invoiceCode": {"x": 1}, "amount": True, "date": "2026-11-01"}
    taxi = finished("taxi-ticket", hostile).fields
    assert all(v is None or isinstance(v, str) for v in taxi.values()), taxi
    quota = finished("quota-account-permit", {"a": True, "b": [1, False], "c": {"d": None, "e": 1.5}, "f": "x"}).fields
    assert quota == {"a": "true", "b": ["1", "false"], "c": {"d": None, "e": "1.5"}, "f": "x"}  # every scalar text
