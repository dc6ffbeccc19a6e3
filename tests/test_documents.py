"""Several documents in one image: every one is normalized into documents[], fields stays the first's."""

from __future__ import annotations

import copy

import pytest

from .cloud import image, market_emulator, result, route, upload, viapi_emulator
from .emulators.market import example as market_example
from .emulators.viapi import ViapiEmulator


@pytest.fixture
def viapi(monkeypatch, oss):
    with viapi_emulator(monkeypatch, oss, poll_ms=None) as emulator:
        yield emulator


@pytest.fixture
def market(monkeypatch, oss):
    with market_emulator(monkeypatch, ("taxi",)) as emulator:
        yield emulator


def test_two_roll_tickets_in_one_image_are_both_kept(monkeypatch, oss, viapi):
    body = copy.deepcopy(ViapiEmulator.example("RecognizeTicketInvoice"))
    ticket = body["Data"]["Results"]
    second = copy.deepcopy(ticket)
    second["Index"] = 2
    second["Content"].update(InvoiceNumber="09267582", SumAmount="￥35.50", InvoiceCode="044031860108")
    body["Data"].update(Count=2, Results=[ticket, second])
    viapi.set_response("RecognizeTicketInvoice", body)
    route(monkeypatch, "aliyun.RecognizeTicketInvoice")
    upload(oss, "rolls/two.jpg", image())
    doc = result(oss, "rolls/two.jpg")
    assert doc["status"] == "succeeded", doc.get("error")
    assert [d["index"] for d in doc["documents"]] == [0, 1]
    assert {d["documentType"] for d in doc["documents"]} == {"vat_invoice"}
    first, other = (d["fields"] for d in doc["documents"])
    assert doc["fields"] == first and first["invoiceNumber"] == "9267581"
    assert (other["invoiceNumber"], other["amountWithTax"], other["invoiceCode"]) == ("09267582", "35.50", "044031860108")
    assert doc["raw"]["Data"]["Count"] == 2  # verbatim
    assert len(viapi.requests) == 1


def test_one_roll_ticket_is_one_document(monkeypatch, oss, viapi):
    route(monkeypatch, "aliyun.RecognizeTicketInvoice")
    upload(oss, "rolls/one.jpg", image())
    doc = result(oss, "rolls/one.jpg")
    assert len(doc["documents"]) == 1 and doc["documents"][0]["fields"] == doc["fields"]


def test_several_taxi_receipts_in_one_image(monkeypatch, oss, viapi):
    body = copy.deepcopy(ViapiEmulator.example("RecognizeTaxiInvoice"))
    invoice = body["Data"]["Invoices"][0]
    second = copy.deepcopy(invoice)
    second["Items"][1]["Text"] = "13742574"
    body["Data"]["Invoices"] = [invoice, second]
    viapi.set_response("RecognizeTaxiInvoice", body)
    route(monkeypatch, "aliyun.RecognizeTaxiInvoice")
    upload(oss, "taxi/two.jpg", image())
    doc = result(oss, "taxi/two.jpg")
    assert [d["fields"]["invoiceNumber"] for d in doc["documents"]] == ["13742573", "13742574"]
    assert doc["fields"]["invoiceNumber"] == "13742573"


def test_market_taxi_recipts_array(monkeypatch, oss, market):
    body = copy.deepcopy(market_example("taxi"))
    receipt = body["recipts"][0]
    second = copy.deepcopy(receipt)
    second["items"][0]["txt"] = "142011671004"
    body["recipts"] = [receipt, second]
    market.set_response("taxi", body)
    route(monkeypatch, "market.taxi")
    upload(oss, "taxi/market.jpg", image())
    doc = result(oss, "taxi/market.jpg")
    assert doc["status"] == "succeeded", doc.get("error")
    assert [d["fields"]["invoiceCode"] for d in doc["documents"]] == ["142011671003", "142011671004"]
    assert doc["fields"] == doc["documents"][0]["fields"]
    assert len(market.requests) == 1
