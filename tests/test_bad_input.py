"""Unreadable or unsupported input ends in a failed document with a clear message, and no crash or retry."""

import io
import json
import struct
import zlib
from types import SimpleNamespace

import pytest

from fcocr.events import oss_event

from .conftest import event_bytes, load_function, put_local, read_result, text_image

handler = load_function("ocr_upload").handler
CTX = SimpleNamespace(request_id="req-bad", credentials=None)


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A tiny PNG whose header claims 900 million pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * width  # filter byte + one greyscale row
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(64)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def truncated_jpeg() -> bytes:
    data = text_image(["TRUNCATED"], fmt="JPEG")
    return data[: len(data) // 2]


CASES = {
    "empty.png": (b"", "EmptyObject", "empty"),
    "truncated.jpg": (truncated_jpeg(), "CorruptImage", "truncated"),
    "notes.jpg": ("这是一个文本文件, not an image\n".encode("utf-8"), "UnsupportedFormat", "looks like text"),
    "bomb.png": (png_bomb(), "ImageTooLarge", "decompression bomb"),
    "garbage.png": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "CorruptImage", "cannot be read"),
    "archive.pdf": (b"PK\x03\x04" + b"\x00" * 100, "UnsupportedFormat", "first bytes"),
    "broken.pdf": (b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF", "CorruptDocument", "PDF"),
}


@pytest.mark.parametrize("key", sorted(CASES))
def test_bad_input_gets_a_failed_document_and_no_retry(local_root, key):
    data, code, fragment = CASES[key]
    put_local(local_root, key, data)
    out = json.loads(handler(event_bytes(oss_event("bucket", key, size=len(data))), CTX))  # returns: FC won't retry
    assert out["records"][0]["status"] == "failed"
    doc = read_result(local_root, key)
    assert doc["status"] == "failed"
    assert doc["error"]["code"] == code and doc["error"]["retryable"] is False
    assert fragment in doc["error"]["message"]
    assert doc["source"]["size"] == len(data)


def test_a_file_over_20_mb_is_refused_before_it_is_read(local_root, monkeypatch):
    from fcocr.storage import LocalStorage

    big = b"\xff\xd8\xff\xe0" + b"\x00" * (20 * 1024 * 1024 + 1)
    put_local(local_root, "huge.jpg", big)
    reads = []
    monkeypatch.setattr(LocalStorage, "read", lambda self, key, max_bytes: reads.append(key) or b"")
    json.loads(handler(event_bytes(oss_event("bucket", "huge.jpg", size=len(big))), CTX))
    doc = read_result(local_root, "huge.jpg")
    assert doc["error"]["code"] == "InputTooLarge" and "20971520" in doc["error"]["message"]
    assert reads == []  # the size came from HEAD; nothing was downloaded


def test_the_pixel_limit_is_configurable(local_root, monkeypatch):
    monkeypatch.setenv("FCOCR_MAX_PIXELS", "10000")
    put_local(local_root, "normal.png", text_image(["NORMAL"]))
    handler(event_bytes(oss_event("bucket", "normal.png")), CTX)
    assert read_result(local_root, "normal.png")["error"]["code"] == "ImageTooLarge"


def test_transparent_and_palette_images_are_flattened_onto_white(local_root):
    from PIL import Image

    rgba = Image.open(io.BytesIO(text_image(["TRANSPARENT"]))).convert("L")
    # Black text on a fully transparent background: naive RGB conversion would give black on black.
    img = Image.new("RGBA", rgba.size, (0, 0, 0, 0))
    img.putalpha(Image.eval(rgba, lambda v: 255 - v))
    out = io.BytesIO()
    img.save(out, "PNG")
    put_local(local_root, "alpha.png", out.getvalue())
    handler(event_bytes(oss_event("bucket", "alpha.png")), CTX)
    assert read_result(local_root, "alpha.png")["text"] == "TRANSPARENT"
