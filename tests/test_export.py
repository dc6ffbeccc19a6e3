"""fcocr export: results as one table (CSV, XLSX, JSONL), read back with Python's csv module and openpyxl."""

from __future__ import annotations

import csv
import io
import json

import pytest

from fcocr.tools.cli import main as fcocr_main

from .cloud import AK, BUCKET, SK, TOKEN

ID_DOC = {"schemaVersion": "1.0", "status": "succeeded", "source": {"bucket": "b", "key": "ids/front.png",
          "etag": "E1", "size": 3}, "documentType": "idcard",
          "fields": {"idNumber": "012345678901234567", "name": "张三"}, "checks": {"idNumber": "ok"}, "raw": {}}
INVOICES_DOC = {"schemaVersion": "1.1", "status": "succeeded", "source": {"bucket": "b", "key": "inv/two.jpg",
                "etag": "E2", "size": 3}, "raw": {},
                "documents": [
                    {"documentType": "vat_invoice", "fields": {"invoiceNumber": "00112233", "total": "=1+1",
                                                                "items": [{"name": "纸", "amount": "1.00"}]}},
                    {"documentType": "vat_invoice", "fields": {"invoiceNumber": "44556677", "total": "20.00"}}]}
FAILED_DOC = {"schemaVersion": "1.0", "status": "failed", "source": {"bucket": "b", "key": "bad.png", "etag": "E3",
              "size": 3}, "error": {"code": "InputUnreadable", "message": "x", "retryable": False}}


@pytest.fixture
def results_dir(tmp_path):
    root = tmp_path / "b"
    for key, doc in (("ids/front.png", ID_DOC), ("inv/two.jpg", INVOICES_DOC), ("bad.png", FAILED_DOC)):
        path = root / (key + ".ocr.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    (root / "ids" / "front.png").write_bytes(b"png")  # a source: not a result
    (root / "notes.ocr.json.bak").write_text("{}")
    return root


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_csv_has_a_row_per_document_with_fields_status_checks_and_source(results_dir, tmp_path, capsys):
    out = tmp_path / "all.csv"
    assert fcocr_main(["export", str(results_dir), "--format", "csv", "--out", str(out)]) == 0
    rows = read_csv(out)
    assert [(r["key"], r["document"], r["status"]) for r in rows] == [
        ("bad.png", "0", "failed"), ("ids/front.png", "0", "succeeded"), ("inv/two.jpg", "0", "succeeded"),
        ("inv/two.jpg", "1", "succeeded")]
    failed, idcard, first, second = rows
    assert failed["errorCode"] == "InputUnreadable" and failed["idNumber"] == ""
    assert idcard["idNumber"] == "012345678901234567" and idcard["name"] == "张三"  # leading zero kept
    assert json.loads(idcard["checks"]) == {"idNumber": "ok"} and idcard["documentType"] == "idcard"
    assert first["invoiceNumber"] == "00112233" and json.loads(first["items"]) == [{"amount": "1.00", "name": "纸"}]
    assert first["total"] == "'=1+1"  # a spreadsheet would run it as a formula: kept as text
    assert second["invoiceNumber"] == "44556677"
    assert "4 rows" in capsys.readouterr().err


def test_type_keeps_only_that_document_type(results_dir, tmp_path):
    out = tmp_path / "vat.csv"
    assert fcocr_main(["export", str(results_dir), "--type", "vat_invoice", "--out", str(out)]) == 0
    assert [r["invoiceNumber"] for r in read_csv(out)] == ["00112233", "44556677"]


def test_xlsx_reads_back_with_openpyxl(results_dir, tmp_path):
    from openpyxl import load_workbook

    out = tmp_path / "all.xlsx"
    assert fcocr_main(["export", str(results_dir), "--format", "xlsx", "--out", str(out)]) == 0
    sheet = load_workbook(out, read_only=True)["fcocr"]
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    # A read-only sheet leaves out a row's trailing empty cells.
    by_column = [dict(zip(header, r + [None] * (len(header) - len(r)), strict=True)) for r in rows]
    assert len(by_column) == 4
    assert by_column[1]["idNumber"] == "012345678901234567"  # text, every digit
    assert by_column[2]["total"] == "=1+1" and by_column[3]["invoiceNumber"] == "44556677"
    assert by_column[0]["errorCode"] == "InputUnreadable"


def test_xlsx_needs_an_output_file(results_dir):
    assert fcocr_main(["export", str(results_dir), "--format", "xlsx"]) == 2


def test_jsonl_to_stdout_keeps_nested_fields(results_dir, capsys):
    assert fcocr_main(["export", str(results_dir), "--format", "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 4 and lines[2]["fields"]["items"] == [{"name": "纸", "amount": "1.00"}]


def test_an_oss_prefix_is_listed_and_read(oss, monkeypatch, tmp_path):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)
    oss.put(BUCKET, "batch/ids/front.png.ocr.json", json.dumps(ID_DOC).encode())
    oss.put(BUCKET, "batch/inv/two.jpg.ocr.json", json.dumps(INVOICES_DOC).encode())
    oss.put(BUCKET, "batch/inv/two.jpg", b"jpg")
    oss.put(BUCKET, "other/bad.png.ocr.json", json.dumps(FAILED_DOC).encode())
    out = tmp_path / "batch.csv"
    assert fcocr_main(["export", f"oss://{BUCKET}/batch/", "--region", "cn-shanghai", "--out", str(out)]) == 0
    assert [r["key"] for r in read_csv(out)] == ["ids/front.png", "inv/two.jpg", "inv/two.jpg"]


def test_an_oss_prefix_needs_a_region(capsys):
    assert fcocr_main(["export", "oss://bucket/prefix/"]) == 2
    assert "--region" in capsys.readouterr().err


def test_csv_rows_parse_back_from_stdout(results_dir, capsys):
    assert fcocr_main(["export", str(results_dir)]) == 0
    assert len(list(csv.DictReader(io.StringIO(capsys.readouterr().out)))) == 4
