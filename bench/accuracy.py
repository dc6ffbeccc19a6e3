"""Accuracy of the offline engine on the generated evaluation set: figures to print and quote, never to assert.

    python bench/accuracy.py [--part tuning|heldout|both] [--backends onnxruntime,openvino]   (or: make bench)

The set (bench/evalset.py: categories, seeds and fonts fixed before tuning) is generated into a temporary
folder. Each page is read twice: by the bare engine (RapidOCR called directly with its default settings,
lines put in fcocr's reading order) and by ``local.text`` through fcocr's pipeline (the real handler on
local storage, once per engine backend asked for). The character error rate (CER) is the edit distance
between the text read and the page's known text, over the known text's length, both taken in reading
order with whitespace removed and NFKC-normalised (full-width ``：`` equals ``:``), summed per category.
The held-out part (other fonts, other layouts, another seed) was never tuned on.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import evalset  # noqa: E402  (bench/ is not a package)


def normalise(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, two rows at a time."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def bare_reader():
    """RapidOCR as a user would call it: default settings, lines in fcocr's reading order."""
    import numpy as np
    from PIL import Image
    from rapidocr import RapidOCR

    from fcocr.recognizers.local import reading_order
    from fcocr.results import Line

    ocr = RapidOCR(params={"Global.log_level": "error"})
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)  # "The text detection result is empty", per page

    def read(path: Path) -> str:
        bgr = np.ascontiguousarray(np.asarray(Image.open(path).convert("RGB"))[:, :, ::-1])
        try:
            out = ocr(bgr)
        except Exception as exc:  # a 4000×20 strip: ResizeImgError with no message
            print(f"  bare engine on {path.name}: {type(exc).__name__} {exc}", file=sys.stderr)
            return ""
        lines = [Line(text=t, confidence=s * 100, polygon=tuple((float(x), float(y)) for x, y in box))
                 for t, s, box in zip(out.txts or (), out.scores or (), [] if out.boxes is None else out.boxes, strict=False)]
        return "\n".join(line.text for line in reading_order(lines))

    return read


def pipeline_reader(root: Path, backend: str):
    """local.text through the real handler on local storage, with FCOCR_ENGINE=backend."""
    from fcocr.events import oss_event
    from fcocr.pipeline import App, handle_oss_event
    from fcocr.runtime import LocalContext

    os.environ["FCOCR_LOCAL_ROOT"] = str(root)
    os.environ["FCOCR_LOG_LEVEL"] = "ERROR"
    os.environ["FCOCR_ENGINE"] = backend
    application = App.from_env()

    def read(bucket: str, key: str) -> str:
        result = root / bucket / (key + ".ocr.json")
        result.unlink(missing_ok=True)
        out = handle_oss_event(json.dumps({"events": [oss_event(bucket, key)]}).encode(), LocalContext(), application)
        doc = json.loads(result.read_text("utf-8"))
        if doc["status"] != "succeeded":
            print(f"  {bucket}/{key}: {doc['status']} {doc.get('error')}", file=sys.stderr)
            return ""
        assert out["records"][0]["status"] == "succeeded", out
        return "\n".join(line["text"] for line in doc["lines"])

    return read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["tuning", "heldout", "both"], default="both")
    parser.add_argument("--backends", default="onnxruntime",
                        help="comma-separated FCOCR_ENGINE values to run local.text with (default onnxruntime)")
    parser.add_argument("--keep", type=Path, help="generate the set into this folder and keep it (default: a temporary one)")
    parser.add_argument("--show", action="store_true", help="print each page's known and read text")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    parts = ["tuning", "heldout"] if args.part == "both" else [args.part]

    root = args.keep or Path(tempfile.mkdtemp(prefix="fcocr-evalset-"))
    truth = {part: evalset.generate(part, root / part) for part in parts}
    print(f"fcocr accuracy bench on {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
          f"set generated in {root} (bench/evalset.py, seeds {', '.join(f'{p}={evalset.PARTS[p]}' for p in parts)})\n")

    columns = ["bare engine"] + [f"local.text {b}" for b in backends]
    readers = {"bare engine": lambda part, page: bare(root / part / page.name)}
    bare = bare_reader()
    for backend in backends:
        read = pipeline_reader(root, backend)
        readers[f"local.text {backend}"] = lambda part, page, read=read: read(part, page.name)

    # per part, category, column: [edits, characters, seconds]
    sums: dict[tuple[str, str, str], list[float]] = {}
    for part in parts:
        for page in truth[part]:
            known = normalise("".join(page.rows))
            for column in columns:
                started = time.perf_counter()
                text = readers[column](part, page)
                elapsed = time.perf_counter() - started
                edits = edit_distance(known, normalise(text))
                entry = sums.setdefault((part, page.category, column), [0, 0, 0.0])
                entry[0] += edits
                entry[1] += len(known)
                entry[2] += elapsed
                if args.show:
                    print(f"[{part}/{page.name} {column}] CER {edits / len(known):.3f}\n  known: {' | '.join(page.rows)}\n"
                          f"  read:  {' | '.join(text.splitlines())}")

    width = max(len(c) for c in columns) + 2
    for part in parts:
        pages = len(truth[part]) // len(evalset.CATEGORIES)
        seed, layouts = evalset.PARTS[part], ", ".join(evalset.LAYOUTS[part])
        print(f"{part} part (seed {seed}, layouts {layouts}, {pages} pages per category): CER per category")
        print(f"  {'category':<20}" + "".join(f"{c:>{width}}" for c in columns) + f"{'ratio':>8}")
        groups = {"clean (all)": evalset.CLEAN, "photo-like (all)": evalset.PHOTO_LIKE}
        for category in list(evalset.CATEGORIES) + list(groups):
            members = groups.get(category, (category,))
            cer = {}
            for column in columns:
                edits = sum(sums[part, m, column][0] for m in members)
                chars = sum(sums[part, m, column][1] for m in members)
                cer[column] = edits / chars
            ratio = cer[columns[1]] / cer[columns[0]] if len(columns) > 1 and cer[columns[0]] else float("nan")
            label = category if category not in groups else f"= {category}"
            print(f"  {label:<20}" + "".join(f"{cer[c]:>{width}.3f}" for c in columns) + f"{ratio:>8.2f}")
        seconds = {c: sum(v[2] for (p, _, col), v in sums.items() if p == part and col == c) for c in columns}
        print(f"  {'seconds (all pages)':<20}" + "".join(f"{seconds[c]:>{width}.1f}" for c in columns) + "\n")
    print("ratio = first local.text column / bare engine (target: at most 0.80 on photo-like, at most 1.00 on clean)")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
