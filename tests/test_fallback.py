"""Fallback chains: the next recognizer only after a failure of the vendor that cost nothing, or where the route
opts in after a charged answer; the result says who answered and why the earlier ones did not.

Vendor calls are counted from the Tencent and market emulators' request logs.
"""

from __future__ import annotations

import json

import pytest

from fcocr import pipeline
from fcocr.errors import ConfigError
from fcocr.routing import Router

from .cloud import image, market_emulator, result, tencent_emulator, upload

PRIMARY, SECOND = "tencent.VatInvoiceOCR", "market.general"


@pytest.fixture
def vendors(monkeypatch, oss):
    with tencent_emulator(monkeypatch) as tencent, market_emulator(monkeypatch, ("general",)) as market:
        yield tencent, market


def chain(monkeypatch, **extra) -> None:
    entry = {"match": "**", "recognizer": PRIMARY, "fallback": [SECOND], **extra}
    monkeypatch.setenv("FCOCR_ROUTES", json.dumps({"routes": [entry]}))
    pipeline.reset_app()


def test_an_unconfigured_recognizer_falls_back_and_the_result_says_why(monkeypatch, oss, vendors):
    tencent, market = vendors
    monkeypatch.delenv("TENCENTCLOUD_SECRET_ID")
    chain(monkeypatch)
    upload(oss, "fb/a.jpg", image())
    doc = result(oss, "fb/a.jpg")
    assert doc["status"] == "succeeded" and doc["recognizer"] == SECOND
    [attempt] = doc["attempts"]
    assert attempt["recognizer"] == PRIMARY and attempt["error"]["code"] == "NoCredentials"
    assert attempt["reason"].startswith("it is not configured") and attempt["billedCalls"] == 0
    assert doc["billedCalls"] == {PRIMARY: 0, SECOND: 1}
    assert tencent.requests == [] and len(market.requests) == 1


def test_throttled_past_its_retries_falls_back(monkeypatch, oss, vendors):
    tencent, market = vendors
    monkeypatch.setenv("FCOCR_RETRY_ATTEMPTS", "2")
    tencent.inject_fault(kind="error", code="RequestLimitExceeded", times=5)
    chain(monkeypatch)
    out = upload(oss, "fb/b.jpg", image())
    doc = result(oss, "fb/b.jpg")
    assert out["records"][0]["status"] == "succeeded" and doc["recognizer"] == SECOND
    assert doc["attempts"][0]["error"]["code"] == "Tencent.RequestLimitExceeded"
    assert len(tencent.requests) == 2 and len(market.requests) == 1


def test_a_refused_account_falls_back(monkeypatch, oss, vendors):
    tencent, market = vendors
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", "not-the-secret")  # the emulator refuses the signature
    chain(monkeypatch)
    upload(oss, "fb/c.jpg", image())
    doc = result(oss, "fb/c.jpg")
    assert doc["recognizer"] == SECOND and doc["attempts"][0]["error"]["vendorCode"].startswith("AuthFailure.")
    assert "refused the account" in doc["attempts"][0]["reason"]
    assert len(market.requests) == 1


def test_an_input_the_vendor_refuses_does_not_fall_back(monkeypatch, oss, vendors):
    tencent, market = vendors
    tencent.inject_fault(kind="error", code="FailedOperation.ImageDecodeFailed")
    chain(monkeypatch)
    upload(oss, "fb/d.jpg", image())
    doc = result(oss, "fb/d.jpg")
    assert doc["status"] == "failed" and doc["recognizer"] == PRIMARY and "attempts" not in doc
    assert market.requests == []


def test_a_charged_answer_that_recognized_nothing_falls_back_only_where_the_route_opts_in(monkeypatch, oss, vendors):
    tencent, market = vendors
    tencent.set_response({"VatInvoiceInfos": [], "Items": []})
    chain(monkeypatch)
    upload(oss, "fb/e.jpg", image())
    doc = result(oss, "fb/e.jpg")
    assert doc["status"] == "failed" and doc["error"]["code"] == "Tencent.NoFields" and market.requests == []
    assert doc["billedCalls"] == {PRIMARY: 1}
    chain(monkeypatch, fallbackAfterBilled=True)
    upload(oss, "fb/f.jpg", image(color=(9, 9, 9)))
    doc = result(oss, "fb/f.jpg")
    assert doc["status"] == "succeeded" and doc["recognizer"] == SECOND
    assert doc["attempts"][0]["billedCalls"] == 1 and "fallbackAfterBilled" in doc["attempts"][0]["reason"]
    assert doc["billedCalls"] == {PRIMARY: 1, SECOND: 1} and len(market.requests) == 1


def test_fallback_lists_are_checked_when_routes_load():
    with pytest.raises(ConfigError, match="unknown recognizer"):
        Router.from_data({"routes": [{"match": "**", "recognizer": "local.text", "fallback": ["market.nope"]}]})
    with pytest.raises(ConfigError, match="twice"):
        Router.from_data({"routes": [{"match": "**", "recognizer": "local.text", "fallback": ["local.text"]}]})
    with pytest.raises(ConfigError, match="fallbackAfterBilled"):
        Router.from_data({"routes": [{"match": "**", "recognizer": "local.text", "fallbackAfterBilled": "yes"}]})
    router = Router.from_data({"routes": [{"match": "**", "recognizer": PRIMARY, "fallback": [SECOND]}]})
    assert [link[0] for link in router.route_for("a.jpg").chain] == [PRIMARY, SECOND]
