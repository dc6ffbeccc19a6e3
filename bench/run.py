"""fcocr benchmarks: figures to print and quote, never to assert.

    python bench/run.py            (or: make bench)

1. Cold import time of each handler module (a fresh interpreter each time, median of 5),
   net of the interpreter's own start-up.
2. local.text on the shipped samples: per-image time (median of 3 warm runs) and the process's
   peak memory, through the whole pipeline (handler, storage, checks, result writer) against the
   raw RapidOCR engine on the same images, each in its own fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "shared" / "fcocr" / "samples"
IMAGES = ["vat_invoice.png", "idcard_front.png", "receipt.jpg", "notice_en.png", "report.pdf"]
RUNS = 5


def _python(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    return time.perf_counter() - started


def cold_imports() -> list[tuple[str, float]]:
    baseline = statistics.median(_python("pass") for _ in range(5))
    rows = []
    for index in sorted((REPO / "functions").glob("*/index.py")):
        code = ("import importlib.util as u; s = u.spec_from_file_location('h', %r); "
                "m = u.module_from_spec(s); s.loader.exec_module(m)" % str(index))
        rows.append((index.parent.name, statistics.median(_python(code) for _ in range(5)) - baseline))
    return rows


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(mode: str) -> dict:
    """Run in a child process: time each sample RUNS times (after one warm-up) in ``mode``."""
    threads = int(os.environ.get("FCOCR_OCR_THREADS", "0"))
    times: dict[str, list[float]] = {}
    if mode == "raw":
        import numpy as np
        import pypdfium2
        from PIL import Image

        from fcocr.recognizers.local import engine

        def pages(name):  # decode as simply as possible; the PDF rendered at the pipeline's 150 dpi
            path = SAMPLES / name
            if name.endswith(".pdf"):
                pdf = pypdfium2.PdfDocument(str(path))
                return [pdf[i].render(scale=150 / 72).to_pil().convert("RGB") for i in range(len(pdf))]
            return [Image.open(path).convert("RGB")]

        def run(name):
            ocr = engine(threads)  # loaded on the first call, as in the pipeline
            for page in pages(name):
                ocr(np.ascontiguousarray(np.asarray(page)[:, :, ::-1]))
    else:
        from fcocr.events import oss_event
        from fcocr.pipeline import App, handle_oss_event
        from fcocr.runtime import LocalContext

        root = Path(tempfile.mkdtemp(prefix="fcocr-bench-"))
        shutil.copytree(SAMPLES, root / "samples")
        os.environ["FCOCR_LOCAL_ROOT"] = str(root)
        os.environ["FCOCR_LOG_LEVEL"] = "ERROR"
        application = App.from_env()

        def run(name):
            (root / "samples" / (name + ".ocr.json")).unlink(missing_ok=True)  # or idempotency skips it
            event = json.dumps({"events": [oss_event("samples", name)]}).encode()
            out = handle_oss_event(event, LocalContext(), application)
            assert out["records"][0]["status"] == "succeeded", out

    started = time.perf_counter()
    run(IMAGES[-2])  # warm-up: load the models, first-call allocations
    first_ms = round((time.perf_counter() - started) * 1000)
    for name in IMAGES:
        times[name] = []
        for _ in range(RUNS):
            started = time.perf_counter()
            run(name)
            times[name].append(time.perf_counter() - started)
    return {"ms": {n: round(statistics.median(t) * 1000) for n, t in times.items()}, "peakRssMb": round(peak_rss_mb()),
            "firstMs": first_ms}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=["raw", "pipeline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return

    print(f"fcocr bench on {os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
    print("Cold import of each handler module (median of 5 fresh interpreters, net of `python -c pass`):")
    for name, seconds in cold_imports():
        print(f"  functions/{name}/index.py  {seconds * 1000:7.0f} ms")

    results = {}
    for mode in ("raw", "pipeline"):
        proc = subprocess.run([sys.executable, __file__, "--child", mode], check=True, capture_output=True, text=True)
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nlocal.text per document (median of {RUNS} warm runs; the PDF is 2 pages at 150 dpi):")
    print(f"  {'document':<20} {'raw engine':>11} {'pipeline':>9} {'overhead':>9}")
    for name in IMAGES:
        raw, pipe = results["raw"]["ms"][name], results["pipeline"]["ms"][name]
        print(f"  {name:<20} {raw:>8} ms {pipe:>6} ms {pipe - raw:>+6} ms")
    print(f"\nFirst document in a fresh process ({IMAGES[-2]}: engine import, model load, recognition): "
          f"raw engine {results['raw']['firstMs']} ms, pipeline {results['pipeline']['firstMs']} ms")
    print(f"Peak memory of the whole process (ru_maxrss): raw engine {results['raw']['peakRssMb']} MB, "
          f"pipeline {results['pipeline']['peakRssMb']} MB")


if __name__ == "__main__":
    main()
