"""Personal data leaves with its document: an ObjectRemoved event deletes what fcocr derived from the source
(result, task record, receipt, staged copy, registered checkpoints) once the source is really gone -- in local and
OSS modes -- and a result is never written for a source that no longer exists (upload, late callback, reconcile)."""

from __future__ import annotations

import json

import pytest

from fcocr import reconcile, removal, tasks
from fcocr.config import Settings
from fcocr.events import oss_event
from fcocr.model import Line, Outcome, SourceRef, TaskRef
from fcocr.results import ResultDocument, ResultWriter, utc_now
from fcocr.runtime import LocalContext, Runtime
from fcocr.storage import open_storage as storage_for
from fcocr.storage import put_staged

from .cloud import BUCKET, fc_context
from .conftest import event_bytes, load_function, put_local

handler = load_function("ocr_upload").handler
KEY = "证件/张三 身份证.png"


def runtime(cloud: bool = False) -> Runtime:
    return Runtime.from_context(fc_context() if cloud else LocalContext())


def derive_everything(store, key: str, etag: str, *, pending: bool = True) -> tasks.TaskRecord:
    """What fcocr leaves for an asynchronous recognition of ``key``: a pending result, its task record, a receipt
    (of an earlier finished push) and a staged copy the record names."""
    data_id = tasks.data_id_for(store.bucket, key, etag)
    staged = put_staged(store, b"staged bytes", "image/png")
    record = tasks.TaskRecord(data_id=data_id, kind="green", task_id="t-1", bucket=store.bucket, key=key, etag=etag,
                              recognizer="green.idcard", submitted_at=utc_now(),
                              extra={"staging": {"bucket": store.bucket, "key": staged}})
    tasks.save(store, record)
    store.write(tasks.receipt_key(data_id), json.dumps({"dataId": data_id}).encode(), content_type="application/json",
                metadata=dict(tasks.TASK_MARK))
    outcome = Outcome(task=record.ref) if pending else Outcome(lines=[Line("ID 310101199001015411", 99.0, ((0, 0), (9, 0), (9, 9), (0, 9)))],
                                                                raw={})
    doc = ResultDocument.from_outcome(outcome, source=SourceRef(store.bucket, key, etag, 3), recognizer="green.idcard",
                                      started_at=utc_now(), finished_at=utc_now(), duration_ms=1)
    assert ResultWriter(store, ".ocr.json").write(doc)
    return record


def removed_event(bucket: str, key: str, name: str = "ObjectRemoved:DeleteObject") -> bytes:
    return event_bytes(oss_event(bucket, key, event_name=name))


def test_deleting_a_source_deletes_every_derived_object_in_local_mode(local_root):
    put_local(local_root, KEY, b"png")
    put_local(local_root, "other.png", b"png")
    store = storage_for("bucket", runtime(), Settings.from_env())
    etag = store.head(KEY).etag
    derive_everything(store, KEY, etag)
    checkpoints = []
    removal.DERIVED.append(lambda storage, key, tag: checkpoints.append((key, tag)) or [f".fcocr-tasks/{tag}.page-1"])
    try:
        store.write(f".fcocr-tasks/{etag}.page-1", b"{}", content_type="application/json", metadata={})
        (local_root / "bucket" / KEY).unlink()  # the user deletes the scan
        out = json.loads(handler(removed_event("bucket", KEY), LocalContext()))
    finally:
        removal.DERIVED.pop()
    assert out["records"][0]["status"] == "removed"
    assert checkpoints == [(KEY, etag)]  # a registered finder is asked with the version the result belonged to
    left = sorted(p.relative_to(local_root / "bucket").as_posix() for p in (local_root / "bucket").rglob("*")
                  if p.is_file())
    assert left == ["other.png"]  # result, record, receipt, staged copy, checkpoint: all gone


def test_deleting_a_source_deletes_every_derived_object_on_oss(oss):
    oss.put(BUCKET, KEY, b"png")
    oss.put(BUCKET, "other.png", b"png")
    store = storage_for(BUCKET, runtime(True), Settings.from_env(), "cn-shanghai")
    derive_everything(store, KEY, store.head(KEY).etag, pending=False)
    store.delete(KEY)
    out = json.loads(handler(removed_event(BUCKET, KEY, "ObjectRemoved:DeleteObjects"), fc_context()))
    assert out["records"][0]["status"] == "removed"
    assert oss.keys(BUCKET) == ["other.png"]


def test_a_late_delete_event_after_a_new_upload_deletes_nothing(local_root):
    put_local(local_root, KEY, b"version 1")
    store = storage_for("bucket", runtime(), Settings.from_env())
    derive_everything(store, KEY, store.head(KEY).etag, pending=False)
    put_local(local_root, KEY, b"version 2")  # deleted and uploaded again before the delete event arrived
    before = sorted(p.name for p in (local_root / "bucket").rglob("*"))
    out = json.loads(handler(removed_event("bucket", KEY), LocalContext()))
    assert out["records"][0]["status"] == "skipped" and "exists again" in out["records"][0]["reason"]
    assert sorted(p.name for p in (local_root / "bucket").rglob("*")) == before


def test_the_result_is_kept_when_it_belongs_to_another_version_by_the_time_it_is_deleted(local_root, monkeypatch):
    put_local(local_root, KEY, b"version 1")
    store = storage_for("bucket", runtime(), Settings.from_env())
    old = store.head(KEY).etag
    derive_everything(store, KEY, old, pending=False)
    (local_root / "bucket" / KEY).unlink()
    new_doc = ResultDocument.from_outcome(Outcome(lines=[], raw={}), source=SourceRef("bucket", KEY, "NEW", 9),
                                          recognizer="local.text", started_at=utc_now(), finished_at=utc_now(),
                                          duration_ms=1)
    original_close = tasks.close

    def close_then_new_version_lands(*args, **kwargs):  # a re-upload's result lands while the deletion runs
        original_close(*args, **kwargs)
        store.write(KEY + ".ocr.json", new_doc.to_bytes(), content_type="application/json", metadata={})

    monkeypatch.setattr(tasks, "close", close_then_new_version_lands)
    removal.forget(store, KEY, Settings.from_env(), runtime())
    assert json.loads((local_root / "bucket" / (KEY + ".ocr.json")).read_text())["source"]["etag"] == "NEW"


def test_nothing_is_deleted_when_delete_with_source_is_off(local_root, monkeypatch):
    monkeypatch.setenv("FCOCR_DELETE_WITH_SOURCE", "false")
    put_local(local_root, KEY, b"png")
    store = storage_for("bucket", runtime(), Settings.from_env())
    derive_everything(store, KEY, store.head(KEY).etag, pending=False)
    (local_root / "bucket" / KEY).unlink()
    out = json.loads(handler(removed_event("bucket", KEY), LocalContext()))
    assert out["records"][0]["status"] == "skipped" and "FCOCR_DELETE_WITH_SOURCE" in out["records"][0]["reason"]
    assert (local_root / "bucket" / (KEY + ".ocr.json")).exists()


@pytest.mark.parametrize("key", ["x.png.ocr.json", ".fcocr-tasks/abc.json"])
def test_delete_events_for_fcocrs_own_objects_are_ignored(local_root, key):
    out = json.loads(handler(removed_event("bucket", key), LocalContext()))
    assert out["records"][0]["status"] == "skipped"


def test_a_late_callback_for_a_deleted_source_drops_the_pending_result(local_root):
    put_local(local_root, KEY, b"png")
    settings = Settings.from_env()
    store = storage_for("bucket", runtime(), settings)
    record = derive_everything(store, KEY, store.head(KEY).etag)
    (local_root / "bucket" / KEY).unlink()  # deleted; its delete event is late (or was lost)
    what = tasks.finish(store, record, settings, runtime(), outcome=Outcome(lines=[], raw={}), require_pending=True)
    assert what == tasks.STALE
    assert list((local_root / "bucket").rglob("*.ocr.json")) == []  # the pending result dropped, nothing written
    assert tasks.load(store, record.data_id) is None
    assert not (local_root / "bucket" / record.extra["staging"]["key"]).exists()


def test_a_source_deleted_while_its_result_is_written_leaves_no_result(local_root, monkeypatch):
    put_local(local_root, KEY, b"png")
    store = storage_for("bucket", runtime(), Settings.from_env())
    writer = ResultWriter(store, ".ocr.json")
    original = store.write

    def write_then_user_deletes(key, data, **kwargs):
        original(key, data, **kwargs)
        (local_root / "bucket" / KEY).unlink()

    monkeypatch.setattr(store, "write", write_then_user_deletes)
    doc = ResultDocument.from_outcome(Outcome(lines=[], raw={}), source=SourceRef("bucket", KEY, "E", 3),
                                      recognizer="local.text", started_at=utc_now(), finished_at=utc_now(),
                                      duration_ms=1)
    assert writer.write(doc) is None
    assert list((local_root / "bucket").rglob("*.ocr.json")) == []


def test_reconcile_expires_task_records_past_every_vendor_window(local_root):
    put_local(local_root, KEY, b"png")
    settings = Settings.from_env()
    store = storage_for("bucket", runtime(), settings)
    record = derive_everything(store, KEY, store.head(KEY).etag)
    record.kind = "no-such-kind"  # no family could ask for it: only its age decides
    tasks.save(store, record)
    submitted = tasks.epoch(record.submitted_at)
    assert reconcile.reconcile_bucket(store, settings, runtime(), submitted + 3600) == {"unknown": 1,
                                                                                          "receiptsDropped": 1}
    counts = reconcile.reconcile_bucket(store, settings, runtime(), submitted + reconcile.TASK_RECORD_SECONDS + 1)
    assert counts == {"expired": 1}
    doc = json.loads((local_root / "bucket" / (KEY + ".ocr.json")).read_text())
    assert doc["status"] == "failed" and doc["error"]["code"] == "TaskExpired" and doc["error"]["retryable"] is False
    assert tasks.load(store, record.data_id) is None


def test_the_task_ref_of_a_pending_result_is_readable_by_the_next_version():
    # A deploy never strands tasks in flight: a record and a pending document of today's shape stay readable.
    record = tasks.TaskRecord(data_id="b/" + "0" * 40, kind="green", task_id="t", bucket="b", key="k", etag="E",
                              recognizer="green.idcard", submitted_at=utc_now(), size=3, options={"a": 1},
                              extra={"future": True})
    raw = json.loads(record.to_bytes())
    raw["addedByALaterVersion"] = {"x": 1}
    again = tasks.TaskRecord.from_bytes(json.dumps(raw).encode())
    assert again.ref == record.ref and again.extra == {"future": True}
    pending = ResultDocument.from_outcome(Outcome(task=TaskRef("t", "green", record.data_id, record.submitted_at)),
                                          source=SourceRef("b", "k", "E", 3), recognizer="green.idcard",
                                          started_at=utc_now(), finished_at=utc_now(), duration_ms=0)
    assert ResultDocument.from_json(json.loads(pending.to_bytes())).task == record.ref


def test_deleting_a_source_takes_its_page_checkpoints_and_claims_along(local_root):
    from fcocr import checkpoints, claims

    put_local(local_root, KEY, b"png")
    store = storage_for("bucket", runtime(), Settings.from_env())
    source = SourceRef("bucket", KEY, store.head(KEY).etag, 3)
    derive_everything(store, KEY, source.etag)
    # A claimant that died mid-document: its claim and the pages it had paid for.
    page = f"{checkpoints.prefix(source)}00001.page"
    store.write(page, b"{}", content_type="application/json", metadata=dict(checkpoints.CHECKPOINT_MARK))
    claim = claims.generation_key(source, 1)
    assert store.create_exclusive(claim, b"{}", content_type="application/json", metadata=dict(claims.CLAIM_MARK))
    (local_root / "bucket" / KEY).unlink()
    out = json.loads(handler(removed_event("bucket", KEY), LocalContext()))
    assert out["records"][0]["status"] == "removed"
    left = [p.relative_to(local_root / "bucket").as_posix() for p in (local_root / "bucket").rglob("*") if p.is_file()]
    assert left == []
