"""The generated evaluation set of the offline engine: pages with known text, clean and photo-like.

    python bench/evalset.py --out DIR [--part tuning|heldout]     (writes the images and truth.json)

Two parts, fixed before any tuning:
- ``tuning``: seed 13, WenQuanYi Micro Hei (the shipped samples' font), layouts ``lines`` and ``form``.
  The engine's fixes were tuned on this part only.
- ``heldout``: seed 1013, Noto Sans SC / Noto Serif SC, layouts ``receipt`` and ``table``. Never tuned on.

Each part has the same categories (``CATEGORIES``): a clean scan, and photo-like pages (small rotations,
perspective, blur, noise, JPEG artefacts, uneven light, small print on a large canvas, long strips, pages
turned 90/180/270 degrees). Every text is made up. The fonts come from PyPI (``pip install 'fcocr[bench]'``),
so CI and a laptop need no system font package; a system WenQuanYi Micro Hei is used when present.
The images are never committed: bench/accuracy.py generates them into a temporary folder.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

# Fixed before tuning: changing a seed, a category or a count makes a new set, not a better score.
PARTS = {"tuning": 13, "heldout": 1013}
PAGES_PER_CATEGORY = {"tuning": 4, "heldout": 3}
CLEAN = ("clean",)
PHOTO_LIKE = ("rotated-small", "perspective", "blur", "noise", "jpeg", "uneven-light", "small-print", "strip",
              "turned-90-180-270")
CATEGORIES = CLEAN + PHOTO_LIKE
LAYOUTS = {"tuning": ("lines", "form"), "heldout": ("receipt", "table")}

# Made-up material: words of invoices, notices and receipts, mixed with numbers, dates and English.
WORDS = ("纳税人识别号 购买方 销售方 名称 地址 电话 开户行 账号 金额 税率 税额 价税合计 大写 小写 备注 收款人 复核 开票人 "
         "发票代码 发票号码 开票日期 校验码 机器编号 货物或应税劳务 规格型号 单位 数量 单价 合计 技术服务费 办公用品 "
         "打印纸 签字笔 运输服务 餐饮服务 会议费 培训费 住宿费 有限公司 科技 商贸 示例 样本 测试 演示 虚构 模拟 "
         "通知 关于 进一步 加强 管理 工作 的 各部门 请于 月底前 提交 材料 联系人 办公室 会议室 时间 地点 "
         "收银员 流水号 交易时间 实收 找零 会员卡 积分 欢迎 光临 谢谢 惠顾 门店 订单 商品 小计 优惠").split()
ENGLISH = ("invoice total amount tax date account bank office notice meeting room please submit before "
           "the end of month contact service receipt order store customer number payment cash change thank you").split()
LABELS = ("名称", "纳税人识别号", "地址电话", "开户行及账号", "开票日期", "金额", "税额", "价税合计", "收款人", "备注",
          "订单号", "联系人", "Account", "Date", "Total")


@dataclass
class Page:
    name: str  # file name inside the part's folder
    part: str
    category: str
    layout: str
    rows: list[str]  # the text as a person reads it: rows top to bottom, a row's pieces joined by a space


# ---------------------------------------------------------------------------
# fonts


def font_paths(part: str) -> list[tuple[str, int]]:
    """(path, face index) of the fonts a part is drawn with; exits with an install hint when missing."""
    try:
        if part == "tuning":
            system = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
            if os.path.isfile(system):
                return [(system, 0)]
            import paperang_p2_fonts_cjk  # WenQuanYi Micro Hei, packaged on PyPI

            return [(str(Path(paperang_p2_fonts_cjk.__file__).parent / "fonts" / "wqy-microhei.ttc"), 0)]
        import pylopdf_fonts_zh_cn  # Noto Sans SC and Noto Serif SC (SIL OFL), packaged on PyPI

        return [(str(pylopdf_fonts_zh_cn.sans_path()), 0), (str(pylopdf_fonts_zh_cn.serif_path()), 0)]
    except ImportError:
        sys.exit("error: the evaluation set's fonts are missing: pip install -e '.[bench]'")


class Fonts:
    def __init__(self, paths: list[tuple[str, int]]):
        self.paths = paths
        self._cache: dict[tuple[int, int], ImageFont.FreeTypeFont] = {}

    def __call__(self, size: int, face: int = 0) -> ImageFont.FreeTypeFont:
        face %= len(self.paths)
        if (size, face) not in self._cache:
            path, index = self.paths[face]
            self._cache[size, face] = ImageFont.truetype(path, size, index=index)
        return self._cache[size, face]


# ---------------------------------------------------------------------------
# text


def phrase(rng: random.Random, words: int) -> str:
    parts = []
    for _ in range(words):
        pick = rng.random()
        if pick < 0.62:
            parts.append(rng.choice(WORDS))
        elif pick < 0.78:
            parts.append(rng.choice(ENGLISH))
        elif pick < 0.9:
            parts.append(f"{rng.randint(1, 99999)}.{rng.randint(0, 99):02d}")
        else:
            parts.append(f"{rng.randint(2019, 2027)}年{rng.randint(1, 12):02d}月{rng.randint(1, 28):02d}日")
    # Chinese words run together, the rest is spaced: as printed documents do.
    out = parts[0]
    for word in parts[1:]:
        out += word if (_is_cjk(out[-1]) and _is_cjk(word[0])) else " " + word
    return out


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def value(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return "91" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(16))
    if kind == 1:
        return f"¥{rng.randint(10, 99999)}.{rng.randint(0, 99):02d}"
    if kind == 2:
        return f"{rng.randint(2019, 2027)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return phrase(rng, rng.randint(2, 4))


# ---------------------------------------------------------------------------
# layouts: each draws on a white page and returns the rows it drew


def layout_lines(rng: random.Random, fonts: Fonts, size: int, width: int) -> tuple[Image.Image, list[str]]:
    rows = [phrase(rng, rng.randint(2, 3))] + [phrase(rng, rng.randint(3, 6)) for _ in range(rng.randint(5, 7))]
    title, body = fonts(int(size * 1.4)), fonts(size)
    height = int(size * 2.0 * (len(rows) + 1)) + 2 * size
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    y = size
    for i, row in enumerate(rows):
        font = title if i == 0 else body
        row = _fit(d, row, font, width - 2 * size)
        rows[i] = row
        x = (width - d.textlength(row, font=font)) / 2 if i == 0 else size
        d.text((x, y), row, font=font, fill=(20, 20, 20))
        y += int(size * (2.4 if i == 0 else 2.0))
    return img, rows


def layout_form(rng: random.Random, fonts: Fonts, size: int, width: int) -> tuple[Image.Image, list[str]]:
    count = rng.randint(5, 7)
    pairs = [(rng.choice(LABELS), value(rng)) for _ in range(count)]
    font, label_font = fonts(size), fonts(size)
    height = int(size * 2.2 * count) + 2 * size
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    rows = []
    for i, (label, val) in enumerate(pairs):
        y = size + int(i * size * 2.2)
        label = label + "："
        d.text((size, y), label, font=label_font, fill=(150, 80, 40))
        x = size + int(size * 7.5)
        val = _fit(d, val, font, width - x - size)
        d.text((x, y), val, font=font, fill=(20, 20, 20))
        rows.append(f"{label} {val}")
    return img, rows


def layout_receipt(rng: random.Random, fonts: Fonts, size: int, width: int) -> tuple[Image.Image, list[str]]:
    width = min(width, size * 22)
    items = [(phrase(rng, 1)[:8], f"{rng.randint(1, 999)}.{rng.randint(0, 99):02d}") for _ in range(rng.randint(4, 6))]
    rows = [phrase(rng, 2)[:12]] + [f"{name} {price}" for name, price in items]
    rows.append(f"合计 {sum(float(p) for _, p in items):.2f}")
    height = int(size * 2.0 * len(rows)) + 2 * size
    img = Image.new("RGB", (width, height), (250, 248, 240))
    d = ImageDraw.Draw(img)
    font = fonts(size, face=1)
    for i, row in enumerate(rows):
        y = size + int(i * size * 2.0)
        if i == 0:
            d.text(((width - d.textlength(row, font=font)) / 2, y), row, font=font, fill=(30, 30, 30))
            continue
        left, right = row.rsplit(" ", 1)
        d.text((size, y), left, font=font, fill=(30, 30, 30))
        d.text((width - size - d.textlength(right, font=font), y), right, font=font, fill=(30, 30, 30))
    return img, rows


def layout_table(rng: random.Random, fonts: Fonts, size: int, width: int) -> tuple[Image.Image, list[str]]:
    cols = 3
    count = rng.randint(4, 6)
    cells = [[phrase(rng, 1)[:6], value(rng)[:14], f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}"] for _ in range(count)]
    font = fonts(size)
    row_h = int(size * 2.2)
    height = row_h * count + 2 * size
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    col_x = [size, size + (width - 2 * size) * 3 // 10, size + (width - 2 * size) * 7 // 10, width - size]
    rows = []
    for r, row in enumerate(cells):
        y = size + r * row_h
        d.line((col_x[0], y, col_x[-1], y), fill=(90, 90, 90), width=2)
        for c in range(cols):
            d.text((col_x[c] + size // 2, y + (row_h - size) // 2), row[c], font=font, fill=(20, 20, 20))
        rows.append(" ".join(row))
    y = size + count * row_h
    d.line((col_x[0], y, col_x[-1], y), fill=(90, 90, 90), width=2)
    for x in col_x:
        d.line((x, size, x, y), fill=(90, 90, 90), width=2)
    return img, rows


LAYOUT_FUNCTIONS = {"lines": layout_lines, "form": layout_form, "receipt": layout_receipt, "table": layout_table}


def _fit(d: ImageDraw.ImageDraw, text: str, font, width: float) -> str:
    while len(text) > 4 and d.textlength(text, font=font) > width:
        text = text[:-1].rstrip()
    return text


# ---------------------------------------------------------------------------
# photo-like effects on a rendered page


def _on_paper(img: Image.Image, margin: int) -> Image.Image:
    canvas = Image.new("RGB", (img.width + 2 * margin, img.height + 2 * margin), "white")
    canvas.paste(img, (margin, margin))
    return canvas


def rotate_small(img: Image.Image, rng: random.Random) -> Image.Image:
    angle = rng.choice((-1, 1)) * rng.uniform(2.0, 6.0)
    return img.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(255, 255, 255))


def perspective(img: Image.Image, rng: random.Random) -> Image.Image:
    w, h = img.size
    k = 0.08
    # Where each output corner samples the page: a page seen from off-centre.
    src = [(rng.uniform(-k, k) * w, rng.uniform(-k, k) * h), (w + rng.uniform(-k, k) * w, rng.uniform(-k, k) * h),
           (w + rng.uniform(-k, k) * w, h + rng.uniform(-k, k) * h), (rng.uniform(-k, k) * w, h + rng.uniform(-k, k) * h)]
    dst = [(0, 0), (w, 0), (w, h), (0, h)]
    coeffs = _perspective_coeffs(dst, src)
    return img.transform((w, h), Image.PERSPECTIVE, coeffs, Image.BICUBIC, fillcolor=(235, 235, 235))


def _perspective_coeffs(dst, src) -> list[float]:
    import numpy as np

    rows = []
    for (x, y), (u, v) in zip(dst, src, strict=False):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    a = np.array(rows, dtype=float)
    b = np.array([c for pair in src for c in pair], dtype=float)
    return list(np.linalg.solve(a, b))


def blur(img: Image.Image, rng: random.Random) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(1.2, 1.8)))


def noise(img: Image.Image, rng: random.Random) -> Image.Image:
    import numpy as np

    arr = np.asarray(img, dtype=np.float32)
    generator = np.random.default_rng(rng.randrange(2**32))
    arr = arr + generator.normal(0, rng.uniform(14, 22), arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def uneven_light(img: Image.Image, rng: random.Random) -> Image.Image:
    import numpy as np

    w, h = img.size
    arr = np.asarray(img, dtype=np.float32)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    yy, xx = np.mgrid[0:h, 0:w]
    distance = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / math.hypot(w, h)
    light = 1.0 - rng.uniform(0.45, 0.6) * distance / distance.max()  # a lamp on one side
    tint = np.array([1.0, 0.97, 0.88])  # warm indoor light
    arr = (arr * 0.82 + 30) * light[..., None] * tint
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


# ---------------------------------------------------------------------------
# pages


def make_page(part: str, category: str, index: int, rng: random.Random, fonts: Fonts) -> tuple[Page, Image.Image, str]:
    """(truth, image, file format) of one page."""
    layout = LAYOUTS[part][index % len(LAYOUTS[part])]
    name = f"{category}-{index:02d}"
    if category == "strip":
        return make_strip(part, name, rng, fonts)
    size = rng.randint(22, 30)
    width = rng.randint(900, 1200)
    if category == "small-print":
        size = rng.randint(15, 18)
        width = rng.randint(800, 1000)
    img, rows = LAYOUT_FUNCTIONS[layout](rng, fonts, size, width)
    img = _on_paper(img, rng.randint(30, 80))
    fmt = "JPEG"
    if category == "clean":
        fmt = "PNG"
    elif category == "rotated-small":
        img = rotate_small(img, rng)
    elif category == "perspective":
        img = perspective(img, rng)
    elif category == "blur":
        img = blur(img, rng)
    elif category == "noise":
        img = noise(img, rng)
    elif category == "jpeg":
        img = jpeg(img, rng.randint(12, 22))
    elif category == "uneven-light":
        img = uneven_light(img, rng)
    elif category == "small-print":
        # A phone photo of a whole desk: small print somewhere on a 4000 px canvas.
        canvas = Image.new("RGB", (rng.randint(3800, 4200), rng.randint(2800, 3100)), (228, 226, 220))
        canvas.paste(img, (rng.randint(0, canvas.width - img.width), rng.randint(0, canvas.height - img.height)))
        img = canvas
    elif category == "turned-90-180-270":
        img = img.transpose((Image.ROTATE_90, Image.ROTATE_180, Image.ROTATE_270)[index % 3])
        fmt = "PNG"
    page = Page(name=f"{name}.{'png' if fmt == 'PNG' else 'jpg'}", part=part, category=category, layout=layout, rows=rows)
    return page, img, fmt


def make_strip(part: str, name: str, rng: random.Random, fonts: Fonts) -> tuple[Page, Image.Image, str]:
    """A long one-line strip (a scanned till roll line, a banner): 30:1 up to 200:1, pieces spread along it."""
    size = rng.randint(16, 26)
    height = int(size * rng.uniform(1.2, 1.6))
    ratio = rng.choice((30, 60, 125, 200))
    width = height * ratio
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    font = fonts(size)
    pieces = []
    x = rng.randint(size, 4 * size)
    while True:
        text = phrase(rng, rng.randint(2, 4))
        w = d.textlength(text, font=font)
        if x + w > width - size:
            break
        d.text((x, (height - size) // 2 - size // 8), text, font=font, fill=(20, 20, 20))
        pieces.append(text)
        x += int(w) + rng.randint(3 * size, max(4 * size, width // 6))
    if not pieces:  # a narrow strip still carries one piece
        text = _fit(d, phrase(rng, 2), font, width - 2 * size)
        d.text((size, (height - size) // 2 - size // 8), text, font=font, fill=(20, 20, 20))
        pieces.append(text)
    page = Page(name=f"{name}.png", part=part, category="strip", layout="strip", rows=[" ".join(pieces)])
    return page, img, "PNG"


def generate(part: str, out: Path) -> list[Page]:
    """Write the part's images into ``out`` and return their truth; deterministic for a font and Pillow version."""
    rng = random.Random(PARTS[part])
    fonts = Fonts(font_paths(part))
    out.mkdir(parents=True, exist_ok=True)
    pages = []
    for category in CATEGORIES:
        for index in range(PAGES_PER_CATEGORY[part]):
            page, img, fmt = make_page(part, category, index, random.Random(rng.randrange(2**32)), fonts)
            img.save(out / page.name, fmt, **({"quality": 88} if fmt == "JPEG" else {}))
            pages.append(page)
    (out / "truth.json").write_text(json.dumps([asdict(p) for p in pages], ensure_ascii=False, indent=1), "utf-8")
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--part", choices=sorted(PARTS), default="tuning")
    args = parser.parse_args()
    pages = generate(args.part, args.out)
    print(f"{len(pages)} pages in {args.out}")


if __name__ == "__main__":
    main()
