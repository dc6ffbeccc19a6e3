"""market.<id> end to end: the real handler, requests with the APPCODE header, the market emulator checking it."""

from __future__ import annotations

import json

import pytest

from fcocr.errors import TransientError
from fcocr.recognizers.market import IDS as MARKET_IDS
from fcocr.recognizers.market import url_variable as market_url_variable

from .cloud import image, market_emulator, pdf, result, route, upload
from .emulators import market as market_wire


@pytest.fixture
def market(monkeypatch, oss):
    with market_emulator(monkeypatch) as emulator:
        yield emulator


def run(monkeypatch, oss, market_id, options=None, data=None, key=None):
    route(monkeypatch, f"market.{market_id}", options)
    key = key or f"market/{market_id}.jpg"
    out = upload(oss, key, data or image())
    return out["records"][0], result(oss, key)


@pytest.mark.parametrize("market_id", MARKET_IDS)
def test_every_market_api_answers_through_the_handler_and_keeps_the_raw_answer(monkeypatch, oss, market, market_id):
    options = {"template_id": "95d551ee-8b2b-4ad0-89a9-ed13417f4a781536146904"} if market_id == "template" else None
    record, doc = run(monkeypatch, oss, market_id, options)
    assert record["status"] == "succeeded", doc.get("error")
    [call] = market.requests
    assert call.appcode_ok and call.id == market_id and call.status == 200
    expected_format = {"bank-card": "inputs", "business-card": "inputs", "text": "multipart"}.get(market_id, "json")
    assert call.format == expected_format
    body = json.loads(market_wire.response_text(market_id, call.variant, format=call.format))
    assert doc["raw"] == body  # verbatim, typos and all
    assert doc.get("fields") or doc.get("lines")


def test_id_card_both_sides(monkeypatch, oss, market):
    _, face = run(monkeypatch, oss, "idcard")
    assert face["documentType"] == "idcard"
    assert face["fields"]["side"] == "front" and face["fields"]["idNumber"] == "1234567890"
    assert face["fields"]["birthDate"] == "2000-01-01" and face["fields"]["ethnicity"] == "汉"
    assert market.requests[-1].configure == {"side": "face"} and market.requests[-1].configure_type == "string"
    _, back = run(monkeypatch, oss, "idcard", {"side": "back"}, key="market/back.jpg")
    assert back["fields"]["side"] == "back" and back["fields"]["issueAuthority"] == "杭州市公安局"
    assert (back["fields"]["validFrom"], back["fields"]["validTo"]) == ("1970-01-01", "1980-01-01")


def test_typo_keys_and_sentinels_map_onto_the_normalized_fields(monkeypatch, oss, market):
    _, licence = run(monkeypatch, oss, "business-license")
    fields = licence["fields"]
    assert fields["registeredCapital"] == "壹佰万元整"  # from the wire key "captial"
    assert fields["businessScope"] is None  # "FailInRecognition"
    assert (fields["establishDate"], fields["validTo"]) == ("2014-04-16", "2034-04-15")
    _, vehicle = run(monkeypatch, oss, "vehicle-license", {"side": "back"}, key="market/vback.jpg")
    assert vehicle["fields"]["approvedPassengers"] == "5人"  # "appproved_passenger_capacity"
    _, driver = run(monkeypatch, oss, "driver-license", key="market/driver.jpg")
    assert driver["fields"]["validPeriod"] == "6" and driver["fields"]["validTo"] is None  # a duration, not a date


def test_legacy_inputs_format_is_decoded_twice(monkeypatch, oss, market):
    _, doc = run(monkeypatch, oss, "bank-card")
    assert doc["fields"]["cardNumber"] == "1234567890123456"
    assert doc["raw"]["outputs"][0]["outputValue"]["dataType"] == 50


def test_unlabelled_taxi_and_number_typed_train_fields(monkeypatch, oss, market):
    _, taxi = run(monkeypatch, oss, "taxi")
    assert taxi["fields"]["invoiceCode"] == "142011671003" and taxi["fields"]["plateNumber"] == "A-X9F99"
    _, train = run(monkeypatch, oss, "train", key="market/train.jpg")
    assert train["fields"]["price"] == "14.5" and train["fields"]["departureStation"] == "高密"


def test_text_lines_from_the_multipart_api_and_general_configure(monkeypatch, oss, market):
    _, text = run(monkeypatch, oss, "text")
    assert text["lines"][0]["text"] == "姓名罗芳" and text["lines"][0]["confidence"] == 99
    assert text["lines"][0]["polygon"][0] == [526.0, 619.0]  # numbers sent as strings
    assert market.requests[-1].fields.keys() == {"file"}
    _, general = run(monkeypatch, oss, "general", {"min_size": 20}, key="market/general.jpg")
    assert general["lines"][0]["text"] == "文字内容" and general["lines"][0]["confidence"] == pytest.approx(95.98, 0.01)
    assert market.requests[-1].configure == {"min_size": 20, "output_prob": True}


def test_a_pdf_is_sent_page_by_page(monkeypatch, oss, market):
    _, doc = run(monkeypatch, oss, "train", data=pdf(2), key="market/tickets.pdf")
    assert doc["status"] == "succeeded" and [p["index"] for p in doc["pages"]] == [0, 1]
    assert len(market.requests) == 2 and all(r.images[0]["format"] == "JPEG" for r in market.requests)


def test_configuration_errors_are_clear_failed_results(monkeypatch, oss, market):
    monkeypatch.delenv(market_url_variable("plate"))
    _, doc = run(monkeypatch, oss, "plate")
    assert doc["error"]["code"] == "Market.NotConfigured" and "FCOCR_MARKET_URL_PLATE" in doc["error"]["message"]
    monkeypatch.setenv("ALIYUN_MARKET_APPCODE", "wrong-code")
    _, doc = run(monkeypatch, oss, "vin", key="market/wrong.jpg")
    assert doc["status"] == "failed" and doc["error"]["retryable"] is False
    assert "Invalid AppCode" in doc["error"]["vendorMessage"] and market.requests[-1].appcode_ok is False


@pytest.mark.parametrize("status,retried", [(450, True), (429, True), (502, True), (413, True), (403, False), (464, False)])
def test_gateway_and_provider_statuses(monkeypatch, oss, market, status, retried):
    market.inject_fault("vin", kind="status", status=status, times=1)
    record, doc = run(monkeypatch, oss, "vin")
    if retried:
        assert record["status"] == "succeeded" and len(market.requests) == 2
    else:
        assert record["status"] == "failed" and len(market.requests) == 1
        assert doc["error"]["code"] == f"Market.{status}" and doc["error"]["vendorRequestId"]


def test_persistent_server_errors_leave_a_retryable_failure_and_raise(monkeypatch, oss, market):
    market.inject_fault("vin", kind="status", status=503, times=10)
    with pytest.raises(TransientError):
        run(monkeypatch, oss, "vin")
    assert result(oss, "market/vin.jpg")["error"]["retryable"] is True and len(market.requests) == 4


def test_success_false_and_002_business_errors_are_failures(monkeypatch, oss, market):
    market.set_response("vin", {"success": False, "request_id": "r-1"})
    _, doc = run(monkeypatch, oss, "vin")
    assert doc["error"]["code"] == "Market.NotRecognized"
    market.set_response("text", {"serialNo": "343765566521698769", "message": "图片内容为空", "status": 400, "code": 5003})
    _, doc = run(monkeypatch, oss, "text")
    assert doc["status"] == "failed" and doc["error"]["vendorCode"] == "5003"
    assert doc["error"]["vendorMessage"] == "图片内容为空"


def test_a_template_route_without_a_template_is_refused_before_any_call(monkeypatch, oss, market):
    _, doc = run(monkeypatch, oss, "template")
    assert doc["error"]["code"] == "Market.TemplateNotSet" and not market.requests


VARIANT_OPTIONS = {
    ("idcard", "back"): {"side": "back"}, ("driver-license", "back"): {"side": "back"},
    ("vehicle-license", "back"): {"side": "back"}, ("template", "default"): {"template_id": "95d551ee-8b2b"},
    ("template", "table"): {"template_id": market_wire.TABLE_TEMPLATE_ID},
    ("table", "html"): {"format": "html"}, ("table", "xlsx"): {"format": "xlsx"}, ("table", "json"): {"format": "json"},
}


@pytest.mark.parametrize("market_id,variant", [k for k in market_wire.examples() if k[1] != "error"])
def test_every_documented_example_becomes_a_result_without_loss(monkeypatch, oss, market, market_id, variant):
    record, doc = run(monkeypatch, oss, market_id, VARIANT_OPTIONS.get((market_id, variant)),
                      key=f"market/{market_id}-{variant}.jpg")
    assert record["status"] == "succeeded", doc.get("error")
    call = market.requests[-1]
    assert call.variant == variant
    assert doc["raw"] == json.loads(market_wire.response_text(market_id, variant, format=call.format))
    if doc.get("documentType"):
        assert any(v not in (None, [], "") for k, v in doc["fields"].items() if k != "side")
