"""Structured fields from the offline engine's lines: ID cards, VAT invoices, train tickets, bank cards,
business licences, and ``local.auto``, which tells which of these a page is.

The engine gives text lines with their polygons; the fields follow from what is printed on every such
document: labels (``姓名``, ``发票代码``, ``统一社会信用代码`` ...) with the value after them on the same
line or to their right, positions (the buyer above the item table, the seller below it; the departure
station left of the arrival station) and patterns (an 18-character ID number, a 16-19 digit card
number, ``05车12A号``). The page is first turned level by the median slant of its long lines, so that a
photo taken a few degrees off still has rows and columns.

The result is the same normalized field set the cloud families give (``fcocr.fields.FIELD_SETS``), every
key present, null when not read. Where a cloud vendor passes its own text through, offline values are
normalized: dates ``YYYY-MM-DD``, a train's departure ``YYYY-MM-DD HH:MM``, money without ``¥``/``元``,
identifiers without spaces, a bank card's expiry ``MM/YY``, a licence without expiry ``2999-12-31``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..checks import id_number_ok
from ..errors import PermanentError
from ..fields import FIELD_SETS, ITEM_FIELDS, normalize_date
from ..results import Line, Outcome

# --------------------------------------------------------------------------------------------- the page


@dataclass(frozen=True)
class Box:
    """One line of the page in level coordinates, its text without spaces beside the text as read."""

    text: str
    compact: str
    left: float
    top: float
    right: float
    bottom: float

    @property
    def height(self) -> float:
        return max(self.bottom - self.top, 1.0)

    @property
    def cy(self) -> float:
        return (self.top + self.bottom) / 2

    @property
    def cx(self) -> float:
        return (self.left + self.right) / 2


def slant(lines: Iterable[Line]) -> float:
    """The page's rotation in radians: the median direction of the top edges of its long lines, by length."""
    angles = []
    for line in lines:
        (x0, y0), (x1, y1) = line.polygon[0], line.polygon[1]
        length = math.hypot(x1 - x0, y1 - y0)
        if length > 3 * line.box["height"] / 2 and x1 > x0:
            angles.append((math.atan2(y1 - y0, x1 - x0), length))
    return length_weighted_median(angles)


def length_weighted_median(angles: list[tuple[float, float]]) -> float:
    """The median of (angle, length) pairs counting each angle by its line's length (0 for none). A short
    box's angle is coarse (a box is whole pixels at the detector's scale, which is often smaller than the
    page's): a 100 px box can only be level or a degree off, while a long line's angle is exact."""
    if not angles:
        return 0.0
    ordered = sorted(angles)
    half, running = sum(length for _, length in ordered) / 2, 0.0
    for angle, length in ordered:
        running += length
        if running >= half:
            return angle
    return ordered[-1][0]


class Page:
    """The lines of one page, levelled, with the look-ups the extractors share."""

    def __init__(self, lines: Iterable[Line]) -> None:
        lines = list(lines)
        angle = slant(lines)
        cos, sin = math.cos(-angle), math.sin(-angle)
        boxes = []
        for line in lines:
            points = [(x * cos - y * sin, x * sin + y * cos) for x, y in line.polygon]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            boxes.append(Box(line.text.strip(), re.sub(r"\s+", "", line.text), min(xs), min(ys), max(xs), max(ys)))
        self.boxes = sorted(boxes, key=lambda b: (b.cy, b.left))
        self.text = "\n".join(b.compact for b in self.boxes)

    def find(self, label: str, within: Callable[[Box], bool] | None = None) -> Box | None:
        """The first box (top to bottom) whose text holds the label pattern."""
        pattern = re.compile(label)
        return next((b for b in self.boxes if pattern.search(b.compact) and (within is None or within(b))), None)

    def row(self, box: Box) -> list[Box]:
        """The boxes sharing ``box``'s row (half the shorter height overlapping), left to right, itself included."""
        return sorted((other for other in self.boxes
                       if min(box.bottom, other.bottom) - max(box.top, other.top) >= 0.5 * min(box.height, other.height)),
                      key=lambda b: b.left)

    def right_of(self, box: Box, pattern: str | None = None, max_gap: float = 12.0) -> list[Box]:
        """Boxes on the same row to the right of ``box``, nearest first (within ``max_gap`` heights)."""
        found = []
        for other in self.row(box):
            if other is box or other.left < box.right - box.height * 0.5:
                continue
            if other.left - box.right > max_gap * box.height:
                continue
            if pattern is None or re.search(pattern, other.compact):
                found.append(other)
        return sorted(found, key=lambda b: b.left)

    def value(self, label: str, pattern: str | None = None, within: Callable[[Box], bool] | None = None,
              keep_spaces: bool = False) -> tuple[str | None, Box | None]:
        """The text after ``label``: the rest of its own box, else the nearest box to its right."""
        box = self.find(label, within)
        if box is None:
            return None, None
        text = box.text if keep_spaces else box.compact
        match = re.search(label, text) if keep_spaces else re.search(label, box.compact)
        rest = text[match.end():].lstrip("：:、 ") if match else ""
        if rest and (pattern is None or re.search(pattern, rest)):
            return rest, box
        for other in self.right_of(box, pattern):
            return (other.text if keep_spaces else other.compact), other
        return None, box

    def continuation(self, first: Box, stop: Callable[[Box], bool] | None = None) -> list[Box]:
        """The lines that continue ``first`` below it in the same column (a wrapped address, a scope)."""
        out = [first]
        while True:
            last = out[-1]
            below = [b for b in self.boxes
                     if b not in out and b.top > last.cy and b.top - last.bottom < 0.9 * last.height
                     and abs(b.left - first.left) < 1.2 * first.height and (stop is None or not stop(b))]
            if not below:
                return out
            out.append(min(below, key=lambda b: b.top))

    def search(self, pattern: str) -> re.Match[str] | None:
        """The first match of ``pattern`` in any one line (top to bottom)."""
        compiled = re.compile(pattern)
        for box in self.boxes:
            match = compiled.search(box.compact)
            if match:
                return match
        return None


_FULL_DATE = r"(\d{4})\s*[年.\-/]\s*(\d{1,2})\s*[月.\-/]\s*(\d{1,2})\s*日?"


def iso_date(text: str | None) -> str | None:
    if not text:
        return None
    match = re.search(_FULL_DATE, text)
    if not match:
        return None
    year, month, day = (int(g) for g in match.groups())
    return normalize_date(f"{year:04d}-{month:02d}-{day:02d}") if 1 <= month <= 12 and 1 <= day <= 31 else None


def money(text: str | None) -> str | None:
    if not text:
        return None
    match = re.search(r"-?\d[\d,]*\.\d{1,2}", text)
    return match.group(0).replace(",", "") if match else None


def _fields(document_type: str, **values: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {name: None for name in FIELD_SETS[document_type]}
    for name, value in values.items():
        if name not in fields:
            raise KeyError(f"{name!r} is not a field of {document_type}")
        fields[name] = value if value not in ("", []) else None
    return fields


# ---------------------------------------------------------------------------------------------- ID card

_ID_NUMBER = r"\d{17}[\dXx]"


def idcard(page: Page) -> dict[str, Any]:
    back = page.find(r"签发机关|有效期限|居民身份证") is not None and page.find(r"公民身份号码|住址") is None
    if back:
        authority, _ = page.value(r"签发机关")
        validity, _ = page.value(r"有效期限")
        valid_from = valid_to = None
        if validity:
            match = re.search(_FULL_DATE + r"\s*[-—－~至]+\s*(长期|" + _FULL_DATE + ")", validity)
            if match:
                valid_from = iso_date(match.group(0))
                valid_to = "长期" if match.group(4) == "长期" else iso_date(match.group(4))
        return _fields("idcard", side="back", issueAuthority=authority, validFrom=valid_from, validTo=valid_to)

    name, _ = page.value(r"姓名")
    gender_text, _ = page.value(r"性别", r"[男女]")
    gender = re.search(r"[男女]", gender_text or "")
    ethnicity, _ = page.value(r"民族", r"[\u4e00-\u9fff]")
    birth_text, _ = page.value(r"出生", r"\d")
    birth = iso_date(birth_text) or iso_date((page.search(_FULL_DATE) or [None])[0])
    address = None
    label = page.find(r"住址")
    if label is not None:
        text, first = page.value(r"住址")
        if text and first is not None:
            if first is label:  # the label and the first line of the address read as one
                address = text + "".join(b.compact for b in page.continuation(first)[1:])
            else:
                address = "".join(b.compact for b in page.continuation(first, stop=lambda b: "公民" in b.compact))
    numbers = [m.group(0).upper() for b in page.boxes for m in [re.search(_ID_NUMBER, b.compact)] if m]
    number = next((n for n in numbers if id_number_ok(n)), numbers[0] if numbers else None)
    return _fields("idcard", side="front", name=name, gender=gender.group(0) if gender else None,
                   ethnicity=ethnicity, birthDate=birth, address=address, idNumber=number)


# ------------------------------------------------------------------------------------------ VAT invoice

_INVOICE_TITLE = re.compile(r"^.{0,6}(增值税|电子|普通|专用).{0,8}发票$")
_CAPITALS = r"[零壹贰叁肆伍陆柒捌玖拾佰仟万亿圆元角分整正]{2,}"
_AMOUNT = r"^[¥￥]?-?\d[\d,]*\.\d{2}$"
_ITEM_HEADERS = (("name", r"名称|项目"), ("spec", r"规格"), ("unit", r"单位"), ("quantity", r"数量"),
                 ("unitPrice", r"单价"), ("amount", r"金额"), ("taxRate", r"税率|征收率"), ("tax", r"^税额$"))


def vat_invoice(page: Page) -> dict[str, Any]:
    values: dict[str, Any] = {}
    title = next((b.compact for b in page.boxes if _INVOICE_TITLE.match(b.compact)), None)
    values["invoiceType"] = title
    values["invoiceCode"] = _digits(page.value(r"发票代码", r"\d{10}")[0], r"\d{10,12}")
    values["invoiceNumber"] = _digits(page.value(r"发票号码", r"\d{8}")[0], r"\d{8,20}")
    values["invoiceDate"] = iso_date(page.value(r"开票日期", r"\d")[0])
    check = page.value(r"校验码", r"\d", keep_spaces=True)[0]
    values["checkCode"] = re.sub(r"\D", "", check) if check and re.search(r"\d{5}", check.replace(" ", "")) else None
    values["machineNumber"] = _digits(page.value(r"机器编号", r"\d{6}")[0], r"\d{6,}")

    header = page.find(r"货物或应税|项目名称|规格型号")
    total_label = page.find(r"价税合计")
    top_of_items = header.bottom if header else None
    bottom_of_items = total_label.bottom if total_label else None
    # The footer (payee, reviewer, drawer, the seller's seal): the seller's block and the remarks end above it.
    footer = [b for b in page.boxes if re.search(r"收款人|复核|开票人|销售方[:：]?[（(]?章", b.compact)]
    footer_top = min((b.top for b in footer), default=math.inf)

    for role, inside in (("buyer", lambda b: top_of_items is not None and b.cy < top_of_items),
                         ("seller", lambda b: bottom_of_items is not None and b.cy > bottom_of_items
                          and b.cy < footer_top)):
        values[f"{role}Name"] = page.value(r"名\s*称|^称[:：]", within=inside)[0]
        tax_id = page.value(r"纳税人识别号|识别号", r"[0-9A-Z]{15}", within=inside)[0]
        values[f"{role}TaxId"] = _digits(tax_id, r"[0-9A-Z]{15,20}")
        values[f"{role}AddressPhone"] = page.value(r"地\s*址[、，,]?(电\s*话)?", within=inside)[0]
        values[f"{role}BankAccount"] = page.value(r"开户行(及账号)?", within=inside)[0]

    if total_label is not None:
        words = [m.group(0) for b in page.right_of(total_label) for m in [re.search(_CAPITALS, b.compact)] if m]
        values["amountWithTaxInWords"] = words[0] if words else None
        small = page.value(r"小写", r"\d")[0] or next(
            (b.compact for b in reversed(page.right_of(total_label)) if re.search(r"\d\.\d{2}", b.compact)), None)
        values["amountWithTax"] = money(small)
        sums = [b for b in page.boxes if re.match(_AMOUNT, b.compact) and ("¥" in b.compact or "￥" in b.compact)]
        above = [b for b in sums if b.bottom < total_label.top + 0.3 * total_label.height
                 and (header is None or b.top > header.bottom)]
        if above:
            row_y = max(b.cy for b in above)
            row = sorted((b for b in above if abs(b.cy - row_y) < b.height), key=lambda b: b.left)
            values["totalAmount"] = money(row[0].compact)
            values["totalTax"] = money(row[-1].compact) if len(row) > 1 else None
        values["items"] = _items(page, header, min((b.top for b in above), default=total_label.top))
    values["payee"] = page.value(r"收款人")[0]
    values["reviewer"] = page.value(r"复核")[0]
    values["drawer"] = page.value(r"开票人")[0]
    remarks_label = page.find(r"^备注?$")
    if remarks_label is not None and bottom_of_items is not None:
        notes = [b for b in page.boxes if b.left > remarks_label.right and bottom_of_items < b.cy < footer_top
                 and not re.match(r"^[注备]$", b.compact)]
        values["remarks"] = "".join(b.compact for b in notes) or None
    return _fields("vat_invoice", **values)


def _digits(text: str | None, pattern: str) -> str | None:
    match = re.search(pattern, (text or "").replace(" ", ""))
    return match.group(0) if match else None


def _items(page: Page, header: Box | None, bottom: float) -> list[dict[str, Any]]:
    """The item table: header boxes name the columns, rows between the header and the totals."""
    if header is None:
        return []
    heads = page.row(header)
    columns: list[tuple[str, float]] = []
    for name, pattern in _ITEM_HEADERS:
        box = next((b for b in heads if re.search(pattern, b.compact)), None)
        if box is not None:
            columns.append((name, box.cx))
    if len(columns) < 4:
        return []
    columns.sort(key=lambda c: c[1])
    cells = [b for b in page.boxes if b.top > header.bottom - 2 and b.bottom < bottom + 2]
    rows: list[list[Box]] = []
    for box in sorted(cells, key=lambda b: b.cy):
        if rows and abs(rows[-1][0].cy - box.cy) < 0.5 * min(rows[-1][0].height, box.height):
            rows[-1].append(box)
        else:
            rows.append([box])
    items = []
    for row in rows:
        item: dict[str, Any] = {name: None for name in ITEM_FIELDS}
        for box in row:
            name = min(columns, key=lambda c: _column_distance(box, c[1]))[0]
            item[name] = box.compact if item[name] is None else item[name] + box.compact
        if item["name"] or item["amount"]:
            items.append(item)
    return items


def _column_distance(box: Box, centre: float) -> float:
    # Names are left-aligned and figures right-aligned under a centred header: the nearest edge counts too.
    return min(abs(box.cx - centre), abs(box.left - centre), abs(box.right - centre))


# ---------------------------------------------------------------------------------------- train ticket

_SEAT_CLASSES = ("高级软卧", "商务座", "特等座", "一等座", "二等座", "一等卧", "二等卧", "动卧", "软卧", "硬卧", "软座",
                 "硬座", "无座")


def train_ticket(page: Page) -> dict[str, Any]:
    values: dict[str, Any] = {}
    train = [b for b in page.boxes if re.fullmatch(r"[GDCZTKYLS]?\d{1,4}", b.compact)]
    train_box = max(train, key=lambda b: b.height) if train else None
    values["trainNumber"] = train_box.compact if train_box else None
    stations = [b for b in page.boxes if re.fullmatch(r"[\u4e00-\u9fff]{1,8}站", b.compact)]
    if train_box is not None:
        stations = [b for b in stations if abs(b.cy - train_box.cy) < 2.5 * train_box.height] or stations
    stations = sorted(sorted(stations, key=lambda b: -b.height)[:2], key=lambda b: b.left)
    if len(stations) == 2:
        values["departureStation"], values["arrivalStation"] = stations[0].compact, stations[1].compact
    when = page.search(_FULL_DATE + r"\s*(\d{1,2})[:：](\d{2})")
    if when:
        values["departureTime"] = f"{iso_date(when.group(0))} {int(when.group(4)):02d}:{when.group(5)}"
    seat = page.search(r"\d{1,2}车\d{1,3}[A-Z]?号(上铺|中铺|下铺)?|无座")
    values["seat"] = seat.group(0) if seat else None
    values["seatClass"] = next((c for c in _SEAT_CLASSES for b in page.boxes if c in b.compact and "车" not in b.compact), None)
    price = page.search(r"[¥￥]\s*(\d+\.\d{1,2})")
    values["price"] = price.group(1) if price else None
    passenger = None
    for box in page.boxes:
        match = re.search(r"\d{6,10}\*{2,}\d{3}[\dXx]([\u4e00-\u9fff·]{1,8})?", box.compact)
        if match:
            passenger = match.group(1)
            if not passenger:
                names = page.right_of(box, r"^[\u4e00-\u9fff·]{2,8}$")
                passenger = names[0].compact if names else None
            break
    values["passengerName"] = passenger
    number = next((b.compact for b in page.boxes if re.fullmatch(r"[A-Z]\d{6}|[A-Z0-9]{2}\d{8}|\d{21}", b.compact)
                   and b is not train_box), None)
    values["ticketNumber"] = number
    return _fields("train_ticket", **values)


# ------------------------------------------------------------------------------------------- bank card

def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def bank_card(page: Page) -> dict[str, Any]:
    candidates = [re.sub(r"\D", "", b.text) for b in page.boxes if re.fullmatch(r"[\d\s]{12,}", b.text)]
    candidates = [c for c in candidates if 12 <= len(c) <= 19]
    number = next((c for c in candidates if luhn_ok(c)), max(candidates, key=len) if candidates else None)
    bank = page.search(r"[\u4e00-\u9fff]{1,12}银行")
    expiry = page.search(r"(?<!\d)(0[1-9]|1[0-2])/(\d{2})(?!\d)")
    return _fields("bank_card", cardNumber=number, bankName=bank.group(0) if bank else None,
                   validDate=expiry.group(0) if expiry else None)


# ------------------------------------------------------------------------------------ business licence

_USCC_TEXT = r"[0-9A-HJ-NPQRTUWXY]{18}"


def business_license(page: Page) -> dict[str, Any]:
    values: dict[str, Any] = {}
    code = page.search(_USCC_TEXT)
    values["creditCode"] = code.group(0) if code else None
    values["companyName"] = page.value(r"^名称|^企业名称")[0]
    values["companyType"] = page.value(r"^类型")[0]
    values["legalRepresentative"] = page.value(r"法定代表人|负责人|经营者|执行事务合伙人")[0]
    values["registeredCapital"] = page.value(r"注册资本|出资额")[0]
    values["establishDate"] = iso_date(page.value(r"成立日期|注册日期")[0])
    period = page.value(r"营业期限|经营期限")[0]
    if period:
        end = re.split(r"至", period, maxsplit=1)
        tail = end[1] if len(end) > 1 else ""
        values["validTo"] = "2999-12-31" if "长期" in tail or "永久" in tail else iso_date(tail)
    labels = re.compile(r"^(名称|类型|法定代表人|注册资本|成立日期|营业期限|住所|经营范围|经营场所)")
    for name, label in (("address", r"^住所|^经营场所"), ("businessScope", r"^经营范围")):
        text, first = page.value(label)
        if text is None or first is None:
            continue
        if labels.match(first.compact):  # label and value read as one line
            values[name] = text + "".join(b.compact for b in page.continuation(first)[1:])
        else:
            values[name] = "".join(b.compact for b in page.continuation(first, stop=lambda b: bool(labels.match(b.compact))))
    return _fields("business_license", **values)


# ----------------------------------------------------------------------------------------- dispatching

EXTRACTORS: dict[str, Callable[[Page], dict[str, Any]]] = {
    "idcard": idcard, "vat_invoice": vat_invoice, "train_ticket": train_ticket, "bank_card": bank_card,
    "business_license": business_license,
}

# What each document type prints (a pattern per clue); the page is the type with most clues, at least two.
_CLUES: dict[str, tuple[str, ...]] = {
    "idcard": (r"公民身份号码", r"^姓名", r"^住址", r"^出生", r"签发机关", r"有效期限", r"居民身份证", r"^性别", r"民族"),
    "vat_invoice": (r"发票代码", r"发票号码", r"开票日期", r"价税合计", r"纳税人识别号", r"校验码", r"销售方|购买方", r"税额"),
    "train_ticket": (r"\d{1,2}车\d{1,3}[A-Z]?号", r"\d日\d{1,2}[:：]\d{2}开", r"[¥￥]\d+\.\d元", r"限乘当日当次车",
                     r"^[\u4e00-\u9fff]{1,8}站$", r"\*{4}\d{3}[\dX]"),
    "bank_card": (r"银联|UnionPay", r"VALID|THRU|有效期", r"借记卡|信用卡|储蓄卡", r"^[\d\s]{16,23}$", r"银行$"),
    "business_license": (r"营业执照", r"统一社会信用代码", r"法定代表人|负责人", r"经营范围", r"注册资本", r"营业期限|成立日期"),
}


def classify(page: Page) -> str | None:
    """The document type the page looks like, or None (then it is plain text)."""
    texts = [b.compact for b in page.boxes] + [b.text for b in page.boxes]
    scores = {kind: sum(any(re.search(clue, t) for t in texts) for clue in clues) for kind, clues in _CLUES.items()}
    best = max(scores, key=lambda k: scores[k])
    return best if scores[best] >= 2 else None


def structure(document_type: str | None, outcome: Outcome, recognizer: str) -> Outcome:
    """``outcome`` (the engine's lines) with the normalized fields of ``document_type`` read from its first page;
    ``None`` (``local.auto``): the type the page looks like, or the lines alone."""
    first_page = [line for line in outcome.lines or () if line.page == 0]
    page = Page(first_page)
    guessed = document_type is None
    if guessed:
        document_type = classify(page)
        if document_type is None:
            return outcome
    fields = EXTRACTORS[document_type](page)
    if all(value in (None, [], "") for name, value in fields.items() if name != "side"):
        if guessed:  # it looked like one, but none of its fields is there: plain text after all
            return outcome
        raise PermanentError(f"{recognizer} read the page but found no field of a {document_type} "
                             "(not that kind of document, or unreadable)", code="Local.NoFields")
    outcome.fields = fields
    outcome.document_type = document_type
    if len(outcome.pages) > 1:
        outcome.warnings.append(f"the {document_type} fields were read from the first page only")
    return outcome
