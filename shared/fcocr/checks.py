"""Validation flags for a normalized document: do its fields agree with themselves?

``checks_for(document_type, fields)`` returns one ``{field, rule, ok, message}`` per rule that could be
applied (a field that is null is not checked). The checks inform, they never change a result's status:
a failed check is a hint to look again (a misread digit, a forged or mistyped document), not an error.
Messages say what disagrees, never the values themselves (ID numbers, card numbers are personal data).

Rules:
* ``idNumberCheckDigit``  GB 11643: the 18th character of a resident ID number from the first 17.
* ``idNumberBirthDate``   the birth date inside the ID number is a real date and equals ``birthDate``.
* ``idNumberGender``      the 17th digit is odd for 男 and even for 女.
* ``dateExists``          a date field holds a date of the calendar (no 30 February).
* ``amountsAddUp``        VAT invoice: ``totalAmount + totalTax = amountWithTax``.
* ``amountInWords``       VAT invoice: the amount in Chinese capital numerals (大写) equals ``amountWithTax``.
* ``taxId``               统一社会信用代码 (18 characters, GB 32100 check character), or a legacy tax
                          registration number of 15, 17 or 20 characters.
* ``luhn``                bank card number: 12-19 digits passing the Luhn check.
"""

from __future__ import annotations

import calendar
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

# ---------------------------------------------------------------------------------------------- ID numbers

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID18 = re.compile(r"^\d{17}[\dX]$")
_ID15 = re.compile(r"^\d{15}$")  # first-generation cards: no check digit, birth date yyMMdd


def id_check_character(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits of a resident ID number."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=False)) % 11]


def id_number_ok(number: str) -> bool:
    number = number.strip().upper()
    return bool(_ID18.match(number)) and id_check_character(number[:17]) == number[17]


def _real_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------------- tax IDs

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")
# Before 2015/2017: area code + organization code (15), or the owner's ID number + 2 digits (17 or 20).
_LEGACY_TAX_IDS = (re.compile(r"^\d{6}[0-9A-Z]{8}[0-9X]$"), re.compile(r"^\d{17}$"), re.compile(r"^\d{17}[\dX]\d{2}$"))


def uscc_check_character(first17: str) -> str:
    """The GB 32100 check character of the first 17 characters of a unified social credit code."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=False))
    return _USCC_CHARS[(31 - total % 31) % 31]


# --------------------------------------------------------------------------------------- amounts in words

_CAPITAL_DIGITS = {"零": 0, "〇": 0, "壹": 1, "贰": 2, "叁": 3, "肆": 4, "伍": 5, "陆": 6, "柒": 7, "捌": 8, "玖": 9}
_CAPITAL_UNITS = {"拾": 10, "佰": 100, "仟": 1000}
# Printed around the words on invoices: the ⊗ before them, 人民币, spaces, and 整/正 (no jiao or fen).
_WORD_NOISE = re.compile(r"[\s⊗ⓧ×（）()：:]|人民币|[整正]$")


def _capital_integer(text: str) -> int | None:
    total = section = number = 0
    for ch in text:
        if ch in _CAPITAL_DIGITS:
            number = _CAPITAL_DIGITS[ch]
        elif ch in _CAPITAL_UNITS:
            section += (number or (1 if ch == "拾" else 0)) * _CAPITAL_UNITS[ch]
            number = 0
        elif ch == "万":
            total += (section + number) * 10_000
            section = number = 0
        elif ch == "亿":
            total = (total + section + number) * 100_000_000
            section = number = 0
        else:
            return None
    return total + section + number


def amount_from_words(text: str) -> Decimal | None:
    """The amount written in Chinese capital numerals (壹仟叁佰玖拾玖圆整 -> 1399), or None when it is not one."""
    words = _WORD_NOISE.sub("", text.strip())
    negative = words.startswith("负")
    words = words.lstrip("负")
    match = re.fullmatch(r"(?:(?P<yuan>[^圆元角分]*)[圆元])?(?:(?P<jiao>[零〇壹贰叁肆伍陆柒捌玖])角)?"
                         r"零?(?:(?P<fen>[壹贰叁肆伍陆柒捌玖])分)?", words)
    if not words or not match:
        return None
    yuan = _capital_integer(match["yuan"] or "")
    if yuan is None or (match["yuan"] is None and not (match["jiao"] or match["fen"])):
        return None
    cents = 10 * _CAPITAL_DIGITS.get(match["jiao"] or "零", 0) + _CAPITAL_DIGITS.get(match["fen"] or "零", 0)
    value = Decimal(yuan) + Decimal(cents) / 100
    return -value if negative else value


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value).replace(",", "").replace("¥", "").replace("￥", "").strip())
    except InvalidOperation:
        return None


# ---------------------------------------------------------------------------------------------- the rules

def _check(field: str, rule: str, ok: bool, message: str) -> dict[str, Any]:
    return {"field": field, "rule": rule, "ok": ok, "message": message}


def _text(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(value).strip()


def check_id_number(fields: Mapping[str, Any], field: str = "idNumber") -> list[dict[str, Any]]:
    number = _text(fields, field)
    if number is None:
        return []
    number = number.upper().replace(" ", "")
    if _ID15.match(number):
        first, birth = number, "19" + number[6:12]
        out = [_check(field, "idNumberCheckDigit", True, "a 15-digit first-generation ID number: it has no check digit")]
    elif _ID18.match(number):
        first, birth = number, number[6:14]
        ok = id_check_character(number[:17]) == number[17]
        out = [_check(field, "idNumberCheckDigit", ok, "the check digit agrees with the first 17 digits (GB 11643)" if ok
                      else "the check digit does not agree with the first 17 digits (GB 11643): a digit is misread or wrong")]
    else:
        return [_check(field, "idNumberCheckDigit", False, "not an ID number: 17 digits and a digit or X expected")]
    born = _real_date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))
    stated = _text(fields, "birthDate")
    if born is None:
        out.append(_check(field, "idNumberBirthDate", False, "the birth date inside the ID number is not a real date"))
    elif stated is not None:
        ok = stated == born.isoformat()
        out.append(_check(field, "idNumberBirthDate", ok, "the birth date inside the ID number equals birthDate" if ok
                          else "the birth date inside the ID number differs from birthDate"))
    gender = _text(fields, "gender")
    if gender in ("男", "女"):
        odd = int(first[16 if len(first) == 18 else 14]) % 2 == 1
        ok = odd == (gender == "男")
        out.append(_check(field, "idNumberGender", ok, "the ID number's sex digit agrees with gender" if ok
                          else "the ID number's sex digit disagrees with gender"))
    return out


_DATE_IN_TEXT = re.compile(r"(\d{4})\s*[-./年]\s*(\d{1,2})\s*[-./月]\s*(\d{1,2})")
_CARD_EXPIRY = re.compile(r"^(\d{2})\s*/\s*(\d{2}|\d{4})$")
NO_EXPIRY = frozenset({"长期", "2999-12-31"})


def check_date(fields: Mapping[str, Any], field: str) -> list[dict[str, Any]]:
    value = _text(fields, field)
    if value is None or value in NO_EXPIRY:
        return []
    expiry = _CARD_EXPIRY.match(value)
    if expiry:  # a card's MM/YY
        ok = 1 <= int(expiry[1]) <= 12
        return [_check(field, "dateExists", ok, "a month and year" if ok else "the month is not 01-12")]
    match = _DATE_IN_TEXT.search(value)
    if match is None:
        return [_check(field, "dateExists", False, "no date could be read in this field")]
    year, month, day = (int(g) for g in match.groups())
    if _real_date(year, month, day) is not None:
        return [_check(field, "dateExists", True, "a date of the calendar")]
    days = calendar.monthrange(year, month)[1] if 1 <= month <= 12 else 0
    reason = "the month is not 1-12" if not days else f"that month has {days} days"
    return [_check(field, "dateExists", False, f"not a date of the calendar: {reason}")]


def check_tax_id(fields: Mapping[str, Any], field: str) -> list[dict[str, Any]]:
    value = _text(fields, field)
    if value is None:
        return []
    code = value.upper().replace(" ", "")
    if len(code) == 18:
        if not _USCC.match(code):
            return [_check(field, "taxId", False, "18 characters but not of the unified social credit code's shape "
                                                  "(GB 32100; I, O, S, V, Z never appear)")]
        ok = uscc_check_character(code[:17]) == code[17]
        return [_check(field, "taxId", ok, "a unified social credit code whose check character agrees (GB 32100)" if ok
                       else "the unified social credit code's check character does not agree (GB 32100): "
                            "a character is misread or wrong")]
    if any(pattern.match(code) for pattern in _LEGACY_TAX_IDS):
        return [_check(field, "taxId", True, f"a legacy tax registration number ({len(code)} characters)")]
    return [_check(field, "taxId", False, f"{len(code)} characters: neither a unified social credit code (18) "
                                          "nor a legacy tax registration number (15, 17 or 20)")]


def check_luhn(fields: Mapping[str, Any], field: str = "cardNumber") -> list[dict[str, Any]]:
    value = _text(fields, field)
    if value is None:
        return []
    digits = re.sub(r"[\s-]", "", value)
    if not re.fullmatch(r"\d{12,19}", digits):
        return [_check(field, "luhn", False, "a card number has 12-19 digits")]
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    ok = total % 10 == 0
    return [_check(field, "luhn", ok, "the Luhn check digit agrees" if ok
                   else "the Luhn check digit does not agree: a digit is misread or wrong")]


def check_invoice_amounts(fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    amount, tax, with_tax = (_decimal(fields.get(k)) for k in ("totalAmount", "totalTax", "amountWithTax"))
    if amount is not None and tax is not None and with_tax is not None:
        ok = amount + tax == with_tax
        out.append(_check("amountWithTax", "amountsAddUp", ok, "totalAmount + totalTax = amountWithTax" if ok
                          else "totalAmount + totalTax differs from amountWithTax"))
    words = _text(fields, "amountWithTaxInWords")
    if words is not None and with_tax is not None:
        in_words = amount_from_words(words)
        if in_words is None:
            out.append(_check("amountWithTaxInWords", "amountInWords", False,
                              "not an amount in Chinese capital numerals"))
        else:
            ok = in_words == with_tax
            out.append(_check("amountWithTaxInWords", "amountInWords", ok,
                              "the amount in words equals amountWithTax" if ok
                              else "the amount in words differs from amountWithTax"))
    return out


DATE_FIELDS: dict[str, tuple[str, ...]] = {
    "idcard": ("birthDate", "validFrom", "validTo"),
    "vat_invoice": ("invoiceDate",),
    "train_ticket": ("departureTime",),
    "taxi_ticket": ("date",),
    "bank_card": ("validDate",),
    "business_license": ("establishDate", "validTo"),
    "driver_license": ("issueDate", "validFrom", "validTo"),
    "vehicle_license": ("registerDate", "issueDate"),
}
TAX_ID_FIELDS: dict[str, tuple[str, ...]] = {
    "vat_invoice": ("sellerTaxId", "buyerTaxId"),
    "business_license": ("creditCode",),
}


def checks_for(document_type: str | None, fields: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The validation flags of one normalized document (empty for types or fields it has no rule for)."""
    if not document_type or not isinstance(fields, Mapping):
        return []
    out: list[dict[str, Any]] = []
    if document_type == "idcard":
        out += check_id_number(fields)
    for name in DATE_FIELDS.get(document_type, ()):
        out += check_date(fields, name)
    for name in TAX_ID_FIELDS.get(document_type, ()):
        out += check_tax_id(fields, name)
    if document_type == "vat_invoice":
        out += check_invoice_amounts(fields)
    if document_type == "bank_card":
        out += check_luhn(fields)
    return out
