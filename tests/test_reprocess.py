"""Reprocessing on purpose: ``--force`` recognizes again documents with a final result and says first how many
billed calls that costs (``--dry-run`` only says it); a task in flight is never submitted twice."""

from __future__ import annotations

import json

import pytest

from fcocr.model import Outcome, SourceRef, TaskRef
from fcocr.results import ResultDocument, ResultWriter, utc_now
from fcocr.storage import LocalStorage
from fcocr.tools import cli

from .cloud import AK, BUCKET, SK, TOKEN, image, market_emulator, route

REGION = "cn-shanghai"


@pytest.fixture
def market(monkeypatch):
    with market_emulator(monkeypatch) as emulator:
        yield emulator


@pytest.fixture
def creds(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # backfill's checkpoints
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)


def test_backfill_force_recognizes_again_and_says_the_cost_first(oss, market, creds, monkeypatch, capsys):
    route(monkeypatch, "market.idcard")
    for key in ("batch/a.jpg", "batch/b.jpg"):
        oss.put(BUCKET, key, image())
    argv = ["backfill", f"oss://{BUCKET}/batch/", "--region", REGION, "--restart"]
    assert cli.main(argv) == 0 and len(market.requests) == 2
    assert cli.main(argv) == 0 and len(market.requests) == 2  # final results: skipped
    capsys.readouterr()
    assert cli.main(argv + ["--force", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "billed vendor calls, at least  2" in out and len(market.requests) == 2  # a dry run calls nobody
    assert cli.main(argv + ["--force"]) == 0
    out = capsys.readouterr().out
    assert "--force: 2 documents" in out and "at least 2 billed vendor calls" in out
    assert out.index("billed") < out.index("processed")  # said before the run
    assert len(market.requests) == 4


def test_backfill_force_is_refused_with_remote(oss, creds, capsys):
    argv = ["backfill", f"oss://{BUCKET}/x/", "--region", REGION, "--remote", "--account-id", "1234", "--force"]
    assert cli.main(argv) == 2 and "--force recognizes here only" in capsys.readouterr().err


def test_process_force_dry_run_counts_paid_documents_and_skips_a_task_in_flight(local_root, monkeypatch, capsys):
    root = local_root / "bucket"
    for name in ("a.png", "b.png", "c.png"):
        (root / name).write_bytes(image(fmt="PNG"))
    storage = LocalStorage(str(local_root), "bucket")
    writer = ResultWriter(storage, ".ocr.json")
    common = dict(recognizer="market.idcard", started_at=utc_now(), finished_at=utc_now(), duration_ms=1)
    for name in ("a.png", "b.png"):  # a final result; and a task in flight for c
        writer.write(ResultDocument.from_outcome(Outcome(lines=[], raw={}),
                                                 source=SourceRef("bucket", name, storage.head(name).etag, 1), **common))
    writer.write(ResultDocument.from_outcome(Outcome(task=TaskRef("t", "green", "d", utc_now())),
                                             source=SourceRef("bucket", "c.png", storage.head("c.png").etag, 1),
                                             **common))
    assert cli.main(["process", str(root), "--recognizer", "market.idcard", "--dry-run"]) == 0
    assert "dry run: 0 documents to recognize: at least 0 billed" in capsys.readouterr().out
    assert cli.main(["process", str(root), "--recognizer", "market.idcard", "--force", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 documents to recognize (2 with a final result, recognized again): at least 2 billed vendor calls " \
           "(market.idcard 2)" in out
    assert cli.main(["process", str(root), "--recognizer", "local.text", "--force", "--dry-run"]) == 0
    assert "at least 0 billed" in capsys.readouterr().out  # the offline engine is free
    assert json.loads((root / "a.png.ocr.json").read_text())["recognizer"] == "market.idcard"  # nothing run


def test_process_force_runs_the_pipeline_again(local_root, market, monkeypatch, capsys):
    root = local_root / "bucket"
    (root / "a.jpg").write_bytes(image())
    assert cli.main(["process", str(root), "--recognizer", "market.idcard"]) == 0
    assert cli.main(["process", str(root), "--recognizer", "market.idcard"]) == 0
    assert len(market.requests) == 1
    assert cli.main(["process", str(root), "--recognizer", "market.idcard", "--force"]) == 0
    assert len(market.requests) == 2 and "at least 1 billed vendor calls" in capsys.readouterr().out
