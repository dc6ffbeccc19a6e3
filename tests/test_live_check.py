"""make live-check without credentials, and its comparison against the emulators: a second market emulator plays
the real service (no test ever calls a real one)."""

from __future__ import annotations

import io
import os

from fcocr.recognizers.market import url_variable
from fcocr.tools import livecheck

from .emulators.market import MarketEmulator

BASE = {k: v for k, v in os.environ.items()
        if not k.startswith(("ALIYUN_", "ALIBABA_CLOUD_", "TENCENTCLOUD_", "FCOCR_", "GREEN_"))
        and k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}}


def run(env):
    out = io.StringIO()
    return livecheck.main(env, out), out.getvalue()


def test_without_credentials_it_says_so_calls_nothing_and_exits_0():
    code, said = run(dict(BASE))
    assert code == 0 and "no credentials" in said and "nothing called" in said
    code, said = run({**BASE, "ALIBABA_CLOUD_ACCESS_KEY_ID": "ak", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "sk",
                      "ALIYUN_MARKET_APPCODE": "code"})
    assert code == 0 and "aliyun, green: not checked" in said and "no FCOCR_MARKET_URL_<ID>" in said


def test_the_comparison_names_status_error_and_shape_differences():
    same = {"status": "succeeded", "raw": {"data": [{"value": "a", "confidence": 99, "polygon": None}]}}
    other_values = {"status": "succeeded", "raw": {"data": [{"value": "b", "confidence": 12, "polygon": [{"x": "1"}]}]}}
    assert livecheck.compare(same, other_values) == []  # values and nulls are the sample's, not the wire format's
    drifted = {"status": "failed", "error": {"code": "Market.400", "vendorCode": "5003"},
               "raw": {"data": [{"value": 1, "angle": 0}]}}
    found = livecheck.compare(drifted, same)
    assert "status: service 'failed', emulator 'succeeded'" in found
    assert "error.vendorCode: service '5003', emulator None" in found
    assert "raw $.data[].value: service number, emulator string" in found
    assert "raw $.data[].angle: only the service answers it (number)" in found
    assert "raw $.data[].confidence: only the emulator answers it (number)" in found


def test_a_market_check_against_a_service_that_matches_and_one_that_drifted():
    with MarketEmulator(appcode="real-code") as service:
        env = {**BASE, "ALIYUN_MARKET_APPCODE": "real-code", url_variable("text"): service.url_for("text")}
        code, said = run(env)
        assert code == 0 and "market.text on notice_en.png: the service answered succeeded" in said
        assert "the emulator answers the same status and answer shape" in said
        assert len(service.requests) == 1  # one call to the service per family
        service.set_response("text", {"code": 0, "status": 200, "message": "success", "serialNo": "1",
                                      "data": [{"value": "x", "confidence": 99.5, "rotation": 0}]})
        code, said = run(env)
    assert code == 1 and "raw $.data[].rotation: only the service answers it (number)" in said
    assert "raw $.data[].polygon: only the emulator answers it (array)" in said
