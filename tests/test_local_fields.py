"""Offline structured fields (local.idcard ... local.auto): the extractors on lines, and through the real engine."""

from __future__ import annotations

import json
import math
import os
import sys
from importlib import resources
from types import SimpleNamespace

import pytest

from fcocr.events import oss_event
from fcocr.recognizers import capability
from fcocr.recognizers.local_fields import EXTRACTORS, Page, classify
from fcocr.results import Line

from .conftest import REPO, event_bytes, load_function, put_local, read_result

sys.path.insert(0, str(REPO / "bench"))

handler = load_function("ocr_upload").handler
CTX = SimpleNamespace(request_id="req-1", credentials=None, function=SimpleNamespace(name="ocr_upload", timeout=60))
ROUTES = {"routes": [{"match": "auto/**", "recognizer": "local.auto"},
                     {"match": "idcard/**", "recognizer": "local.idcard"},
                     {"match": "bank/**", "recognizer": "local.bank_card"},
                     {"match": "**", "recognizer": "local.text"}]}


def line(text: str, left: float, top: float, width: float, height: float = 30, angle_deg: float = 0.0) -> Line:
    """A line box, turned by ``angle_deg`` about the origin (a page photographed a little askew)."""
    a = math.radians(angle_deg)

    def turn(x: float, y: float) -> tuple[float, float]:
        return (x * math.cos(a) - y * math.sin(a), x * math.sin(a) + y * math.cos(a))

    corners = ((left, top), (left + width, top), (left + width, top + height), (left, top + height))
    return Line(text, 99.0, tuple(turn(x, y) for x, y in corners))


def test_every_document_type_has_a_routable_local_recognizer():
    for document_type in EXTRACTORS:
        _, cap = capability(f"local.{document_type}")
        assert cap.document_type == document_type and not cap.paid
    _, auto = capability("local.auto")
    assert auto.document_type is None and "minConfidence" in auto.options


def test_labels_values_and_a_wrapped_address_on_a_page_turned_three_degrees():
    rows = [("姓名", 60, 80, 70), ("张三丰", 170, 80, 110), ("性别男", 60, 160, 100), ("民族", 300, 160, 70),
            ("汉", 400, 160, 30), ("出生", 60, 240, 70), ("1990年2月3日", 170, 240, 220), ("住址", 60, 320, 70),
            ("测试省示例市演示区和平路", 170, 320, 400), ("8号2栋301室", 170, 370, 200),
            ("公民身份号码", 60, 520, 200), ("11010519491231002X", 290, 520, 400)]
    page = Page([line(t, x, y, w, angle_deg=3.0) for t, x, y, w in rows])
    fields = EXTRACTORS["idcard"](page)
    assert fields == {"side": "front", "name": "张三丰", "gender": "男", "ethnicity": "汉", "birthDate": "1990-02-03",
                      "address": "测试省示例市演示区和平路8号2栋301室", "idNumber": "11010519491231002X",
                      "issueAuthority": None, "validFrom": None, "validTo": None}
    assert classify(page) == "idcard"


def test_an_invoice_buyer_is_above_the_items_and_the_seller_below_the_totals():
    rows = [("增值税普通发票", 600, 40, 300), ("发票号码：", 1100, 80, 100), ("12345678", 1210, 80, 100),
            ("名称：", 120, 240, 60), ("买方有限公司", 280, 240, 200), ("纳税人识别号：", 120, 280, 150),
            ("91110108551385082Q", 280, 280, 250),
            ("货物或应税劳务、服务名称", 100, 400, 260), ("金额", 990, 400, 60), ("税率", 1140, 400, 60),
            ("税额", 1350, 400, 60), ("数量", 660, 400, 60),
            ("*文具*笔", 70, 450, 120), ("2", 700, 450, 20), ("10.00", 1040, 450, 70), ("13%", 1140, 450, 60),
            ("1.30", 1460, 450, 60),
            ("合计", 200, 650, 60), ("¥10.00", 1030, 650, 80), ("¥1.30", 1450, 650, 70),
            ("价税合计（大写）", 150, 700, 180), ("⊗壹拾壹圆叁角", 450, 700, 200), ("（小写）¥11.30", 1020, 700, 200),
            ("名称：", 120, 760, 60), ("卖方有限公司", 280, 760, 200), ("纳税人识别号：", 120, 800, 150),
            ("914403001922038216", 280, 800, 250), ("收款人：甲", 80, 920, 120)]
    fields = EXTRACTORS["vat_invoice"](Page([line(*row) for row in rows]))
    assert (fields["buyerName"], fields["buyerTaxId"]) == ("买方有限公司", "91110108551385082Q")
    assert (fields["sellerName"], fields["sellerTaxId"]) == ("卖方有限公司", "914403001922038216")
    assert (fields["totalAmount"], fields["totalTax"], fields["amountWithTax"]) == ("10.00", "1.30", "11.30")
    assert fields["amountWithTaxInWords"] == "壹拾壹圆叁角" and fields["invoiceNumber"] == "12345678"
    assert fields["items"] == [{"name": "*文具*笔", "spec": None, "unit": None, "quantity": "2", "unitPrice": None,
                                "amount": "10.00", "taxRate": "13%", "tax": "1.30"}]
    assert fields["payee"] == "甲"


def test_plain_text_is_no_document_type():
    page = Page([line("PAYMENT NOTICE", 50, 40, 300), line("Total due: 1,234.56 CNY", 50, 120, 400)])
    assert classify(page) is None


def test_labels_without_values_are_plain_text_for_auto_and_a_failure_for_the_named_type():
    from fcocr.errors import PermanentError
    from fcocr.recognizers.local_fields import structure
    from fcocr.results import Outcome

    def outcome():
        return Outcome(lines=[line("签发机关", 60, 400, 130), line("有效期限", 60, 480, 130)], raw={})

    auto = structure(None, outcome(), "local.auto")
    assert auto.document_type is None and auto.fields is None and len(auto.lines) == 2
    with pytest.raises(PermanentError) as failure:
        structure("idcard", outcome(), "local.idcard")
    assert failure.value.code == "Local.NoFields" and not failure.value.retryable


# ----------------------------------------------------------------------------------- through the engine

@pytest.fixture
def routed(local_root, monkeypatch):
    monkeypatch.setenv("FCOCR_ROUTES", json.dumps(ROUTES))
    return local_root


def _run(root, keys):
    out = json.loads(handler(event_bytes(*(oss_event("bucket", key) for key in keys)), CTX))
    assert [r["status"] for r in out["records"]] == ["succeeded"] * len(keys), out
    return {key: read_result(root, key) for key in keys}


def test_shipped_samples_idcard_fields_auto_invoice_and_plain_text(routed):
    samples = resources.files("fcocr").joinpath("samples")
    put_local(routed, "idcard/front.png", samples.joinpath("idcard_front.png").read_bytes())
    put_local(routed, "auto/invoice.png", samples.joinpath("vat_invoice.png").read_bytes())
    put_local(routed, "auto/notice.png", samples.joinpath("notice_en.png").read_bytes())
    docs = _run(routed, ["idcard/front.png", "auto/invoice.png", "auto/notice.png"])

    card = docs["idcard/front.png"]
    assert card["documentType"] == "idcard" and card["recognizer"] == "local.idcard"
    assert {k: card["fields"][k] for k in ("side", "name", "gender", "ethnicity", "birthDate", "idNumber")} == {
        "side": "front", "name": "张示例", "gender": "男", "ethnicity": "汉", "birthDate": "1990-01-01",
        "idNumber": "990000199001011230"}
    assert card["fields"]["address"] == "示例省样本市测试区虚构路100号1单元101室"
    failed = [c for c in card["checks"] if not c["ok"]]
    # The sample's check digit is wrong on purpose: flagged, the result still succeeded, the number not repeated.
    assert [c["rule"] for c in failed] == ["idNumberCheckDigit"]
    assert "990000199001011230" not in json.dumps(card["checks"])

    invoice = docs["auto/invoice.png"]
    assert invoice["documentType"] == "vat_invoice" and invoice["lines"]
    fields = invoice["fields"]
    assert (fields["invoiceCode"], fields["invoiceNumber"], fields["invoiceDate"]) == ("099002600111", "00012345",
                                                                                       "2026-11-01")
    assert (fields["totalAmount"], fields["totalTax"], fields["amountWithTax"]) == ("1300.00", "99.00", "1399.00")
    assert fields["buyerTaxId"] == "91999900MA1234567X" and fields["sellerName"] == "样例商贸有限公司"
    assert [item["amount"] for item in fields["items"]] == ["250.00", "1000.00", "50.00"]
    rules = {c["rule"]: c["ok"] for c in invoice["checks"] if c["field"].startswith("amount")}
    assert rules == {"amountsAddUp": True, "amountInWords": True}

    notice = docs["auto/notice.png"]
    assert "documentType" not in notice and "fields" not in notice and "checks" not in notice
    assert any("PAYMENT NOTICE" in line["text"] for line in notice["lines"])


def test_a_named_document_type_that_is_not_on_the_page_fails_plainly(routed):
    samples = resources.files("fcocr").joinpath("samples")
    put_local(routed, "bank/notice.png", samples.joinpath("notice_en.png").read_bytes())
    handler(event_bytes(oss_event("bucket", "bank/notice.png")), CTX)
    doc = read_result(routed, "bank/notice.png")
    assert doc["status"] == "failed" and doc["error"]["code"] == "Local.NoFields"
    assert doc["error"]["retryable"] is False


def test_a_page_is_levelled_by_its_long_lines_not_by_many_short_coarse_ones():
    # A photo 1.2 degrees askew whose short boxes came out level (whole pixels at a small detection scale).
    short = [line(f"{i}", 100 + 80 * i, 400, 60, angle_deg=0.0) for i in range(8)]
    long = [line("INVOICE LINE " * 4, 100, 100 + 60 * i, 900, angle_deg=1.2) for i in range(3)]
    from fcocr.recognizers.local_fields import slant

    assert slant(short + long) == pytest.approx(math.radians(1.2), abs=1e-3)


def _cjk_font_or_skip():
    from fcocr.tools.samples import FONT_CANDIDATES

    if not any(os.path.isfile(path) for path, _ in FONT_CANDIDATES):
        pytest.skip("no CJK font to draw the generated documents (apt-get install fonts-wqy-microhei)")


def test_generated_clean_documents_of_every_kind_through_local_auto(routed):
    _cjk_font_or_skip()
    import fielddocs
    from fields_accuracy import score

    docs = list(fielddocs.generate("tune", per_type=1, photos=False))
    keys = []
    for doc in docs:
        keys.append(f"auto/{doc.name}.png")
        put_local(routed, keys[-1], doc.png())
    results = _run(routed, keys)
    for doc, key in zip(docs, keys, strict=False):
        result = results[key]
        assert result["documentType"] == doc.document_type, key
        right, total, wrong = score(doc.fields, result["fields"])
        assert right >= 0.9 * total, (key, wrong)
        assert all(check["ok"] for check in result["checks"]), (key, result["checks"])
