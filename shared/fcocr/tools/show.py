"""``fcocr show FILE|DIR... [--out DIR]``: each result drawn over its page, one PNG per page.

A picture shows the page (lightened), every line's box with its text above it in blue, the line that
holds a field's value tagged with the field's name in green, and a panel on the right: status,
recognizer, document type, every field with its value, every check (failed ones in red, and the box of
a field whose check failed in red too).

The pictures never land where they could be taken for uploads: only under ``--out`` (default
``./fcocr-show``), which may not be inside a folder being shown, and a file there is replaced only when
an earlier ``fcocr show`` wrote it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import FcocrError

PANEL_WIDTH = 560
MAX_SIDE = 2000  # pages are drawn at most this long: a 4000 px photo stays readable and the PNG small
SHOW_MARK = ("Software", "fcocr show")  # a PNG text chunk: this file is ours to replace
BLUE, GREEN, RED, GREY, BLACK = (30, 90, 200), (20, 140, 60), (210, 30, 30), (110, 110, 110), (20, 20, 20)


@dataclass(frozen=True)
class Shown:
    """A result to draw: its document, the source it describes, and the name its pictures take."""

    result_path: Path
    source_path: Path
    name: str  # relative, without suffix: pictures are <out>/<name>.page<N>.png


def find_results(paths: Sequence[str], suffix: str) -> list[Shown]:
    """The results named (a result file, or a document whose result is beside it) or found under directories."""
    found: list[Shown] = []
    for raw in paths:
        path = Path(raw).resolve()
        if path.is_dir():
            for result in sorted(path.rglob("*" + suffix)):
                source = result.with_name(result.name[: -len(suffix)])
                if source.is_file():
                    found.append(Shown(result, source, source.relative_to(path).as_posix()))
        elif path.is_file():
            if path.name.endswith(suffix):
                result, source = path, path.with_name(path.name[: -len(suffix)])
            else:
                result, source = path.with_name(path.name + suffix), path
            if not result.is_file():
                raise SystemExit(f"fcocr show: {raw}: no result beside it ({result.name}); run fcocr process first")
            if not source.is_file():
                raise SystemExit(f"fcocr show: {raw}: the document {source.name} is not beside its result")
            found.append(Shown(result, source, source.name))
        else:
            raise SystemExit(f"fcocr show: {raw}: no such file or directory")
    return found


def check_out_dir(out: Path, paths: Sequence[str]) -> None:
    """Refuse an output folder where the pictures would sit among the documents (and be processed as uploads)."""
    for raw in paths:
        path = Path(raw).resolve()
        folder = path if path.is_dir() else path.parent
        if out == folder or folder in out.parents:
            raise SystemExit(f"fcocr show: --out {out} is inside {folder}, among the documents: the pictures would "
                             "be taken for uploads. Choose a folder outside it.")


# ------------------------------------------------------------------------------------------------ fonts

def cjk_font_path() -> str | None:
    """A font with Chinese glyphs: FCOCR_SHOW_FONT, else the ones the sample generator knows."""
    from .samples import FONT_CANDIDATES

    wanted = os.environ.get("FCOCR_SHOW_FONT")
    if wanted:
        return wanted if os.path.isfile(wanted) else None
    return next((path for path, _package in FONT_CANDIDATES if os.path.isfile(path)), None)


class Fonts:
    def __init__(self, path: str | None) -> None:
        from PIL import ImageFont

        self.path = path
        self.index = 0
        if path and path.endswith(".ttc"):
            from .samples import _pick_face

            self.index = _pick_face(path)
        self._cache: dict[int, Any] = {}
        self._image_font = ImageFont

    def __call__(self, size: int):
        size = max(8, int(size))
        if size not in self._cache:
            if self.path:
                self._cache[size] = self._image_font.truetype(self.path, size, index=self.index)
            else:
                self._cache[size] = self._image_font.load_default(size=size)
        return self._cache[size]


# ---------------------------------------------------------------------------------------------- drawing

def page_images(source: Path) -> Iterator[Any]:
    """The document's pages as RGB images, as fcocr recognized them (EXIF turned, PDFs at FCOCR_PDF_DPI)."""
    from .. import imaging
    from ..config import Settings
    from ..model import ALL_FORMATS, Limits

    settings = Settings.from_env()
    data = source.read_bytes()
    document = imaging.inspect(data, Limits(formats=ALL_FORMATS), max_bytes=max(settings.max_bytes, len(data)),
                               max_pixels=settings.max_pixels, max_pages=settings.max_pages, pdf_dpi=settings.pdf_dpi)
    for page in document.pages():
        yield page.image


def _wrap(text: str, font: Any, width: int, draw: Any) -> list[str]:
    """Lines that fit ``width``: broken between words where there are spaces, anywhere in Chinese."""
    lines, current = [], ""
    for token in re.findall(r"[A-Za-z0-9_.,:;()'/%-]+ *|.", text):
        if draw.textlength(current + token, font=font) <= width:
            current += token
        elif draw.textlength(token, font=font) <= width:
            lines.append(current.rstrip())
            current = token
        else:  # a word longer than the line: by characters
            for ch in token:
                if current and draw.textlength(current + ch, font=font) > width:
                    lines.append(current)
                    current = ""
                current += ch
    return lines + [current] if current else lines


def _value_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _compact(text: Any) -> str:
    return re.sub(r"\s+", "", str(text)) if text is not None else ""


def field_lines(doc: dict[str, Any], lines: list[dict[str, Any]]) -> dict[int, list[str]]:
    """For each line (by index), the names of the fields whose value it holds."""
    tags: dict[int, list[str]] = {}
    fields = doc.get("fields") if isinstance(doc.get("fields"), dict) else {}
    for name, value in fields.items():
        wanted = _compact(value)
        if isinstance(value, (list, dict)) or not wanted:
            continue
        for i, line in enumerate(lines):
            text = _compact(line.get("text"))
            if text == wanted or (len(wanted) >= 2 and wanted in text) or (len(text) >= 4 and text in wanted):
                tags.setdefault(i, []).append(name)
    return tags


def draw_page(doc: dict[str, Any], page_index: int, image: Any, fonts: Fonts) -> Any:
    """One picture: the page with its lines and field tags, and the result's panel to the right."""
    from PIL import Image, ImageDraw

    page_info = next((p for p in doc.get("pages") or [] if p.get("index") == page_index), {})
    # Line coordinates are in the page as recognized; a cloud vendor may have seen it scaled.
    seen_w = page_info.get("width") or image.width
    scale_to_page = image.width / seen_w if seen_w else 1.0
    shrink = min(1.0, MAX_SIDE / max(image.size))
    if shrink < 1.0:
        image = image.resize((round(image.width * shrink), round(image.height * shrink)), Image.LANCZOS)
    factor = scale_to_page * shrink
    page = Image.blend(image.convert("RGB"), Image.new("RGB", image.size, (255, 255, 255)), 0.45)

    lines = [line for line in doc.get("lines") or [] if line.get("page", 0) == page_index]
    tags = field_lines(doc, lines)
    failed = {c["field"] for c in _checks_for_page(doc, page_index) if not c.get("ok")}
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(lines):
        polygon = [(x * factor, y * factor) for x, y in line.get("polygon") or []]
        if len(polygon) < 3:
            continue
        names = tags.get(i, [])
        colour = RED if failed.intersection(names) else (GREEN if names else BLUE)
        draw.polygon(polygon, outline=colour, width=2)
        top = min(y for _, y in polygon)
        left = min(x for x, _ in polygon)
        height = max(y for _, y in polygon) - top
        size = max(10, min(22, int(height * 0.55)))
        label = line.get("text", "")
        if names:
            label = f"[{', '.join(names)}] {label}"
        font = fonts(size)
        box = draw.textbbox((left, top - size - 2), label, font=font)
        draw.rectangle(box, fill=(255, 255, 255))
        draw.text((left, top - size - 2), label, font=font, fill=colour if names else BLUE)

    panel = draw_panel(doc, page_index, fonts, page.height)
    out = Image.new("RGB", (page.width + panel.width, max(page.height, panel.height)), (255, 255, 255))
    out.paste(page, (0, 0))
    out.paste(panel, (page.width, 0))
    return out


def _checks_for_page(doc: dict[str, Any], page_index: int) -> list[dict[str, Any]]:
    page_info = next((p for p in doc.get("pages") or [] if p.get("index") == page_index), {})
    if "checks" in page_info:
        return page_info["checks"]
    return doc.get("checks") or [] if page_index == 0 else []


def draw_panel(doc: dict[str, Any], page_index: int, fonts: Fonts, min_height: int) -> Any:
    from PIL import Image, ImageDraw

    rows: list[tuple[str, tuple[int, int, int], int]] = []  # text, colour, size
    source = doc.get("source") or {}
    rows.append((f"{source.get('key', '')}  page {page_index + 1}", BLACK, 22))
    rows.append((f"{doc.get('status')}  {doc.get('recognizer') or '-'}  {doc.get('durationMs', 0)} ms", GREY, 18))
    if doc.get("error"):
        rows.append((f"{doc['error'].get('code')}: {doc['error'].get('message')}", RED, 18))
    page_info = next((p for p in doc.get("pages") or [] if p.get("index") == page_index), {})
    fields = page_info.get("fields") or doc.get("fields")
    if doc.get("documentType"):
        rows.append((f"documentType: {doc['documentType']}", BLACK, 20))
    if isinstance(fields, dict):
        rows.append(("fields", GREEN, 20))
        for name, value in fields.items():
            if name == "items" and isinstance(value, list):
                rows.append((f"  items: {len(value)}", BLACK, 17))
                for item in value:
                    cells = " | ".join(_value_text(item.get(k)) for k in item) if isinstance(item, dict) else _value_text(item)
                    rows.append((f"    {cells}", BLACK, 15))
                continue
            rows.append((f"  {name}: {_value_text(value)}", BLACK if value is not None else GREY, 17))
    checks = _checks_for_page(doc, page_index)
    if checks:
        rows.append(("checks", BLACK, 20))
        for check in checks:
            mark = "ok  " if check.get("ok") else "FAIL"
            rows.append((f"  {mark} {check.get('field')} {check.get('rule')}: {check.get('message')}",
                         GREEN if check.get("ok") else RED, 16))
    lines = [line for line in doc.get("lines") or [] if line.get("page", 0) == page_index]
    rows.append((f"{len(lines)} lines", GREY, 17))
    for warning in doc.get("warnings") or []:
        rows.append((f"warning: {warning}", GREY, 15))

    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    laid: list[tuple[str, tuple[int, int, int], Any]] = []
    for text, colour, size in rows:
        font = fonts(size)
        for piece in _wrap(text, font, PANEL_WIDTH - 30, scratch) or [""]:
            laid.append((piece, colour, font))
    height = 20 + sum(int(font.size * 1.35) for _, _, font in laid)
    panel = Image.new("RGB", (PANEL_WIDTH, max(height, min_height)), (246, 246, 246))
    draw = ImageDraw.Draw(panel)
    draw.line((0, 0, 0, panel.height), fill=GREY, width=2)
    y = 12
    for piece, colour, font in laid:
        draw.text((15, y), piece, font=font, fill=colour)
        y += int(font.size * 1.35)
    return panel


# ---------------------------------------------------------------------------------------------- command

def _ours(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as existing:
            return existing.info.get(SHOW_MARK[0]) == SHOW_MARK[1]
    except Exception:  # not a picture at all: certainly not ours
        return False


def write_picture(picture: Any, target: Path) -> bool:
    from PIL.PngImagePlugin import PngInfo

    if target.exists() and not _ours(target):
        print(f"fcocr show: {target} exists and is not a picture fcocr show wrote: left alone", file=sys.stderr)
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    info.add_text(*SHOW_MARK)
    picture.save(target, format="PNG", pnginfo=info, optimize=False)
    return True


def show(paths: Sequence[str], out: str, suffix: str, out_stream=None) -> list[Path]:
    """Draw every result found under ``paths`` into ``out``; the pictures written."""
    out_stream = out_stream or sys.stdout
    out_dir = Path(out).resolve()
    check_out_dir(out_dir, paths)
    font_path = cjk_font_path()
    if font_path is None:
        print("fcocr show: no font with Chinese glyphs found (apt-get install fonts-wqy-microhei, or set "
              "FCOCR_SHOW_FONT=/path/to/font): Chinese text will show as boxes", file=sys.stderr)
    fonts = Fonts(font_path)
    written: list[Path] = []
    for item in find_results(paths, suffix):
        try:
            doc = json.loads(item.result_path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            print(f"fcocr show: {item.result_path}: not a result document ({exc})", file=out_stream)
            continue
        try:
            for index, image in enumerate(page_images(item.source_path)):
                target = out_dir / f"{item.name}.page{index + 1}.png"
                if write_picture(draw_page(doc, index, image, fonts), target):
                    written.append(target)
        except FcocrError as exc:
            print(f"fcocr show: {item.source_path}: {exc.code}: {exc.message}", file=out_stream)
    return written


def cmd_show(args: Any) -> int:
    from ..config import Settings

    written = show(args.paths, args.out, Settings.from_env().result_suffix)
    if not written:
        print("fcocr show: no result to draw (run fcocr process first; results are <file>"
              f"{Settings.from_env().result_suffix})")
        return 1
    print(f"fcocr show: {len(written)} pictures in {Path(args.out).resolve()}")
    return 0


def add_arguments(parser: Any) -> None:
    parser.add_argument("paths", nargs="+", help="documents, their result files, or directories of them")
    parser.add_argument("--out", default="fcocr-show", help="folder for the pictures (default ./fcocr-show); "
                                                          "never inside a folder being shown")
