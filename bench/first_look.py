"""How often the offline engine's first look at 960 px is kept, per category of the accuracy set: figures
to print and quote, never to assert.

    python bench/first_look.py [--keep DIR]

For each page of bench/evalset.py's two parts, ``local_engine.detect`` is run as ``local.text`` runs it and
the page is counted as: the first look kept (``trusted``: one detector pass at 960 px), not trusted (the
page went on to the detection plan, as before the first look existed), or not taken (a strip, or a page
whose plan is hardly bigger than 960 px). A page turned 90 or 270 degrees is counted by its second
detection, after it was turned upright.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import evalset  # noqa: E402  (bench/ is not a package)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="generate the set into this folder and keep it")
    args = parser.parse_args()

    import numpy as np
    from PIL import Image

    from fcocr.recognizers import local_engine
    from fcocr.recognizers.local import engine

    models = local_engine.Models(engine())
    verdicts: list[bool] = []
    trusted = local_engine.trusted

    def counted(boxes, text_map) -> bool:
        verdicts.append(trusted(boxes, text_map))
        return verdicts[-1]

    local_engine.trusted = counted
    root = args.keep or Path(tempfile.mkdtemp(prefix="fcocr-evalset-"))
    columns = ("kept", "not trusted", "not taken")
    print(f"{'part':<9}{'category':<20}" + "".join(f"{c:>13}" for c in columns))
    totals = dict.fromkeys(columns, 0)
    for part in ("tuning", "heldout"):
        counts: dict[str, dict[str, int]] = {}
        for page in evalset.generate(part, root / part):
            image = Image.open(root / part / page.name).convert("RGB")
            bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
            verdicts.clear()
            boxes, _passes = local_engine.detect(models, bgr)
            if local_engine.is_turned_sideways(boxes):
                verdicts.clear()
                local_engine.detect(models, np.ascontiguousarray(np.rot90(bgr, 1)))
            verdict = "not taken" if not verdicts else ("kept" if verdicts[-1] else "not trusted")
            row = counts.setdefault(page.category, dict.fromkeys(columns, 0))
            row[verdict] += 1
            totals[verdict] += 1
        for category, row in counts.items():
            print(f"{part:<9}{category:<20}" + "".join(f"{row[c]:>13}" for c in columns))
    print(f"{'all':<29}" + "".join(f"{totals[c]:>13}" for c in columns))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
