"""Field accuracy of the offline document recognizers on generated documents (bench/fielddocs.py).

    python bench/fields_accuracy.py [--per-type N] [--set tune|heldout|both]

Each document goes through the real ``ocr_upload`` handler (local storage, the engine, the result writer),
routed to its ``local.<type>`` recognizer; ``local.auto``'s choice is computed on the lines of that same
result (what ``local.auto`` does once the engine has read the page, without reading it twice). A field is right when the
result's value equals the generated one exactly, ignoring whitespace (the engine drops the space between
Chinese and digits: ``…21号 051-…``); each cell of an invoice's item table counts as one field. Printed:
per document type and variant (clean scan, photo-like), the fields right out of fields expected, and how
often ``local.auto`` named the right type. The ``tune`` set is what the extractors were developed on; the
``heldout`` set (another seed and other layouts) was not looked at while tuning.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fielddocs  # noqa: E402  (beside this script)


def recognizer_app(root: Path, recognizer: str):
    from fcocr.pipeline import App
    from fcocr.routing import Router

    base = App.from_env({"FCOCR_LOG_LEVEL": "ERROR"})
    settings = dataclasses.replace(base.settings, local_root=str(root))
    return App(settings, Router.from_data({"routes": [{"match": "**", "recognizer": recognizer}]}, "bench"))


def recognize(root: Path, key: str, image_bytes: bytes, recognizer: str) -> dict[str, Any]:
    """The result document the real handler writes for ``image_bytes`` uploaded as ``docs/<key>``."""
    from fcocr.events import oss_event
    from fcocr.pipeline import handle_oss_event
    from fcocr.runtime import LocalContext

    path = root / "docs" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes)
    event = {"events": [oss_event("docs", key, size=len(image_bytes))]}
    report = handle_oss_event(json.dumps(event).encode("utf-8"), LocalContext(), recognizer_app(root, recognizer))
    result_key = report["records"][0].get("result_key")
    return json.loads((root / "docs" / result_key).read_text("utf-8")) if result_key else report["records"][0]


def auto_type(result: dict[str, Any]) -> str | None:
    """The document type local.auto picks for the page whose lines ``result`` holds."""
    from fcocr.recognizers.local_fields import Page, classify
    from fcocr.results import Line

    lines = [Line(line["text"], line["confidence"], tuple(map(tuple, line["polygon"])), line["page"])
             for line in result.get("lines") or [] if line["page"] == 0]
    return classify(Page(lines))


def _same(expected: Any, got: Any) -> bool:
    if isinstance(expected, str) and isinstance(got, str):
        return re.sub(r"\s+", "", expected) == re.sub(r"\s+", "", got)
    return expected == got


def score(expected: dict[str, Any], got: dict[str, Any] | None) -> tuple[int, int, list[str]]:
    """(fields right, fields expected, names of the wrong ones); item cells count one each."""
    got = got or {}
    right = total = 0
    wrong = []
    for name, value in expected.items():
        if name == "items":
            rows = got.get("items") or []
            for i, item in enumerate(value or []):
                row = rows[i] if i < len(rows) else {}
                for cell, cell_value in item.items():
                    total += 1
                    ok = _same(cell_value, row.get(cell))
                    right += ok
                    if not ok:
                        wrong.append(f"items[{i}].{cell}")
            continue
        total += 1
        ok = _same(value, got.get(name))
        right += ok
        if not ok:
            wrong.append(name)
    return right, total, wrong


def run(set_name: str, per_type: int, verbose: bool) -> dict[tuple[str, str], list[int]]:
    table: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # right, total, auto ok, docs
    with tempfile.TemporaryDirectory(prefix="fcocr-fields-") as tmp:
        root = Path(tmp)
        for doc in fielddocs.generate(set_name, per_type):
            key = f"{doc.name}-{doc.variant}.png"
            data = doc.png()
            result = recognize(root, key, data, f"local.{doc.document_type}")
            auto = auto_type(result)
            right, total, wrong = score(doc.fields, result.get("fields"))
            row = table[(doc.document_type, doc.variant)]
            row[0] += right
            row[1] += total
            row[2] += auto == doc.document_type
            row[3] += 1
            if verbose and (wrong or auto != doc.document_type):
                print(f"  {key}: wrong {wrong or '-'}; local.auto would say {auto}", file=sys.stderr)
    return table


def print_table(set_name: str, table: dict[tuple[str, str], list[int]]) -> None:
    print(f"\n{set_name}: fields exactly right (whitespace ignored), and local.auto's document type")
    print(f"{'document type':<18} {'variant':<7} {'docs':>4} {'fields right':>14} {'accuracy':>9} {'auto':>6}")
    for variant in ("clean", "photo"):
        right = total = 0
        for (document_type, v), (r, t, auto, docs) in sorted(table.items()):
            if v != variant:
                continue
            right, total = right + r, total + t
            print(f"{document_type:<18} {variant:<7} {docs:>4} {f'{r}/{t}':>14} {r / t:>9.1%} {f'{auto}/{docs}':>6}")
        if total:
            print(f"{'all':<18} {variant:<7} {'':>4} {f'{right}/{total}':>14} {right / total:>9.1%}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-type", type=int, default=4, help="documents per kind and set (default 4)")
    ap.add_argument("--set", choices=["tune", "heldout", "both"], default="both")
    ap.add_argument("--verbose", action="store_true", help="name the wrong fields of each document (stderr)")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    for set_name in (["tune", "heldout"] if args.set == "both" else [args.set]):
        print_table(set_name, run(set_name, args.per_type, args.verbose))
    print(f"\n({time.perf_counter() - started:.0f} s; seeds and layouts in bench/fielddocs.py)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
