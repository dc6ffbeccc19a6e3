"""Peak memory for the worst inputs inside the limits: figures to print and quote, never to assert.

    python bench/memory.py [--paths imaging,fit,local] [--cases name,...]   (also run by make bench)

The inputs are generated (tests/hostile_files.py, deterministic) into a temporary directory, never
committed. Each case runs in a fresh process per path, with the default settings:

    imaging  imaging.inspect and every page as RGB (what every recognizer pays before anything else)
    fit      imaging, then prepare.fit into a JPEG-only capability of 4 MB and under 4096 px a side (the cloud families)
    local    the real ocr_upload handler, local storage, routed to local.text (the offline engine)

Printed per case and path: the outcome (pages read, or the error code), the process's peak RSS (VmHWM),
the largest PDF render child's peak RSS (RUSAGE_CHILDREN), and their sum: an upper bound of what the
function instance held at once (FC counts the children against the function's memory too).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
MiB = 1024 * 1024


def _jpeg_photo(width: int, height: int) -> bytes:
    """A progressive JPEG with an EXIF "turn 90°" tag: the costliest JPEG to decode (coefficients + turned copy)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for y in range(0, height, 200):
        draw.line((0, y, width, y + 100), fill=(y % 255, 80, 160), width=9)
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85, progressive=True, exif=exif.tobytes())
    return out.getvalue()


def _tiff16(side: int) -> bytes:
    from PIL import Image

    img = Image.new("I;16", (side, side), 1000)
    out = io.BytesIO()
    img.save(out, "TIFF", compression="tiff_lzw")
    return out.getvalue()


def cases() -> dict[str, callable]:
    from tests import hostile_files as hostile

    return {
        "pdf-inflate-1GiB": lambda: hostile.pdf_inflating_stream(1 << 30),
        "pdf-inflate-3GiB": lambda: hostile.pdf_inflating_stream(3 << 30),
        "pdf-20-poster-pages": lambda: hostile.pdf_oversized_pages(20),
        "png-49Mpx-grey": lambda: hostile.png_blank(7000, 7000),
        "png-49Mpx-rgba": lambda: hostile.png_blank(7000, 7000, colour_type=6),
        "jpeg-48Mpx-progressive-turned": lambda: _jpeg_photo(8000, 6000),
        "tiff-36Mpx-16bit": lambda: _tiff16(6000),
        "png-50Mpx-16bit": lambda: hostile.png_blank(8000, 6250, bit_depth=16),  # over the page memory: refused
    }


# ------------------------------------------------------------------------------------ one measurement
def _peaks() -> dict:
    import resource

    with open("/proc/self/status") as status:
        hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return {"processMb": round(hwm / 1024), "childMb": round(children / 1024)}


def measure_one(path: str, file: str) -> dict:
    """In a fresh process: run ``path`` on ``file`` and report the outcome and the peaks."""
    from fcocr.errors import FcocrError

    data = Path(file).read_bytes()
    outcome = ""
    try:
        if path == "local":
            outcome = _local(file)
        else:
            from fcocr import imaging
            from fcocr.config import Settings
            from fcocr.model import ALL_FORMATS, Limits
            from fcocr.prepare import fit

            settings = Settings.from_env({})
            doc = imaging.inspect(data, Limits(formats=ALL_FORMATS), max_bytes=settings.max_bytes,
                                  max_pixels=settings.max_pixels, max_pages=settings.max_pages,
                                  pdf_dpi=settings.pdf_dpi, page_memory=settings.page_memory_mb * MiB)
            del data
            if path == "imaging":
                count = sum(1 for _ in doc.pages())
            else:
                count = sum(1 for _ in fit(doc, Limits(formats=frozenset({"jpeg"}), max_bytes=4 * MiB, max_side=4096)))
            outcome = f"{count} page(s)"
    except FcocrError as exc:
        outcome = exc.code
    return {"outcome": outcome, **_peaks()}


def _local(file: str) -> str:
    from fcocr.events import oss_event
    from fcocr.pipeline import App, handle_oss_event
    from fcocr.runtime import LocalContext

    root = Path(file).parent.parent
    os.environ.update(FCOCR_LOCAL_ROOT=str(root), FCOCR_LOG_LEVEL="ERROR")
    key = Path(file).name
    out = handle_oss_event(json.dumps({"events": [oss_event(Path(file).parent.name, key)]}).encode(),
                           LocalContext(), App.from_env())
    record = out["records"][0]
    if record["status"] == "succeeded":
        doc = json.loads((Path(file).parent / (key + ".ocr.json")).read_text("utf-8"))
        return f"{len(doc.get('pages') or [])} page(s)"
    return record.get("error_code") or record["status"]


# ------------------------------------------------------------------------------------------ the table
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", default="imaging,fit,local")
    parser.add_argument("--cases", default="")
    parser.add_argument("--one", nargs=2, metavar=("PATH", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(*args.one)))
        return
    import logging

    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    from fcocr.config import Settings

    settings = Settings.from_env({})
    chosen = [c for c in args.cases.split(",") if c] or list(cases())
    paths = [p for p in args.paths.split(",") if p]
    work = Path(tempfile.mkdtemp(prefix="fcocr-memory-"))
    print(f"fcocr peak memory on hostile inputs (defaults: FCOCR_MAX_PIXELS={settings.max_pixels}, "
          f"FCOCR_MAX_PAGES={settings.max_pages}, FCOCR_PAGE_MEMORY_MB={settings.page_memory_mb}), "
          f"Python {sys.version.split()[0]}\n")
    print(f"{'case':32} {'size':>9} {'path':8} {'outcome':16} {'process MB':>10} {'child MB':>8} {'sum MB':>7}")
    try:
        for name in chosen:
            (work / "bucket").mkdir(exist_ok=True)
            file = work / "bucket" / (name + ".bin")
            file.write_bytes(cases()[name]())
            size = file.stat().st_size
            for path in paths:
                for stale in (work / "bucket").glob("*.ocr.json"):
                    stale.unlink()
                env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "shared")])}
                for variable in [v for v in env if v.startswith("FCOCR_")]:
                    del env[variable]
                run = subprocess.run([sys.executable, __file__, "--one", path, str(file)], capture_output=True,
                                     text=True, env=env)
                if run.returncode != 0:
                    print(f"{name:32} {size:>9} {path:8} crashed: {run.stderr.strip().splitlines()[-1:]}")
                    continue
                result = json.loads(run.stdout.strip().splitlines()[-1])
                total = result["processMb"] + result["childMb"]
                print(f"{name:32} {size:>9} {path:8} {result['outcome']:16} {result['processMb']:>10} "
                      f"{result['childMb']:>8} {total:>7}", flush=True)
            file.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
