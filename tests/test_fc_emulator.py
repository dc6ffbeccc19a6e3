"""The FC API emulator holds the official SDK (aliyun-fc2) to FC's own rules: signature, token, Date, quota."""

from __future__ import annotations

import email.utils
import json
import time

import fc2
import pytest
import requests
from fc2.fc_exceptions import FcError

from fcocr.tools.backfill import silence_fc2_logging

from .emulators.fc import ASYNC_PAYLOAD_LIMIT, FcEmulator, sign, string_to_sign

AK, SK, TOKEN = "STS.fc-ak", "fc-secret", "fc-token"
PLAIN_AK, PLAIN_SK = "LTAIplainkey", "plain-secret"
ASYNC = {"x-fc-invocation-type": "Async"}


@pytest.fixture(autouse=True)
def quiet_sdk():
    silence_fc2_logging()  # the SDK logs refused calls with their headers (token included) on the root logger


@pytest.fixture
def fc():
    with FcEmulator({AK: (SK, TOKEN), PLAIN_AK: (PLAIN_SK, None)},
                    functions={("fcocr", "ocr_upload"): None, ("fcocr", "echo"): lambda body, ctx: body[::-1]},
                    qualifiers=("LATEST", "prod")) as emulator:
        yield emulator


def client(fc, ak=AK, sk=SK, token=TOKEN):
    return fc2.Client(endpoint=fc.endpoint, accessKeyID=ak, accessKeySecret=sk, securityToken=token or "")


def refused(call) -> FcError:
    with pytest.raises(FcError) as info:
        call()
    return info.value


def test_an_async_invocation_is_accepted_and_recorded_exactly_as_sent(fc):
    payload = json.dumps({"events": [{"k": "发票 1+1.png"}]}, ensure_ascii=False).encode("utf-8")
    answer = client(fc).invoke_function("fcocr", "ocr_upload", payload=payload, headers=ASYNC)
    [inv] = fc.invocations
    assert (inv.service, inv.function, inv.qualifier, inv.invocation_type) == ("fcocr", "ocr_upload", None, "Async")
    assert inv.payload == payload and inv.ak == AK and not inv.done
    assert answer.headers["X-Fc-Request-Id"] == inv.request_id and answer.data == b""
    assert fc.requests[-1].status == 202


def test_sync_invocation_with_a_qualifier_runs_the_handler(fc):
    answer = client(fc).invoke_function("fcocr", "echo", payload=b"abc", qualifier="prod")
    assert answer.data == b"cba"
    [inv] = fc.invocations
    assert (inv.qualifier, inv.invocation_type, inv.done) == ("prod", "Sync", True)


def test_the_string_to_sign_is_fcs_canonical_form_and_matches_the_sdk():
    headers = {"content-md5": "", "content-type": "application/json", "date": "Sat, 21 Nov 2026 10:00:00 GMT",
               "x-fc-invocation-type": "Async", "x-fc-security-token": "tok", "x-fc-account-id": "123",
               "user-agent": "not signed"}
    expected = ("POST\n\napplication/json\nSat, 21 Nov 2026 10:00:00 GMT\n"
                "x-fc-account-id:123\nx-fc-invocation-type:Async\nx-fc-security-token:tok\n"
                "/2016-08-15/services/s/functions/f/invocations")
    path = "/2016-08-15/services/s/functions/f/invocations"
    assert string_to_sign("POST", path, headers) == expected
    sdk = fc2.auth.Auth("ak", "secret", "tok")
    assert sdk.sign_request("POST", path, headers) == "FC ak:" + sign("secret", expected)
    # With a query, each name=value on its own line, sorted, after the path.
    with_query = string_to_sign("GET", "/2016-08-15/services", {"date": "d"}, [("limit", "2"), ("prefix", "a")])
    assert with_query.endswith("/2016-08-15/services\nlimit=2\nprefix=a")
    assert sdk.sign_request("GET", "/2016-08-15/services", {"date": "d"}, {"prefix": "a", "limit": "2"}) == \
        "FC ak:" + sign("secret", with_query)


def _raw(fc, *, ak=AK, sk=SK, token=TOKEN, signed_headers=None, sent_headers=None, date=None, body=b"{}",
         path="/2016-08-15/services/fcocr/functions/ocr_upload/invocations", method="POST"):
    """A request signed by hand: the emulator's check does not depend on the SDK's own code."""
    headers = {"content-type": "application/json", "date": date or email.utils.formatdate(usegmt=True),
               "x-fc-invocation-type": "Async"}
    if token:
        headers["x-fc-security-token"] = token
    headers.update(signed_headers or {})
    signature = sign(sk, string_to_sign(method, path, headers))
    sent = {**headers, **(sent_headers or {}), "authorization": f"FC {ak}:{signature}"}
    return requests.request(method, fc.endpoint + path, headers=sent, data=body, timeout=10)


def test_a_hand_signed_request_is_accepted_and_every_signed_part_counts(fc):
    assert _raw(fc).status_code == 202
    # An x-fc-* header changed after signing, the body type, the path: each breaks the signature.
    for tamper in ({"x-fc-invocation-type": "Sync"}, {"content-type": "text/plain"}, {"x-fc-extra": "1"}):
        answer = _raw(fc, sent_headers=tamper)
        assert (answer.status_code, answer.json()["ErrorCode"]) == (403, "SignatureNotMatch"), tamper
    assert len(fc.invocations) == 1


def test_a_wrong_secret_an_unknown_key_and_missing_headers_are_refused(fc):
    error = refused(lambda: client(fc, sk="wrong").invoke_function("fcocr", "ocr_upload", payload=b"{}", headers=ASYNC))
    assert (error.status_code, error.err_code) == (403, "SignatureNotMatch")
    error = refused(lambda: client(fc, ak="STS.nobody").invoke_function("fcocr", "ocr_upload", payload=b"{}"))
    assert (error.status_code, error.err_code) == (403, "InvalidAccessKeyID")
    no_auth = requests.post(fc.endpoint + "/2016-08-15/services/fcocr/functions/ocr_upload/invocations",
                            headers={"date": email.utils.formatdate(usegmt=True)}, data=b"{}", timeout=10)
    assert no_auth.json()["ErrorCode"] == "MissingRequiredHeader"
    assert fc.invocations == []


def test_sts_keys_need_their_token_and_long_term_keys_none(fc):
    error = refused(lambda: client(fc, token="").invoke_function("fcocr", "ocr_upload", payload=b"{}", headers=ASYNC))
    assert (error.status_code, error.err_code) == (403, "InvalidSecurityToken")
    error = refused(lambda: client(fc, token="stolen").invoke_function("fcocr", "ocr_upload", payload=b"{}",
                                                                       headers=ASYNC))
    assert error.err_code == "InvalidSecurityToken"
    client(fc, PLAIN_AK, PLAIN_SK, None).invoke_function("fcocr", "ocr_upload", payload=b"{}", headers=ASYNC)
    error = refused(lambda: client(fc, PLAIN_AK, PLAIN_SK, "tok").invoke_function("fcocr", "ocr_upload", payload=b"{}"))
    assert error.err_code == "InvalidSecurityToken"
    assert [i.ak for i in fc.invocations] == [PLAIN_AK]


def test_the_date_must_be_within_15_minutes(fc):
    late = email.utils.formatdate(time.time() - 16 * 60, usegmt=True)
    answer = _raw(fc, date=late)
    assert (answer.status_code, answer.json()["ErrorCode"]) == (403, "RequestTimeTooSkewed")
    assert _raw(fc, date=email.utils.formatdate(time.time() - 14 * 60, usegmt=True)).status_code == 202
    fc.wall_clock = lambda: time.time() + 20 * 60  # the server's clock ahead: the SDK's fresh Date is too old
    error = refused(lambda: client(fc).invoke_function("fcocr", "ocr_upload", payload=b"{}", headers=ASYNC))
    assert error.err_code == "RequestTimeTooSkewed"


def test_unknown_service_function_alias_and_paths(fc):
    c = client(fc)
    assert refused(lambda: c.invoke_function("nope", "ocr_upload", payload=b"{}")).err_code == "ServiceNotFound"
    assert refused(lambda: c.invoke_function("fcocr", "nope", payload=b"{}")).err_code == "FunctionNotFound"
    assert refused(lambda: c.invoke_function("fcocr", "ocr_upload", payload=b"{}", qualifier="beta")).err_code \
        == "AliasNotFound"
    assert refused(lambda: c.invoke_function("fcocr", "ocr_upload", payload=b"{}",
                                             headers={"x-fc-invocation-type": "Later"})).err_code == "InvalidArgument"
    answer = _raw(fc, method="PUT")
    assert (answer.status_code, answer.json()["ErrorCode"]) == (400, "PathNotSupported")
    assert fc.invocations == []


def test_async_payloads_are_limited_to_128_kb(fc):
    c = client(fc)
    c.invoke_function("fcocr", "ocr_upload", payload=b"x" * ASYNC_PAYLOAD_LIMIT, headers=ASYNC)
    error = refused(lambda: c.invoke_function("fcocr", "ocr_upload", payload=b"x" * (ASYNC_PAYLOAD_LIMIT + 1),
                                              headers=ASYNC))
    assert (error.status_code, error.err_code) == (400, "EntityTooLarge")
    c.invoke_function("fcocr", "echo", payload=b"x" * (ASYNC_PAYLOAD_LIMIT + 1))  # synchronous: 32 MB
    assert len(fc.invocations) == 2


def test_the_qps_quota_counts_a_sliding_second_on_the_rate_clock():
    now = [100.0]
    with FcEmulator({AK: (SK, TOKEN)}, qps_limit=3, rate_clock=lambda: now[0]) as fc:
        c = client(fc)
        for _ in range(3):
            c.invoke_function("fcocr", "ocr_upload", payload=b"{}", headers=ASYNC)
        error = refused(lambda: c.invoke_function("fcocr", "ocr_upload", payload=b"{}", headers=ASYNC))
        assert (error.status_code, error.err_code) == (429, "ResourceThrottled")
        now[0] += 0.999
        error = refused(lambda: c.invoke_function("fcocr", "ocr_upload", payload=b"{}", headers=ASYNC))
        assert error.status_code == 429
        now[0] += 0.001  # a full second after the first three
        c.invoke_function("fcocr", "ocr_upload", payload=b"{}", headers=ASYNC)
        assert len(fc.invocations) == 4 and fc.max_in_any_second() == 3
        assert [r.status for r in fc.requests].count(429) == 2


def test_the_throttle_answer_is_configurable():
    with FcEmulator({AK: (SK, TOKEN)}, qps_limit=1, throttle_status=503, throttle_code="ResourceExhausted",
                    rate_clock=lambda: 0.0) as fc:
        c = client(fc)
        c.invoke_function("fcocr", "ocr_upload", payload=b"{}", headers=ASYNC)
        error = refused(lambda: c.invoke_function("fcocr", "ocr_upload", payload=b"{}", headers=ASYNC))
        assert (error.status_code, error.err_code) == (503, "ResourceExhausted")


def test_injected_faults(fc):
    c = client(fc)
    fc.inject_fault("error", status=500, code="InternalServerError")
    assert refused(lambda: c.invoke_function("fcocr", "ocr_upload", payload=b"{}", headers=ASYNC)).status_code == 500
    fc.inject_fault("html")
    with pytest.raises(requests.exceptions.JSONDecodeError):  # the SDK parses every error body as JSON
        c.invoke_function("fcocr", "ocr_upload", payload=b"{}", headers=ASYNC)
    fc.inject_fault("drop")
    with pytest.raises(requests.exceptions.ConnectionError):
        c.invoke_function("fcocr", "ocr_upload", payload=b"{}", headers=ASYNC)
    assert fc.invocations == []  # none of them was accepted
    fc.inject_fault("drop", accepted=True)  # accepted, and then the answer is lost
    with pytest.raises(requests.exceptions.ConnectionError):
        c.invoke_function("fcocr", "ocr_upload", payload=b"1", headers=ASYNC)
    assert [i.payload for i in fc.invocations] == [b"1"]
    c.invoke_function("fcocr", "ocr_upload", payload=b"2", headers=ASYNC)  # faults are used up
    assert [i.payload for i in fc.invocations] == [b"1", b"2"]


def test_run_async_runs_queued_invocations_once_in_the_callers_thread():
    seen = []
    functions = {("fcocr", "ocr_upload"): lambda body, ctx: seen.append((body, ctx))}
    with FcEmulator({AK: (SK, TOKEN)}, functions=functions) as fc:
        c = client(fc)
        c.invoke_function("fcocr", "ocr_upload", payload=b"a", headers=ASYNC)
        c.invoke_function("fcocr", "ocr_upload", payload=b"b", headers=ASYNC)
        assert seen == []  # asynchronous: queued, not run
        assert fc.run_async(lambda inv: inv.request_id) == 2
        assert [b for b, _ in seen] == [b"a", b"b"] and seen[0][1] == fc.invocations[0].request_id
        assert fc.run_async() == 0


# ------------------------------------------------------------------------------------------ FC 3.0 (2023-03-30)
def fc3_client(fc, ak=AK, sk=SK, token=TOKEN):
    from alibabacloud_fc20230330.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    return Client(Config(access_key_id=ak, access_key_secret=sk, security_token=token,
                         endpoint=fc.endpoint.split("://")[1], protocol="http"))


def fc3_invoke(client, function, payload, kind="Async", qualifier=None):
    import io

    from alibabacloud_fc20230330 import models
    from darabonba.runtime import RuntimeOptions

    return client.invoke_function_with_options(function, models.InvokeFunctionRequest(body=io.BytesIO(payload),
                                                                                       qualifier=qualifier),
                                               models.InvokeFunctionHeaders(x_fc_invocation_type=kind),
                                               RuntimeOptions(autoretry=False))


@pytest.fixture
def fc3():
    with FcEmulator({AK: (SK, TOKEN), PLAIN_AK: (PLAIN_SK, None)},
                    functions3={"fcocr-ocr_upload": None, "echo": lambda body, ctx: body[::-1]},
                    qualifiers=("LATEST", "prod")) as emulator:
        yield emulator


def test_fc3_sdk_invocations_are_verified_and_recorded(fc3):
    answer = fc3_invoke(fc3_client(fc3), "fcocr-ocr_upload", b'{"events": []}', qualifier="prod")
    assert answer.status_code == 202 and answer.headers["x-fc-request-id"] == fc3.invocations[0].request_id
    assert (fc3.invocations[0].function, fc3.invocations[0].qualifier, fc3.invocations[0].payload) == (
        "fcocr-ocr_upload", "prod", b'{"events": []}')
    sync = fc3_invoke(fc3_client(fc3, PLAIN_AK, PLAIN_SK, None), "echo", b"abc", kind="Sync")
    assert sync.status_code == 200 and sync.body.read() == b"cba"


@pytest.mark.parametrize("ak,sk,token,code", [
    (AK, "wrong", TOKEN, "SignatureDoesNotMatch"),
    (AK, SK, None, "MissingSecurityToken"),
    (AK, SK, "other-token", "InvalidSecurityToken.MismatchWithAccessKey"),
    ("LTAIunknown", SK, None, "InvalidAccessKeyId.NotFound"),
])
def test_fc3_refuses_bad_credentials_before_anything_happens(fc3, ak, sk, token, code):
    from alibabacloud_tea_openapi import exceptions as tea_errors

    with pytest.raises(tea_errors.AlibabaCloudException) as info:
        fc3_invoke(fc3_client(fc3, ak, sk, token), "fcocr-ocr_upload", b"{}")
    assert info.value.code == code and fc3.invocations == []


def test_fc3_a_replayed_request_and_a_changed_body_are_refused(fc3):
    seen = []
    handle = fc3.handle

    def recording(method, raw_path, headers, body, request_id):  # what came over the wire, byte for byte
        seen.append((method, raw_path, dict(headers), body))
        return handle(method, raw_path, headers, body, request_id)

    fc3.handle = recording
    fc3_invoke(fc3_client(fc3), "fcocr-ocr_upload", b'{"a": 1}')
    method, raw_path, headers, body = seen[0]
    status, _, answer = handle(method, raw_path, headers, body, "replay")  # the same signed request again
    assert status == 400 and json.loads(answer)["Code"] == "SignatureNonceUsed"
    headers["x-acs-signature-nonce"] = "another-nonce"  # signed over the old nonce: the signature breaks
    status, _, answer = handle(method, raw_path, headers, body, "renonced")
    assert json.loads(answer)["Code"] == "SignatureDoesNotMatch"
    seen.clear()
    fc3_invoke(fc3_client(fc3), "fcocr-ocr_upload", b'{"a": 1}')
    method, raw_path, headers, body = seen[0]
    status, _, answer = handle(method, raw_path, headers, b'{"a": 2}', "changed")  # the body changed after signing
    assert json.loads(answer)["Code"] == "SignatureDoesNotMatch" and "x-acs-content-sha256" in json.loads(answer)[
        "Message"]
    assert len(fc3.invocations) == 2


def test_fc3_unknown_functions_aliases_and_big_payloads_answer_fcs_errors(fc3):
    from alibabacloud_tea_openapi import exceptions as tea_errors

    for function, payload, qualifier, code in (("nope", b"{}", None, "FunctionNotFound"),
                                               ("fcocr-ocr_upload", b"{}", "beta", "AliasNotFound"),
                                               ("fcocr-ocr_upload", b"x" * (ASYNC_PAYLOAD_LIMIT + 1), None,
                                                "EntityTooLarge")):
        with pytest.raises(tea_errors.AlibabaCloudException) as info:
            fc3_invoke(fc3_client(fc3), function, payload, qualifier=qualifier)
        assert info.value.code == code
    assert fc3.invocations == []
