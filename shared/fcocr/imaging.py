"""Inspect uploaded bytes and turn them into pages a recognizer can use, refusing what cannot work.

Everything here is about the input's own fault: an empty object, text named .jpg, a truncated
JPEG, a PNG whose header claims a billion pixels, a PDF with a password. Each becomes an
``InputError`` with a code and a message a person understands, never a crash.

Pages are produced one at a time (``Document.pages``), so a 20-page PDF never holds 20 bitmaps.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import Iterator

from .errors import InputError
from .model import VIDEO_FORMATS, Limits

# Magic numbers: we trust content, not the file name.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


def sniff_format(data: bytes) -> str | None:
    """The canonical format name of ``data`` from its first bytes, or None."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    # Videos, for RecognizeVideoCharacter: MP4/MOV boxes, AVI, and a raw H.264 Annex-B stream.
    if data[4:8] == b"ftyp":
        return "mp4"
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "avi"
    for start in (b"\x00\x00\x00\x01", b"\x00\x00\x01"):
        if data.startswith(start) and len(data) > len(start) and data[len(start)] & 0x1F in {1, 5, 6, 7, 9}:
            return "h264"
    # PDF readers accept the header anywhere in the first 1 KiB.
    if b"%PDF-" in data[:1024]:
        return "pdf"
    return None


def _describe_unknown(data: bytes) -> str:
    head = data[:512].decode("utf-8", errors="ignore")  # a character cut at byte 512 is dropped
    if head and all(c.isprintable() or c in "\r\n\t" for c in head):
        return "it looks like text"
    return f"its first bytes are {data[:8].hex(' ')}"


@dataclass
class Document:
    """An uploaded object's bytes, its sniffed format, and a lazy walk over its pages."""

    data: bytes
    format: str
    page_count: int
    width: int | None = None  # of the first page, for images
    height: int | None = None
    max_pixels: int = 50_000_000
    max_pages: int = 20
    pdf_dpi: int = 150

    @property
    def pages_to_read(self) -> int:
        return min(self.page_count, self.max_pages)

    def pages(self) -> Iterator["Page"]:
        """Each page as an RGB PIL image, decoded only when reached."""
        if self.format == "pdf":
            yield from _pdf_pages(self)
        else:
            yield from _image_pages(self)


@dataclass
class Page:
    index: int
    image: object  # PIL.Image.Image, RGB

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size  # type: ignore[attr-defined]


def inspect(data: bytes, limits: Limits, *, max_bytes: int, max_pixels: int, max_pages: int,
            pdf_dpi: int = 150) -> Document:
    """Check ``data`` against the capability's limits and fcocr's own; a Document, or InputError."""
    if not data:
        raise InputError("the object is empty (0 bytes)", code="EmptyObject")
    effective_max = min(max_bytes, limits.max_bytes or max_bytes)
    if len(data) > effective_max:
        raise InputError(f"the object is {len(data)} bytes, over the {effective_max}-byte limit",
                         code="InputTooLarge")
    fmt = sniff_format(data)
    if fmt is None:
        raise InputError(f"not a supported image or PDF: {_describe_unknown(data)}", code="UnsupportedFormat")
    if fmt not in limits.formats:
        accepted = ", ".join(sorted(limits.formats))
        raise InputError(f"{fmt.upper()} is not accepted by this recognizer (accepted: {accepted})",
                         code="UnsupportedFormat")
    page_limit = min(max_pages, limits.max_pages or max_pages)
    if fmt in VIDEO_FORMATS:  # handed to the vendor as is; nothing here decodes video
        return Document(data, fmt, 1, max_pixels=max_pixels, max_pages=1)
    if fmt == "pdf":
        count = _pdf_page_count(data)
        return Document(data, fmt, count, max_pixels=max_pixels, max_pages=page_limit, pdf_dpi=pdf_dpi)
    width, height, frames = _image_header(data, fmt)
    pixel_limit = min(max_pixels, limits.max_pixels or max_pixels)
    if width * height > pixel_limit:
        raise InputError(
            f"the image claims {width}×{height} = {width * height} pixels, over the {pixel_limit}-pixel limit "
            "(a decompression bomb, or simply too large: FCOCR_MAX_PIXELS)", code="ImageTooLarge")
    for side, name in ((limits.min_side, "smaller"), (limits.max_side, "larger")):
        if side is None:
            continue
        if (name == "smaller" and min(width, height) <= side) or (name == "larger" and max(width, height) >= side):
            raise InputError(f"the image is {width}×{height}; this recognizer needs each side {name} than {side} px",
                             code="ImageSizeOutOfRange")
    return Document(data, fmt, frames, width, height, max_pixels=pixel_limit, max_pages=page_limit)


def _open(data: bytes):
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"refused as a decompression bomb: {exc}", code="ImageTooLarge") from None
    except Exception as exc:  # UnidentifiedImageError, struct errors, ... on garbage headers
        raise InputError(f"the image header cannot be read: {exc}", code="CorruptImage") from None


def _image_header(data: bytes, fmt: str) -> tuple[int, int, int]:
    img = _open(data)
    width, height = img.size
    frames = getattr(img, "n_frames", 1) if fmt == "tiff" else 1  # a GIF's frames are animation, not pages
    img.close()
    if width <= 0 or height <= 0:
        raise InputError(f"the image has no pixels ({width}×{height})", code="CorruptImage")
    return width, height, frames


def _to_rgb(img):
    """An RGB image: EXIF rotation applied, transparency flattened onto white, 16-bit scaled."""
    from PIL import Image, ImageOps

    img = ImageOps.exif_transpose(img) or img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # Stretch the used range onto 0-255 with Pillow alone (cloud packages carry no numpy).
        wide = img.convert("F")
        low, high = wide.getextrema()
        scale = 255.0 / ((high - low) or 1.0)
        img = wide.point(lambda v: (v - low) * scale).convert("L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        background.alpha_composite(rgba)
        return background.convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def _image_pages(doc: Document) -> Iterator[Page]:
    from PIL import Image

    img = _open(doc.data)
    for index in range(doc.pages_to_read):
        try:
            if index:
                img.seek(index)
            if img.size[0] * img.size[1] > doc.max_pixels:
                raise InputError(f"page {index + 1} is {img.size[0]}×{img.size[1]} pixels, over the limit",
                                 code="ImageTooLarge")
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img.load()
            page = _to_rgb(img)
        except InputError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InputError(f"refused as a decompression bomb: {exc}", code="ImageTooLarge") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            # Pillow's words for a truncated or damaged file ("image file is truncated", ...).
            raise InputError(f"the image data is damaged or truncated: {exc}", code="CorruptImage") from None
        yield Page(index, page)


def _pdfium():
    try:
        import pypdfium2
    except ImportError:  # pragma: no cover - depends on the install
        raise InputError("PDF input needs pypdfium2: pip install 'fcocr[cloud]' or 'fcocr[local]'",
                         code="UnsupportedFormat") from None
    return pypdfium2


def _open_pdf(data: bytes):
    pdfium = _pdfium()
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        text = str(exc)
        if "password" in text.lower():
            raise InputError("the PDF is password-protected", code="EncryptedDocument") from None
        raise InputError(f"the PDF cannot be read: {text}", code="CorruptDocument") from None


def _pdf_page_count(data: bytes) -> int:
    pdf = _open_pdf(data)
    try:
        count = len(pdf)
    finally:
        pdf.close()
    if count == 0:
        raise InputError("the PDF has no pages", code="CorruptDocument")
    return count


def _pdf_pages(doc: Document) -> Iterator[Page]:
    pdf = _open_pdf(doc.data)
    try:
        for index in range(doc.pages_to_read):
            page = pdf[index]
            try:
                width_pt, height_pt = page.get_size()
                # Render at the configured DPI, but never past the pixel limit (a 5 m poster page).
                scale = doc.pdf_dpi / 72.0
                area = width_pt * height_pt * scale * scale
                if area > doc.max_pixels:
                    scale *= math.sqrt(doc.max_pixels / area)
                bitmap = page.render(scale=scale)
                image = bitmap.to_pil().convert("RGB")
                bitmap.close()
            except InputError:
                raise
            except Exception as exc:
                raise InputError(f"PDF page {index + 1} cannot be rendered: {exc}", code="CorruptDocument") from None
            finally:
                page.close()
            yield Page(index, image)
    finally:
        pdf.close()
