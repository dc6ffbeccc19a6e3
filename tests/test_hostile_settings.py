"""Settings that were accepted at start-up but could never work, credentials with stray characters, and the
scrubber that keeps every credential out of errors, results and log lines; a Hypothesis fuzzer of settings."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from fcocr import errors, logs
from fcocr.config import Settings, environment
from fcocr.errors import ConfigError, FcocrError, PermanentError, TransientError
from fcocr.model import DOCUMENT_SUFFIXES, SourceRef
from fcocr.recognizers import market
from fcocr.results import ResultDocument
from fcocr.retry import VendorFault, classify

from .cloud import APPCODE, image, result, route, upload


def refused(env: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    return info.value


# ------------------------------------------------------------------------------ settings that cannot work
@pytest.mark.parametrize("value", [str(2 ** 63), str(2 ** 31 * 1024), "１０００"])
def test_a_byte_limit_nothing_can_read_is_refused(value):
    assert "FCOCR_MAX_BYTES" in refused({"FCOCR_MAX_BYTES": value}).message


@pytest.mark.parametrize("name,value", [("FCOCR_CALL_TIMEOUT", "9" * 400), ("FCOCR_RETRY_BASE_MS", str(2 ** 63)),
                                        ("FCOCR_RETRY_ATTEMPTS", "1000000"), ("FCOCR_PDF_DPI", "100000"),
                                        ("FCOCR_VIAPI_POLL_MS", str(2 ** 63)), ("FCOCR_OCR_THREADS", "100000")])
def test_numbers_beyond_what_works_are_refused(name, value):
    assert name in refused({name: value}).message


@pytest.mark.parametrize("suffix", [".jpg", ".JPG", ".Pdf", ".result.png", ".x.TIFF"] + list(DOCUMENT_SUFFIXES))
def test_a_result_suffix_that_is_a_document_suffix_is_refused(suffix):
    assert "ends like a document" in refused({"FCOCR_RESULT_SUFFIX": suffix}).message


@pytest.mark.parametrize("suffix", [".ocr\n.json", ".o cr", ".ocr\x00", "." + "x" * 100])
def test_a_result_suffix_with_odd_characters_is_refused(suffix):
    refused({"FCOCR_RESULT_SUFFIX": suffix})


def test_green_uid_in_full_width_digits_is_refused():
    message = refused({"GREEN_UID": "１２３４５６７８９０"}).message
    assert "GREEN_UID" in message and "１２３" not in message
    assert Settings.from_env({"GREEN_UID": "1234567890"}).family("green").uid == "1234567890"


@pytest.mark.parametrize("value", ["oss:///prefix", "oss://Bad_Bucket!/x", "oss://", "oss://ab/x", "s3://bucket/x",
                                   "oss://bucket-ok/a\nb/", "oss://bucket-ok/a\x00b/"])
def test_staging_locations_without_a_valid_bucket_are_refused(value):
    assert "FCOCR_VIAPI_STAGING" in refused({"FCOCR_VIAPI_STAGING": value}).message


@pytest.mark.parametrize("url", ["http://", "https://", "http:///path", "http://exa mple.com", "http://host/a b",
                                 "http://host:99999", "http://host:port", "http://host\t/", "https://[::1"])
@pytest.mark.parametrize("name", ["FCOCR_OSS_ENDPOINT", "FCOCR_GREEN_ENDPOINT", "FCOCR_TENCENT_ENDPOINT"])
def test_endpoints_without_a_host_or_with_spaces_are_refused(name, url):
    assert name in refused({name: url}).message


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000", "http://localhost", "https://oss-cn-shanghai.aliyuncs.com/",
                                 "http://[::1]:8080/api"])
def test_plain_http_to_a_real_host_stays_allowed(url):
    assert Settings.from_env({"FCOCR_OSS_ENDPOINT": url}).oss_endpoint == url.rstrip("/")


def test_a_local_root_that_does_not_exist_is_refused_not_created(tmp_path):
    missing = tmp_path / "nowhere"
    assert "FCOCR_LOCAL_ROOT" in refused({"FCOCR_LOCAL_ROOT": str(missing)}).message
    assert not missing.exists()
    (tmp_path / "file").write_text("x")
    refused({"FCOCR_LOCAL_ROOT": str(tmp_path / "file")})
    assert Settings.from_env({"FCOCR_LOCAL_ROOT": str(tmp_path)}).local_root == str(tmp_path)


# ------------------------------------------------------------------------------ credentials
CREDENTIALS = ["ALIYUN_MARKET_APPCODE", "TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY",
               "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
               "GREEN_SEED"]


@pytest.mark.parametrize("name", CREDENTIALS)
@pytest.mark.parametrize("stray", ["\n", "\r\n", " ", "\t", "\x00", "\x1b", "\u200b", "é"])
def test_a_credential_with_a_control_character_or_whitespace_is_refused_without_showing_it(name, stray):
    value = f"AKID0123{stray}456789abcdef"
    message = refused({name: value}).message
    assert name in message and "AKID0123" not in message and "456789" not in message


def test_surrounding_whitespace_of_a_credential_is_trimmed_not_refused():
    settings = Settings.from_env({"ALIYUN_MARKET_APPCODE": " 0123456789abcdef0123456789abcdef\n"})
    assert settings.family("market").appcode == "0123456789abcdef0123456789abcdef"


# ------------------------------------------------------------------------------ the scrubber
def test_a_registered_credential_never_leaves_in_an_error_a_result_or_a_log_line(capsys):
    secret = 'Zx9"secret\\value-7781'
    errors.register_secret(secret)
    exc = TransientError(f"requests: Invalid header value b'APPCODE {secret}\\n'", code="Market.NetworkError",
                         vendorMessage=f"echo {secret}")
    assert secret not in exc.message and secret not in str(exc) and secret not in exc.details["vendorMessage"]
    doc = ResultDocument.from_error(PermanentError("x"), source=SourceRef("b", "k"), recognizer=None, started_at="",
                                    finished_at="", duration_ms=0)
    doc.error["message"] = f"a library put {secret} here"  # however it got there, it is masked on the way out
    written = doc.to_bytes().decode("utf-8")
    assert "Zx9" not in written and errors.MASK in written
    logs.configure("INFO")
    logs.log(logging.ERROR, "boom", detail=f"header {secret}", exc_info=RuntimeError(f"quoted {secret}"))
    err = capsys.readouterr().err
    assert "Zx9" not in err and errors.MASK in err


def test_vendor_text_is_bounded_and_has_no_control_characters():
    echoed = "发票内容" * 5000 + "\n\x1b[2J\r"
    exc = classify(VendorFault("market", 400, "Bad\nCode", echoed, "req"))
    assert len(exc.message) < 400 and "\n" not in exc.message and "\x1b" not in exc.message
    assert len(exc.details["vendorMessage"]) <= errors.MAX_VENDOR_TEXT_CHARS
    assert all(ch.isprintable() for ch in exc.message + exc.details["vendorMessage"])


def test_an_appcode_quoted_by_the_http_library_reaches_no_result_and_no_log(monkeypatch, oss, capsys):
    monkeypatch.setenv("ALIYUN_MARKET_APPCODE", APPCODE)
    monkeypatch.setenv(market.url_variable("general"), "http://127.0.0.1:9/general")
    route(monkeypatch, "market.general")

    class QuotingSession:
        def post(self, url, headers=None, **kw):
            raise requests.exceptions.InvalidHeader(f"Invalid header: Authorization: {headers['Authorization']!r}")

    monkeypatch.setattr(market, "_session", QuotingSession)
    with pytest.raises(FcocrError) as info:
        upload(oss, "scrub/a.jpg", image())
    assert APPCODE not in info.value.message
    doc = result(oss, "scrub/a.jpg")
    assert doc["status"] == "failed" and APPCODE not in json.dumps(doc) and errors.MASK in doc["error"]["message"]
    assert APPCODE not in capsys.readouterr().err


# ------------------------------------------------------------------------------ fuzzing settings
ODD_VALUES = st.one_of(
    st.text(max_size=30),
    st.integers().map(str),
    st.integers(min_value=2 ** 31, max_value=10 ** 500).map(str),
    st.sampled_from(["0", "-1", "1e3", "0x10", "١٢٣", "１２", "²", "9" * 400, str(2 ** 63), "http://", "http:// x",
                     "http://h:99999", "oss:///p", "oss://Bad!/p", "oss://bucket-ok/a\nb", ".jpg", ".JPG", " ", "\n",
                     "true", "SM3", "sha256", "url", "http://[::1", "https://h:0", "oss://bucket-ok/" + "k" * 1100]),
)
NAMES = sorted(set(environment()) - {"FCOCR_LOCAL_ROOT", "FCOCR_ROUTES"})  # paths: their own tests above


def assert_usable(settings: Settings) -> None:
    """What was accepted can work: numbers in the ranges the code can use, URLs with a host, the suffix no
    document's."""
    assert 1 <= settings.max_bytes <= 1024 ** 3 and 1 <= settings.max_pixels <= 10 ** 9
    assert 1 <= settings.max_pages <= 10_000 and 36 <= settings.pdf_dpi <= 1200
    assert 1 <= settings.retry_attempts <= 20 and 0 <= settings.retry_base_ms <= 60_000
    assert 1 <= settings.call_timeout <= 86_400
    assert not settings.result_suffix.lower().endswith(DOCUMENT_SUFFIXES)
    urls = [settings.oss_endpoint, settings.oss_public_endpoint, settings.family("aliyun").endpoint,
            settings.family("aliyun").staging_endpoint, settings.family("green").endpoint,
            settings.family("green").callback_url, settings.family("tencent").endpoint,
            *settings.family("market").urls.values()]
    for url in filter(None, urls):
        parts = urlsplit(url)
        assert parts.scheme in ("http", "https") and parts.hostname and " " not in url
        parts.port  # noqa: B018 - a valid port or none
    uid = settings.family("green").uid
    assert uid is None or (uid.isascii() and uid.isdigit())


@hsettings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), value=ODD_VALUES)
def test_each_setting_over_odd_values_loads_usable_or_raises_config_error(name, value):
    try:
        settings = Settings.from_env({name: value})
    except ConfigError as exc:
        assert all(ch.isprintable() for ch in exc.message)
        return
    assert_usable(settings)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(env=st.dictionaries(st.sampled_from(NAMES), ODD_VALUES, max_size=6))
def test_settings_together_over_odd_values_load_usable_or_raise_config_error(env):
    try:
        settings = Settings.from_env(env)
    except ConfigError:
        return
    assert_usable(settings)
