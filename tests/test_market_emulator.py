"""The Alibaba Cloud Market OCR emulator, driven with plain HTTP (requests).

What is checked is the wire contract the product's market recognizer will meet: the gateway's
APPCODE and size rules, the 001 JSON formats (new and old ``inputs``), the 002 multipart form,
the documented example answers with their traps, the documented error statuses, and faults.
"""

import base64
import io
import json
import threading

import oss2
import pytest
import requests
from PIL import Image

from tests.emulators import market as mk
from tests.emulators.market import MarketEmulator
from tests.emulators.oss import OssEmulator

APPCODE = "test-appcode"
AUTH = {"Authorization": "APPCODE " + APPCODE}
JSON_IDS = [api for api in mk.API_PATHS if api != "text"]


def image_bytes(fmt="PNG", size=(24, 16)):
    out = io.BytesIO()
    Image.new("RGB", size, "white").save(out, fmt)
    return out.getvalue()


PNG = image_bytes()
PNG_B64 = base64.b64encode(PNG).decode("ascii")


@pytest.fixture
def market():
    with MarketEmulator(appcode=APPCODE) as emulator:
        yield emulator


def post(market, api, body=None, *, headers=AUTH, **kwargs):
    if body is not None:
        kwargs["data"] = json.dumps(body).encode("utf-8") if not isinstance(body, bytes) else body
    return requests.post(market.url_for(api), headers=headers, timeout=10, **kwargs)


def old_format(image_b64, configure=None):
    item = {"image": {"dataType": 50, "dataValue": image_b64}}
    if configure is not None:
        item["configure"] = {"dataType": 50, "dataValue": json.dumps(configure)}
    return {"inputs": [item]}


def assert_provider_error(response, status, message):
    assert response.status_code == status
    assert response.text == message
    assert response.headers["X-Ca-Error-Message"] == message
    assert "X-Ca-Error-Code" not in response.headers   # only the gateway sets that
    assert response.headers["X-Ca-Request-Id"]


def assert_text_error(response, message):
    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["code"], body["message"]) == (400, 5003, message)
    assert set(body) == {"serialNo", "message", "status", "code"}
    return body


# ---- addresses and the example data ---------------------------------------------------------

def test_ids_and_urls(market):
    assert market.ids == tuple(mk.API_PATHS) and len(market.ids) == 17
    assert market.url_for("idcard") == market.endpoint + "/rest/160601/ocr/ocr_idcard.json"
    assert market.url_for("template").endswith("/api/predict/ocr_sdt")
    assert market.url_for("table").endswith("/api/predict/ocr_table_parse")
    assert len({market.url_for(api) for api in market.ids}) == 17
    with pytest.raises(KeyError):
        market.url_for("nope")


def test_examples_parse_and_keep_the_documented_traps():
    for text in mk.examples().values():
        json.loads(text)   # every stored body is valid JSON
    assert mk.example_text("idcard").count('"nationality"') == 2
    assert mk.example("idcard")["config_str"] == '{\\"side\\":\\"face\\"}'   # over-escaped
    assert mk.example("vehicle-license")["config_str"] == "null\n"
    assert mk.example("vehicle-license", "back")["appproved_passenger_capacity"] == "5人"
    licence = mk.example("business-license")
    assert {"captial", "elbem"} <= set(licence) and licence["qrcode"] == "FailInDetection"
    assert licence["business"] == "FailInRecognition"
    assert mk.example("driver-license")["end_date"] == "6"
    assert mk.example("taxi")["recipts"][0]["rotate_type"] == 0
    assert mk.example("stamp")["result"][0]["text"]["context"] == "北京开单科技有限公司"
    assert "general_text" not in mk.example("stamp")["result"][1]
    assert mk.example("train")["price"] == 14.5
    assert mk.example("vin")["request_id"] == 20171031122455
    assert mk.example("general")["ret"][1]["rect"]["angle"] == 10
    assert mk.example("passport")["line0"].startswith("P0CHN")
    assert "success" not in mk.example("template", "table")
    assert len(mk.example("template", "table")["items"]["table0"]["values"]) == 5
    assert mk.example("table", "xlsx")["tables"].endswith("...")
    text = mk.example("text")
    assert (text["code"], text["status"]) == (0, 200) and len(text["data"]) == 7
    assert text["data"][0]["polygon"][0] == {"y": "619", "x": "526"}
    card = json.loads(mk.example_text("business-card"))
    inner = json.loads(card["outputs"][0]["outputValue"]["dataValue"])
    assert inner["request_id"] == "20160822_32423dfsa23432f" and inner["success"] is True


# ---- good calls -----------------------------------------------------------------------------

@pytest.mark.parametrize("api", JSON_IDS)
def test_every_api_answers_its_documented_example(market, api):
    body = {"image": PNG_B64}
    if api == "template":
        body["configure"] = '{"template_id":"95d551ee-8b2b-4ad0-89a9-ed13417f4a781536146904"}'
    r = post(market, api, body)
    assert r.status_code == 200, r.text
    assert r.content.decode("utf-8") == mk.response_text(api)
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["X-Ca-Request-Id"]
    rec = market.requests[-1]
    assert (rec.id, rec.path, rec.appcode_ok, rec.format, rec.status, rec.error) == (
        api, mk.API_PATHS[api], True, "json", 200, None)
    assert rec.request_id == r.headers["X-Ca-Request-Id"]
    assert rec.images == ({"format": "PNG", "width": 24, "height": 16, "bytes": len(PNG)},)
    assert rec.source == "base64" and rec.inputs == 1
    assert rec.fields["image"] == len(PNG_B64)


def test_old_format_apis_answer_the_inner_document_in_the_new_format(market):
    r = post(market, "business-card", {"image": PNG_B64})
    assert r.json()["name"] == "张三" and r.json()["company"] == ["阿里巴巴", "阿里巴巴有限公司"]
    r = post(market, "bank-card", {"image": PNG_B64})
    assert r.json() == {"card_num": "1234567890123456",
                        "request_id": "20170301160849_918cfcae128fc919ad6d6e3b865d2973",
                        "success": True}


@pytest.mark.parametrize("api,configure,variant", [
    ("idcard", {"side": "face"}, "face"),
    ("idcard", {"side": "back"}, "back"),
    ("driver-license", {"side": "back"}, "back"),
    ("vehicle-license", {"side": "back"}, "back"),
    ("table", {"format": "json", "finance": False, "dir_assure": False, "line_less": False},
     "json"),
    ("table", {"format": "xlsx"}, "xlsx"),
    ("table", {"format": "html"}, "html"),
    ("template", {"template_id": mk.TABLE_TEMPLATE_ID}, "table"),
    ("general", {"min_size": 16, "output_prob": True}, "default"),
    ("plate", {"multi_crop": True}, "default"),
])
def test_configure_selects_the_documented_variant(market, api, configure, variant):
    r = post(market, api, {"image": PNG_B64, "configure": json.dumps(configure)})
    assert r.status_code == 200
    assert r.text == mk.response_text(api, variant)
    assert market.requests[-1].variant == variant


def test_configure_as_a_string_and_as_an_object(market):
    conf = {"side": "back"}
    as_string = post(market, "idcard", {"image": PNG_B64, "configure": json.dumps(conf)})
    as_object = post(market, "idcard", {"image": PNG_B64, "configure": conf})
    assert as_string.json() == as_object.json() == mk.example("idcard", "back")
    first, second = market.requests[-2:]
    assert (first.configure, first.configure_type) == (conf, "string")
    assert (second.configure, second.configure_type) == (conf, "object")
    # The multi-template example sends configure as an object.
    template_list = {"template_list": [
        {"template_id": "fc7b375c-8e98-48ef-81fb-ec3843b2fb371534902155",
         "cond": {"and": [{"or": [{"include": "星巴克"}, {"include": "starbuck"}]},
                          {"exclude": "Costa"}]}},
        {"template_id": "7bc26bd7-41ad-4145-9f5a-4af21b26de9a", "cond": {"include": "costa"}}]}
    r = post(market, "template", {"image": PNG_B64, "configure": template_list})
    assert r.status_code == 200 and r.json() == mk.example("template")
    assert market.requests[-1].configure == template_list


def test_unknown_configure_keys_are_refused_and_recorded(market):
    r = post(market, "general", {"image": PNG_B64, "configure": '{"skip_detection": true}'})
    assert (r.status_code, r.text) == mk.ERRORS["json_runtime"]
    assert market.requests[-1].configure == {"skip_detection": True}
    r = post(market, "passport", {"image": PNG_B64, "configure": '{"side": "face"}'})  # side is not a passport key
    assert r.status_code == 461
    r = post(market, "general", {"image": PNG_B64, "configure": '{"min_size": 8}'})
    assert r.status_code == 200


def test_image_url_in_the_json_format_is_downloaded(market):
    with OssEmulator() as oss:
        oss.create_bucket("in-bucket")
        oss.put("in-bucket", "a.png", PNG)
        bucket = oss2.Bucket(oss2.StsAuth("STS.test-ak", "test-secret", "test-token"),
                             oss.endpoint, "in-bucket")
        url = bucket.sign_url("GET", "a.png", 60)
        r = post(market, "vin", {"image": url})
        assert r.status_code == 200 and r.json() == mk.example("vin")
        assert market.requests[-1].source == "url"
        assert oss.requests[-1].key == "a.png" and oss.requests[-1].status == 200
        r = post(market, "vin", {"image": oss.endpoint + "/in-bucket/missing.png"})
    assert_provider_error(r, *mk.ERRORS["download"])


# ---- the old "inputs" format ----------------------------------------------------------------

def test_inputs_format_round_trip_with_datavalue_decoding(market):
    r = post(market, "idcard", old_format(PNG_B64, {"side": "back"}))
    assert r.status_code == 200
    outputs = r.json()["outputs"]
    assert len(outputs) == 1
    out = outputs[0]
    assert out["outputLabel"] == "ocr_idcard" and out["outputMulti"] == {}
    assert out["outputValue"]["dataType"] == 50
    assert isinstance(out["outputValue"]["dataValue"], str)   # a JSON string to decode again
    assert json.loads(out["outputValue"]["dataValue"]) == mk.example("idcard", "back")
    rec = market.requests[-1]
    assert (rec.format, rec.configure, rec.configure_type, rec.inputs) == (
        "inputs", {"side": "back"}, "string", 1)
    assert rec.fields == {"image": len(PNG_B64), "configure": len('{"side": "back"}')}


def test_inputs_format_answers_one_output_per_input(market):
    body = old_format(PNG_B64, {"side": "face"})
    body["inputs"].append(old_format(PNG_B64, {"side": "back"})["inputs"][0])
    outputs = post(market, "idcard", body).json()["outputs"]
    assert [json.loads(o["outputValue"]["dataValue"]) for o in outputs] == [
        mk.example("idcard", "face"), mk.example("idcard", "back")]
    assert market.requests[-1].inputs == 2 and len(market.requests[-1].images) == 2


@pytest.mark.parametrize("api,label", [("business-card", "ocr_businesscard"),
                                       ("bank-card", "ocr_bankcard")])
def test_documented_old_format_apis_answer_the_documented_outputs(market, api, label):
    r = post(market, api, old_format(PNG_B64))
    assert r.text == mk.example_text(api)   # byte for byte the seed's document
    out = r.json()["outputs"][0]
    assert out["outputLabel"] == label
    assert json.loads(out["outputValue"]["dataValue"]) == mk.example(api)
    two = post(market, api, {"inputs": old_format(PNG_B64)["inputs"] * 2}).json()["outputs"]
    assert len(two) == 2 and two[0] == out


@pytest.mark.parametrize("body,kind", [
    ({"inputs": {"image": "x"}}, "inputs_not_array"),
    ({"inputs": None}, "missing_inputs"),
    ({"inputs": []}, "json_runtime"),
    ({"inputs": [{"configure": {"dataType": 50, "dataValue": "{}"}}]}, "missing_image"),
    ({"inputs": [{"image": PNG_B64}]}, "image_format"),
    ({"inputs": [{"image": {"dataValue": PNG_B64}}]}, "image_format"),
    ({"inputs": [{"image": {"dataType": 10, "dataValue": PNG_B64}}]}, "image_format"),
    ({"inputs": [{"image": {"dataType": 50, "dataValue": 5}}]}, "image_datavalue"),
    ({"inputs": [{"image": {"dataType": 50, "dataValue": PNG_B64},
                  "configure": '{"side":"face"}'}]}, "configure_format"),
    ({"inputs": [{"image": {"dataType": 50, "dataValue": PNG_B64},
                  "configure": {"dataType": 50, "dataValue": {"side": "face"}}}]},
     "configure_format"),
])
def test_inputs_format_errors(market, body, kind):
    assert_provider_error(post(market, "idcard", body), *mk.ERRORS[kind])


# ---- 001 request errors ---------------------------------------------------------------------

def test_data_uri_prefix_is_refused_by_001(market):
    r = post(market, "idcard", {"image": "data:image/png;base64," + PNG_B64})
    assert_provider_error(r, 462, "Invalid Input - image data error - please remove additional "
                                  "header: data:image/jpg:base64,")
    assert market.requests[-1].error == mk.ERRORS["data_prefix"][1]


def test_base64_length_must_be_a_multiple_of_four(market):
    r = post(market, "general", {"image": PNG_B64.rstrip("=")[:-1]})
    assert_provider_error(r, 462, "Invalid Input - image data error - base64decode error: "
                                  "incorrect padding in base64 string")


@pytest.mark.parametrize("image,kind", [
    ("", "empty_image"),
    ("abc$" * 4, "base64_chars"),
    (base64.encodebytes(PNG).decode("ascii"), "base64_chars"),       # line breaks
    (base64.urlsafe_b64encode(b"\xfb\xff" * 30).decode("ascii"), "base64_chars"),
    ("ab=c", "base64"),
    (base64.b64encode(b"not an image at all").decode("ascii"), "decode"),
    (base64.b64encode(PNG[:60]).decode("ascii"), "decode"),          # truncated PNG
    (base64.b64encode(image_bytes("WEBP")).decode("ascii"), "decode"),   # not a listed format
    (base64.b64encode(b"GIF89a" + b"\0" * 20).decode("ascii"), "gif_open"),
])
def test_image_errors(market, image, kind):
    assert_provider_error(post(market, "passport", {"image": image}), *mk.ERRORS[kind])


@pytest.mark.parametrize("fmt", ["JPEG", "BMP", "GIF", "TIFF", "PPM"])
def test_documented_image_formats_are_accepted(market, fmt):
    r = post(market, "train", {"image": base64.b64encode(image_bytes(fmt)).decode("ascii")})
    assert r.status_code == 200
    assert market.requests[-1].images[0]["format"] == fmt


@pytest.mark.parametrize("body,kind,detail", [
    (b"{not json", "bad_json", ""),
    (b"\xff\xfe", "bad_json", ""),
    ([1, 2], "json_runtime", ""),
    ({"img": PNG_B64}, "missing_image", ""),
    ({"image": 12}, "image_format", ""),
    ({"image": PNG_B64, "configure": "{side:face}"}, "bad_configure", "{side:face}"),
    ({"image": PNG_B64, "configure": 5}, "json_runtime", ""),
    ({"image": PNG_B64, "configure": '"face"'}, "json_runtime", ""),
    ({"image": PNG_B64, "configure": '{"side":"front"}'}, "json_runtime", ""),
])
def test_json_errors(market, body, kind, detail):
    status, message = mk.ERRORS[kind]
    assert_provider_error(post(market, "idcard", body), status, message + detail)


def test_configure_values_are_checked_where_documented(market):
    bad = [("general", {"min_size": "16"}), ("general", {"output_prob": "true"}),
           ("table", {"format": "csv"}), ("table", {"finance": 1}), ("plate", {"multi_crop": 0})]
    for api, conf in bad:
        assert_provider_error(post(market, api, {"image": PNG_B64, "configure": conf}),
                              *mk.ERRORS["json_runtime"])


def test_template_errors():
    with MarketEmulator(known_templates={mk.TABLE_TEMPLATE_ID}) as market:
        assert_provider_error(post(market, "template", {"image": PNG_B64}),
                              *mk.ERRORS["no_template"])
        r = post(market, "template", {"image": PNG_B64, "configure": {"template_id": "other"}})
        assert_provider_error(r, *mk.ERRORS["unknown_template"])
        r = post(market, "template", {"image": PNG_B64,
                                      "configure": {"template_id": mk.TABLE_TEMPLATE_ID}})
        assert r.json() == mk.example("template", "table")


# ---- the gateway ----------------------------------------------------------------------------

@pytest.mark.parametrize("api", ["idcard", "text"])
def test_missing_or_wrong_appcode(market, api):
    for headers in ({}, {"Authorization": "Bearer " + APPCODE}, {"Authorization": APPCODE}):
        r = post(market, api, {"image": PNG_B64}, headers=headers)
        assert r.status_code == mk.MISSING_APPCODE[0] == 401
        assert r.headers["X-Ca-Error-Message"] == mk.MISSING_APPCODE[1]
        assert r.headers["X-Ca-Request-Id"] and r.content == b""
    for code in ("other-code", APPCODE + " ", APPCODE.upper()):
        r = post(market, api, {"image": PNG_B64}, headers={"Authorization": "APPCODE " + code})
        assert r.status_code == 400
        assert r.headers["X-Ca-Error-Message"] == "Invalid AppCode `not exists`"
    assert all(not rec.appcode_ok and rec.format is None for rec in market.requests)
    assert market.requests[-1].id == api


def test_unknown_path_or_method_is_an_invalid_url(market):
    r = requests.post(market.endpoint + "/rest/160601/ocr/nope.json", headers=AUTH, timeout=10)
    assert r.status_code == 400 and r.headers["X-Ca-Error-Message"] == "Invalid Url"
    assert market.requests[-1].id is None
    r = requests.get(market.url_for("idcard"), headers=AUTH, timeout=10)
    assert r.status_code == 400 and r.headers["X-Ca-Error-Message"] == "Invalid Url"
    assert r.headers["X-Ca-Request-Id"]


def test_request_too_large_is_413_before_the_appcode_check():
    with MarketEmulator(max_body=2000) as market:
        body = {"image": base64.b64encode(image_bytes("BMP", (40, 40))).decode("ascii")}
        assert len(json.dumps(body)) > 2000
        r = post(market, "idcard", body, headers={})
        assert r.status_code == 413
        assert "413 Request Entity Too Large" in r.text and "Tengine" in r.text
        assert r.headers["X-Ca-Error-Code"] == "I413RL"
        assert r.headers["X-Ca-Request-Id"]
        assert post(market, "idcard", {"image": PNG_B64}).status_code == 200


def test_text_api_refuses_requests_over_2_mb(market):
    big = b"\0" * (mk.TEXT_MAX_BODY + 1)
    r = post(market, "text", files={"file": ("big.png", big, "image/png")})
    assert r.status_code == 413 and r.headers["X-Ca-Error-Code"] == "I413RL"
    assert market.requests[-1].body_bytes > mk.TEXT_MAX_BODY
    # ...while an 001 API takes the same body (its default cap is 8 MB).
    r = post(market, "idcard", {"image": base64.b64encode(big[:1_600_000]).decode()})
    assert r.status_code == 462


# ---- 002: the multipart text API ------------------------------------------------------------

def test_text_with_a_file_part(market):
    r = post(market, "text", files={"file": ("a.png", PNG, "image/png")})
    assert r.status_code == 200
    assert r.text == mk.example_text("text")
    body = r.json()
    assert (body["code"], body["status"], body["message"]) == (0, 200, "success")
    rec = market.requests[-1]
    assert (rec.format, rec.source, rec.fields) == ("multipart", "file", {"file": len(PNG)})
    assert rec.content_type.startswith("multipart/form-data; boundary=")


def test_text_with_img_base64_needs_the_data_uri_prefix(market):
    value = "data:image/png;base64," + PNG_B64
    r = post(market, "text", files={"imgBase64": (None, value)})
    assert r.status_code == 200 and r.json() == mk.example("text")
    assert market.requests[-1].fields == {"imgBase64": len(value)}
    r = post(market, "text", files={"imgBase64": (None, PNG_B64)})
    assert_text_error(r, "imgBase64需要包含data:image/png;base64,前缀")
    r = post(market, "text", files={"imgBase64": (None, "data:image/png;base64,%%%")})
    assert_text_error(r, "imgBase64不是合法的base64编码")


def test_text_with_img_url_from_oss(market):
    with OssEmulator() as oss:
        oss.create_bucket("in-bucket")
        oss.put("in-bucket", "scan/a.png", PNG)
        bucket = oss2.Bucket(oss2.StsAuth("STS.test-ak", "test-secret", "test-token"),
                             oss.endpoint, "in-bucket")
        url = bucket.sign_url("GET", "scan/a.png", 60)
        r = post(market, "text", files={"imgUrl": (None, url)})
        assert r.status_code == 200 and r.json() == mk.example("text")
        assert market.requests[-1].source == "imgUrl"
        assert oss.requests[-1].key == "scan/a.png" and oss.requests[-1].auth == "presign-v1"
        # An unsigned URL to a private bucket does not download.
        r = post(market, "text", files={"imgUrl": (None, oss.endpoint + "/in-bucket/scan/a.png")})
        body = assert_text_error(r, r.json()["message"])
        assert body["message"].startswith("图片下载失败") and "403" in body["message"]


def test_text_input_priority_is_img_url_then_file_then_img_base64(market):
    bad_b64 = (None, PNG_B64)                    # no data: prefix: unusable if it were used
    bad_file = ("a.png", b"not an image", "image/png")
    with OssEmulator() as oss:
        oss.create_bucket("in-bucket")
        oss.put("in-bucket", "a.png", PNG)
        bucket = oss2.Bucket(oss2.StsAuth("STS.test-ak", "test-secret", "test-token"),
                             oss.endpoint, "in-bucket")
        url = bucket.sign_url("GET", "a.png", 60)
        r = post(market, "text", files=[("imgBase64", bad_b64), ("file", bad_file),
                                        ("imgUrl", (None, url))])
    assert r.status_code == 200 and market.requests[-1].source == "imgUrl"
    assert set(market.requests[-1].fields) == {"imgBase64", "file", "imgUrl"}
    r = post(market, "text", files=[("imgBase64", bad_b64), ("file", ("a.png", PNG, "image/png"))])
    assert r.status_code == 200 and market.requests[-1].source == "file"
    r = post(market, "text", files=[("imgBase64", (None, "data:image/png;base64," + PNG_B64)),
                                    ("file", bad_file)])
    assert_text_error(r, "图片解码失败")          # the file won, and it is not an image
    assert market.requests[-1].source == "file"


def test_text_without_an_image_answers_the_documented_failure(market):
    r = post(market, "text", files={"other": (None, "x")})
    assert r.status_code == 400
    assert r.text == mk.example_text("text", "error")
    assert r.json() == {"serialNo": "343765566521698769", "message": "图片内容为空",
                        "status": 400, "code": 5003}
    assert_text_error(post(market, "text", files={"file": ("a.png", b"", "image/png")}),
                      "图片内容为空")
    r = post(market, "text", {"image": PNG_B64})   # JSON is not what this API takes
    assert_text_error(r, "请求体格式应为multipart/form-data")
    assert market.requests[-1].format is None


# ---- set_response ---------------------------------------------------------------------------

def test_set_response_overrides_and_wraps_for_the_inputs_format(market):
    market.set_response("idcard", {"success": False, "num": "NoResult"})
    r = post(market, "idcard", {"image": PNG_B64})
    assert r.json() == {"success": False, "num": "NoResult"}
    outputs = post(market, "idcard", old_format(PNG_B64)).json()["outputs"]
    assert json.loads(outputs[0]["outputValue"]["dataValue"]) == {"success": False,
                                                                  "num": "NoResult"}
    market.set_response("idcard", "Invalid Result - xxx", status=464,
                        headers={"X-Ca-Error-Message": "Invalid Result - xxx"})
    r = post(market, "idcard", {"image": PNG_B64})
    assert (r.status_code, r.text, r.headers["X-Ca-Error-Message"]) == (
        464, "Invalid Result - xxx", "Invalid Result - xxx")
    # Still validated first, and other APIs keep their examples.
    assert post(market, "idcard", {"image": "data:x"}).status_code == 462
    assert post(market, "general", {"image": PNG_B64}).json() == mk.example("general")
    market.set_response("idcard", None)
    assert post(market, "idcard", {"image": PNG_B64}).json() == mk.example("idcard")
    market.set_response("text", '{"code": 0, "status": 200, "data": []}')
    assert post(market, "text", files={"file": ("a.png", PNG)}).json()["data"] == []


# ---- faults ---------------------------------------------------------------------------------

@pytest.mark.parametrize("status,message", [
    (403, "Quota Exhausted"), (429, "Throttled by APP Flow Control"), (500, "Internal Error"),
    (502, "Bad Gateway"), (503, "Service Unavailable"),
])
def test_status_faults_look_like_the_gateway(market, status, message):
    market.inject_fault("idcard", status=status)
    r = post(market, "idcard", {"image": PNG_B64})
    assert (r.status_code, r.headers["X-Ca-Error-Message"], r.content) == (status, message, b"")
    assert r.headers["X-Ca-Request-Id"]
    assert market.requests[-1].fault == "status" and market.requests[-1].appcode_ok
    assert post(market, "idcard", {"image": PNG_B64}).status_code == 200   # times=1


def test_status_fault_options(market):
    market.inject_fault("general", status=403, times=2,
                        headers={"X-Ca-Error-Message": "Api Market Subscription quota exhausted"})
    assert post(market, "idcard", {"image": PNG_B64}).status_code == 200   # another API
    for _ in range(2):
        r = post(market, "general", {"image": PNG_B64})
        assert r.headers["X-Ca-Error-Message"] == "Api Market Subscription quota exhausted"
    assert post(market, "general", {"image": PNG_B64}).status_code == 200
    market.inject_fault(status=413)
    r = post(market, "vin", {"image": PNG_B64})
    assert r.status_code == 413 and "Tengine" in r.text
    market.inject_fault("stamp", status=463)
    assert_provider_error(post(market, "stamp", {"image": PNG_B64}), *mk.ERRORS["wrong_category"])
    market.inject_fault("text", status=400)
    r = post(market, "text", files={"file": ("a.png", PNG)})
    assert r.status_code == 400 and r.json()["code"] == 5003
    market.inject_fault("text", status=402, body={"status": 402, "message": "次数不足"})
    r = post(market, "text", files={"file": ("a.png", PNG)})
    assert r.status_code == 402 and r.json() == {"status": 402, "message": "次数不足"}
    market.inject_fault(status=500)
    market.clear_faults()
    assert post(market, "vin", {"image": PNG_B64}).status_code == 200


def test_faults_do_not_fire_before_authentication(market):
    market.inject_fault(status=503)
    assert post(market, "idcard", {"image": PNG_B64}, headers={}).status_code == 401
    assert post(market, "idcard", {"image": PNG_B64}).status_code == 503


def test_drop_fault_closes_the_connection(market):
    market.inject_fault("idcard", kind="drop")
    with pytest.raises(requests.ConnectionError):
        post(market, "idcard", {"image": PNG_B64})
    assert market.requests[-1].status == 0 and market.requests[-1].fault == "drop"
    assert post(market, "idcard", {"image": PNG_B64}).status_code == 200


def test_malformed_fault_is_a_200_that_is_not_json(market):
    market.inject_fault("plate", kind="malformed")
    r = post(market, "plate", {"image": PNG_B64})
    assert r.status_code == 200
    assert mk.response_text("plate").startswith(r.text)
    with pytest.raises(ValueError):
        r.json()
    market.inject_fault("text", kind="malformed", body="<html>busy</html>")
    assert post(market, "text", files={"file": ("a.png", PNG)}).text == "<html>busy</html>"


def test_delay_fault_holds_until_released(market):
    market.inject_fault("idcard", kind="delay")     # no delay: until release_delayed()
    result = {}

    def call():
        result["r"] = post(market, "idcard", {"image": PNG_B64})

    worker = threading.Thread(target=call)
    worker.start()
    assert market.delay_started.wait(5)
    assert "r" not in result
    market.release_delayed()
    worker.join(5)
    assert result["r"].status_code == 200 and result["r"].json() == mk.example("idcard")
    assert market.requests[-1].fault == "delay"


def test_delay_fault_trips_a_client_timeout(market):
    market.inject_fault("text", kind="delay", delay=30)
    with pytest.raises(requests.Timeout):
        requests.post(market.url_for("text"), headers=AUTH, files={"file": ("a.png", PNG)},
                      timeout=0.3)
    assert market.delay_started.is_set()
    market.release_delayed()


def test_stop_releases_held_requests():
    market = MarketEmulator().start()
    market.inject_fault(kind="delay")
    outcome = {}

    def call():
        try:
            outcome["status"] = post(market, "vin", {"image": PNG_B64}).status_code
        except requests.ConnectionError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=call)
    worker.start()
    assert market.delay_started.wait(5)
    market.stop()
    worker.join(5)
    assert not worker.is_alive()
    assert "error" in outcome and "status" not in outcome   # dropped, not answered


def test_inject_fault_rejects_bad_arguments(market):
    with pytest.raises(ValueError):
        market.inject_fault(kind="explode")
    with pytest.raises(ValueError):
        market.inject_fault(times=0)
    with pytest.raises(KeyError):
        market.inject_fault("nope")
