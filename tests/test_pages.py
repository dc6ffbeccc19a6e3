"""Every paid answer is kept: pages that failed, partial documents, raw on failure, page checkpoints, billed calls.

Against the Tencent emulator (one VatInvoiceOCR call per PDF page); calls are counted from its request log.
"""

from __future__ import annotations

import json

import pytest

from fcocr.errors import ConfigError, TransientError
from fcocr.events import oss_event
from fcocr.recognizers import capability
from fcocr.storage import TASK_PREFIX

from .cloud import BUCKET, fc_context, handler, image, pdf, result, route, tencent_emulator, upload
from .conftest import event_bytes

EMPTY = {"VatInvoiceInfos": [], "Items": []}  # an answer (charged for) whose fields are all empty
RECOGNIZER = "tencent.VatInvoiceOCR"


@pytest.fixture
def tencent(monkeypatch, oss):
    with tencent_emulator(monkeypatch) as emulator:
        route(monkeypatch, RECOGNIZER)
        yield emulator


def answered(emulator) -> list[int]:
    """The pages the vendor answered (and charged for), in order."""
    return [r.pdf_page for r in emulator.requests if r.status == 200 and r.error_code is None]


def checkpoints(oss) -> list[str]:
    return [k for k in oss.keys(BUCKET) if k.startswith(TASK_PREFIX) and k.endswith(".page")]


def test_a_page_that_answers_nothing_leaves_a_partial_document_with_every_paid_answer(oss, tencent):
    tencent.set_response(EMPTY, page=2)
    out = upload(oss, "two.pdf", pdf(2))
    doc = result(oss, "two.pdf")
    assert out["records"][0]["status"] == "succeeded" and doc["status"] == "succeeded"
    assert doc["partial"] is True
    assert "error" not in doc["pages"][0] and doc["pages"][0]["fields"]["invoiceNumber"]
    assert doc["pages"][1]["error"]["code"] == "Tencent.NoFields"
    assert any(w.startswith("page 2: Tencent.NoFields") for w in doc["warnings"])
    assert len(doc["raw"]) == 2 and doc["raw"][1]["Response"]["VatInvoiceInfos"] == []  # the empty answer, kept
    assert doc["billedCalls"] == {RECOGNIZER: 2} and answered(tencent) == [1, 2]
    assert checkpoints(oss) == []  # final: removed


def test_require_all_pages_fails_the_document_and_keeps_the_answers(oss, tencent, monkeypatch):
    route(monkeypatch, RECOGNIZER, {"requireAllPages": True})
    tencent.set_response(EMPTY, page=2)
    upload(oss, "strict.pdf", pdf(2))
    doc = result(oss, "strict.pdf")
    assert doc["status"] == "failed" and doc["error"]["code"] == "Tencent.NoFields"
    assert doc["error"]["retryable"] is False and "requireAllPages" in doc["error"]["message"]
    assert doc["options"] == {"requireAllPages": True}
    assert len(doc["raw"]) == 2 and doc["raw"][0]["Response"]["VatInvoiceInfos"]  # page 1's answer is not lost
    assert doc["pages"][1]["error"]["code"] == "Tencent.NoFields" and "partial" not in doc
    assert doc["billedCalls"] == {RECOGNIZER: 2} and checkpoints(oss) == []
    assert "requireAllPages" not in tencent.requests[0].params  # fcocr's own option never reaches the vendor


def test_a_document_fails_only_when_no_page_produced_anything(oss, tencent):
    tencent.set_response(EMPTY)
    upload(oss, "blank.pdf", pdf(2))
    doc = result(oss, "blank.pdf")
    assert doc["status"] == "failed" and doc["error"]["code"] == "Tencent.NoFields"
    assert "none of the 2 pages" in doc["error"]["message"]
    assert [p["error"]["code"] for p in doc["pages"]] == ["Tencent.NoFields"] * 2
    assert len(doc["raw"]) == 2 and doc["billedCalls"] == {RECOGNIZER: 2}


def test_a_failed_image_keeps_the_vendors_answer(oss, tencent):
    tencent.set_response(EMPTY)
    upload(oss, "blank.jpg", image())
    doc = result(oss, "blank.jpg")
    assert doc["status"] == "failed" and doc["error"]["code"] == "Tencent.NoFields"
    assert doc["raw"]["Response"]["VatInvoiceInfos"] == [] and doc["billedCalls"] == {RECOGNIZER: 1}


def test_a_refused_call_is_not_billed(oss, tencent):
    tencent.inject_fault(kind="error", code="FailedOperation.ImageDecodeFailed")
    upload(oss, "refused.jpg", image())
    doc = result(oss, "refused.jpg")
    assert doc["status"] == "failed" and doc["billedCalls"] == {RECOGNIZER: 0} and "raw" not in doc


def test_a_retry_resumes_at_the_first_unanswered_page(oss, tencent, monkeypatch):
    """10 pages, the 7th hits a transient fault past its retries: 10 answered (charged) calls in all, not 16."""
    monkeypatch.setenv("FCOCR_RETRY_ATTEMPTS", "1")
    tencent.set_response({"Error": {"Code": "InternalError", "Message": "busy"}}, page=7)
    with pytest.raises(TransientError):
        upload(oss, "ten.pdf", pdf(10))
    assert [r.pdf_page for r in tencent.requests] == [1, 2, 3, 4, 5, 6, 7]  # the 7th answered an error
    assert len(checkpoints(oss)) == 6
    first = result(oss, "ten.pdf")
    assert first["status"] == "failed" and first["error"]["retryable"] is True
    tencent.reset_responses()
    retry = json.loads(handler(event_bytes(oss_event(BUCKET, "ten.pdf")), fc_context()))  # FC's retry, same event
    assert retry["records"][0]["status"] == "succeeded"
    # Pages 1-6 were not sent again: 11 requests, one of them the refused 7th, so 10 charged answers.
    assert [r.pdf_page for r in tencent.requests] == [1, 2, 3, 4, 5, 6, 7, 7, 8, 9, 10]
    doc = result(oss, "ten.pdf")
    assert len(doc["pages"]) == 10 and "partial" not in doc
    assert doc["billedCalls"] == {RECOGNIZER: 10}
    assert checkpoints(oss) == []


def test_require_all_pages_is_declared_once_for_every_multi_page_capability():
    for recognizer in ("tencent.VatInvoiceOCR", "aliyun.RecognizePdf", "market.general", "local.text"):
        _, cap = capability(recognizer)
        assert cap.resolve_options({"requireAllPages": True})["requireAllPages"] is True
        assert "requireAllPages" not in cap.resolve_options({})  # off unless a route asks: no new default
    _, photo_only = capability("aliyun.RecognizeBankCard")  # JPEG/PNG/BMP/GIF: one page, nothing to require
    with pytest.raises(ConfigError):
        photo_only.resolve_options({"requireAllPages": True})
