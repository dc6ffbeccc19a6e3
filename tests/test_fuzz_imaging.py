"""Fuzzing imaging and prepare.fit with mutated files: only fcocr's own, permanent, plainly worded errors escape.

Each format starts from small valid files (generated here) that Hypothesis mutates: bytes overwritten,
spans deleted or duplicated, the file cut short. Whatever comes out, ``imaging.inspect``, every page and
``prepare.fit`` into a JPEG-only capability must either work or raise a ``PermanentError`` (retryable
False) whose message names no library internals. Deterministic (derandomized, no example database),
and sized to run in about half a minute in all.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fcocr import imaging
from fcocr.errors import FcocrError, PermanentError
from fcocr.model import ALL_FORMATS, Limits
from fcocr.prepare import fit

from . import hostile_files as hostile

MiB = 1024 * 1024
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow reports what it skips in a damaged file
CAPABILITY = Limits(formats=frozenset({"jpeg"}), max_bytes=200_000, max_side=300)


def _seeds() -> dict[str, list[bytes]]:
    rgba = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    rgba.paste((200, 0, 0, 255), (5, 5, 20, 20))
    palette = Image.new("P", (40, 30))
    palette.putpalette([i % 256 for i in range(768)])
    out_rgba, out_palette = io.BytesIO(), io.BytesIO()
    rgba.save(out_rgba, "PNG")
    palette.save(out_palette, "PNG", transparency=0)
    return {
        "tiff": [hostile.image((48, 32), "TIFF", frames=3), hostile.image((48, 32), "TIFF", frames=3, compression="tiff_lzw"),
                 hostile.image((48, 32), "TIFF", frames=2, mode="L", compression="packbits")],
        "jpeg": [hostile.image((48, 32), "JPEG"), hostile.image((48, 32), "JPEG", progressive=True, quality=80)],
        "png": [hostile.image((48, 32), "PNG"), out_rgba.getvalue(), out_palette.getvalue()],
        "gif": [hostile.image((48, 32), "GIF", frames=3, mode="P")],
        "webp": [hostile.image((48, 32), "WEBP", quality=70), hostile.image((48, 32), "WEBP", frames=2, lossless=True)],
        "pdf": [hostile.pdf([(72, 72, b"1 0 0 rg 0 0 36 36 re f"), (100, 50, b"BT /F1 12 Tf 5 5 Td (x) Tj ET")]),
                hostile.pdf([(72, 72, b"0 g 10 10 20 20 re f")], compress=False)],
    }


SEEDS = _seeds()


@st.composite
def mutated(draw, fmt: str) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS[fmt])))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["byte", "byte", "word", "delete", "duplicate", "truncate"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "byte":
            data[at] = draw(st.integers(0, 255))
        elif kind == "word":  # sizes and offsets are words: extremes find the arithmetic bugs
            data[at:at + 4] = draw(st.sampled_from([b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff",
                                                    b"\x00\x00\x01\x00", b"\x00\x01\x00\x00"]))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        elif kind == "duplicate":
            data[at:at] = data[at:at + draw(st.integers(1, 64))]
        else:
            del data[max(1, at):]
        if not data:
            data = bytearray(b"\x00")
    return bytes(data)


def exercise(data: bytes) -> None:
    """Inspect, walk every page, fit for a JPEG-only capability: succeed or raise a permanent, worded error."""
    try:
        doc = imaging.inspect(data, Limits(formats=ALL_FORMATS), max_bytes=20 * MiB, max_pixels=4_000_000,
                              max_pages=5, page_memory=64 * MiB)
        for page in doc.pages():
            assert page.image.mode == "RGB"
        for part in fit(doc, CAPABILITY):
            assert part.data
    except FcocrError as exc:
        assert isinstance(exc, PermanentError) and exc.retryable is False, (exc.code, exc.message)
        assert exc.message and "<" not in exc.message and " 0x" not in exc.message, exc.message


FUZZ = settings(deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
EXAMPLES = {"tiff": 150, "jpeg": 80, "png": 80, "gif": 60, "webp": 60, "pdf": 25}


@pytest.mark.parametrize("fmt", sorted(EXAMPLES))
def test_mutated_files_fail_only_with_permanent_fcocr_errors(fmt):
    @settings(FUZZ, max_examples=EXAMPLES[fmt])
    @given(mutated(fmt))
    def check(data):
        exercise(data)

    check()


@pytest.mark.parametrize("fmt", sorted(EXAMPLES))
def test_the_seeds_themselves_are_read(fmt):
    for data in SEEDS[fmt]:
        doc = imaging.inspect(data, Limits(formats=ALL_FORMATS), max_bytes=20 * MiB, max_pixels=4_000_000, max_pages=5)
        assert doc.format == fmt and len(list(doc.pages())) == doc.pages_to_read
