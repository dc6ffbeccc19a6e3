"""Hostile inputs, generated (never committed): small files that cost a lot to open, and damaged ones.

Used by the tests (small sizes) and by ``bench/memory.py`` (the worst sizes inside the limits).
Every generator is deterministic: the same arguments give the same bytes.
"""

from __future__ import annotations

import io
import struct
import zlib


def pdf(pages: list[tuple[float, float, bytes]], *, compress: bool = True, extra_objects: dict[int, bytes] | None = None,
        root_pages: bytes | None = None) -> bytes:
    """A minimal PDF: one page per (width pt, height pt, content stream), streams Flate-compressed.

    ``root_pages`` replaces the page tree object (object 2) to build broken trees.
    """
    objects: dict[int, bytes] = {1: b"<< /Type /Catalog /Pages 2 0 R >>"}
    kids = []
    number = 3
    for width, height, content in pages:
        page_no, content_no = number, number + 1
        number += 2
        kids.append(f"{page_no} 0 R".encode())
        objects[page_no] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width:g} {height:g}] "
                            f"/Contents {content_no} 0 R /Resources << >> >>").encode()
        if compress:
            body = _deflate(content)
            objects[content_no] = (f"<< /Length {len(body)} /Filter /FlateDecode >>\nstream\n".encode() + body
                                   + b"\nendstream")
        else:
            objects[content_no] = f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream"
    objects[2] = root_pages or b"<< /Type /Pages /Kids [" + b" ".join(kids) + f"] /Count {len(kids)} >>".encode()
    objects.update(extra_objects or {})
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for n in sorted(objects):
        offsets[n] = out.tell()
        out.write(f"{n} 0 obj\n".encode() + objects[n] + b"\nendobj\n")
    xref = out.tell()
    size = max(objects) + 1
    out.write(f"xref\n0 {size}\n0000000000 65535 f \n".encode())
    for n in range(1, size):
        out.write(f"{offsets[n]:010d} 00000 n \n".encode() if n in offsets else b"0000000000 65535 f \n")
    out.write(f"trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def _deflate(data: bytes, chunk: int = 1 << 24) -> bytes:
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(data[i:i + chunk]) for i in range(0, len(data), chunk)]
    return b"".join(parts) + compressor.flush()


def _deflate_zeros(size: int) -> bytes:
    """``size`` spaces, deflated, without holding them all."""
    compressor = zlib.compressobj(9)
    block = b" " * (1 << 20)
    parts = [compressor.compress(block) for _ in range(size >> 20)]
    parts.append(compressor.compress(b" " * (size & ((1 << 20) - 1))))
    return b"".join(parts) + compressor.flush()


def pdf_inflating_stream(inflated: int = 1 << 30) -> bytes:
    """A one-page PDF whose content stream inflates to ``inflated`` bytes (1 GiB: a 1 MB file)."""
    body = _deflate_zeros(inflated)
    stream = f"<< /Length {len(body)} /Filter /FlateDecode >>\nstream\n".encode() + body + b"\nendstream"
    text = b"BT /F1 24 Tf 72 720 Td (INFLATED) Tj ET"
    return pdf([(612, 792, text)], extra_objects={4: stream})


def pdf_oversized_pages(pages: int = 20, side_pt: float = 14400) -> bytes:
    """``pages`` pages of 200 × 200 inches (PDF's largest), a few KB in all."""
    return pdf([(side_pt, side_pt, b"0 0 0 rg 100 100 500 500 re f") for _ in range(pages)])


def pdf_self_referential_tree() -> bytes:
    """A page tree whose only kid is the tree itself."""
    return pdf([(612, 792, b"")], root_pages=b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_blank(width: int, height: int, *, colour_type: int = 0, bit_depth: int = 8) -> bytes:
    """A valid PNG of ``width`` × ``height`` zero pixels: tiny on disk, large once decoded (7000² = 49 Mpx, 49 KB)."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    row = b"\x00" * (1 + width * channels * bit_depth // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")


def image(size: tuple[int, int], fmt: str, *, frames: int = 1, mode: str = "RGB", **save) -> bytes:
    """A small image with some structure (so compressors do real work); ``frames`` > 1 for TIFF/GIF/WebP."""
    from PIL import Image, ImageDraw

    pictures = []
    for n in range(frames):
        img = Image.new(mode, size, "white")
        draw = ImageDraw.Draw(img)
        draw.rectangle((n, n, size[0] // 2, size[1] // 2), outline="black")
        draw.line((0, size[1] - 1, size[0] - 1, n), fill="black")
        pictures.append(img)
    out = io.BytesIO()
    if frames > 1:
        save = {"save_all": True, "append_images": pictures[1:], **save}
    pictures[0].save(out, fmt, **save)
    return out.getvalue()


def iso_bmff(brand: bytes, compatible: tuple[bytes, ...] = ()) -> bytes:
    """The start of an ISO-BMFF file (MP4, MOV, HEIC, AVIF): an ftyp box with its major and compatible brands."""
    body = brand + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00\x00\x00\x08free"


def tiff_with_broken_second_page(pages: int = 3) -> bytes:
    """A multi-page TIFF whose second page lost its width tag (Pillow: TypeError "Missing dimensions" on seek)."""
    data = bytearray(image((64, 48), "TIFF", frames=pages))
    assert data[:4] == b"II*\x00"
    first = struct.unpack_from("<I", data, 4)[0]
    entries = struct.unpack_from("<H", data, first)[0]
    second = struct.unpack_from("<I", data, first + 2 + 12 * entries)[0]
    for n in range(struct.unpack_from("<H", data, second)[0]):
        entry = second + 2 + 12 * n
        if struct.unpack_from("<H", data, entry)[0] == 256:  # ImageWidth -> a private tag nobody reads
            struct.pack_into("<H", data, entry, 65000)
    return bytes(data)
