"""fcocr benchmarks: figures to print and quote, never to assert.

    python bench/run.py            (or: make bench)

1. Cold import time of each handler module (a fresh interpreter each time, median of 5),
   net of the interpreter's own start-up.
2. local.text on the shipped samples, side by side in one process (median of 5 warm runs, the paths
   alternated per document so drift hits all alike): the raw RapidOCR engine; today's local.text (the
   pipeline calling the engine as is, on onnxruntime, as before local_engine); and local.text as it is now
   (local_engine) on each FCOCR_ENGINE backend; with documents per second and the speed-up over today's.
   Then each path's first-document time and peak memory in a fresh process of its own.
3. `fcocr process` throughput with one and two workers.
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
BACKENDS = ("onnxruntime", "openvino")
PATHS = ("raw", "today") + tuple(f"local.text {b}" for b in BACKENDS)


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


def runners() -> dict:
    """The ways to recognize a sample: the raw engine, and the whole pipeline through the handler (``pipeline``:
    with FCOCR_ENGINE as set; ``today``: calling the engine as is; ``local.text <backend>``)."""
    import numpy as np
    import pypdfium2
    from PIL import Image

    from fcocr.events import oss_event
    from fcocr.pipeline import App, handle_oss_event
    from fcocr.recognizers import local_engine
    from fcocr.recognizers.local import engine
    from fcocr.runtime import LocalContext

    threads = int(os.environ.get("FCOCR_OCR_THREADS", "0"))

    def pages(name):  # decoded as simply as possible; the PDF rendered at the pipeline's 150 dpi
        path = SAMPLES / name
        if name.endswith(".pdf"):
            pdf = pypdfium2.PdfDocument(str(path))
            return [pdf[i].render(scale=150 / 72).to_pil().convert("RGB") for i in range(len(pdf))]
        return [Image.open(path).convert("RGB")]

    def raw(name):
        ocr = engine(threads, "onnxruntime")  # loaded on the first call, as in the pipeline
        for page in pages(name):
            ocr(np.ascontiguousarray(np.asarray(page)[:, :, ::-1]))

    root = Path(tempfile.mkdtemp(prefix="fcocr-bench-"))
    shutil.copytree(SAMPLES, root / "samples")
    os.environ["FCOCR_LOCAL_ROOT"] = str(root)
    os.environ["FCOCR_LOG_LEVEL"] = "ERROR"

    def pipeline_with(backend: str | None, today: bool = False):
        env = dict(os.environ)
        if backend:
            env["FCOCR_ENGINE"] = backend
        application = App.from_env(env)

        def run(name):
            (root / "samples" / (name + ".ocr.json")).unlink(missing_ok=True)  # or idempotency skips it
            event = json.dumps({"events": [oss_event("samples", name)]}).encode()
            saved = local_engine.read_page
            if today:
                local_engine.read_page = today_read
            try:
                out = handle_oss_event(event, LocalContext(), application)
            finally:
                local_engine.read_page = saved
            assert out["records"][0]["status"] == "succeeded", out

        return run

    def today_read(models, bgr):
        """local.text before local_engine: the engine called as is, on onnxruntime."""
        out = engine(threads, "onnxruntime")(bgr)
        boxes = [] if out.boxes is None else [np.asarray(box, dtype=np.float32) for box in out.boxes]
        return local_engine.PageReading([local_engine.TextLine(t, float(s), b, b)
                                         for t, s, b in zip(out.txts or (), out.scores or (), boxes, strict=False)])

    paths = {"raw": raw, "pipeline": pipeline_with(None), "today": pipeline_with("onnxruntime", today=True)}
    for backend in BACKENDS:
        paths[f"local.text {backend}"] = pipeline_with(backend)
    return paths


def measure(mode: str) -> dict:
    """In a child process. ``raw`` / ``pipeline``: first-document time and peak memory of that path alone;
    ``compare``: per-sample times of both paths, alternated on one warm engine so drift hits both alike."""
    run = runners()
    if mode in ("raw", "pipeline"):
        started = time.perf_counter()
        run[mode](IMAGES[-2])  # engine import, model load, first recognition
        first_ms = round((time.perf_counter() - started) * 1000)
        for name in IMAGES:
            run[mode](name)
        return {"firstMs": first_ms, "peakRssMb": round(peak_rss_mb())}
    for path in PATHS:
        run[path](IMAGES[-2])  # warm-up: every backend's models loaded
    times: dict[str, dict[str, list[float]]] = {path: {} for path in PATHS}
    for _ in range(int(os.environ.get("FCOCR_BENCH_RUNS", RUNS))):
        for name in IMAGES:
            for path in PATHS:
                started = time.perf_counter()
                run[path](name)
                times[path].setdefault(name, []).append(time.perf_counter() - started)
    return {path: {n: round(statistics.median(t) * 1000) for n, t in per.items()} for path, per in times.items()}


def process_throughput(workers: int, copies: int = 3) -> tuple[int, float]:
    """`fcocr process --workers N` over `copies` copies of the samples, in a fresh process (models load included)."""
    root = Path(tempfile.mkdtemp(prefix="fcocr-bench-"))
    inbox = root / "inbox"
    for i in range(copies):
        shutil.copytree(SAMPLES, inbox / f"copy{i}", ignore=shutil.ignore_patterns("*.py", "*.md"))
    count = sum(1 for p in inbox.rglob("*") if p.is_file())
    fcocr = Path(sys.executable).with_name("fcocr")
    started = time.perf_counter()
    subprocess.run([str(fcocr), "process", str(inbox), "--workers", str(workers)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    shutil.rmtree(root)
    return count, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=["raw", "pipeline", "compare"], help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=RUNS, help=f"warm runs per document and path (default {RUNS})")
    args = parser.parse_args()
    os.environ["FCOCR_BENCH_RUNS"] = str(args.runs)  # for the child processes
    if args.child:
        print(json.dumps(measure(args.child)))
        return

    print(f"fcocr bench on {os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
    print("Cold import of each handler module (median of 5 fresh interpreters, net of `python -c pass`):")
    for name, seconds in cold_imports():
        print(f"  functions/{name}/index.py  {seconds * 1000:7.0f} ms")

    results = {}
    for mode, backend in [("compare", None), ("raw", None)] + [("pipeline", b) for b in BACKENDS]:
        env = {**os.environ, **({"FCOCR_ENGINE": backend} if backend else {})}
        proc = subprocess.run([sys.executable, __file__, "--child", mode], check=True, capture_output=True, text=True,
                              env=env)
        results[mode if backend is None else f"local.text {backend}"] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nlocal.text per document (median of {args.runs} warm runs, all paths alternated in one process; "
          "the PDF is 2 pages at 150 dpi):")
    compare = results["compare"]
    print(f"  {'document':<20}" + "".join(f"{p:>24}" for p in PATHS))
    for name in IMAGES:
        print(f"  {name:<20}" + "".join(f"{compare[p][name]:>21} ms" for p in PATHS))
    totals = {p: sum(compare[p].values()) / 1000 for p in PATHS}
    print(f"  {'documents/second':<20}" + "".join(f"{len(IMAGES) / totals[p]:>24.2f}" for p in PATHS))
    print(f"  {'vs today local.text':<20}" + "".join(f"{totals['today'] / totals[p]:>23.2f}x" for p in PATHS))
    print("  (today = the pipeline calling RapidOCR as is on onnxruntime, before local_engine; "
          "raw = RapidOCR alone, no pipeline)")
    fresh = ["raw"] + [f"local.text {b}" for b in BACKENDS]
    print(f"\nFirst document in a fresh process ({IMAGES[-2]}: engine import, model load, recognition): "
          + ", ".join(f"{p} {results[p]['firstMs']} ms" for p in fresh))
    print("Peak memory of the whole process (ru_maxrss), after all the samples: "
          + ", ".join(f"{p} {results[p]['peakRssMb']} MB" for p in fresh))
    print("\n`fcocr process` throughput (fresh process, model load included):")
    for workers in (1, 2):
        count, elapsed = process_throughput(workers)
        print(f"  --workers {workers}: {count} documents in {elapsed:5.1f} s = {count / elapsed:.2f} documents/s")


if __name__ == "__main__":
    main()
