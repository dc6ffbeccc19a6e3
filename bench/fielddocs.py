"""Synthetic structured documents with known field values, for the offline field recognizers.

    python bench/fielddocs.py --out DIR [--set tune|heldout] [--per-type N]   (writes PNG/JPEG + truth.json)

Six document kinds (ID card front and back, VAT invoice, train ticket, bank card, business licence), each
drawn with made-up values from a seeded generator, as a clean scan and as a photo-like page (small
rotation, perspective, uneven light, blur, noise, JPEG artefacts). Two sets, fixed before any tuning:

* ``tune``     seed 20261201, layout A: what the extractors were developed against.
* ``heldout``  seed 4242, layout B (other positions, sizes, colours, label spacing; the invoice scanned
               smaller on a wider sheet): never looked at while tuning.

The fonts and drawing helpers are the shipped samples' (``fcocr.tools.samples``): a CJK font must be
installed (``apt-get install fonts-wqy-microhei``). Every value is made up; ID numbers, credit codes and
card numbers carry valid check characters so that the validation flags pass on a correct reading.
Images are generated on demand and never committed.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from unittest import mock

from PIL import Image, ImageDraw, ImageFilter

from fcocr.checks import id_check_character, uscc_check_character
from fcocr.fields import FIELD_SETS
from fcocr.tools import samples
from fcocr.tools.samples import BLACK, BLUE_LABEL, RED, WHITE, draw_text, fake_qr, sample_mark

SETS = {"tune": (20261201, "A"), "heldout": (4242, "B")}
KINDS = ("idcard_front", "idcard_back", "vat_invoice", "train_ticket", "bank_card", "business_license")
DOCUMENT_TYPES = {"idcard_front": "idcard", "idcard_back": "idcard", "vat_invoice": "vat_invoice",
                  "train_ticket": "train_ticket", "bank_card": "bank_card", "business_license": "business_license"}


@dataclass
class FieldDoc:
    name: str
    kind: str
    variant: str  # clean | photo
    image: Image.Image
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def document_type(self) -> str:
        return DOCUMENT_TYPES[self.kind]

    def png(self) -> bytes:
        out = io.BytesIO()
        self.image.save(out, format="PNG")
        return out.getvalue()


_FONTS = None


def fonts() -> samples.Fonts:
    global _FONTS
    if _FONTS is None:
        _FONTS = samples.load_fonts(None, None)  # exits with an install hint when there is no CJK font
    return _FONTS


# ------------------------------------------------------------------------------------------ made-up values

SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾"
GIVEN = "明华芳伟静丽强磊洋艳勇军杰娟涛超秀英敏燕玲桂兰平刚建国春梅海波宇晨欣怡浩然子涵雨"
PLACES = "示例 样本 测试 演示 虚构 模拟 范例 假设".split()
ROADS = "和平 建设 人民 解放 中山 新华 文化 光明 朝阳 胜利 友谊 长江".split()
TRADES = "科技 商贸 网络 信息 电子 物流 文化 餐饮 建筑 医药".split()
ETHNICITIES = ["汉", "汉", "汉", "回", "满", "壮", "苗", "蒙古", "维吾尔", "土家"]
STATIONS = "北京南 上海虹桥 南京南 杭州东 广州南 深圳北 武汉 长沙南 成都东 西安北 郑州东 济南西 天津西 苏州".split()
SEAT_CLASSES = ["二等座", "一等座", "商务座", "硬座", "硬卧", "软卧"]
BANKS = ["示例银行", "样本商业银行", "测试农村商业银行", "演示银行", "虚构城市银行"]
COMPANY_TYPES = ["有限责任公司（自然人投资或控股）", "有限责任公司", "股份有限公司（非上市）", "个人独资企业"]
SCOPES = ["技术开发", "技术咨询", "技术服务", "销售电子产品", "计算机软硬件", "货物进出口", "会议服务", "企业管理咨询",
          "设计、制作、代理、发布广告", "日用百货零售"]
ITEMS = [("*纸制品*打印纸", "A4", "包", "13%"), ("*信息技术服务*技术服务费", "", "次", "6%"),
         ("*文具*签字笔", "0.5mm", "支", "13%"), ("*计算机配套产品*鼠标", "M100", "个", "13%"),
         ("*餐饮服务*餐费", "", "次", "6%"), ("*电子元件*电阻", "1K", "盒", "13%")]


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def address(rng: random.Random) -> str:
    return (f"{rng.choice(PLACES)}省{rng.choice(PLACES)}市{rng.choice(PLACES)}区{rng.choice(ROADS)}路"
            f"{rng.randint(1, 300)}号{rng.randint(1, 20)}栋{rng.randint(1, 30)}0{rng.randint(1, 9)}室")


def company(rng: random.Random) -> str:
    return rng.choice(PLACES) + rng.choice(TRADES) + rng.choice(("有限公司", "有限责任公司", "股份有限公司"))


def a_date(rng: random.Random, first: int, last: int) -> tuple[int, int, int]:
    return rng.randint(first, last), rng.randint(1, 12), rng.randint(1, 28)


def id_number(rng: random.Random, birth: tuple[int, int, int], male: bool) -> str:
    seq = rng.randint(0, 99) * 10 + rng.choice((1, 3, 5, 7, 9) if male else (0, 2, 4, 6, 8))
    first17 = f"99{rng.randint(0, 9999):04d}{birth[0]:04d}{birth[1]:02d}{birth[2]:02d}{seq:03d}"  # area 99: none
    return first17 + id_check_character(first17)


def credit_code(rng: random.Random) -> str:
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    first17 = "91" + f"99{rng.randint(0, 9999):04d}" + "".join(rng.choice(chars) for _ in range(9))
    return first17 + uscc_check_character(first17)


def luhn_number(rng: random.Random, length: int) -> str:
    body = "62" + "".join(str(rng.randint(0, 9)) for _ in range(length - 3))
    for last in "0123456789":
        digits = body + last
        total = sum((int(c) * 2 - 9 if int(c) * 2 > 9 else int(c) * 2) if i % 2 else int(c)
                    for i, c in enumerate(reversed(digits)))
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


_DIGITS = "零壹贰叁肆伍陆柒捌玖"


def capital_words(cents: int) -> str:
    """Chinese capital numerals for an amount in cents (drawn independently of fcocr.checks' parser)."""
    yuan, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    out = ""
    if yuan:
        groups = []
        for big, part in ((100_000_000, "亿"), (10_000, "万"), (1, "")):
            value = yuan // big % 10_000 if big < 100_000_000 else yuan // big
            groups.append((value, part))
        zero = False
        started = False
        for value, part in groups:
            if not value:
                zero = started or zero
                continue
            text = ""
            for unit_value, unit in ((1000, "仟"), (100, "佰"), (10, "拾"), (1, "")):
                digit = value // unit_value % 10
                if digit:
                    if zero and started:
                        text += "零"
                    text += _DIGITS[digit] + unit
                    zero, started = False, True
                else:
                    zero = True
            out += text + part
        out += "圆"
    if not jiao and not fen:
        return out + "整"
    if jiao:
        out += _DIGITS[jiao] + "角"
    elif yuan:
        out += "零"
    if fen:
        out += _DIGITS[fen] + "分"
    return out


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def empty_fields(document_type: str) -> dict[str, Any]:
    return {name: None for name in FIELD_SETS[document_type]}


# ----------------------------------------------------------------------------------------------- drawings

def card_canvas(size: tuple[int, int], fill: tuple[int, int, int]) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGB", size, WHITE)
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((4, 4, size[0] - 5, size[1] - 5), radius=32, fill=fill, outline=(180, 190, 205), width=2)
    return img, d


def idcard_front(rng: random.Random, layout: str) -> tuple[Image.Image, dict[str, Any]]:
    f = fonts()
    male = rng.random() < 0.5
    birth = a_date(rng, 1950, 2005)
    values = {"name": person_name(rng), "gender": "男" if male else "女", "ethnicity": rng.choice(ETHNICITIES),
              "address": address(rng), "idNumber": id_number(rng, birth, male),
              "birthDate": f"{birth[0]:04d}-{birth[1]:02d}-{birth[2]:02d}"}
    if layout == "A":
        size, lab_x, val_x, top, step, lab_size, val_size, per_line = (1000, 630), 70, 175, 86, 80, 30, 34, 12
    else:
        size, lab_x, val_x, top, step, lab_size, val_size, per_line = (856, 540), 48, 140, 60, 70, 26, 30, 11
    img, d = card_canvas(size, (236, 242, 248) if layout == "A" else (240, 238, 230))
    fl, fv = f(lab_size), f(val_size)
    draw_text(d, (lab_x, top + 4), "姓名", fl, fill=BLUE_LABEL)
    draw_text(d, (val_x, top), values["name"], fv, bold=True)
    draw_text(d, (lab_x, top + step + 4), "性别", fl, fill=BLUE_LABEL)
    draw_text(d, (val_x, top + step), values["gender"], fv)
    eth_x = val_x + int(2.8 * lab_size + 40)
    draw_text(d, (eth_x, top + step + 4), "民族", fl, fill=BLUE_LABEL)
    draw_text(d, (eth_x + int(3.5 * lab_size), top + step), values["ethnicity"], fv)
    draw_text(d, (lab_x, top + 2 * step + 4), "出生", fl, fill=BLUE_LABEL)
    draw_text(d, (val_x, top + 2 * step), f"{birth[0]}年{birth[1]}月{birth[2]}日", fv)
    draw_text(d, (lab_x, top + 3 * step + 4), "住址", fl, fill=BLUE_LABEL)
    addr = values["address"]
    for i in range(0, len(addr), per_line):
        draw_text(d, (val_x, top + 3 * step + (i // per_line) * int(val_size * 1.5)), addr[i:i + per_line], fv)
    y_id = size[1] - (110 if layout == "A" else 90)
    draw_text(d, (lab_x, y_id + 6), "公民身份号码", fl, fill=BLUE_LABEL)
    draw_text(d, (lab_x + int(lab_size * 7.5), y_id), values["idNumber"], f(val_size + 6))
    px0 = size[0] - (310 if layout == "A" else 250)
    d.rectangle((px0, top + 24, px0 + int(size[0] * 0.24), top + 24 + int(size[1] * 0.49)), fill=(200, 200, 200))
    sample_mark(d, px0, 26 if layout == "A" else 14, f, size=26)
    return img, {**empty_fields("idcard"), "side": "front", **values}


def idcard_back(rng: random.Random, layout: str) -> tuple[Image.Image, dict[str, Any]]:
    f = fonts()
    start = a_date(rng, 2006, 2025)
    years = rng.choice((5, 10, 20, 0))
    start_text = f"{start[0]:04d}.{start[1]:02d}.{start[2]:02d}"
    end_text = "长期" if years == 0 else f"{start[0] + years:04d}.{start[1]:02d}.{start[2]:02d}"
    authority = f"{rng.choice(PLACES)}市公安局{rng.choice(PLACES)}分局"
    size = (1000, 630) if layout == "A" else (856, 540)
    img, d = card_canvas(size, (236, 242, 248) if layout == "A" else (240, 238, 230))
    w, h = size
    d.ellipse((60, 50, 60 + h // 4, 50 + h // 4), outline=RED, width=4)  # the emblem's place
    draw_text(d, (w // 2 + 60, int(h * 0.16)), "中华人民共和国", f(int(h * 0.07)), anchor="mm", bold=True)
    draw_text(d, (w // 2 + 60, int(h * 0.32)), "居民身份证", f(int(h * 0.1)), anchor="mm", bold=True)
    lab_x, val_x = (int(w * 0.2), int(w * 0.38)) if layout == "A" else (int(w * 0.14), int(w * 0.33))
    lab, val = f(int(h * 0.048)), f(int(h * 0.052))
    draw_text(d, (lab_x, int(h * 0.66)), "签发机关", lab, fill=BLUE_LABEL)
    draw_text(d, (val_x, int(h * 0.66) - 2), authority, val)
    draw_text(d, (lab_x, int(h * 0.80)), "有效期限", lab, fill=BLUE_LABEL)
    draw_text(d, (val_x, int(h * 0.80) - 2), f"{start_text}-{end_text}", val)
    sample_mark(d, w - 260, h - 90 if layout == "A" else 20, f, size=24)
    iso = f"{start[0]:04d}-{start[1]:02d}-{start[2]:02d}"
    to = "长期" if years == 0 else f"{start[0] + years:04d}-{start[1]:02d}-{start[2]:02d}"
    return img, {**empty_fields("idcard"), "side": "back", "issueAuthority": authority, "validFrom": iso, "validTo": to}


def vat_invoice(rng: random.Random, layout: str) -> tuple[Image.Image, dict[str, Any]]:
    """The shipped sample invoice's layout (samples.generate.make_vat_invoice) with made-up values."""
    rows, amount_cents, tax_cents = [], 0, 0
    for name, spec, unit, rate in rng.sample(ITEMS, rng.randint(1, 3)):
        qty = rng.randint(1, 50)
        price = rng.randint(50, 200_000)  # cents
        amount = qty * price
        tax = round(amount * int(rate[:-1]) / 100)
        amount_cents, tax_cents = amount_cents + amount, tax_cents + tax
        rows.append((name, spec, unit, str(qty), money(price), money(amount), rate, money(tax)))
    total = amount_cents + tax_cents
    y, m, dd = a_date(rng, 2020, 2026)
    parties = {}
    for role in ("buyer", "seller"):
        parties[role] = {"name": company(rng), "tax_id": credit_code(rng),
                         "addr_tel": f"{rng.choice(PLACES)}市{rng.choice(ROADS)}路{rng.randint(1, 300)}号 "
                                     f"0{rng.randint(10, 99)}-{rng.randint(10_000_000, 99_999_999)}",
                         "bank": f"{rng.choice(BANKS)}{rng.choice(PLACES)}支行 62{rng.randint(10**13, 10**14 - 1)}"}
    check = " ".join(f"{rng.randint(0, 99999):05d}" for _ in range(4))
    invoice = {"code": f"0{rng.randint(10**10, 10**11 - 1)}", "number": f"{rng.randint(0, 99_999_999):08d}",
               "date": f"{y}年{m:02d}月{dd:02d}日", "check": check, "machine": f"{rng.randint(10**11, 10**12 - 1)}",
               "buyer": parties["buyer"], "seller": parties["seller"], "items": rows,
               "total_amount": "¥" + money(amount_cents), "total_tax": "¥" + money(tax_cents),
               "total_upper": capital_words(total), "total_lower": "¥" + money(total)}
    with mock.patch.dict(samples.INVOICE, invoice):
        img = samples.make_vat_invoice(fonts())
    if layout == "B":  # scanned smaller, on a wider sheet
        small = img.resize((int(img.width * 0.8), int(img.height * 0.8)), Image.LANCZOS)
        img = Image.new("RGB", (img.width + 200, img.height), WHITE)
        img.paste(small, (60, 120))
    fields = {**empty_fields("vat_invoice"), "invoiceType": "增值税普通发票", "invoiceCode": invoice["code"],
              "invoiceNumber": invoice["number"], "invoiceDate": f"{y:04d}-{m:02d}-{dd:02d}",
              "checkCode": check.replace(" ", ""), "machineNumber": invoice["machine"],
              "totalAmount": money(amount_cents), "totalTax": money(tax_cents), "amountWithTax": money(total),
              "amountWithTaxInWords": invoice["total_upper"],
              "payee": "示例甲", "reviewer": "示例乙", "drawer": "示例丙", "remarks": "样本数据，仅供测试",
              "items": [dict(zip(("name", "spec", "unit", "quantity", "unitPrice", "amount", "taxRate", "tax"),
                                 (v or None for v in row), strict=False)) for row in rows]}
    for role in ("seller", "buyer"):
        p = parties[role]
        fields.update({f"{role}Name": p["name"], f"{role}TaxId": p["tax_id"], f"{role}AddressPhone": p["addr_tel"],
                       f"{role}BankAccount": p["bank"]})
    return img, fields


def train_ticket(rng: random.Random, layout: str) -> tuple[Image.Image, dict[str, Any]]:
    f = fonts()
    dep, arr = rng.sample(STATIONS, 2)
    train = rng.choice("GDKTZC") + str(rng.randint(1, 9999))
    y, m, dd = a_date(rng, 2020, 2026)
    hh, mm = rng.randint(5, 23), rng.choice(range(0, 60, 5))
    car, row, letter = rng.randint(1, 16), rng.randint(1, 20), rng.choice("ABCDF")
    seat = f"{car:02d}车{row:02d}{letter}号"
    price_cents = rng.randint(20, 1500) * 100 + rng.choice((0, 50))
    name = person_name(rng)
    masked = f"{rng.randint(110000, 659999)}{rng.randint(1960, 2005)}****{rng.randint(0, 9999):04d}"
    number = rng.choice("ABCDEFGHJKZ") + f"{rng.randint(0, 999999):06d}"
    W, H = (880, 560) if layout == "A" else (960, 600)
    img = Image.new("RGB", (W, H), WHITE)
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((4, 4, W - 5, H - 5), radius=18, fill=(222, 236, 246) if layout == "A" else (250, 226, 226),
                        outline=(150, 170, 190), width=2)
    k = W / 880
    draw_text(d, (int(40 * k), int(30 * k)), number, f(int(34 * k)), fill=RED)
    station_size = int(44 * k)
    draw_text(d, (int(60 * k), int(120 * k)), dep + "站", f(station_size), bold=True)
    draw_text(d, (W // 2, int(128 * k)), train, f(int(40 * k)), anchor="mm", bold=True)
    d.line((W // 2 - int(70 * k), int(160 * k), W // 2 + int(70 * k), int(160 * k)), fill=BLACK, width=2)
    draw_text(d, (W - int(60 * k), int(120 * k)), arr + "站", f(station_size), anchor="ra", bold=True)
    body = f(int(32 * k))
    y0 = int(215 * k) if layout == "A" else int(225 * k)
    draw_text(d, (int(60 * k), y0), f"{y}年{m:02d}月{dd:02d}日{hh:02d}:{mm:02d}开", body)
    draw_text(d, (W - int(150 * k), y0), seat, body, anchor="ra")
    draw_text(d, (int(60 * k), y0 + int(60 * k)), f"¥{money(price_cents)}元", body)
    draw_text(d, (W - int(150 * k), y0 + int(60 * k)), seat_class := rng.choice(SEAT_CLASSES), body, anchor="ra")
    draw_text(d, (int(60 * k), y0 + int(120 * k)), "限乘当日当次车", f(int(26 * k)))
    draw_text(d, (int(60 * k), y0 + int(175 * k)), f"{masked} {name}", body)
    sample_mark(d, W - int(260 * k), int(26 * k), f, size=int(24 * k))
    fake_qr(d, W - int(190 * k), H - int(200 * k), int(7 * k), seed=rng.randint(0, 999))
    fields = {**empty_fields("train_ticket"), "trainNumber": train, "departureStation": dep + "站",
              "arrivalStation": arr + "站", "departureTime": f"{y:04d}-{m:02d}-{dd:02d} {hh:02d}:{mm:02d}",
              "seat": seat, "seatClass": seat_class, "price": money(price_cents), "passengerName": name,
              "ticketNumber": number}
    return img, fields


def bank_card(rng: random.Random, layout: str) -> tuple[Image.Image, dict[str, Any]]:
    f = fonts()
    length = rng.choice((16, 19))
    number = luhn_number(rng, length)
    groups = [number[i:i + 4] for i in range(0, length, 4)]
    bank = rng.choice(BANKS)
    valid = f"{rng.randint(1, 12):02d}/{rng.randint(26, 35)}"
    size = (856, 540)
    colours = ((30, 80, 140), (150, 30, 40), (20, 110, 80), (90, 60, 130))
    img, d = card_canvas(size, rng.choice(colours) if layout == "A" else (235, 235, 235))
    ink = WHITE if layout == "A" else BLACK
    draw_text(d, (50, 45), bank, f(44), fill=ink, bold=True)
    draw_text(d, (56, 105), rng.choice(("借记卡", "信用卡", "储蓄卡")), f(26), fill=ink)
    d.rounded_rectangle((70, 170, 170, 245), radius=10, fill=(212, 180, 90))  # the chip
    y_num = 300 if layout == "A" else 320
    draw_text(d, (60, y_num), "  ".join(groups), f(50 if length == 16 else 44), fill=ink, bold=True)
    if layout == "A":
        draw_text(d, (300, y_num + 90), "VALID THRU", f(20), fill=ink)
        draw_text(d, (440, y_num + 82), valid, f(34), fill=ink)
    else:
        draw_text(d, (60, y_num + 90), "有效期", f(24), fill=ink)
        draw_text(d, (160, y_num + 84), valid, f(34), fill=ink)
    draw_text(d, (size[0] - 60, size[1] - 60), "银联 UnionPay", f(30), fill=ink, anchor="rm")
    sample_mark(d, size[0] - 270, 40, f, size=24, color=ink)
    return img, {"cardNumber": number, "bankName": bank, "validDate": valid}


def business_license(rng: random.Random, layout: str) -> tuple[Image.Image, dict[str, Any]]:
    f = fonts()
    code = credit_code(rng)
    y, m, dd = a_date(rng, 2000, 2025)
    forever = rng.random() < 0.5
    to = "长期" if forever else f"{y + 20}年{m:02d}月{dd - 1 if dd > 1 else 1:02d}日"
    scope = "、".join(rng.sample(SCOPES, rng.randint(2, 5))) + "。"
    capital = rng.choice(("壹佰万元整", "伍佰万元整", "叁拾万元整", "壹仟万元整", "贰佰伍拾万元整"))
    values = {"companyName": company(rng), "companyType": rng.choice(COMPANY_TYPES),
              "legalRepresentative": person_name(rng), "address": address(rng)}
    W, H = (1500, 1000) if layout == "A" else (1600, 1060)
    img = Image.new("RGB", (W, H), (252, 250, 244))
    d = ImageDraw.Draw(img)
    d.rectangle((20, 20, W - 21, H - 21), outline=(190, 40, 40), width=8)
    draw_text(d, (W // 2, 150), "营业执照", f(90), fill=RED, anchor="mm", bold=True)
    draw_text(d, (80, 90), "统一社会信用代码", f(26))
    draw_text(d, (80, 128), code, f(30))
    fake_qr(d, W - 250, 60, 7, seed=rng.randint(0, 999))
    lab, val = f(30), f(30)
    left = [("名称", values["companyName"]), ("类型", values["companyType"]),
            ("法定代表人", values["legalRepresentative"])]
    right = [("注册资本", capital), ("成立日期", f"{y}年{m:02d}月{dd:02d}日"),
             ("营业期限", f"{y}年{m:02d}月{dd:02d}日至{to}"), ("住所", values["address"])]
    lx, vx, rx, rvx, top, step = (100, 290, 850, 1010, 300, 80) if layout == "A" else (90, 300, 900, 1070, 320, 86)
    per_line = 14 if layout == "A" else 15
    for i, (label, value) in enumerate(left):
        draw_text(d, (lx, top + i * step), label, lab, bold=True)
        draw_text(d, (vx, top + i * step), value, val)
    y_scope = top + 3 * step
    draw_text(d, (lx, y_scope), "经营范围", lab, bold=True)
    for i, text in enumerate(wrap(scope, per_line)):
        draw_text(d, (vx, y_scope + i * 46), text, val)
    addr_lines = 12 if layout == "A" else 13
    for i, (label, value) in enumerate(right):
        draw_text(d, (rx, top + i * step), label, lab, bold=True)
        if label == "住所":
            for j in range(0, len(value), addr_lines):
                draw_text(d, (rvx, top + i * step + (j // addr_lines) * 46), value[j:j + addr_lines], val)
        else:
            draw_text(d, (rvx, top + i * step), value, val)
    d.ellipse((W - 420, H - 330, W - 160, H - 70), outline=RED, width=5)
    draw_text(d, (W - 290, H - 200), "登记机关", f(34), fill=RED, anchor="mm")
    sample_mark(d, 80, H - 110, f, size=28)
    fields = {**empty_fields("business_license"), **values, "creditCode": code, "registeredCapital": capital,
              "businessScope": scope, "establishDate": f"{y:04d}-{m:02d}-{dd:02d}",
              "validTo": "2999-12-31" if forever else f"{y + 20:04d}-{m:02d}-{dd - 1 if dd > 1 else 1:02d}"}
    return img, fields


def wrap(text: str, per_line: int) -> list[str]:
    """Lines of at most ``per_line`` characters, never starting with a closing punctuation mark (避头点)."""
    lines, rest = [], text
    while rest:
        cut = min(per_line, len(rest))
        while cut < len(rest) and rest[cut] in "，。、；：）":
            cut += 1
        lines.append(rest[:cut])
        rest = rest[cut:]
    return lines


DRAWERS: dict[str, Callable[[random.Random, str], tuple[Image.Image, dict[str, Any]]]] = {
    "idcard_front": idcard_front, "idcard_back": idcard_back, "vat_invoice": vat_invoice,
    "train_ticket": train_ticket, "bank_card": bank_card, "business_license": business_license,
}


# ------------------------------------------------------------------------------------------ photo-like pages

def photo_like(img: Image.Image, rng: random.Random) -> Image.Image:
    """A phone photo of the page: on a table, slightly turned and tilted, unevenly lit, blurred, noisy, JPEG."""
    import numpy as np

    w, h = img.size
    margin = int(0.06 * max(w, h))
    table = Image.new("RGB", (w + 2 * margin, h + 2 * margin), (rng.randint(90, 140),) * 3)
    table.paste(img, (margin, margin))
    page = table.rotate(rng.uniform(-3.0, 3.0), resample=Image.BICUBIC, fillcolor=(110, 110, 110))
    tw, th = page.size
    jitter = [rng.uniform(-0.02, 0.02) * tw for _ in range(8)]
    quad = (jitter[0], jitter[1], jitter[2], th + jitter[3], tw + jitter[4], th + jitter[5], tw + jitter[6], jitter[7])
    page = page.transform((tw, th), Image.QUAD, quad, resample=Image.BICUBIC, fillcolor=(110, 110, 110))
    scale = rng.uniform(0.8, 1.1)
    page = page.resize((int(tw * scale), int(th * scale)), Image.BILINEAR)
    page = page.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.0)))
    pixels = np.asarray(page).astype(np.float32)
    yy, xx = np.mgrid[0:pixels.shape[0], 0:pixels.shape[1]]
    angle = rng.uniform(0, 6.28)
    light = 0.78 + 0.22 * (np.cos(angle) * xx / pixels.shape[1] + np.sin(angle) * yy / pixels.shape[0] + 1) / 2
    pixels = pixels * light[..., None] + np.random.default_rng(rng.randint(0, 2**31)).normal(0, 5, pixels.shape)
    page = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    page.save(out, format="JPEG", quality=rng.randint(55, 80))
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def generate(set_name: str = "tune", per_type: int = 4, photos: bool = True,
             kinds: tuple[str, ...] = KINDS) -> Iterator[FieldDoc]:
    """``per_type`` documents of each kind, clean, then (``photos``) each again photo-like; deterministic."""
    seed, layout = SETS[set_name]
    for kind in kinds:
        rng = random.Random(f"{seed}:{kind}")
        for i in range(per_type):
            img, truth = DRAWERS[kind](rng, layout)
            name = f"{set_name}-{kind}-{i:02d}"
            yield FieldDoc(name, kind, "clean", img, truth)
            if photos:
                yield FieldDoc(name, kind, "photo", photo_like(img, random.Random(f"{seed}:{name}:photo")), truth)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="directory for the images and truth.json")
    ap.add_argument("--set", choices=sorted(SETS), default="tune")
    ap.add_argument("--per-type", type=int, default=4)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    truth = {}
    for doc in generate(args.set, args.per_type):
        name = f"{doc.name}-{doc.variant}.png"
        doc.image.save(out / name)
        truth[name] = {"documentType": doc.document_type, "fields": doc.fields}
    (out / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), "utf-8")
    print(f"{len(truth)} documents in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
