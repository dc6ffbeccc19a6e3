"""Validation flags (fcocr.checks): each rule on valid and invalid examples, and in every normalized result."""

from __future__ import annotations

import json

import pytest

from fcocr.checks import amount_from_words, checks_for
from fcocr.results import SCHEMA_VERSION, Outcome, ResultDocument, SourceRef

from .conftest import VALIDATOR

# Published examples: GB 11643's own sample numbers, and unified social credit codes of listed companies.
VALID_IDS = ("11010519491231002X", "440524188001010014")
VALID_USCC = ("914403001922038216", "9144030071526726XG", "91110108551385082Q")


def by_rule(checks, rule, field=None):
    found = [c for c in checks if c["rule"] == rule and (field is None or c["field"] == field)]
    assert len(found) == 1, checks
    return found[0]


@pytest.mark.parametrize("number", VALID_IDS)
def test_id_check_digit_accepts_valid_numbers_including_x(number):
    checks = checks_for("idcard", {"idNumber": number})
    assert by_rule(checks, "idNumberCheckDigit")["ok"] is True
    # A lower-case x, as a reader may return it, is the same check character.
    assert by_rule(checks_for("idcard", {"idNumber": number.lower()}), "idNumberCheckDigit")["ok"] is True


@pytest.mark.parametrize("number", ["110105194912310021", "440524188001010015", "11010519491231002", "1101051949123100X2"])
def test_id_check_digit_rejects_wrong_digit_or_shape(number):
    check = by_rule(checks_for("idcard", {"idNumber": number}), "idNumberCheckDigit")
    assert check["ok"] is False
    assert number not in check["message"] and number[:17] not in check["message"]


def test_the_shipped_sample_id_number_fails_its_check_digit():
    from fcocr.tools.samples import made_up_id_number  # deliberately invalid, says the sample's README

    assert by_rule(checks_for("idcard", {"idNumber": made_up_id_number()}), "idNumberCheckDigit")["ok"] is False


def test_id_number_birth_date_and_gender_agreement():
    good = {"idNumber": "11010519491231002X", "birthDate": "1949-12-31", "gender": "女"}
    checks = checks_for("idcard", good)
    assert by_rule(checks, "idNumberBirthDate")["ok"] is True
    assert by_rule(checks, "idNumberGender")["ok"] is True  # 17th digit 2: even, female
    bad = checks_for("idcard", dict(good, birthDate="1949-12-30", gender="男"))
    assert by_rule(bad, "idNumberBirthDate")["ok"] is False
    assert by_rule(bad, "idNumberGender")["ok"] is False
    assert all("1949" not in c["message"] for c in bad)


def test_id_number_with_impossible_birth_date():
    first17 = "11010519490230002"  # 30 February
    from fcocr.checks import id_check_character

    checks = checks_for("idcard", {"idNumber": first17 + id_check_character(first17)})
    assert by_rule(checks, "idNumberCheckDigit")["ok"] is True
    assert by_rule(checks, "idNumberBirthDate")["ok"] is False


@pytest.mark.parametrize("value, ok", [("2024-02-29", True), ("2023-02-29", False), ("2026-04-31", False),
                                        ("2026-11-01", True), ("2017年08月05日22：09开", True), ("2026-13-01", False),
                                        ("sometime", False)])
def test_dates_exist(value, ok):
    assert by_rule(checks_for("vat_invoice", {"invoiceDate": value}), "dateExists")["ok"] is ok


def test_no_expiry_is_not_flagged_and_card_expiry_is_month_year():
    assert checks_for("idcard", {"validTo": "长期"}) == []
    assert by_rule(checks_for("bank_card", {"validDate": "07/26"}), "dateExists")["ok"] is True
    assert by_rule(checks_for("bank_card", {"validDate": "13/26"}), "dateExists")["ok"] is False


def test_invoice_amounts_add_up_and_agree_with_words():
    fields = {"totalAmount": "1300.00", "totalTax": "99.00", "amountWithTax": "1399.00",
              "amountWithTaxInWords": "⊗壹仟叁佰玖拾玖圆整"}
    checks = checks_for("vat_invoice", fields)
    assert by_rule(checks, "amountsAddUp")["ok"] is True
    assert by_rule(checks, "amountInWords")["ok"] is True
    assert by_rule(checks_for("vat_invoice", dict(fields, totalTax="98.00")), "amountsAddUp")["ok"] is False
    assert by_rule(checks_for("vat_invoice", dict(fields, amountWithTaxInWords="壹仟叁佰玖拾捌圆整")),
                   "amountInWords")["ok"] is False
    assert by_rule(checks_for("vat_invoice", dict(fields, amountWithTaxInWords="一千三百")), "amountInWords")["ok"] is False


@pytest.mark.parametrize("words, amount", [("壹仟叁佰玖拾玖圆整", "1399"), ("壹拾圆伍角", "10.5"), ("伍角陆分", "0.56"),
                                           ("壹万零贰佰圆零叁分", "10200.03"), ("贰亿叁仟万圆整", "230000000"),
                                           ("负壹佰圆整", "-100"), ("拾圆整", "10"), ("壹佰零伍元正", "105")])
def test_amount_from_words(words, amount):
    from decimal import Decimal

    assert amount_from_words(words) == Decimal(amount)


@pytest.mark.parametrize("code", VALID_USCC)
def test_unified_social_credit_code_accepted(code):
    assert by_rule(checks_for("business_license", {"creditCode": code}), "taxId")["ok"] is True


@pytest.mark.parametrize("code, ok", [("914403001922038217", False),   # check character wrong
                                      ("91440300192203821I", False),   # I is not in GB 32100's alphabet
                                      ("110108123456789", True),       # 15: area + organization code
                                      ("11010519491231002", True),     # 17: a 15-digit ID + 2... or 17 digits
                                      ("11010519491231002X01", True),  # 20: an ID number + 2 digits
                                      ("1234", False)])
def test_tax_id_shapes(code, ok):
    check = by_rule(checks_for("vat_invoice", {"sellerTaxId": code}), "taxId", "sellerTaxId")
    assert check["ok"] is ok
    assert code not in check["message"]


@pytest.mark.parametrize("number, ok", [("4111 1111 1111 1111", True), ("6011000990139424", True),
                                        ("4111111111111112", False), ("6011000990139425", False), ("12345", False)])
def test_bank_card_luhn(number, ok):
    check = by_rule(checks_for("bank_card", {"cardNumber": number}), "luhn")
    assert check["ok"] is ok
    assert number.replace(" ", "") not in check["message"]


def test_null_fields_and_unknown_types_are_not_checked():
    assert checks_for("idcard", {"idNumber": None, "birthDate": None}) == []
    assert checks_for(None, {"idNumber": "x"}) == []
    assert checks_for("taxi_ticket", {"date": None}) == []


def _document(outcome: Outcome) -> dict:
    doc = ResultDocument.from_outcome(outcome, source=SourceRef("b", "k.png", "E", 1), recognizer="aliyun.X",
                                      started_at="2026-11-01T00:00:00.000Z", finished_at="2026-11-01T00:00:00.100Z",
                                      duration_ms=100)
    return json.loads(doc.to_bytes())


def test_every_normalized_result_carries_checks_and_validates():
    fields = {"cardNumber": "4111111111111112", "bankName": "示例银行", "validDate": "07/26"}
    body = _document(Outcome(fields=fields, raw={}, document_type="bank_card"))
    VALIDATOR.validate(body)
    assert body["schemaVersion"] == SCHEMA_VERSION == "1.1"
    assert by_rule(body["checks"], "luhn")["ok"] is False
    assert body["status"] == "succeeded"  # a failed check informs, never fails the result
    assert "4111111111111112" not in json.dumps(body["checks"])


def test_vendor_fields_without_a_document_type_get_no_checks():
    body = _document(Outcome(fields={"whatever": 1}, raw={}))
    VALIDATOR.validate(body)
    assert "checks" not in body


def test_each_page_with_its_own_fields_gets_its_own_checks():
    pages = [{"index": 0, "fields": {"idNumber": VALID_IDS[0]}}, {"index": 1, "fields": {"idNumber": "110105194912310021"}}]
    body = _document(Outcome(fields=pages[0]["fields"], raw={}, pages=pages, document_type="idcard"))
    VALIDATOR.validate(body)
    assert [by_rule(p["checks"], "idNumberCheckDigit")["ok"] for p in body["pages"]] == [True, False]
    assert "checks" not in pages[0]  # the outcome itself is left as it was
