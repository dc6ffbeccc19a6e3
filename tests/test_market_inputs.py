"""market.* inputs as seeds 001 and 002 offer them: the text API's three input modes, 002's 2 MB request limit,
001's formats sent as they are, and 001's recompression only after the gateway refuses a size (413)."""

from __future__ import annotations

import base64
import io
from types import SimpleNamespace

import pytest
from PIL import Image

from fcocr import pipeline
from fcocr.errors import ConfigError
from fcocr.events import oss_event
from fcocr.recognizers import market as market_family

from .cloud import image, market_emulator, result, route, upload
from .conftest import event_bytes, load_function, put_local, read_result

MiB = 1024 * 1024


@pytest.fixture
def market(monkeypatch):
    with market_emulator(monkeypatch) as emulator:
        yield emulator


def run(monkeypatch, oss, market_id, data, options=None, key="market/in.jpg"):
    route(monkeypatch, f"market.{market_id}", options)
    out = upload(oss, key, data)
    return out["records"][0], result(oss, key)


def photo(size, quality=97) -> bytes:
    return image(size, noise=True, quality=quality)


@pytest.mark.parametrize("mode,source", [("file", "file"), ("base64", "imgBase64"), ("url", "imgUrl")])
def test_the_text_api_takes_each_input_mode_a_route_asks_for(monkeypatch, oss, market, mode, source):
    data = image((640, 480))
    record, doc = run(monkeypatch, oss, "text", data, {"input": mode})
    assert record["status"] == "succeeded", doc.get("error")
    [call] = market.requests
    assert call.source == source and set(call.fields) == {source}
    assert call.images[0]["bytes"] == len(data)  # the original, whichever way it travelled
    assert doc["lines"][0]["text"] == "姓名罗芳" and not doc.get("warnings")
    if mode == "url":  # the provider fetched the object itself, with a presigned GET
        assert [r.key for r in oss.requests if r.auth.startswith("presign")] == ["market/in.jpg"]


def test_auto_sends_small_images_as_a_file_and_large_originals_as_a_url(monkeypatch, oss, market):
    small = image((640, 480))
    assert len(small) < market_family.URL_FROM_BYTES
    run(monkeypatch, oss, "text", small)
    big = photo((1400, 1000))
    assert market_family.URL_FROM_BYTES <= len(big) < 2 * MiB
    _, doc = run(monkeypatch, oss, "text", big, key="market/big.jpg")
    assert [r.source for r in market.requests] == ["file", "imgUrl"]
    assert doc["status"] == "succeeded" and not doc.get("warnings")


def test_a_url_carries_an_original_over_the_2_mb_request_limit_without_recompression(monkeypatch, oss, market):
    big = photo((2000, 1500))
    assert len(big) > 2 * MiB
    _, doc = run(monkeypatch, oss, "text", big, {"input": "url"})
    [call] = market.requests
    assert doc["status"] == "succeeded" and call.source == "imgUrl" and call.images[0]["bytes"] == len(big)


@pytest.mark.parametrize("mode", ["file", "base64"])
def test_002_requests_are_kept_under_2_mb_before_sending(monkeypatch, oss, market, mode):
    big = photo((2000, 1500))
    assert len(big) > 2 * MiB
    _, doc = run(monkeypatch, oss, "text", big, {"input": mode})
    [call] = market.requests  # one call: no 413 round trip for a documented limit
    assert doc["status"] == "succeeded" and call.status == 200 and call.body_bytes <= 2 * MiB
    assert call.images[0]["format"] == "JPEG" and call.images[0]["bytes"] < len(big)
    [warning] = doc["warnings"]
    assert warning.startswith(f"recompressed from {len(big)} to ") and "over the API's" in warning


def test_a_base64_image_that_fits_only_as_a_file_is_recompressed(monkeypatch, oss, market):
    data = photo((1500, 1100), quality=95)
    assert 3 * MiB // 2 < len(data) < 2 * MiB - 16 * 1024  # fits as a file part, not once base64 grows it by 4/3
    _, as_file = run(monkeypatch, oss, "text", data, {"input": "file"}, key="market/f.jpg")
    _, as_b64 = run(monkeypatch, oss, "text", data, {"input": "base64"}, key="market/b.jpg")
    assert [r.images[0]["bytes"] == len(data) for r in market.requests] == [True, False]
    assert not as_file.get("warnings") and as_b64["warnings"]


def test_url_is_refused_in_local_mode_before_any_call_and_auto_falls_back_to_a_file(local_root, monkeypatch, market):
    handler = load_function("ocr_upload").handler
    ctx = SimpleNamespace(request_id="req-1", credentials=None, function=SimpleNamespace(name="ocr_upload", timeout=60))
    big = photo((1400, 1000))
    for key, mode in (("url.jpg", "url"), ("auto.jpg", "auto")):
        route(monkeypatch, "market.text", {"input": mode})
        put_local(local_root, key, big)
        handler(event_bytes(oss_event("bucket", key)), ctx)
        pipeline.reset_app()
    failed, done = read_result(local_root, "url.jpg"), read_result(local_root, "auto.jpg")
    assert failed["status"] == "failed" and failed["error"]["code"] == "PresignUnsupported"
    assert done["status"] == "succeeded" and [r.source for r in market.requests] == ["file"]


def test_an_unknown_input_mode_is_a_configuration_error(monkeypatch, oss, market):
    with pytest.raises(ConfigError, match="option 'input' must be one of"):
        run(monkeypatch, oss, "text", image((640, 480)), {"input": "ftp"})
    assert not market.requests


def _encoded(fmt: str, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (400, 300), "white" if mode != "1" else 1).save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt,mode,pillow", [("JPEG2000", "RGB", "JPEG2000"), ("PPM", "RGB", "PPM"),
                                             ("PPM", "L", "PPM"), ("PPM", "1", "PPM")])
def test_001_formats_are_sent_as_they_are_and_converted_for_the_text_api(monkeypatch, oss, market, fmt, mode, pillow):
    data = _encoded(fmt, mode)
    _, doc = run(monkeypatch, oss, "vin", data, key=f"market/in.{fmt.lower()}")
    assert doc["status"] == "succeeded", doc.get("error")
    assert market.requests[-1].images[0]["format"] == pillow and not doc.get("warnings")
    _, text = run(monkeypatch, oss, "text", data, key=f"market/text.{fmt.lower()}")
    assert text["status"] == "succeeded" and market.requests[-1].images[0]["format"] == "JPEG"
    assert text["warnings"] == [f"converted from {'JP2' if fmt == 'JPEG2000' else 'PNM'}"]


def test_001_sends_the_original_and_recompresses_only_after_a_413_which_it_remembers(monkeypatch, oss, market):
    market.max_body = 4 * MiB  # this gateway's limit: the seed names none
    big = photo((2400, 1800))
    assert 3 * MiB < len(big) * 4 // 3  # its base64 body is over the limit
    medium = photo((1400, 1000))
    assert 3 * MiB // 2 < len(medium) < 2 * MiB  # over 001's advice, under this gateway's limit

    _, first = run(monkeypatch, oss, "vin", big, key="market/1.jpg")
    refused, sent = market.requests
    assert refused.status == 413 and refused.body_bytes > 4 * MiB and not refused.appcode_ok  # not billed
    assert sent.status == 200 and sent.images[0]["bytes"] <= 3 * MiB // 2
    assert first["status"] == "succeeded" and first["billedCalls"] == {"market.vin": 1}
    assert first["warnings"] == [w for w in first["warnings"] if "413, not billed" in w] and first["warnings"]

    _, second = run(monkeypatch, oss, "vin", big, key="market/2.jpg")
    assert len(market.requests) == 3 and market.requests[-1].status == 200  # the refused size is remembered
    assert "over the API's" in second["warnings"][0]

    _, third = run(monkeypatch, oss, "vin", medium, key="market/3.jpg")
    assert len(market.requests) == 4 and market.requests[-1].images[0]["bytes"] == len(medium)  # not shrunk
    assert not third.get("warnings")


def test_a_413_after_recompression_is_a_plain_failure(monkeypatch, oss, market):
    market.max_body = 64 * 1024
    _, doc = run(monkeypatch, oss, "plate", photo((1400, 1000)), key="market/tiny-limit.jpg")
    assert doc["status"] == "failed" and doc["error"]["code"] == "Market.413"
    assert [r.status for r in market.requests] == [413, 413]  # one retry at a smaller size, never more


def test_the_request_overhead_the_client_allows_for_covers_what_requests_adds():
    import requests

    data = b"x" * 1000
    for how, part in (("file", {"file": ("page1.jpeg", data, "image/jpeg")}),
                      ("base64", {"imgBase64": (None, "data:image/jpeg;base64," + base64.b64encode(data).decode())})):
        body = requests.Request("POST", "http://127.0.0.1/", files=part).prepare().body
        payload = len(data) if how == "file" else len(part["imgBase64"][1])
        assert len(body) - payload < market_family.REQUEST_OVERHEAD


def test_pages_of_a_pdf_go_as_file_parts_when_the_route_asks_for_urls(monkeypatch, oss, market):
    from .cloud import pdf

    _, doc = run(monkeypatch, oss, "text", pdf(2), {"input": "url"}, key="market/pages.pdf")
    assert doc["status"] == "succeeded" and [r.source for r in market.requests] == ["file", "file"]
    sent_as_files = [w for w in doc["warnings"] if "sent as a file part" in w]
    assert sent_as_files == [f"page {n}: sent as a file part: only the stored object itself has a URL" for n in (1, 2)]


def test_jpeg_2000_codestreams_and_netpbm_headers_are_recognized_by_content():
    from fcocr.imaging import sniff_format

    out = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(out, "JPEG2000", no_jp2=True)  # a bare .j2k codestream
    assert sniff_format(out.getvalue()) == "jp2" and sniff_format(_encoded("JPEG2000")) == "jp2"
    assert [sniff_format(b"P%d\n4 4\n" % n) for n in range(1, 7)] == ["pnm"] * 6
    assert sniff_format(b"P7\n") is None and sniff_format(b"Plain text") is None
