"""Console widgets of the operator tools: a progress bar and aligned tables (CJK-aware)."""

from __future__ import annotations

import sys
import time
import unicodedata
from typing import Sequence


class Progress:
    """A one-line progress bar on a terminal (rate, ETA); sparse plain lines otherwise.

    ``total`` may be None until it is known (backfill counts while it works): no ETA until then.
    """

    def __init__(self, total: int | None, stream=None) -> None:
        self.total, self.done, self.stream = total, 0, stream or sys.stderr
        self.started = time.monotonic()
        self.tty = self.stream.isatty()
        self._last_plain = -1

    def advance(self, n: int = 1) -> None:
        self.done += n
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        total = self.total if self.total is not None else 0
        eta = f"ETA {max(total - self.done, 0) / rate:.0f}s" if self.total is not None and rate else "ETA ?"
        shown = f"{self.done}/{self.total if self.total is not None else '?'}"
        if self.tty:
            width = 28
            filled = int(width * min(self.done, total) / max(total, 1))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {shown} {rate:.2f}/s {eta} ")
            if self.done == self.total:
                self.stream.write("\n")
        else:
            # Each tenth of a known total; every 10 seconds while the total is unknown.
            step = 10 * self.done // max(total, 1) if self.total is not None else int(elapsed // 10) - 1
            if step != self._last_plain or self.done == self.total:
                self._last_plain = step
                self.stream.write(f"progress {shown} {rate:.2f}/s {eta}\n")
        self.stream.flush()


def _width(text: str) -> int:
    """Columns a string takes in a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def print_table(rows: Sequence[Sequence[str]], out=None) -> None:
    """Columns aligned for a terminal (CJK characters take two); the last one is left ragged."""
    out = out or sys.stdout
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c + " " * (w - _width(c)) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1], file=out)
