"""fcocr show: pictures of results, only under --out, never among (or over) the user's files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from fcocr.checks import checks_for
from fcocr.tools import cli, show

from .conftest import text_image

FIELDS = {"cardNumber": "4111111111111112", "bankName": "示例银行", "validDate": "07/26"}


def a_result(folder: Path, name: str = "card.png", fields: dict | None = None) -> Path:
    """A document (900×736) and a result beside it, as fcocr process leaves them."""
    source = folder / name
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(text_image(["4111 1111 1111 1112", "VALID THRU 07/26"]))
    fields = FIELDS if fields is None else fields
    doc = {"schemaVersion": "1.1", "status": "succeeded", "source": {"bucket": folder.name, "key": name},
           "recognizer": "local.bank_card", "durationMs": 5, "pages": [{"index": 0, "width": 900, "height": 736}],
           "lines": [{"text": "4111 1111 1111 1112", "confidence": 99.0, "page": 0,
                      "polygon": [[30, 20], [500, 20], [500, 70], [30, 70]]},
                     {"text": "VALID THRU 07/26", "confidence": 99.0, "page": 0,
                      "polygon": [[30, 108], [420, 108], [420, 158], [30, 158]]}],
           "documentType": "bank_card", "fields": fields, "checks": checks_for("bank_card", fields)}
    (folder / (name + ".ocr.json")).write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    return source


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_pictures_go_only_under_out_with_the_page_beside_the_panel(tmp_path):
    docs = tmp_path / "docs"
    a_result(docs)
    a_result(docs, "sub/other.png")
    before = files_under(docs)
    out = tmp_path / "pictures"
    assert cli.main(["show", str(docs), "--out", str(out)]) == 0
    assert files_under(docs) == before  # nothing new beside the documents, nothing changed
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["card.png.page1.png", "sub/other.png.page1.png"]
    with Image.open(out / "card.png.page1.png") as picture:
        assert picture.size == (900 + show.PANEL_WIDTH, 736)
        assert picture.info.get("Software") == "fcocr show"
        panel = picture.convert("RGB").crop((900, 0, picture.width, picture.height))
        # The failed Luhn check is written in red in the panel.
        assert any(r > 170 and g < 90 and b < 90 for _, (r, g, b) in panel.getcolors(1 << 20))


def test_a_long_panel_makes_the_picture_taller_than_the_page(tmp_path):
    fields = dict(FIELDS, bankName="很长的银行名称" * 300)
    a_result(tmp_path / "docs", fields=fields)
    written = show.show([str(tmp_path / "docs")], str(tmp_path / "out"), ".ocr.json")
    with Image.open(written[0]) as picture:
        assert picture.width == 900 + show.PANEL_WIDTH and picture.height > 736


def test_a_single_file_or_its_result_file_names_the_same_picture(tmp_path):
    source = a_result(tmp_path / "docs")
    out = tmp_path / "out"
    assert show.show([str(source)], str(out), ".ocr.json") == [out / "card.png.page1.png"]
    assert show.show([str(source) + ".ocr.json"], str(out), ".ocr.json") == [out / "card.png.page1.png"]


@pytest.mark.parametrize("out_inside", ["docs", "docs/pictures"])
def test_an_out_folder_among_the_documents_is_refused(tmp_path, out_inside):
    docs = tmp_path / "docs"
    a_result(docs)
    before = files_under(docs)
    with pytest.raises(SystemExit, match="among the documents"):
        show.show([str(docs)], str(tmp_path / out_inside), ".ocr.json")
    with pytest.raises(SystemExit, match="among the documents"):
        show.show([str(docs / "card.png")], str(tmp_path / out_inside), ".ocr.json")
    assert files_under(docs) == before


def test_a_file_show_did_not_write_is_never_overwritten(tmp_path, capsys):
    a_result(tmp_path / "docs")
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "card.png.page1.png"
    mine.write_bytes(b"the user's own file")
    assert show.show([str(tmp_path / "docs")], str(out), ".ocr.json") == []
    assert mine.read_bytes() == b"the user's own file"
    assert "left alone" in capsys.readouterr().err
    mine.unlink()
    assert show.show([str(tmp_path / "docs")], str(out), ".ocr.json") == [mine]
    assert show.show([str(tmp_path / "docs")], str(out), ".ocr.json") == [mine]  # its own picture: replaced


def test_a_document_without_a_result_says_so(tmp_path):
    (tmp_path / "docs").mkdir()
    lone = tmp_path / "docs" / "lone.png"
    lone.write_bytes(text_image(["x"]))
    with pytest.raises(SystemExit, match="no result beside it"):
        show.show([str(lone)], str(tmp_path / "out"), ".ocr.json")
    assert cli.main(["show", str(tmp_path / "docs"), "--out", str(tmp_path / "out")]) == 1
