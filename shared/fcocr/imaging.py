"""Inspect uploaded bytes and turn them into pages a recognizer can use, refusing what cannot work.

Everything here is about the input's own fault: an empty object, text named .jpg, a truncated
JPEG, a PNG whose header claims a billion pixels, a PDF with a password. Each becomes an
``InputError`` with a code and a message a person understands, never a crash.

Pages are produced one at a time (``Document.pages``), so a 20-page PDF never holds 20 bitmaps.
"""

from __future__ import annotations

import io
import weakref
from dataclasses import dataclass, field
from typing import Iterator

from .errors import InputError
from .model import VIDEO_FORMATS, Limits
from .pdfrender import MiB, PdfRenderer

DEFAULT_PAGE_MEMORY = 512 * MiB

# Magic numbers: we trust content, not the file name.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "jp2"),  # the JP2 signature box
    (b"\xff\x4f\xff\x51", "jp2"),  # a bare JPEG 2000 codestream (.j2k): SOC then SIZ
)
# Netpbm: P1-P6 (PBM, PGM, PPM; plain and raw) followed by whitespace.
_PNM_KINDS = frozenset(b"123456")


def sniff_format(data: bytes) -> str | None:
    """The canonical format name of ``data`` from its first bytes, or None."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if len(data) > 2 and data[0:1] == b"P" and data[1] in _PNM_KINDS and data[2:3] in (b" ", b"\t", b"\r", b"\n"):
        return "pnm"
    # ISO-BMFF (an ftyp box): HEIC/AVIF photos and MP4/MOV videos share the container; its brands tell them apart.
    if data[4:8] == b"ftyp":
        return _iso_bmff_format(data)
    # Videos, for RecognizeVideoCharacter: AVI, and a raw H.264 Annex-B stream.
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "avi"
    for start in (b"\x00\x00\x00\x01", b"\x00\x00\x01"):
        if data.startswith(start) and len(data) > len(start) and data[len(start)] & 0x1F in {1, 5, 6, 7, 9}:
            return "h264"
    # PDF readers accept the header anywhere in the first 1 KiB.
    if b"%PDF-" in data[:1024]:
        return "pdf"
    return None


# HEIF image brands (ISO/IEC 23008-12) and AVIF's; any other ftyp is a video (isom, mp41, mp42, qt, 3gp...).
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1",
                          b"mif2", b"miaf"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
# Photo formats recognized only to be refused by name: Pillow cannot decode them everywhere fcocr runs.
UNSUPPORTED_PHOTO_FORMATS = {"heic": "HEIC/HEIF", "avif": "AVIF"}


def _iso_bmff_format(data: bytes) -> str:
    box_size = int.from_bytes(data[:4], "big")
    end = min(len(data), box_size if 16 <= box_size <= 4096 else 64)
    brands = {data[8:12]} | {data[i:i + 4] for i in range(16, end - 3, 4)}
    if brands & _AVIF_BRANDS:
        return "avif"
    if brands & _HEIF_BRANDS:
        return "heic"
    return "mp4"


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
    page_memory: int = DEFAULT_PAGE_MEMORY  # bytes one page may take to decode or render (FCOCR_PAGE_MEMORY_MB)
    # A PDF's renderer, kept from inspect() (which counted the pages in it) for the first walk over the pages.
    renderer: PdfRenderer | None = field(default=None, repr=False, compare=False)

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
            pdf_dpi: int = 150, page_memory: int = DEFAULT_PAGE_MEMORY) -> Document:
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
    if fmt in UNSUPPORTED_PHOTO_FORMATS:
        raise InputError(f"{UNSUPPORTED_PHOTO_FORMATS[fmt]} photos are not supported: convert the photo to JPEG or PNG "
                         "(on an iPhone: Settings > Camera > Formats > Most Compatible)", code="UnsupportedFormat")
    if fmt not in limits.formats:
        accepted = ", ".join(sorted(limits.formats))
        raise InputError(f"{fmt.upper()} is not accepted by this recognizer (accepted: {accepted})",
                         code="UnsupportedFormat")
    page_limit = min(max_pages, limits.max_pages or max_pages)
    if fmt in VIDEO_FORMATS:  # handed to the vendor as is; nothing here decodes video
        return Document(data, fmt, 1, max_pixels=max_pixels, max_pages=1, page_memory=page_memory)
    if fmt == "pdf":
        renderer = PdfRenderer(data, memory_bytes=page_memory)  # the page tree is parsed in the capped child
        doc = Document(data, fmt, renderer.page_count, max_pixels=max_pixels, max_pages=page_limit, pdf_dpi=pdf_dpi,
                       page_memory=page_memory, renderer=renderer)
        weakref.finalize(doc, renderer.close)  # a PDF sent whole is never rendered: its renderer ends with it
        return doc
    pixel_limit = min(max_pixels, limits.max_pixels or max_pixels)
    width, height, frames = _image_header(data, fmt, pixel_limit, page_memory)
    for side, name in ((limits.min_side, "smaller"), (limits.max_side, "larger")):
        if side is None:
            continue
        if (name == "smaller" and min(width, height) <= side) or (name == "larger" and max(width, height) >= side):
            raise InputError(f"the image is {width}×{height}; this recognizer needs each side {name} than {side} px",
                             code="ImageSizeOutOfRange")
    return Document(data, fmt, frames, width, height, max_pixels=pixel_limit, max_pages=page_limit,
                    page_memory=page_memory)


def _pillow():
    """PIL.Image, with Pillow's own decompression-bomb limit turned off: fcocr's applies instead.

    Pillow refuses images over its fixed MAX_IMAGE_PIXELS (89,478,485 as a warning, twice that as an
    error) wherever it learns a size; leaving it on would make FCOCR_MAX_PIXELS above it ineffective.
    fcocr checks every size Pillow would have checked, against its own limit, before any pixel is
    decoded (``_check_frame``). The setting is process-wide by nature; fcocr owns its process.
    """
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    return Image


def _open(data: bytes):
    Image = _pillow()
    try:
        return Image.open(io.BytesIO(data))
    except MemoryError:
        raise InputError("the image header asks for more memory than a page may use", code="InputTooComplex") from None
    except Exception:  # UnidentifiedImageError, struct errors, ... on garbage headers: Pillow's text names internals
        raise InputError("the image header cannot be read: the file is damaged or not an image",
                         code="CorruptImage") from None


# What one frame costs to decode and turn into RGB (``_to_rgb``), in bytes per pixel. Pillow stores 1, L and P in
# one byte a pixel, the 16-bit modes in two, every other mode (RGB included) in four.
_STORED_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# The copies _to_rgb holds beside the decoded frame at its peak: an RGB copy (4); RGBA through the white
# background (4); LA/PA/transparent P via RGBA (4 + 4); 16-bit and 32-bit via two F images and L (4 + 4 + 1).
_CONVERSION_BYTES = {"RGB": 0, "RGBA": 4, "LA": 8, "PA": 8, "I;16": 9, "I;16L": 9, "I;16B": 9, "I;16N": 9, "I": 9,
                     "F": 9}
_PROGRESSIVE_JPEG_BYTES = 6  # libjpeg keeps every DCT coefficient (2 bytes × 3 components) while decoding


def decode_cost(mode: str, pixels: int, *, transparent: bool = False, turned: bool = False,
                progressive: bool = False, copied: bool = False) -> int:
    """The most memory, in bytes, decoding one ``mode`` frame of ``pixels`` pixels into RGB takes.

    The decoder's scratch and the conversion's copies are never alive together, so the peak is the larger.
    ``copied``: the RGB page must be a copy even when the frame is RGB already (a TIFF with more pages).
    """
    stored = _STORED_BYTES.get(mode, 4)
    conversion = 8 if transparent and mode == "P" else _CONVERSION_BYTES.get(mode, 4)
    if copied:
        conversion = max(conversion, 4)
    decoding = stored + (_PROGRESSIVE_JPEG_BYTES if progressive else 0)
    converting = stored * (2 if turned else 1) + conversion  # an EXIF-turned copy of the frame, then its RGB
    return pixels * max(decoding, converting)


def _check_frame(img, where: str, max_pixels: int, page_memory: int, *, copied: bool = False) -> None:
    """Refuse a frame, before it is decoded, whose pixels or decoding memory are over fcocr's limits."""
    width, height = img.size
    # A TIFF decodes into its stored size (before its orientation tag turns it): check both.
    tile_width, tile_height = getattr(img, "_tile_size", (width, height))
    pixels = max(width * height, tile_width * tile_height)
    if width <= 0 or height <= 0:
        raise InputError(f"{where} has no pixels ({width}×{height})", code="CorruptImage")
    if pixels > max_pixels:
        raise InputError(
            f"{where} claims {width}×{height} = {pixels} pixels, over the {max_pixels}-pixel limit "
            "(a decompression bomb, or simply too large: FCOCR_MAX_PIXELS)", code="ImageTooLarge")
    cost = decode_cost(img.mode, pixels, transparent="transparency" in img.info, turned=_turned(img),
                       progressive=bool(img.info.get("progressive") or img.info.get("progression")), copied=copied)
    if cost > page_memory:
        raise InputError(
            f"{where} ({width}×{height}, {img.mode}) needs about {cost // MiB} MiB to decode, over the "
            f"{page_memory // MiB} MiB a page may use (FCOCR_PAGE_MEMORY_MB)", code="InputTooComplex")


def _turned(img) -> bool:
    """Whether EXIF turns the image, read without decoding it (a PNG's getexif() would decode it whole)."""
    from PIL import Image

    try:
        if img.format == "PNG":
            exif = Image.Exif()
            raw = img.info.get("exif")  # an eXIf chunk before the image data; one after it is found only on load
            if raw:
                exif.load(raw)
        else:
            exif = img.getexif()
        return exif.get(0x0112) not in (None, 1)
    except Exception:  # a damaged EXIF block: exif_transpose ignores it too
        return False


MAX_COUNTED_FRAMES = 1000  # a TIFF's pages are counted up to this many (each costs a seek through the file)


# libjpeg decodes a progressive JPEG once per scan over the whole image: a few KB of scan headers each cost a
# full pass, so a 20 MB file of thousands of scans takes hours. Encoders write about 10 (mozjpeg up to ~20).
MAX_JPEG_SCANS = 100


def _image_header(data: bytes, fmt: str, max_pixels: int, page_memory: int) -> tuple[int, int, int]:
    if fmt == "jpeg":
        scans = data.count(b"\xff\xda")  # start-of-scan markers: 0xFF is byte-stuffed inside entropy-coded data
        if scans > MAX_JPEG_SCANS:
            raise InputError(f"the JPEG has {scans} scans (photos have about 10): decoding it would take too long",
                             code="InputTooComplex")
    img = _open(data)
    try:
        _check_frame(img, "the image", max_pixels, page_memory)
        frames = _count_frames(img) if fmt == "tiff" else 1  # a GIF's frames are animation, not pages
        return img.size[0], img.size[1], frames
    finally:
        img.close()


def _count_frames(img) -> int:
    """A multi-page TIFF's page count; a damaged page chain is the file's fault, whatever Pillow raises."""
    count = 1
    try:
        while count < MAX_COUNTED_FRAMES:
            try:
                img.seek(count)
            except EOFError:
                break
            count += 1
        img.seek(0)
    except MemoryError:
        raise InputError("the TIFF's page list asks for more memory than a page may use",
                         code="InputTooComplex") from None
    except Exception:  # TypeError, SyntaxError, KeyError, struct.error, ValueError, OSError from a broken IFD chain
        raise InputError("the TIFF's page list is damaged", code="CorruptImage") from None
    return count


def _to_rgb(img):
    """An RGB image: EXIF rotation applied (to ``img`` itself), transparency flattened onto white, 16-bit scaled."""
    from PIL import Image, ImageOps

    # In place: otherwise Pillow returns a copy of every image, turned or not.
    ImageOps.exif_transpose(img, in_place=True)
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # Stretch the used range onto 0-255 with Pillow alone (cloud packages carry no numpy).
        wide = img.convert("F")
        low, high = wide.getextrema()
        scale = 255.0 / ((high - low) or 1.0)
        img = wide.point(lambda v: (v - low) * scale).convert("L")
        del wide
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Paste through the alpha channel onto white: one RGB copy, not the three of an RGBA composite.
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba)  # an RGBA mask is its alpha channel
        return background
    return img if img.mode == "RGB" else img.convert("RGB")


def _image_pages(doc: Document) -> Iterator[Page]:
    img = _open(doc.data)
    for index in range(doc.pages_to_read):
        where = f"page {index + 1}" if index else "the image"
        try:
            if index:
                img.seek(index)
            _check_frame(img, where, doc.max_pixels, doc.page_memory, copied=doc.pages_to_read > 1)
            img.load()
            page = _to_rgb(img)
            if page is img and doc.pages_to_read > 1:
                page = img.copy()  # the next seek decodes into the same buffer
        except InputError:
            raise
        except MemoryError:
            raise InputError(f"{where} needs more memory to decode than a page may use",
                             code="InputTooComplex") from None
        except Exception:
            # Truncated or damaged data: Pillow says so with exceptions of every kind, and words that name
            # its internals (a BytesIO's address, a decoder's error number), so the message is fcocr's own.
            raise InputError(f"{where}'s data is damaged or truncated", code="CorruptImage") from None
        yield Page(index, page)


def _pdf_pages(doc: Document) -> Iterator[Page]:
    renderer, doc.renderer = doc.renderer or PdfRenderer(doc.data, memory_bytes=doc.page_memory), None
    with renderer:
        for index in range(doc.pages_to_read):
            yield Page(index, renderer.render(index, doc.pdf_dpi, doc.max_pixels))
