from types import SimpleNamespace

import pytest

from fcocr.config import Settings
from fcocr.errors import ConfigError
from fcocr.runtime import Runtime, credentials_from


def test_credentials_come_from_the_fc_context_first(monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "env-ak")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-sk")
    ctx = SimpleNamespace(credentials=SimpleNamespace(access_key_id="ctx-ak", access_key_secret="ctx-sk",
                                                      security_token="ctx-token"))
    creds = credentials_from(ctx)
    assert (creds.access_key_id, creds.access_key_secret, creds.security_token) == ("ctx-ak", "ctx-sk", "ctx-token")


def test_python312_context_without_credentials_falls_back_to_the_environment(monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "env-ak")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-sk")
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "env-token")
    for ctx in (SimpleNamespace(request_id="r"), SimpleNamespace(credentials=None),
                SimpleNamespace(credentials=SimpleNamespace(access_key_id="", access_key_secret="", security_token=""))):
        creds = credentials_from(ctx)
        assert (creds.access_key_id, creds.security_token) == ("env-ak", "env-token")


def test_no_credentials_anywhere_is_none():
    assert credentials_from(SimpleNamespace()) is None


def test_secrets_never_appear_in_repr():
    creds = credentials_from(SimpleNamespace(credentials=SimpleNamespace(
        access_key_id="AK", access_key_secret="very-secret", security_token="tok-secret")))
    assert "very-secret" not in repr(creds) and "tok-secret" not in repr(creds)
    runtime = Runtime("req", credentials=creds)
    assert "very-secret" not in repr(runtime)


def test_runtime_from_context_reads_request_id_and_deadline():
    ctx = SimpleNamespace(request_id="abc-123", region="cn-hangzhou",
                          function=SimpleNamespace(name="ocr_upload", timeout=60))
    rt = Runtime.from_context(ctx)
    assert (rt.request_id, rt.region, rt.function_name) == ("abc-123", "cn-hangzhou", "ocr_upload")
    assert 59 < rt.remaining_seconds() <= 60
    assert Runtime.from_context(None).request_id.startswith("local-")


@pytest.mark.parametrize("env,fragment", [
    ({"FCOCR_RESULT_SUFFIX": "json"}, "must start with '.'"),
    ({"FCOCR_RESULT_SUFFIX": ".a/b"}, "no '/'"),
    ({"FCOCR_MAX_BYTES": "lots"}, "not a whole number"),
    ({"FCOCR_MAX_PAGES": "0"}, "below the minimum"),
    ({"FCOCR_OSS_ENDPOINT": "oss-cn-shanghai.aliyuncs.com"}, "full URL"),
    ({"FCOCR_LOG_LEVEL": "loud"}, "FCOCR_LOG_LEVEL"),
])
def test_bad_settings_fail_at_start_up(env, fragment):
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert fragment in info.value.message


def test_settings_defaults():
    s = Settings.from_env({})
    assert (s.result_suffix, s.max_bytes, s.local_root) == (".ocr.json", 20 * 1024 * 1024, None)
