#!/usr/bin/env python3
"""Generate the synthetic sample documents that sit in fcocr/samples/.

    python -m fcocr.tools.samples [--font PATH] [--font-index N] [--out DIR]

Every name, company, address, number and amount drawn here is made up; the ID
number's check digit is deliberately wrong, and every file carries a visible
"样本 SAMPLE" mark. The output is deterministic for a given font file and
Pillow version (fixed content, fixed seeds, fixed PDF dates). It was generated
with WenQuanYi Micro Hei (Debian package ``fonts-wqy-microhei``).

This script is not run by the tests or at run time: its output is committed.
It needs only Pillow (Python 3.10+).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

# The samples live in the fcocr package (fcocr/samples/); this generator is an operator tool beside it.
HERE = Path(__file__).resolve().parent.parent / "samples"

# (path, apt package). For collections (.ttc) the face is picked by name, see _pick_face().
FONT_CANDIDATES = [
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "fonts-wqy-microhei"),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "fonts-wqy-zenhei"),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "fonts-noto-cjk"),
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", "fonts-noto-cjk"),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", "fonts-droid-fallback"),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", "fonts-arphic-uming"),
]

SAMPLE_MARK = "样本 SAMPLE"

# Colours
WHITE = (255, 255, 255)
BLACK = (20, 20, 20)
BROWN = (150, 80, 40)  # the frame / label colour of a paper VAT invoice
RED = (200, 30, 30)
BLUE_LABEL = (40, 90, 150)
GREY = (120, 120, 120)


class Fonts:
    """Caches FreeTypeFont objects per size for one font face."""

    def __init__(self, path: str, index: int = 0):
        self.path = path
        self.index = index
        self._cache: dict[int, ImageFont.FreeTypeFont] = {}

    def __call__(self, size: int) -> ImageFont.FreeTypeFont:
        if size not in self._cache:
            self._cache[size] = ImageFont.truetype(self.path, size, index=self.index)
        return self._cache[size]


def _pick_face(path: str) -> int:
    """Index of the Simplified Chinese face in a font collection (0 for plain fonts)."""
    names = []
    for i in range(32):
        try:
            names.append(ImageFont.truetype(path, 20, index=i).getname()[0])
        except OSError:
            break
    for i, name in enumerate(names):
        if name.endswith(" SC") and "Mono" not in name:
            return i
    return 0


def _has_cjk(fonts: Fonts) -> bool:
    """True unless 样 and 本 render as the same (missing-glyph) box."""
    f = fonts(32)

    def mask(ch: str) -> bytes:
        return bytes(f.getmask(ch))

    return mask("样") != mask("本") and mask("样") != mask("\U0010fffd")


def load_fonts(path: str | None, index: int | None) -> Fonts:
    if path:
        if not os.path.isfile(path):
            sys.exit(f"error: font file not found: {path}")
        fonts = Fonts(path, _pick_face(path) if index is None else index)
        if not _has_cjk(fonts):
            sys.exit(f"error: {path} does not seem to contain Chinese glyphs")
        return fonts
    for cand, _pkg in FONT_CANDIDATES:
        if os.path.isfile(cand):
            return Fonts(cand, _pick_face(cand) if index is None else index)
    sys.exit(
        "error: no CJK font found. Install one with\n"
        "    apt-get install -y fonts-wqy-microhei\n"
        "(or fonts-wqy-zenhei / fonts-noto-cjk), or pass --font /path/to/font.ttc"
    )


# ---------------------------------------------------------------------------
# drawing helpers


def text_w(d: ImageDraw.ImageDraw, s: str, font) -> int:
    return int(round(d.textlength(s, font=font)))


def draw_text(d, xy, s, font, fill=BLACK, anchor="la", bold=False):
    d.text(xy, s, font=font, fill=fill, anchor=anchor,
           stroke_width=1 if bold else 0, stroke_fill=fill)


def sample_mark(d: ImageDraw.ImageDraw, x: int, y: int, fonts: Fonts, size: int = 28,
                color=RED) -> None:
    """A red framed stamp reading 样本 SAMPLE with its top-left corner at (x, y)."""
    f = fonts(size)
    w = text_w(d, SAMPLE_MARK, f)
    pad = size // 3
    d.rectangle((x, y, x + w + 2 * pad, y + size + 2 * pad), outline=color, width=3)
    draw_text(d, (x + pad, y + pad + size // 2), SAMPLE_MARK, f, fill=color, anchor="lm")


def fake_qr(d: ImageDraw.ImageDraw, x: int, y: int, cell: int, n: int = 21, seed: int = 7) -> None:
    """A QR-code-like pattern (not decodable) from a fixed seed."""
    rng = random.Random(seed)
    for r in range(n):
        for c in range(n):
            in_finder = (r < 8 and c < 8) or (r < 8 and c >= n - 8) or (r >= n - 8 and c < 8)
            if not in_finder and rng.random() < 0.5:
                d.rectangle((x + c * cell, y + r * cell, x + (c + 1) * cell - 1,
                             y + (r + 1) * cell - 1), fill=BLACK)
    for fr, fc in ((0, 0), (0, n - 7), (n - 7, 0)):
        x0, y0 = x + fc * cell, y + fr * cell
        d.rectangle((x0, y0, x0 + 7 * cell - 1, y0 + 7 * cell - 1), fill=BLACK)
        d.rectangle((x0 + cell, y0 + cell, x0 + 6 * cell - 1, y0 + 6 * cell - 1), fill=WHITE)
        d.rectangle((x0 + 2 * cell, y0 + 2 * cell, x0 + 5 * cell - 1, y0 + 5 * cell - 1), fill=BLACK)


def to_palette(img: Image.Image, colors: int = 32) -> Image.Image:
    return img.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


# ---------------------------------------------------------------------------
# 1. VAT invoice

INVOICE = {
    "code": "099002600111",
    "number": "00012345",
    "date": "2026年11月01日",
    "check": "12345 67890 24680 13579",
    "machine": "499099000000",
    "buyer": {
        "name": "示例科技有限公司",
        "tax_id": "91999900MA1234567X",
        "addr_tel": "示例市样本区测试路1号 010-00000000",
        "bank": "示例银行样本支行 6200000000000001",
    },
    "seller": {
        "name": "样例商贸有限公司",
        "tax_id": "92999900MB7654321Y",
        "addr_tel": "虚构市演示区模拟街88号 020-00000000",
        "bank": "演示银行虚构支行 6200000000000002",
    },
    # name, spec, unit, qty, unit price, amount, rate, tax
    "items": [
        ("*纸制品*打印纸", "A4", "包", "10", "25.00", "250.00", "13%", "32.50"),
        ("*信息技术服务*技术服务费", "", "次", "1", "1000.00", "1000.00", "6%", "60.00"),
        ("*文具*签字笔", "0.5mm", "支", "20", "2.50", "50.00", "13%", "6.50"),
    ],
    "total_amount": "¥1300.00",
    "total_tax": "¥99.00",
    "total_upper": "壹仟叁佰玖拾玖圆整",
    "total_lower": "¥1399.00",
}


def make_vat_invoice(fonts: Fonts) -> Image.Image:
    W, H = 1600, 1000
    img = Image.new("RGB", (W, H), WHITE)
    d = ImageDraw.Draw(img)
    inv = INVOICE
    f_title = fonts(46)
    f_lab = fonts(22)
    f_val = fonts(24)
    f_small = fonts(20)

    # header
    fake_qr(d, 60, 30, 6)
    sample_mark(d, 220, 40, fonts, size=30)
    title = "增值税普通发票"
    draw_text(d, (W // 2, 62), title, f_title, fill=BROWN, anchor="mm", bold=True)
    tw = text_w(d, title, f_title)
    for dy in (96, 102):
        d.line((W // 2 - tw // 2 - 10, dy, W // 2 + tw // 2 + 10, dy), fill=BROWN, width=2)
    d.ellipse((W // 2 - 70, 112, W // 2 + 70, 172), outline=RED, width=3)
    draw_text(d, (W // 2, 142), "发票联", fonts(24), fill=RED, anchor="mm")
    draw_text(d, (60, 190), f"机器编号：{inv['machine']}", f_small, fill=BROWN)

    rx = 1130
    rows = [("发票代码：", inv["code"]), ("发票号码：", inv["number"]),
            ("开票日期：", inv["date"]), ("校验码：", inv["check"])]
    for i, (lab, val) in enumerate(rows):
        y = 40 + i * 42
        draw_text(d, (rx, y), lab, f_lab, fill=BROWN)
        draw_text(d, (rx + 120, y - 1), val, f_val)

    # main frame
    L, R = 60, 1540
    T = 230
    y_buyer_end = T + 160
    y_items_hdr = y_buyer_end + 44
    row_h = 46
    y_items_end = y_items_hdr + row_h * 4 + 20
    y_total = y_items_end + 48
    y_upper = y_total + 56
    y_seller_end = y_upper + 160
    box_w = 3
    d.rectangle((L, T, R, y_seller_end), outline=BROWN, width=box_w)
    for y in (y_buyer_end, y_total, y_upper):
        d.line((L, y, R, y), fill=BROWN, width=2)

    def party(y0, y1, label, p, right_label):
        # vertical label column
        d.line((L + 50, y0, L + 50, y1), fill=BROWN, width=2)
        step = (y1 - y0) / (len(label) + 1)
        for i, ch in enumerate(label):
            draw_text(d, (L + 25, y0 + step * (i + 1)), ch, f_lab, fill=BROWN, anchor="mm")
        fields = [("名　　称：", p["name"]), ("纳税人识别号：", p["tax_id"]),
                  ("地 址、电 话：", p["addr_tel"]), ("开户行及账号：", p["bank"])]
        for i, (lab, val) in enumerate(fields):
            y = y0 + 14 + i * 36
            draw_text(d, (L + 64, y), lab, f_lab, fill=BROWN)
            draw_text(d, (L + 230, y - 1), val, f_val)
        # right block
        d.line((970, y0, 970, y1), fill=BROWN, width=2)
        d.line((1020, y0, 1020, y1), fill=BROWN, width=2)
        step = (y1 - y0) / (len(right_label) + 1)
        for i, ch in enumerate(right_label):
            draw_text(d, (995, y0 + step * (i + 1)), ch, f_lab, fill=BROWN, anchor="mm")

    party(T, y_buyer_end, "购买方", inv["buyer"], "密码区")
    cipher = ["03*7<+9>/-21*68<4+0>97/-5*3", "8>+1<0/*9-46>2*7<+53/0-8*19", "<5+/7*02-9>81<*4+6/3-70>2*5",
              "9-0>*36/+2<85*1>-7/4+0<9*63"]
    for i, line in enumerate(cipher):
        draw_text(d, (1036, T + 16 + i * 36), line, fonts(22), fill=GREY)

    # items table
    cols = [  # (header, x_left, x_right, align)
        ("货物或应税劳务、服务名称", L, 420, "l"),
        ("规格型号", 420, 560, "c"),
        ("单位", 560, 640, "c"),
        ("数量", 640, 740, "r"),
        ("单价", 740, 920, "r"),
        ("金额", 920, 1120, "r"),
        ("税率", 1120, 1220, "c"),
        ("税额", 1220, R, "r"),
    ]
    for hdr, x0, x1, _a in cols:
        draw_text(d, ((x0 + x1) // 2, y_buyer_end + 22), hdr, f_lab, fill=BROWN, anchor="mm")

    def cell(text, x0, x1, align, y, font, fill=BLACK):
        if align == "l":
            draw_text(d, (x0 + 14, y), text, font, fill=fill, anchor="lm")
        elif align == "r":
            draw_text(d, (x1 - 14, y), text, font, fill=fill, anchor="rm")
        else:
            draw_text(d, ((x0 + x1) // 2, y), text, font, fill=fill, anchor="mm")

    for r, item in enumerate(inv["items"]):
        y = y_items_hdr + 10 + r * row_h + row_h // 2
        for (_hdr, x0, x1, align), val in zip(cols, item, strict=False):
            if val:
                cell(val, x0, x1, align, y, f_val)
    # 合计 row
    y = y_items_end + 24
    draw_text(d, ((L + 420) // 2, y), "合　　计", f_lab, fill=BROWN, anchor="mm")
    cell(inv["total_amount"], 920, 1120, "r", y, f_val)
    cell(inv["total_tax"], 1220, R, "r", y, f_val)
    # 价税合计 row
    y = y_total + 28
    draw_text(d, ((L + 420) // 2, y), "价税合计（大写）", f_lab, fill=BROWN, anchor="mm")
    draw_text(d, (450, y), "⊗ " + inv["total_upper"], f_val, anchor="lm")
    draw_text(d, (1020, y), "（小写）", f_lab, fill=BROWN, anchor="lm")
    draw_text(d, (1120, y), inv["total_lower"], f_val, anchor="lm")
    d.line((420, y_total, 420, y_upper), fill=BROWN, width=2)

    party(y_upper, y_seller_end, "销售方", inv["seller"], "备注")
    draw_text(d, (1036, y_upper + 20), "样本数据，仅供测试", fonts(22), fill=GREY)

    # footer
    yb = y_seller_end + 22
    for x, s in ((80, "收款人：示例甲"), (440, "复核：示例乙"), (800, "开票人：示例丙"),
                 (1160, "销售方：（章）")):
        draw_text(d, (x, yb), s, f_lab, fill=BROWN)
    sample_mark(d, 1360, yb - 14, fonts, size=24)
    return img


# ---------------------------------------------------------------------------
# 2. ID card face

ID_AREA, ID_BIRTH, ID_SEQ = "990000", "19900101", "123"  # area 99xxxx does not exist
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=False)) % 11]


def made_up_id_number() -> str:
    """18 digits in the ID layout with a deliberately *invalid* check digit."""
    first17 = ID_AREA + ID_BIRTH + ID_SEQ
    good = id_check_digit(first17)
    bad = next(c for c in "0123456789" if c != good)
    return first17 + bad


def make_idcard_front(fonts: Fonts) -> Image.Image:
    W, H = 1000, 630
    img = Image.new("RGB", (W, H), WHITE)
    d = ImageDraw.Draw(img)
    # card body: very light blue-grey with a faint wave pattern
    d.rounded_rectangle((4, 4, W - 5, H - 5), radius=36, fill=(236, 242, 248), outline=(180, 190, 205), width=2)
    for k in range(0, 12):
        pts = [(x, 300 + k * 26 - 160 + 18 * math.sin((x + k * 40) / 55.0)) for x in range(30, W - 30, 6)]
        d.line(pts, fill=(222, 231, 242), width=2)

    f_lab = fonts(30)
    f_val = fonts(34)
    lab_x, val_x = 70, 175
    draw_text(d, (lab_x, 90), "姓名", f_lab, fill=BLUE_LABEL)
    draw_text(d, (val_x, 86), "张示例", f_val, bold=True)
    draw_text(d, (lab_x, 170), "性别", f_lab, fill=BLUE_LABEL)
    draw_text(d, (val_x, 166), "男", f_val)
    draw_text(d, (300, 170), "民族", f_lab, fill=BLUE_LABEL)
    draw_text(d, (405, 166), "汉", f_val)
    draw_text(d, (lab_x, 250), "出生", f_lab, fill=BLUE_LABEL)
    draw_text(d, (val_x, 246), "1990年1月1日", f_val)
    draw_text(d, (lab_x, 330), "住址", f_lab, fill=BLUE_LABEL)
    draw_text(d, (val_x, 326), "示例省样本市测试区虚构路", f_val)
    draw_text(d, (val_x, 378), "100号1单元101室", f_val)
    draw_text(d, (lab_x, 520), "公民身份号码", f_lab, fill=BLUE_LABEL)
    draw_text(d, (300, 514), made_up_id_number(), fonts(40))

    # photo placeholder
    px0, py0, px1, py1 = 690, 110, 930, 420
    d.rectangle((px0, py0, px1, py1), fill=(200, 200, 200), outline=(150, 150, 150), width=2)
    cx = (px0 + px1) // 2
    d.ellipse((cx - 55, 160, cx + 55, 290), fill=(170, 170, 170))
    d.pieslice((cx - 110, 300, cx + 110, 520), 180, 360, fill=(170, 170, 170))
    d.rectangle((px0 + 2, 410, px1 - 2, py1 - 2), fill=(200, 200, 200))
    draw_text(d, (cx, 390), "照片", fonts(24), fill=(110, 110, 110), anchor="mm")
    sample_mark(d, 690, 36, fonts, size=30)
    return img


# ---------------------------------------------------------------------------
# 3. receipt

RECEIPT_ITEMS = [  # name, qty, amount
    ("矿泉水550ml", "2", "4.00"),
    ("全麦面包", "1", "6.50"),
    ("纯牛奶250ml", "3", "14.40"),
    ("口香糖", "1", "8.00"),
]


def make_receipt(fonts: Fonts) -> Image.Image:
    W, H = 480, 1080
    paper = 246
    ink = 40
    img = Image.new("L", (W, H), paper)
    d = ImageDraw.Draw(img)
    f = fonts(26)
    f_big = fonts(36)
    L, R = 36, W - 36
    y = 50

    def center(s, font, dy):
        nonlocal y
        draw_text(d, (W // 2, y), s, font, fill=ink, anchor="mm")
        y += dy

    def lr(left, right, dy=42):
        nonlocal y
        draw_text(d, (L, y), left, f, fill=ink, anchor="lm")
        if right:
            draw_text(d, (R, y), right, f, fill=ink, anchor="rm")
        y += dy

    def rule():
        nonlocal y
        for x in range(L, R, 16):
            d.line((x, y, x + 8, y), fill=ink, width=2)
        y += 32

    center("示例便利店", f_big, 46)
    center("（样本路店）", f, 40)
    center("电话：000-00000000", f, 42)
    rule()
    lr("单号：20261101-0042", None)
    lr("日期：2026-11-01 14:23", None)
    lr("收银员：001", None)
    rule()
    draw_text(d, (L, y), "商品", f, fill=ink, anchor="lm")
    draw_text(d, (300, y), "数量", f, fill=ink, anchor="mm")
    draw_text(d, (R, y), "金额", f, fill=ink, anchor="rm")
    y += 44
    for name, qty, amt in RECEIPT_ITEMS:
        draw_text(d, (L, y), name, f, fill=ink, anchor="lm")
        draw_text(d, (300, y), qty, f, fill=ink, anchor="mm")
        draw_text(d, (R, y), amt, f, fill=ink, anchor="rm")
        y += 44
    rule()
    lr("件数：7", None)
    lr("合计：", "32.90")
    lr("付款方式：微信支付", None)
    lr("实收：32.90", "找零：0.00")
    rule()
    center("谢谢惠顾 欢迎再次光临", f, 60)
    # centred stamp
    fm = fonts(28)
    w = text_w(d, SAMPLE_MARK, fm) + 2 * 9
    sample_mark(d, (W - w) // 2, y - 10, fonts, size=28, color=ink)
    return img


# ---------------------------------------------------------------------------
# 4. two-page report (A5 at 150 dpi)

PDF_DPI = 150
A5 = (874, 1240)  # 148 x 210 mm at 150 dpi

REPORT_PAGES = [
    {
        "title": "季度运营报告",
        "lines": [
            "Quarterly Operations Report",
            "编制单位：示例科技有限公司",
            "报告日期：2026年11月01日",
            "",
            "一、概况 Overview",
            "本季度共处理票据 12345 张。",
            "Documents processed: 12345",
            "平均识别耗时 0.8 秒。",
            "Average time per page: 0.8 s",
        ],
        "footer": "第1页 Page 1",
    },
    {
        "title": "下季度计划",
        "lines": [
            "Plan for Next Quarter",
            "",
            "二、目标 Goals",
            "支持更多票据类型。",
            "Support more document types.",
            "识别准确率提升到 99%。",
            "Raise accuracy to 99%.",
        ],
        "footer": "第2页 Page 2",
    },
]


def make_report_pages(fonts: Fonts) -> list[Image.Image]:
    pages = []
    for n, spec in enumerate(REPORT_PAGES, start=1):
        img = Image.new("L", A5, 255)
        d = ImageDraw.Draw(img)
        W, H = A5
        sample_mark(d, W - 250, 40, fonts, size=26, color=60)
        draw_text(d, (W // 2, 150), spec["title"], fonts(48), fill=0, anchor="mm", bold=True)
        d.line((80, 200, W - 80, 200), fill=0, width=2)
        y = 250
        for line in spec["lines"]:
            if line:
                draw_text(d, (90, y), line, fonts(30), fill=0)
            y += 56
        if n == 2:
            draw_text(d, (W // 2, 760), "第2页 Page 2", fonts(44), fill=0, anchor="mm", bold=True)
        d.line((80, H - 130, W - 80, H - 130), fill=120, width=1)
        draw_text(d, (W // 2, H - 90), spec["footer"], fonts(30), fill=0, anchor="mm")
        pages.append(img)
    return pages


# ---------------------------------------------------------------------------
# 5. English notice

NOTICE_LINES = [
    "PAYMENT NOTICE",
    "Invoice INV-2026-0042",
    "Total due: 1,234.56 CNY",
    "Please pay by 30 November 2026.",
]


def make_notice_en(fonts: Fonts) -> Image.Image:
    W, H = 1000, 460
    img = Image.new("L", (W, H), 255)
    d = ImageDraw.Draw(img)
    d.rectangle((20, 20, W - 21, H - 21), outline=0, width=3)
    draw_text(d, (W // 2, 80), NOTICE_LINES[0], fonts(50), fill=0, anchor="mm", bold=True)
    for i, line in enumerate(NOTICE_LINES[1:]):
        draw_text(d, (80, 150 + i * 70), line, fonts(38), fill=0)
    sample_mark(d, W - 260, H - 100, fonts, size=30, color=0)
    return img


# ---------------------------------------------------------------------------


def save_png(img: Image.Image, path: Path, colors: int | None = None) -> None:
    if img.mode == "RGB" and colors:
        img = to_palette(img, colors)
    img.save(path, format="PNG", optimize=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--font", help="path to a .ttf/.otf/.ttc font with Chinese glyphs")
    ap.add_argument("--font-index", type=int, default=None,
                    help="face index inside a .ttc collection (default: the SC face, else 0)")
    ap.add_argument("--out", default=str(HERE), help="output directory (default: fcocr/samples/)")
    args = ap.parse_args(argv)

    fonts = load_fonts(args.font, args.font_index)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"font: {fonts.path} (index {fonts.index}, {fonts(20).getname()[0]})")

    save_png(make_vat_invoice(fonts), out / "vat_invoice.png", colors=32)
    save_png(make_idcard_front(fonts), out / "idcard_front.png", colors=32)
    make_receipt(fonts).save(out / "receipt.jpg", format="JPEG", quality=90, optimize=True)
    pages = make_report_pages(fonts)
    fixed = time.strptime("2026-11-01 00:00:00", "%Y-%m-%d %H:%M:%S")
    pages[0].save(out / "report.pdf", format="PDF", save_all=True, append_images=pages[1:],
                  resolution=PDF_DPI, quality=85, title="季度运营报告（样本）",
                  author="fcocr samples", creator="fcocr samples/generate.py", producer="Pillow",
                  creationDate=fixed, modDate=fixed)
    save_png(make_notice_en(fonts), out / "notice_en.png")

    for name in ("vat_invoice.png", "idcard_front.png", "receipt.jpg", "report.pdf", "notice_en.png"):
        print(f"{name:18s} {os.path.getsize(out / name):>8,d} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
