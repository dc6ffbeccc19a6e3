"""Input preparation: the source when it fits, else converted, scaled and recompressed parts, else a clear refusal."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from fcocr import imaging
from fcocr.errors import InputError
from fcocr.model import ALL_FORMATS, Limits
from fcocr.prepare import base64_limit, fit


def doc(data: bytes):
    return imaging.inspect(data, Limits(formats=ALL_FORMATS), max_bytes=50 << 20, max_pixels=200_000_000, max_pages=20)


def image_bytes(size=(800, 600), fmt="PNG", noise=False, **save) -> bytes:
    if noise:
        import numpy as np

        img = Image.fromarray(np.random.default_rng(7).integers(0, 255, (size[1], size[0], 3), dtype="uint8"))
    else:
        img = Image.new("RGB", size, (250, 250, 250))
    out = io.BytesIO()
    img.save(out, fmt, **save)
    return out.getvalue()


def pdf_bytes(pages: int) -> bytes:
    images = [Image.new("RGB", (400, 500), (255, 255, 255)) for _ in range(pages)]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:])
    return out.getvalue()


def test_a_source_that_fits_is_sent_untouched():
    data = image_bytes(fmt="JPEG")
    parts = list(fit(doc(data), Limits(formats=frozenset({"jpeg", "png"}), max_bytes=3 << 20)))
    assert len(parts) == 1 and parts[0].original and parts[0].data is data


def test_png_becomes_jpeg_for_a_jpg_only_recognizer():
    parts = list(fit(doc(image_bytes()), Limits(formats=frozenset({"jpeg"}), max_bytes=3 << 20)))
    assert len(parts) == 1 and not parts[0].original
    assert parts[0].format == "jpeg" and parts[0].data[:3] == b"\xff\xd8\xff"
    assert "converted from PNG" in parts[0].note


def test_too_many_pixels_are_scaled_inside_the_side_bound():
    parts = list(fit(doc(image_bytes((5000, 1000))), Limits(formats=frozenset({"png"}), max_side=4096)))
    width, height = Image.open(io.BytesIO(parts[0].data)).size
    assert width < 4096 and (width, height) == (parts[0].width, parts[0].height)
    assert abs(width / height - 5.0) < 0.02


def test_a_large_photo_is_recompressed_under_the_byte_limit():
    data = image_bytes((2400, 1800), fmt="JPEG", noise=True, quality=98)
    limit = 600_000
    assert len(data) > limit
    parts = list(fit(doc(data), Limits(formats=frozenset({"jpeg"}), max_bytes=limit)))
    assert len(parts[0].data) <= limit and parts[0].format == "jpeg"
    assert parts[0].width <= 2400


def test_tencents_limit_is_measured_after_base64():
    assert base64_limit(7 * 1024 * 1024) == 5505024
    assert len(__import__("base64").b64encode(b"x" * base64_limit(7 * 1024 * 1024))) <= 7 * 1024 * 1024


def test_a_pdf_goes_whole_to_a_pdf_recognizer_and_as_pages_to_an_image_one():
    data = pdf_bytes(3)
    whole = list(fit(doc(data), Limits(formats=frozenset({"pdf"}), max_bytes=10 << 20, max_pages=5)))
    assert len(whole) == 1 and whole[0].original and whole[0].format == "pdf"
    pages = list(fit(doc(data), Limits(formats=frozenset({"jpeg", "png"}), max_bytes=3 << 20)))
    assert [p.page for p in pages] == [0, 1, 2] and all(p.format == "jpeg" for p in pages)


def test_what_cannot_fit_is_refused_with_a_reason():
    with pytest.raises(InputError) as info:
        list(fit(doc(pdf_bytes(3)), Limits(formats=frozenset({"pdf"}), max_pages=2)))
    assert info.value.code == "TooManyPages" and "at most 2" in info.value.message
    with pytest.raises(InputError) as info:
        list(fit(doc(image_bytes((10, 300))), Limits(formats=frozenset({"jpeg"}), min_side=15)))
    assert info.value.code == "ImageSizeOutOfRange"
    video = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100
    with pytest.raises(InputError) as info:
        list(fit(doc(video), Limits(formats=frozenset({"mp4"}), max_bytes=50)))
    assert info.value.code == "InputTooLarge"
    with pytest.raises(InputError) as info:
        list(fit(doc(video), Limits(formats=frozenset({"jpeg"}))))
    assert info.value.code == "UnsupportedFormat"


def test_videos_are_recognized_by_their_magic():
    assert imaging.sniff_format(b"\x00\x00\x00\x18ftypisom") == "mp4"
    assert imaging.sniff_format(b"RIFF\x00\x00\x00\x00AVI LIST") == "avi"
    assert imaging.sniff_format(b"\x00\x00\x00\x01\x67\x42") == "h264"
    assert imaging.sniff_format(b"\x00\x00\x00\x01\x00") is None


def test_sixteen_bit_images_need_no_numpy(monkeypatch):
    """Cloud packages carry no numpy: a 16-bit scan is stretched onto 0-255 by Pillow alone."""
    import struct
    import sys

    monkeypatch.setitem(sys.modules, "numpy", None)  # any "import numpy" now raises ImportError
    values = [1000 + 40 * i for i in range(64 * 16)]
    img = Image.frombytes("I;16", (64, 16), struct.pack("<%dH" % len(values), *values))
    out = imaging._to_rgb(img)
    assert out.mode == "RGB" and out.getextrema() == ((0, 255), (0, 255), (0, 255))
