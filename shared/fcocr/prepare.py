"""Make an input fit a capability's limits, for every vendor: one module, one set of rules.

A capability states its formats, byte limit, side bounds, pixel limit and page limit
(``recognizers.Limits``). ``fit`` yields the payloads to send, one per vendor call:

* the source itself, untouched, whenever it already fits (no copy, and a URL-fed vendor can be
  given a presigned URL of the source object);
* otherwise one re-encoded image per page: converted to a format the vendor takes (JPEG first:
  RecognizeVATInvoice takes JPG only), scaled down inside the side and pixel bounds, and
  recompressed under the byte limit — quality first, then size;
* or an ``InputError`` saying why it cannot fit (too small, a PDF over the page limit for a
  PDF-only capability, a video over the byte limit).

Parts are produced one at a time, so a 20-page PDF never holds more than one rendered page and
one encoded copy of it.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Iterator

from .errors import InputError
from .imaging import Document
from .model import IMAGE_FORMATS, VIDEO_FORMATS, Limits

MiB = 1024 * 1024
JPEG_QUALITIES = (90, 82, 74, 66)
PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "gif": "GIF", "webp": "WEBP", "tiff": "TIFF", "jp2": "JPEG2000", "pnm": "PPM"}
MIME = {"jpeg": "image/jpeg", "png": "image/png", "bmp": "image/bmp", "gif": "image/gif", "webp": "image/webp",
        "tiff": "image/tiff", "pdf": "application/pdf", "mp4": "video/mp4", "avi": "video/x-msvideo",
        "h264": "video/h264", "jp2": "image/jp2", "pnm": "image/x-portable-anymap"}


def base64_limit(encoded_bytes: int) -> int:
    """The largest raw size whose base64 encoding fits in ``encoded_bytes`` (Tencent's 7 MB rule)."""
    return encoded_bytes // 4 * 3


@dataclass
class Part:
    """One payload for one vendor call."""

    data: bytes
    format: str
    page: int  # 0-based page of the source this part shows
    width: int | None = None
    height: int | None = None
    original: bool = False  # the source's own bytes: a presigned URL of the source will do
    note: str | None = None  # what was changed, for the result's warnings

    @property
    def mime(self) -> str:
        return MIME[self.format]


def _fits(doc: Document, limits: Limits) -> bool:
    if doc.format not in limits.formats:
        return False
    if limits.max_bytes is not None and len(doc.data) > limits.max_bytes:
        return False
    if doc.format == "pdf" or doc.format in VIDEO_FORMATS:
        return True
    if doc.page_count != 1:  # a multi-page TIFF: image APIs read the first frame only, so send pages
        return False
    width, height = doc.width or 0, doc.height or 0
    if limits.max_side is not None and max(width, height) >= limits.max_side:
        return False
    if limits.max_pixels is not None and width * height > limits.max_pixels:
        return False
    return True


def _check_min_side(width: int, height: int, limits: Limits, page: int) -> None:
    if limits.min_side is not None and min(width, height) <= limits.min_side:
        where = f"page {page + 1} is" if page else "the image is"
        raise InputError(f"{where} {width}×{height}; this recognizer needs each side larger than {limits.min_side} px",
                         code="ImageSizeOutOfRange")


def fit(doc: Document, limits: Limits) -> Iterator[Part]:
    """The payloads that carry ``doc`` within ``limits``: the source itself, or one image per page."""
    if doc.format not in VIDEO_FORMATS and doc.format != "pdf":
        _check_min_side(doc.width or 0, doc.height or 0, limits, 0)
    if doc.format == "pdf" and "pdf" in limits.formats and limits.max_pages and doc.page_count > limits.max_pages:
        if not limits.formats & IMAGE_FORMATS:
            raise InputError(f"the PDF has {doc.page_count} pages; this recognizer takes at most {limits.max_pages}",
                             code="TooManyPages")
    elif _fits(doc, limits):
        yield Part(doc.data, doc.format, 0, doc.width, doc.height, original=True)
        return
    if doc.format in VIDEO_FORMATS or not limits.formats & IMAGE_FORMATS:
        if doc.format not in limits.formats:
            accepted = ", ".join(sorted(limits.formats))
            raise InputError(f"{doc.format.upper()} is not accepted by this recognizer (accepted: {accepted})",
                             code="UnsupportedFormat")
        raise InputError(f"the {doc.format.upper()} is {len(doc.data)} bytes, over this recognizer's "
                         f"{limits.max_bytes}-byte limit, and cannot be recompressed", code="InputTooLarge")
    why = _reason(doc, limits)
    for page in doc.pages():
        yield encode_to_fit(page.image, limits, page.index, why)


def _reason(doc: Document, limits: Limits) -> str:
    if doc.format not in limits.formats:
        return f"converted from {doc.format.upper()}"
    if doc.page_count > 1 or doc.format == "pdf":
        return "page rendered as an image"
    if limits.max_bytes is not None and len(doc.data) > limits.max_bytes:
        return f"recompressed from {len(doc.data)} bytes"
    return f"scaled down from {doc.width}×{doc.height}"


def target_format(limits: Limits) -> str:
    for candidate in ("jpeg", "png", "bmp", "webp", "tiff", "gif"):
        if candidate in limits.formats:
            return candidate
    raise InputError("this recognizer takes no image format", code="UnsupportedFormat")


def _scale_for_bounds(width: int, height: int, limits: Limits) -> float:
    scale = 1.0
    if limits.max_side is not None and max(width, height) >= limits.max_side:
        scale = min(scale, (limits.max_side - 1) / max(width, height))
    if limits.max_pixels is not None and width * height > limits.max_pixels:
        scale = min(scale, math.sqrt(limits.max_pixels / (width * height)) * 0.999)
    return scale


def _encode(image, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    if fmt == "jpeg":
        image.save(out, "JPEG", quality=quality, optimize=True)
    elif fmt == "png":
        image.save(out, "PNG", optimize=True)
    else:
        image.save(out, PIL_FORMAT[fmt])
    return out.getvalue()


def encode_to_fit(image, limits: Limits, page: int = 0, why: str = "") -> Part:
    """``image`` (RGB) encoded in an accepted format, inside the side, pixel and byte limits."""
    from PIL import Image

    fmt = target_format(limits)
    width, height = image.size
    _check_min_side(width, height, limits, page)
    scale = _scale_for_bounds(width, height, limits)
    for _ in range(8):
        size = (max(1, int(width * scale)), max(1, int(height * scale)))
        _check_min_side(size[0], size[1], limits, page)
        scaled = image if scale >= 1.0 else image.resize(size, Image.LANCZOS)
        qualities = JPEG_QUALITIES if fmt == "jpeg" else (0,)
        for quality in qualities:
            data = _encode(scaled, fmt, quality)
            if limits.max_bytes is None or len(data) <= limits.max_bytes:
                note = why
                if scale < 1.0:
                    note = f"{why}; scaled to {size[0]}×{size[1]}" if why else f"scaled to {size[0]}×{size[1]}"
                return Part(data, fmt, page, size[0], size[1], note=note or None)
        # Still too large at the lowest quality: shrink by the overshoot, with a margin.
        overshoot = len(data) / float(limits.max_bytes or len(data))
        scale *= min(0.9, 0.95 / math.sqrt(overshoot))
        del scaled
    raise InputError(f"page {page + 1} cannot be brought under {limits.max_bytes} bytes", code="InputTooLarge")
