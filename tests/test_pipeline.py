"""End to end through functions/ocr_upload/index.handler, on local storage, with the real engine."""

import json
import os
from types import SimpleNamespace

import pytest

from fcocr import pipeline
from fcocr.config import Settings
from fcocr.errors import TransientError
from fcocr.events import oss_event
from fcocr.recognizers import local
from fcocr.storage import LocalStorage

from .conftest import event_bytes, load_function, put_local, read_result, text_image

handler = load_function("ocr_upload").handler
CTX = SimpleNamespace(request_id="req-1", credentials=None, function=SimpleNamespace(name="ocr_upload", timeout=60))


def invoke(*records):
    return json.loads(handler(event_bytes(*records), CTX))


@pytest.fixture
def count_engine_calls(monkeypatch):
    calls = []
    original = local.LocalFamily.recognize

    def counting(self, capability, job, options):
        calls.append(job.source.key)
        return original(self, capability, job, options)

    monkeypatch.setattr(local.LocalFamily, "recognize", counting)
    return calls


def test_a_put_object_becomes_a_succeeded_document_with_the_known_text(local_root):
    put_local(local_root, "scans/memo.png", text_image(["INVOICE 20261121", "TOTAL 4321.50 CNY"]))
    out = invoke(oss_event("bucket", "scans/memo.png"))
    assert out["records"][0]["status"] == "succeeded"
    doc = read_result(local_root, "scans/memo.png")
    assert doc["status"] == "succeeded" and doc["recognizer"] == "local.text"
    texts = [line["text"] for line in doc["lines"]]
    assert texts == ["INVOICE 20261121", "TOTAL 4321.50 CNY"]  # reading order, exact
    assert all(50 <= line["confidence"] <= 100 for line in doc["lines"])
    first = doc["lines"][0]
    assert first["box"]["left"] < 60 and first["box"]["top"] < 60 and len(first["polygon"]) == 4
    assert doc["source"]["etag"] == LocalStorage(str(local_root), "bucket").head("scans/memo.png").etag
    assert doc["requestId"] == "req-1" and doc["route"] == {"via": "route", "match": "**"}
    assert doc["engine"]["name"] == "rapidocr"


def test_all_records_are_processed_and_ignored_events_only_logged(local_root, count_engine_calls):
    for i in range(3):
        put_local(local_root, f"multi/{i}.png", text_image([f"PAGE {i}"]))
    out = invoke(oss_event("bucket", "multi/0.png"),
                 oss_event("bucket", "multi/1.png", event_name="ObjectCreated:CompleteMultipartUpload"),
                 oss_event("bucket", "multi/2.png", event_name="ObjectRemoved:AbortMultipartUpload"),
                 oss_event("bucket", "multi/2.png", event_name="ObjectCreated:PostObject"))
    assert [r["status"] for r in out["records"]] == ["succeeded", "succeeded", "skipped", "succeeded"]
    assert "not one fcocr acts on" in out["records"][2]["reason"]
    assert [read_result(local_root, f"multi/{i}.png")["text"] for i in range(3)] == ["PAGE 0", "PAGE 1", "PAGE 2"]
    assert sorted(count_engine_calls) == ["multi/0.png", "multi/1.png", "multi/2.png"]


def test_the_same_etag_is_never_recognized_twice(local_root, count_engine_calls):
    put_local(local_root, "once.png", text_image(["ONLY ONCE"]))
    first = invoke(oss_event("bucket", "once.png"))
    again = invoke(oss_event("bucket", "once.png"), oss_event("bucket", "once.png"))
    assert first["records"][0]["status"] == "succeeded"
    assert [r["status"] for r in again["records"]] == ["skipped", "skipped"]
    assert count_engine_calls == ["once.png"]
    # A new upload under the same key is new content: recognized again.
    put_local(local_root, "once.png", text_image(["SECOND VERSION"]))
    assert invoke(oss_event("bucket", "once.png"))["records"][0]["status"] == "succeeded"
    assert read_result(local_root, "once.png")["text"] == "SECOND VERSION"
    assert count_engine_calls == ["once.png", "once.png"]


def test_recursion_guard_by_suffix_and_by_marker(local_root, count_engine_calls, monkeypatch):
    put_local(local_root, "a.png", text_image(["GUARD"]))
    invoke(oss_event("bucket", "a.png"))
    # The trigger fires for the result itself: skipped without even reading it.
    out = invoke(oss_event("bucket", "a.png.ocr.json"))
    assert out["records"][0]["status"] == "skipped" and "recursion guard" in out["records"][0]["reason"]
    # A deployment that changed the suffix still recognises an old result by its marker metadata.
    monkeypatch.setenv("FCOCR_RESULT_SUFFIX", ".result.json")
    pipeline.reset_app()
    out = invoke(oss_event("bucket", "a.png.ocr.json"))
    assert out["records"][0]["status"] == "skipped" and "recursion guard" in out["records"][0]["reason"]
    assert count_engine_calls == ["a.png"]
    assert not (local_root / "bucket" / "a.png.ocr.json.result.json").exists()


@pytest.mark.parametrize("stored,event_key", [
    ("a b+c.png", "a b+c.png"),            # as given
    ("a b.png", "a%20b.png"),              # percent-encoded in the event: decoded once after a miss
    ("报销 单.png", "%E6%8A%A5%E9%94%80%20%E5%8D%95.png"),
    ("100%.png", "100%.png"),              # a literal % that is not an escape
    ("50%25off.png", "50%25off.png"),      # exists as given: never decoded
])
def test_odd_keys_and_the_percent_decoding_retry(local_root, stored, event_key):
    put_local(local_root, stored, text_image(["KEY TEST"]))
    out = invoke(oss_event("bucket", event_key))
    assert out["records"][0]["status"] == "succeeded"
    assert read_result(local_root, stored)["source"]["key"] == stored


def test_plus_is_never_turned_into_a_space(local_root):
    put_local(local_root, "a b.png", text_image(["PLUS"]))
    out = invoke(oss_event("bucket", "a+b.png"))
    # 'a+b.png' does not exist and 'a b.png' is not taken for it: nothing is recognized, no result is written.
    assert out["records"][0]["status"] == "skipped" and "no longer exists" in out["records"][0]["reason"]
    assert sorted(p.name for p in (local_root / "bucket").iterdir()) == ["a b.png"]


def test_a_deleted_object_gets_no_result_and_a_later_upload_is_recognized(local_root):
    # The created event arrives after the object was deleted: a result must not outlive (or precede) its source.
    out = invoke(oss_event("bucket", "gone.png", etag="5EB63BBBE01EEED093CB22BB8F5ACDC3"))
    assert out["records"][0]["status"] == "skipped" and "no longer exists" in out["records"][0]["reason"]
    assert not (local_root / "bucket" / "gone.png.ocr.json").exists()
    put_local(local_root, "gone.png", text_image(["BACK AGAIN"]))
    invoke(oss_event("bucket", "gone.png", etag="5EB63BBBE01EEED093CB22BB8F5ACDC3"))
    assert read_result(local_root, "gone.png")["text"] == "BACK AGAIN"


def test_no_matching_route_gives_a_failed_document(local_root, monkeypatch):
    monkeypatch.setenv("FCOCR_ROUTES", '{"routes": [{"match": "idcard/**", "recognizer": "local.text"}]}')
    put_local(local_root, "other/x.png", text_image(["X"]))
    invoke(oss_event("bucket", "other/x.png"))
    doc = read_result(local_root, "other/x.png")
    assert doc["status"] == "failed" and doc["error"]["code"] == "NoRoute" and doc["recognizer"] is None


def test_metadata_override_and_options(local_root):
    path = put_local(local_root, "meta.png", text_image(["HIGH CONFIDENCE"]))
    os.setxattr(path, "user.fcocr-recognizer", b"local.text")
    os.setxattr(path, "user.fcocr-options", b'{"minConfidence": 99.999}')
    invoke(oss_event("bucket", "meta.png"))
    doc = read_result(local_root, "meta.png")
    assert doc["route"] == {"via": "metadata"} and doc["options"] == {"minConfidence": 99.999}
    assert all(line["confidence"] >= 99.999 for line in doc["lines"])


def test_put_symlink_is_resolved_to_its_target(local_root):
    put_local(local_root, "store/real.png", text_image(["SYMLINK TARGET"]))
    os.symlink("store/real.png", local_root / "bucket" / "alias.png")
    invoke(oss_event("bucket", "alias.png", event_name="ObjectCreated:PutSymlink"))
    doc = read_result(local_root, "alias.png")
    assert doc["status"] == "succeeded" and doc["text"] == "SYMLINK TARGET"


def test_a_transient_storage_fault_leaves_a_retryable_document_and_raises(local_root, monkeypatch, count_engine_calls):
    put_local(local_root, "flaky.png", text_image(["FLAKY"]))
    put_local(local_root, "fine.png", text_image(["FINE"]))
    original = LocalStorage.read

    def flaky_read(self, key, max_bytes):
        if key == "flaky.png":
            raise TransientError("storage timed out", code="StorageUnavailable")
        return original(self, key, max_bytes)

    monkeypatch.setattr(LocalStorage, "read", flaky_read)
    with pytest.raises(TransientError):
        handler(event_bytes(oss_event("bucket", "flaky.png"), oss_event("bucket", "fine.png")), CTX)
    # The other record was still finished before the raise.
    assert read_result(local_root, "fine.png")["status"] == "succeeded"
    flaky = read_result(local_root, "flaky.png")
    assert flaky["status"] == "failed" and flaky["error"] == {
        "code": "StorageUnavailable", "message": "storage timed out", "retryable": True}
    # FC's retry: the retryable document is not final, so it is processed; fine.png is skipped.
    monkeypatch.setattr(LocalStorage, "read", original)
    out = invoke(oss_event("bucket", "flaky.png"), oss_event("bucket", "fine.png"))
    assert [r["status"] for r in out["records"]] == ["succeeded", "skipped"]
    assert count_engine_calls == ["flaky.png", "fine.png", "flaky.png"]  # the first read failed before the engine ran


def test_an_unexpected_bug_is_recorded_and_retried_not_swallowed(local_root, monkeypatch):
    put_local(local_root, "bug.png", text_image(["BUG"]))

    def broken(self, capability, job, options):
        raise KeyError("boom")

    monkeypatch.setattr(local.LocalFamily, "recognize", broken)
    with pytest.raises(TransientError):
        invoke(oss_event("bucket", "bug.png"))
    doc = read_result(local_root, "bug.png")
    assert doc["error"]["code"] == "InternalError" and doc["error"]["retryable"] is True


def test_result_suffix_is_configurable(local_root, monkeypatch):
    monkeypatch.setenv("FCOCR_RESULT_SUFFIX", ".result.json")
    put_local(local_root, "s.png", text_image(["SUFFIX"]))
    invoke(oss_event("bucket", "s.png"))
    assert read_result(local_root, "s.png", suffix=".result.json")["text"] == "SUFFIX"
    assert not (local_root / "bucket" / "s.png.ocr.json").exists()


def test_a_pdf_is_recognized_page_by_page(local_root):
    from io import BytesIO

    from PIL import Image

    pages = [Image.open(BytesIO(text_image([f"PDF PAGE {i}"]))).convert("RGB") for i in (1, 2)]
    out = BytesIO()
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:], resolution=150)
    put_local(local_root, "doc.pdf", out.getvalue())
    invoke(oss_event("bucket", "doc.pdf"))
    doc = read_result(local_root, "doc.pdf")
    assert [(line["page"], line["text"]) for line in doc["lines"]] == [(0, "PDF PAGE 1"), (1, "PDF PAGE 2")]
    assert [p["index"] for p in doc["pages"]] == [0, 1]


def test_pages_beyond_the_limit_are_left_with_a_warning(local_root, monkeypatch):
    from io import BytesIO

    from PIL import Image

    monkeypatch.setenv("FCOCR_MAX_PAGES", "1")
    frames = [Image.open(BytesIO(text_image([f"FRAME {i}"]))) for i in (1, 2, 3)]
    out = BytesIO()
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:])
    put_local(local_root, "multi.tif", out.getvalue())
    invoke(oss_event("bucket", "multi.tif"))
    doc = read_result(local_root, "multi.tif")
    assert doc["text"] == "FRAME 1" and "first 1 of 3 pages" in doc["warnings"][0]


def test_exif_rotation_is_applied_before_recognition(local_root):
    from io import BytesIO

    from PIL import Image

    upright = Image.open(BytesIO(text_image(["ROTATED PHOTO"]))).convert("RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_270)  # as a phone stores a portrait shot
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    out = BytesIO()
    stored.save(out, "JPEG", quality=95, exif=exif.tobytes())
    put_local(local_root, "photo.jpg", out.getvalue())
    invoke(oss_event("bucket", "photo.jpg"))
    doc = read_result(local_root, "photo.jpg")
    assert doc["text"] == "ROTATED PHOTO"
    assert doc["pages"][0]["width"] > doc["pages"][0]["height"]


def test_a_long_thin_strip_is_read_whole(local_root):
    # 200:1. The bare engine scales the 20 px side up to 736 px (a 147 200 px line) and fails empty-handed.
    from io import BytesIO

    from PIL import Image, ImageDraw, ImageFont

    strip = Image.new("RGB", (4000, 20), "white")
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default(size=16)
    draw.text((60, 1), "TOTAL 4321.50 CNY", fill="black", font=font)
    draw.text((2600, 1), "INVOICE 20261121", fill="black", font=font)
    out = BytesIO()
    strip.save(out, "PNG")
    put_local(local_root, "strip.png", out.getvalue())
    invoke(oss_event("bucket", "strip.png"))
    doc = read_result(local_root, "strip.png")
    assert doc["status"] == "succeeded", doc.get("error")
    assert [line["text"] for line in doc["lines"]] == ["TOTAL 4321.50 CNY", "INVOICE 20261121"]
    assert doc["lines"][0]["box"]["left"] < 100 and 2500 < doc["lines"][1]["box"]["left"] < 2700
    assert all(line["box"]["top"] >= 0 and line["box"]["top"] + line["box"]["height"] <= 20.5 for line in doc["lines"])


def test_a_page_upside_down_is_read_upright(local_root):
    from io import BytesIO

    from PIL import Image

    page = Image.open(BytesIO(text_image(["UPSIDE DOWN", "SECOND LINE 42"]))).convert("RGB").rotate(180)
    out = BytesIO()
    page.save(out, "PNG")
    put_local(local_root, "upside.png", out.getvalue())
    invoke(oss_event("bucket", "upside.png"))
    doc = read_result(local_root, "upside.png")
    assert doc["text"] == "UPSIDE DOWN\nSECOND LINE 42"
    assert doc["raw"]["pages"][0]["turned"] == 180
    first = doc["lines"][0]["box"]  # in the uploaded page's pixels: near its bottom right
    assert first["top"] > page.height - 120 and first["left"] + first["width"] > page.width - 100


def test_the_initializer_fails_the_instance_on_bad_routes_and_loads_the_engine_on_good_ones(monkeypatch):
    from fcocr.errors import ConfigError

    module = load_function("ocr_upload")
    monkeypatch.setenv("FCOCR_ROUTES", '{"routes": [{"match": "**", "recognizer": "local.txt"}]}')
    with pytest.raises(ConfigError, match="local.txt"):
        module.initialize(CTX)
    pipeline.reset_app()
    monkeypatch.setenv("FCOCR_ROUTES", '{"routes": [{"match": "**", "recognizer": "local.text"}]}')
    local._ENGINES.clear()
    module.initialize(CTX)
    assert list(local._ENGINES) == [(0, Settings().family("local").ocr_engine)]  # the models are loaded before the first request


def test_folder_markers_are_skipped(local_root):
    out = invoke(oss_event("bucket", "scans/2026/", size=0))
    assert out["records"][0]["status"] == "skipped" and "folder" in out["records"][0]["reason"]


def _variant(fmt: str, mode: str) -> bytes:
    from io import BytesIO

    from PIL import Image

    img = Image.open(BytesIO(text_image(["FORMAT CHECK 42"]))).convert("L")
    if mode == "I;16":
        import numpy as np

        img = Image.fromarray(np.asarray(img, dtype=np.uint16) * 257)  # 16-bit greyscale
    else:
        img = img.convert(mode)
    out = BytesIO()
    img.save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize("name,fmt,mode", [
    ("a.jpg", "JPEG", "RGB"), ("cmyk.jpg", "JPEG", "CMYK"), ("a.png", "PNG", "P"), ("deep.png", "PNG", "I;16"),
    ("a.bmp", "BMP", "RGB"), ("a.gif", "GIF", "P"), ("a.webp", "WEBP", "RGB"), ("a.tif", "TIFF", "1"),
])
def test_every_supported_format_and_pixel_mode_is_read(local_root, name, fmt, mode):
    put_local(local_root, name, _variant(fmt, mode))
    invoke(oss_event("bucket", name))
    doc = read_result(local_root, name)
    assert doc["status"] == "succeeded", doc.get("error")
    assert doc["text"] == "FORMAT CHECK 42"


def test_content_decides_the_format_not_the_name(local_root):
    put_local(local_root, "really-a-png.jpg", text_image(["NAMED WRONGLY"]))
    invoke(oss_event("bucket", "really-a-png.jpg"))
    assert read_result(local_root, "really-a-png.jpg")["text"] == "NAMED WRONGLY"
