"""Normalized fields: one field set per document type, whichever vendor read the document.

Each vendor capability carries a *field map* (data, in its provider's table): normalized name ->
``Field(path, kind)``. ``extract`` walks the vendor's answer along each path and cleans the value
by its kind. The vendor's answer itself is kept verbatim in the result's ``raw``.

Paths: dot-separated keys (``FrontResult.IDNumber``); ``|`` separates alternatives tried in
order (``InvoiceNo|InvoiceNumber``); ``[Name=发票代码]`` picks the list element whose key has that
value (Tencent's ``VatInvoiceInfos``); a list where an object is documented is tolerated both
ways (the seeds type ``Plates``/``Results`` as arrays and show objects).

Kinds:
* ``text``   a string; the vendors' sentinels (``FailInRecognition``, ``NoResult``, ...) become null.
* ``id``     identifiers and long digit strings (ID numbers, invoice codes): always strings. A JSON
             number here may already have lost leading zeros or digits: kept as its digits, with a
             warning.
* ``amount`` money as a decimal string: currency signs and ``元`` removed (``¥87.28`` -> ``87.28``).
* ``date``   ``YYYY-MM-DD`` when the text is a full date in any of the seeds' shapes
             (``20190415``, ``2020年12月15日``, ``2018-09-20``), else the text as read.
* ``number`` a bare invoice number with Tencent's ``No`` prefix removed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

# The normalized field sets, documented in the README. Every document of a type has every key (null when unread).
FIELD_SETS: dict[str, tuple[str, ...]] = {
    "idcard": ("side", "name", "gender", "ethnicity", "birthDate", "address", "idNumber",
               "issueAuthority", "validFrom", "validTo"),
    "vat_invoice": ("invoiceType", "invoiceCode", "invoiceNumber", "invoiceDate", "checkCode", "machineNumber",
                    "totalAmount", "totalTax", "amountWithTax", "amountWithTaxInWords",
                    "sellerName", "sellerTaxId", "sellerAddressPhone", "sellerBankAccount",
                    "buyerName", "buyerTaxId", "buyerAddressPhone", "buyerBankAccount",
                    "payee", "reviewer", "drawer", "remarks", "items"),
    "train_ticket": ("trainNumber", "departureStation", "arrivalStation", "departureTime", "seat", "seatClass",
                     "price", "passengerName", "ticketNumber"),
    "taxi_ticket": ("invoiceCode", "invoiceNumber", "plateNumber", "date", "boardingTime", "alightingTime",
                    "mileage", "amount"),
    "bank_card": ("cardNumber", "bankName", "validDate"),
    "business_license": ("creditCode", "companyName", "companyType", "legalRepresentative", "address",
                         "registeredCapital", "businessScope", "establishDate", "validTo"),
    "driver_license": ("side", "name", "gender", "licenseNumber", "address", "vehicleClass", "issueDate",
                       "validFrom", "validTo", "validPeriod", "issuingAuthority", "archiveNumber", "record"),
    "vehicle_license": ("side", "plateNumber", "vehicleType", "owner", "address", "useCharacter", "model", "vin",
                        "engineNumber", "registerDate", "issueDate", "fileNumber", "approvedPassengers",
                        "grossMass", "unladenMass", "approvedLoad", "tractionMass", "overallDimension",
                        "inspectionRecord", "energyType"),
}
ITEM_FIELDS = ("name", "spec", "unit", "quantity", "unitPrice", "amount", "taxRate", "tax")

# What vendors write where a value could not be read.
SENTINELS = frozenset({"FailInRecognition", "FailInDetection", "NoResult", "InvalidInput"})


@dataclass(frozen=True)
class Field:
    path: str
    kind: str = "text"  # text | id | amount | date | number


class _Missing:
    pass


MISSING = _Missing()
_SELECTOR = re.compile(r"^(?P<key>[^\[]*)\[(?P<field>[^=\]]+)=(?P<value>[^\]]*)\]$")


def lookup(data: Any, path: str) -> Any:
    """The value at ``path`` (alternatives separated by ``|``), or MISSING."""
    for alternative in path.split("|"):
        value = _walk(data, alternative.split("."))
        if value is not MISSING and value not in ("", None):
            return value
    return MISSING


def _walk(data: Any, steps: list[str]) -> Any:
    for step in steps:
        if isinstance(data, list) and len(data) == 1 and not step.isdigit():
            data = data[0]  # an "Array" the example shows as one object, or vice versa
        selector = _SELECTOR.match(step)
        if selector:
            if selector["key"]:
                data = data.get(selector["key"], MISSING) if isinstance(data, dict) else MISSING
            if not isinstance(data, list):
                return MISSING
            name, wanted = selector["field"], selector["value"]
            data = next((item for item in data if isinstance(item, dict) and str(item.get(name)) == wanted), MISSING)
        elif isinstance(data, dict):
            data = data.get(step, MISSING)
        elif isinstance(data, list) and step.isdigit() and int(step) < len(data):
            data = data[int(step)]
        else:
            return MISSING
        if data is MISSING:
            return MISSING
    return data


_DATE_PATTERNS = (
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
    re.compile(r"^(\d{4})[-./](\d{1,2})[-./](\d{1,2})$"),
    re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日$"),
)


def normalize_date(text: str) -> str:
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text.strip())
        if match:
            year, month, day = (int(g) for g in match.groups())
            if 1 <= month <= 12 and 1 <= day <= 31:
                return f"{year:04d}-{month:02d}-{day:02d}"
    return text.strip()


def _number_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _json_kind(value: Any) -> str:
    return "a boolean" if isinstance(value, bool) else "an array" if isinstance(value, list) else "an object"


def clean(value: Any, kind: str, name: str, warnings: list[str]) -> Any:
    """One vendor value, cleaned by kind; None for absent values and sentinels."""
    if value is MISSING or value is None:
        return None
    if isinstance(value, (bool, list, dict)):
        # The README promises text here: a verified but odd answer must not put other JSON types in a field.
        warnings.append(f"{name}: the vendor sent {_json_kind(value)} where text is expected; it is in raw only")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        warnings.append(f"{name}: the vendor sent a number that is not finite; it is in raw only")
        return None
    if isinstance(value, (int, float)):
        if kind in ("id", "number", "date"):
            warnings.append(f"{name}: the vendor sent the number {_number_text(value)} where text is expected; "
                            "leading zeros or digits may have been lost")
        value = _number_text(value)
    if not isinstance(value, str):
        warnings.append(f"{name}: the vendor sent a value fcocr cannot read as text; it is in raw only")
        return None
    text = value.strip()
    if not text or text in SENTINELS:
        return None
    if kind == "amount":
        text = text.replace("¥", "").replace("￥", "").replace(",", "").strip()
        text = re.sub(r"\s*元$", "", text)
    elif kind == "date":
        text = normalize_date(text)
    elif kind == "number":
        text = re.sub(r"^No\.?\s*", "", text, flags=re.IGNORECASE)
    return text


FieldMap = Mapping[str, "Field | Callable[[Any, list[str]], Any]"]


def extract(document_type: str, data: Any, field_map: FieldMap, **fixed: Any) -> tuple[dict[str, Any], list[str]]:
    """The normalized field set of ``document_type`` read from ``data`` through ``field_map``."""
    warnings: list[str] = []
    fields: dict[str, Any] = {name: None for name in FIELD_SETS[document_type]}
    for name, spec in field_map.items():
        if name not in fields:
            raise KeyError(f"{name!r} is not a field of {document_type}")
        if isinstance(spec, Field):
            fields[name] = clean(lookup(data, spec.path), spec.kind, name, warnings)
        else:
            fields[name] = spec(data, warnings)
    for name, value in fixed.items():
        fields[name] = value
    return fields, warnings


def end_date_or_period(path: str, key: str) -> Callable[[Any, list[str]], Any]:
    """Driver licences print an end date on some formats and a validity length ("6" years) on others:
    ``validTo`` gets the date, ``validPeriod`` the length, from the same vendor field."""

    def read(data: Any, warnings: list[str]) -> Any:
        value = clean(lookup(data, path), "text", key, warnings)
        if value is None:
            return None
        is_date = len(value) >= 8
        if key == "validTo":
            return clean(value, "date", key, warnings) if is_date else None
        return None if is_date else value

    return read


def items_from(path: str, mapping: Mapping[str, Field]) -> Callable[[Any, list[str]], list[dict[str, Any]]]:
    """A field-map entry for line items: each element at ``path`` mapped through ``mapping``."""

    def read(data: Any, warnings: list[str]) -> list[dict[str, Any]]:
        rows = lookup(data, path)
        if rows is MISSING:
            return []
        if isinstance(rows, dict):
            rows = [rows]
        items = []
        for row in rows if isinstance(rows, list) else []:
            items.append({name: clean(lookup(row, spec.path), spec.kind, f"items.{name}", warnings)
                          for name, spec in mapping.items()})
        return items

    return read


# ----------------------------------------------------------------------- unlabelled taxi tickets
# viapi RecognizeTaxiInvoice and market taxi return the ticket's text items without names; the
# fields follow from the shapes printed on every Chinese taxi ticket.
_TAXI_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("invoiceCode", re.compile(r"^\d{12}$")),
    ("invoiceNumber", re.compile(r"^\d{8}$")),
    ("plateNumber", re.compile(r"^[A-Z]{1,2}-?[A-Z0-9]{4,6}$|^[\u4e00-\u9fff][A-Z][A-Z0-9]{4,6}$")),
    ("date", re.compile(r"^\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日$|^\d{4}-\d{1,2}-\d{1,2}$")),
    ("mileage", re.compile(r"^\d+(\.\d+)?\s*(公里|km|KM)$")),
)
_TIME = re.compile(r"^\d{1,2}:\d{2}$")
_MONEY = re.compile(r"^[¥￥]?\d+\.\d{2}\s*元?$")


def taxi_fields(texts: list[str]) -> dict[str, Any]:
    """Fields of a taxi ticket from its unlabelled text items, in the order the vendor listed them."""
    found: dict[str, Any] = {}
    times: list[str] = []
    amounts: list[str] = []
    for text in (t.strip() for t in texts if isinstance(t, str)):
        if _TIME.match(text):
            times.append(text)
            continue
        if _MONEY.match(text):
            amounts.append(clean(text, "amount", "amount", []))
            continue
        for name, pattern in _TAXI_RULES:
            if name not in found and pattern.match(text):
                found[name] = normalize_date(text) if name == "date" else text
                break
    if times:
        found["boardingTime"] = times[0]
    if len(times) > 1:
        found["alightingTime"] = times[1]
    if found.get("mileage"):
        found["mileage"] = re.sub(r"\s*(公里|km|KM)$", "", found["mileage"])
    # The fare is the largest sum printed (the others are surcharges and waiting fees, often 0.00).
    if amounts:
        found["amount"] = max(amounts, key=lambda a: float(a))
    return found
