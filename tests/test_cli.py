"""The fcocr command: demo, process and invoke run the real handler over real files."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from fcocr.tools import cli

from .conftest import REPO, put_local, read_result, text_image

# Key strings the engine reads from each shipped sample (see shared/fcocr/samples/README.md).
SAMPLE_KEYS = {
    "vat_invoice.png": ["增值税普通发票", "099002600111", "00012345", "2026年11月01日", "91999900MA1234567X",
                        "示例科技有限公司", "样例商贸有限公司", "¥1399.00", "壹仟叁佰玖拾玖圆整"],
    "idcard_front.png": ["张示例", "1990年1月1日", "990000199001011230", "公民身份号码"],
    "receipt.jpg": ["示例便利店", "矿泉水550ml", "合计", "32.90", "微信支付"],
    "report.pdf": ["季度运营报告", "Quarterly Operations Report", "Plan for Next Quarter", "第2页"],
    "notice_en.png": ["PAYMENT NOTICE", "Invoice INV-2026-0042", "Total due: 1,234.56 CNY"],
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    for name in list(os.environ):
        if name.startswith("FCOCR_"):
            del os.environ[name]
    code = cli.main(["demo", "--out", str(out)])
    return code, out / "samples"


def test_demo_writes_a_correct_result_beside_every_sample(demo):
    code, samples = demo
    assert code == 0
    for name, keys in SAMPLE_KEYS.items():
        doc = json.loads((samples / (name + ".ocr.json")).read_text("utf-8"))
        assert doc["status"] == "succeeded", name
        for key in keys:
            assert any(key in line["text"] for line in doc["lines"]), f"{name}: {key!r} not read"
    pdf = json.loads((samples / "report.pdf.ocr.json").read_text("utf-8"))
    assert {line["page"] for line in pdf["lines"]} == {0, 1}
    odd = json.loads((samples / (cli.DEMO_ODD_KEY + ".ocr.json")).read_text("utf-8"))
    assert odd["source"]["key"] == cli.DEMO_ODD_KEY and "099002600111" in odd["text"]


def test_demo_ends_with_a_picture_of_every_page_outside_the_samples(demo):
    _, samples = demo
    pictures = sorted(p.relative_to(samples.parent / "show").as_posix() for p in (samples.parent / "show").rglob("*.png"))
    assert len(pictures) == 7 and "report.pdf.page2.png" in pictures  # 5 samples, the PDF's 2 pages, the odd key
    assert not [p for p in samples.rglob("*.page*.png")]
    # The demo reads with local.auto: the sample ID card's fields, and its deliberately wrong check digit flagged.
    card = json.loads((samples / "idcard_front.png.ocr.json").read_text("utf-8"))
    assert card["documentType"] == "idcard" and card["fields"]["name"] == "张示例"
    assert [c["rule"] for c in card["checks"] if not c["ok"]] == ["idNumberCheckDigit"]


def test_process_is_idempotent_and_prints_a_summary(demo, capsys):
    _, samples = demo
    done = cli.process_paths([str(samples)])
    assert {r.status for _, r in done} == {"skipped"}  # every sample already has its final result
    out = capsys.readouterr().out
    assert "6 documents: 6 skipped" in out


def test_process_files_and_directories_with_failures_in_the_table(tmp_path, capsys):
    folder = tmp_path / "inbox"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "ok.png").write_bytes(text_image(["HELLO CLI"]))
    (folder / "bad.jpg").write_text("not an image")
    (folder / "notes.txt").write_text("ignored: not a document suffix")
    code = cli.main(["process", str(folder), "--strict"])
    out = capsys.readouterr().out
    assert code == 1  # --strict: a failed document fails the command
    assert "inbox/sub/ok.png" in out and "succeeded" in out and "UnsupportedFormat" in out
    assert "2 documents: 1 failed, 1 succeeded" in out
    assert json.loads((folder / "sub" / "ok.png.ocr.json").read_text())["text"] == "HELLO CLI"
    assert not (folder / "notes.txt.ocr.json").exists()
    # A file named on the command line is processed whatever its suffix.
    single = tmp_path / "scan.jpeg"
    single.write_bytes(text_image(["SINGLE FILE"], fmt="JPEG"))
    assert cli.main(["process", str(single)]) == 0
    assert json.loads((tmp_path / "scan.jpeg.ocr.json").read_text())["text"] == "SINGLE FILE"


def test_process_with_workers_and_a_recognizer_override(tmp_path, capsys):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.png").write_bytes(text_image([f"WORKER {i}"]))
    assert cli.main(["process", str(folder), "--workers", "2", "--recognizer", "local.text"]) == 0
    for i in range(4):
        assert json.loads((folder / f"{i}.png.ocr.json").read_text())["text"] == f"WORKER {i}"
    assert cli.main(["process", str(folder), "--recognizer", "nope.Nope"]) == 2
    assert "unknown recognizer family" in capsys.readouterr().err


@pytest.mark.parametrize("event,expected", [
    ("oss-put-object.json", ["succeeded"]),
    ("oss-multiple-records.json", ["succeeded", "succeeded", "succeeded"]),
    ("oss-multipart-complete.json", ["succeeded"]),
    ("oss-chinese-key.json", ["succeeded"]),
    ("oss-ignored-delete.json", ["skipped"]),
    ("eventbridge-oss-put-object.json", ["succeeded"]),
])
def test_invoke_replays_each_console_event(demo, tmp_path, capsys, event, expected):
    _, samples = demo
    root = tmp_path / "root"
    shutil.copytree(samples, root / "samples", ignore=shutil.ignore_patterns("*.ocr.json"))
    assert cli.main(["invoke", "ocr-upload", "--event", str(REPO / "events" / event), "--root", str(root)]) == 0
    records = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("  ")]
    assert [line.split()[0] for line in records] == expected


def test_invoke_needs_a_local_root(capsys):
    with pytest.raises(SystemExit, match="FCOCR_LOCAL_ROOT"):
        cli.main(["invoke", "ocr-upload", "--event", str(REPO / "events" / "oss-put-object.json")])


def test_the_console_script_runs_the_handler_in_a_fresh_process(tmp_path):
    put_local(tmp_path, "vat_invoice.png", (REPO / "shared/fcocr/samples/notice_en.png").read_bytes(), bucket="samples")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FCOCR_")}
    fcocr = shutil.which("fcocr", path=os.path.dirname(sys.executable)) or shutil.which("fcocr")
    proc = subprocess.run([fcocr, "invoke", "ocr-upload", "--event", str(REPO / "events/oss-put-object.json"),
                           "--root", str(tmp_path), "--show"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "PAYMENT NOTICE" in proc.stdout
    assert read_result(tmp_path, "vat_invoice.png", bucket="samples")["status"] == "succeeded"


def test_check_lists_the_routes(capsys, monkeypatch):
    monkeypatch.setenv("FCOCR_ROUTES", '{"routes": [{"match": "a/**", "recognizer": "local.text"}]}')
    assert cli.main(["check"]) == 0
    assert "a/**" in capsys.readouterr().out
    monkeypatch.setenv("FCOCR_ROUTES", '{"routes": [{"match": "a/**", "recognizer": "local.txt"}]}')
    assert cli.main(["check"]) == 2


def test_an_interrupted_process_keeps_what_it_finished_and_resumes(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(6):
        (folder / f"{i}.png").write_bytes(text_image([f"BATCH {i}"]))
    real_advance = cli.Progress.advance

    def ctrl_c_after_the_first_document(self):
        real_advance(self)
        raise KeyboardInterrupt  # as the terminal delivers it: in the main thread

    monkeypatch.setattr(cli.Progress, "advance", ctrl_c_after_the_first_document)
    assert cli.main(["process", str(folder)]) == 130
    out = capsys.readouterr().out
    finished = sorted(p.name for p in folder.glob("*.ocr.json"))
    assert "0.png.ocr.json" in finished and len(finished) <= 2  # the first, and at most the one in flight
    assert f"interrupted after {len(finished)} of 6" in out  # every written result is counted
    monkeypatch.setattr(cli.Progress, "advance", real_advance)
    assert cli.main(["process", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"6 documents: {len(finished)} skipped, {6 - len(finished)} succeeded" in out
