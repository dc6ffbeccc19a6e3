"""The callback core against hostile and malformed requests, over real HTTP (the server `fcocr serve callback`
runs), as FC 2.0 WSGI calls and as FC 3.0 events: nothing unverified is ever written, every refusal has its
status and a short reason, the rejection path imports no storage or vendor SDK, and fuzzed forms, contents
and events never raise."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from fcocr import tasks
from fcocr.config import Settings
from fcocr.recognizers.green import callback
from fcocr.recognizers.green.checksum import callback_checksum
from fcocr.results import Outcome, ResultDocument, ResultWriter, SourceRef, utc_now
from fcocr.storage import LocalStorage
from fcocr.tools import cli

from .conftest import REPO, load_function, put_local
from .emulators.green import load_examples

UID, SEED = "1918273645546372", "s3cret_seed_9"
TASK_ID = "img5A@k7a@B4q@6K@d9nfKgOs-1s$Test"
KEY = "票据/2026 火车票+1.png"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def env(local_root, monkeypatch):
    monkeypatch.setenv("GREEN_UID", UID)
    monkeypatch.setenv("GREEN_SEED", SEED)
    return local_root


@pytest.fixture
def pending(env):
    """A submitted green task for KEY in the local bucket: its record and its pending result."""
    put_local(env, KEY, b"\x89PNG\r\n\x1a\n a ticket")
    storage = LocalStorage(str(env), "bucket")
    info = storage.head(KEY)
    record = tasks.TaskRecord(data_id=tasks.data_id_for("bucket", KEY, info.etag), kind="green", task_id=TASK_ID,
                              bucket="bucket", key=KEY, etag=info.etag, recognizer="green.train-ticket",
                              submitted_at=utc_now(), size=info.size, extra={"card": "train-ticket"})
    tasks.save(storage, record)
    ResultWriter(storage, ".ocr.json").write(ResultDocument.from_outcome(
        Outcome(task=record.ref), source=SourceRef("bucket", KEY, info.etag, info.size), recognizer="green.train-ticket",
        started_at=record.submitted_at, finished_at=utc_now(), duration_ms=3))
    return record


@pytest.fixture
def server():
    srv = cli.callback_server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def content_for(record, **change) -> str:
    item = dict(load_examples()["results"]["train-ticket"]["data"][0])
    item.update(dataId=record.data_id, taskId=record.task_id, url="https://example.invalid/x.png")
    item.update(change)
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def form(content: str, *, uid=UID, seed=SEED, crypt="SHA256", checksum=None, names=("checksum", "content"),
         extra=()) -> bytes:
    value = checksum if checksum is not None else callback_checksum(uid, seed, content, crypt)
    return urlencode([(names[0], value), (names[1], content), *extra]).encode("ascii")


def http_post(srv, body: bytes = b"", *, method="POST", content_type=FORM, headers=None, length=True):
    """A raw HTTP request to the served callback: (status, reason from the JSON answer)."""
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.putrequest(method, "/")
        if content_type:
            conn.putheader("Content-Type", content_type)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if length:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())["reason"]
    finally:
        conn.close()


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def result_doc(root: Path) -> dict:
    return json.loads((root / "bucket" / (KEY + ".ocr.json")).read_text("utf-8"))


# ------------------------------------------------------------------------------------- accepted
def test_a_verified_callback_is_written_then_acknowledged(env, pending, server):
    status, reason = http_post(server, form(content_for(pending)))
    assert (status, reason) == (200, "stored")
    doc = result_doc(env)
    assert doc["status"] == "succeeded" and doc["fields"]["seatClass"] == "二等座"
    assert doc["raw"] == json.loads(content_for(pending)) and doc["task"]["id"] == TASK_ID
    assert tasks.load(LocalStorage(str(env), "bucket"), pending.data_id) is None


@pytest.mark.parametrize("variant", ["capitalised-fields", "upper-case-hex", "envelope", "charset-param"])
def test_the_accepted_variants(env, pending, server, variant):
    content = content_for(pending)
    content_type = FORM
    if variant == "capitalised-fields":  # the FC 2.0 casing, with the request id the service adds
        body = form(content, names=("Checksum", "Content"), extra=[("ReqId", "B5E137FF-668F")])
    elif variant == "upper-case-hex":
        body = form(content, checksum=callback_checksum(UID, SEED, content).upper())
    elif variant == "envelope":  # the whole results envelope as content
        content = json.dumps({"code": 200, "msg": "OK", "requestId": "REQ-9", "data": [json.loads(content)]},
                             ensure_ascii=False)
        body = form(content)
    else:
        body, content_type = form(content), FORM + "; charset=UTF-8"
    assert http_post(server, body, content_type=content_type)[0] == 200
    doc = result_doc(env)
    assert doc["status"] == "succeeded" and doc["raw"] == json.loads(content)
    if variant == "envelope":
        assert doc["vendorRequestId"] == "REQ-9"


def test_sm3_when_so_configured(env, pending, server, monkeypatch):
    monkeypatch.setenv("GREEN_CRYPT_TYPE", "SM3")
    content = content_for(pending)
    assert http_post(server, form(content, crypt="SHA256"))[0] == 403
    assert http_post(server, form(content, crypt="SM3"))[0] == 200


def test_a_failed_task_is_recorded_failed_with_its_code(env, pending, server):
    content = content_for(pending, code=590, msg="BAD_FORMAT")
    assert http_post(server, form(content)) == (200, "stored")
    error = result_doc(env)["error"]
    assert (error["code"], error["vendorCode"], error["retryable"]) == ("Green.BAD_FORMAT", "BAD_FORMAT", False)


# ------------------------------------------------------------------------------------- hostile
def _hostile(record):
    good = content_for(record)
    tampered = good.replace("G0000", "G0001")
    deep = "[" * 100_000 + "]" * 100_000
    no_field = {name: content_for(record, **{name: None}) for name in ("dataId", "taskId", "code")}
    return {
        "wrong checksum": (form(good, checksum="ab" * 32), {}, 403),
        "checksum with another uid": (form(good, uid="1000000000000001"), {}, 403),
        "checksum with another seed": (form(good, seed="another_seed"), {}, 403),
        "checksum with the other algorithm": (form(good, crypt="SM3"), {}, 403),
        "tampered content": (form(tampered, checksum=callback_checksum(UID, SEED, good)), {}, 403),
        "checksum not hex": (form(good, checksum="zz" * 32), {}, 403),
        "checksum truncated": (form(good, checksum=callback_checksum(UID, SEED, good)[:63]), {}, 403),
        "json body": (json.dumps({"checksum": "x", "content": good}).encode(), {"content_type": "application/json"}, 415),
        "text body": (form(good), {"content_type": "text/plain"}, 415),
        "multipart body": (form(good), {"content_type": "multipart/form-data; boundary=x"}, 415),
        "no content type": (form(good), {"content_type": None}, 415),
        "gbk form": (form(good), {"content_type": FORM + "; charset=GBK"}, 415),
        "invalid utf-8 bytes": (form(good) + b"&note=\xff\xfe", {}, 400),
        "invalid utf-8 escapes": (b"checksum=" + b"ab" * 32 + b"&content=%FF%FE%80", {}, 400),
        "no checksum": (urlencode({"content": good}).encode(), {}, 400),
        "no content": (urlencode({"checksum": "ab" * 32}).encode(), {}, 400),
        "empty body": (b"", {}, 400),
        "not a form": (b"this is not a form", {}, 400),
        "checksum twice": (form(good) + b"&checksum=" + b"cd" * 32, {}, 400),
        "checksum in both casings": (form(good) + b"&Checksum=" + b"cd" * 32, {}, 400),
        "signed content that is not JSON": (form("{not json"), {}, 400),
        "signed content that is a list": (form("[1, 2]"), {}, 400),
        "signed content with a lone surrogate": (form(good.replace('"msg":"OK"', '"msg":"\\ud800"')), {}, 400),
        "signed content nested too deep": (form(deep), {}, 400),
        "signed content without dataId": (form(no_field["dataId"]), {}, 400),
        "signed content without taskId": (form(no_field["taskId"]), {}, 400),
        "signed content without code": (form(no_field["code"]), {}, 400),
        "signed envelope reporting an error": (form(json.dumps({"code": 500, "msg": "x", "data": []})), {}, 400),
        "signed unknown dataId": (form(content_for(record, dataId="bucket/" + "0" * 40)), {}, 404),
        "signed dataId that is a path": (form(content_for(record, dataId="../../etc/passwd")), {}, 404),
        "signed dataId for another bucket": (form(content_for(record, dataId="other-bucket/" + "1" * 40)), {}, 404),
        "signed other taskId for the dataId": (form(content_for(record, taskId="imgANOTHER-1xyz")), {}, 409),
        "GET": (b"", {"method": "GET"}, 405),
        "PUT": (form(good), {"method": "PUT"}, 405),
        "declared over 1 MB": (b"", {"headers": {"Content-Length": str(callback.MAX_BODY + 1)}, "length": False}, 413),
        "no Content-Length": (form(good), {"headers": {"Transfer-Encoding": "chunked"}, "length": False}, 411),
    }


HOSTILE = sorted(_hostile(tasks.TaskRecord("bucket/" + "a" * 40, "green", "t", "bucket", "k", "E", "green.x", "now")))


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_callback_is_refused_and_writes_nothing(env, pending, server, case):
    body, how, expected = _hostile(pending)[case]
    if "Transfer-Encoding" in how.get("headers", {}):
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    before = snapshot(env)
    status, reason = http_post(server, body, **how)
    assert status == expected and reason
    assert snapshot(env) == before  # no result, no record change, no receipt
    assert result_doc(env)["status"] == "pending"


def test_an_unconfigured_callback_answers_503_so_the_service_pushes_again(env, pending, server, monkeypatch):
    monkeypatch.delenv("GREEN_SEED")
    before = snapshot(env)
    assert http_post(server, form(content_for(pending))) == (503, "the callback is not configured (GREEN_UID, GREEN_SEED)")
    assert snapshot(env) == before


def test_a_bad_setting_answers_503(env, pending, server, monkeypatch):
    monkeypatch.setenv("GREEN_CRYPT_TYPE", "MD5")
    assert http_post(server, form(content_for(pending))) == (503, "the callback is misconfigured")


def test_a_submission_in_flight_is_not_ready(env, pending, server):
    storage = LocalStorage(str(env), "bucket")
    pending.task_id = ""  # saved before submitting; the taskId not yet known
    tasks.save(storage, pending)
    before = snapshot(env)
    assert http_post(server, form(content_for(pending, taskId=TASK_ID)))[0] == 503
    assert snapshot(env) == before


# ---------------------------------------------------------------------------- the body's size
def _environ(body: bytes, **extra) -> dict:
    environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": FORM, "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body)}
    environ.update(extra)
    return environ


def _call_wsgi(environ) -> tuple[str, dict, dict]:
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(callback.handle_wsgi(environ, start_response))
    return seen["status"], seen["headers"], json.loads(body)


def test_an_oversized_body_is_refused_by_its_length_and_by_what_is_read(env, pending):
    big = b"checksum=" + b"a" * callback.MAX_BODY
    stream = io.BytesIO(big)
    status, _, answer = _call_wsgi(_environ(big, **{"wsgi.input": stream}))
    assert status == "413 Payload Too Large" and stream.tell() == 0  # refused before reading a byte
    # No Content-Length, an input the server terminates: read at most 1 MB + 1 byte, then refused.
    stream = io.BytesIO(big)
    status, _, _ = _call_wsgi(_environ(big, CONTENT_LENGTH="", **{"wsgi.input": stream, "wsgi.input_terminated": True}))
    assert status == "413 Payload Too Large" and stream.tell() == callback.MAX_BODY + 1
    # A body of exactly the cap is read (and refused for what it says, not its size).
    exact = b"checksum=" + b"a" * (callback.MAX_BODY - len(b"checksum=&content=x")) + b"&content=x"
    assert len(exact) == callback.MAX_BODY
    assert _call_wsgi(_environ(exact))[0] == "403 Forbidden"
    assert result_doc(env)["status"] == "pending"


def test_405_says_what_is_allowed_and_a_bad_length_is_400(env):
    status, headers, answer = _call_wsgi(_environ(b"", REQUEST_METHOD="GET"))
    assert status == "405 Method Not Allowed" and headers["Allow"] == "POST" and answer["status"] == 405
    assert _call_wsgi(_environ(b"", CONTENT_LENGTH="12abc"))[0] == "400 Bad Request"
    assert _call_wsgi(_environ(b"", CONTENT_LENGTH="-5"))[0] == "400 Bad Request"


def test_the_fc2_function_uses_the_fc_context_and_its_credentials(env, pending):
    handler = load_function("scan_callback").handler
    ctx = type("Ctx", (), {"request_id": "fc-req-7", "credentials": None, "region": "cn-shanghai"})()
    status, _, answer = _call_wsgi_with(handler, _environ(form(content_for(pending)), **{"fc.context": ctx}))
    assert status == "200 OK" and answer == {"status": 200, "reason": "stored"}
    assert result_doc(env)["requestId"] == "fc-req-7"


def _call_wsgi_with(app, environ):
    seen = {}
    body = b"".join(app(environ, lambda status, headers: seen.update(status=status, headers=dict(headers))))
    return seen["status"], seen["headers"], json.loads(body)


# ------------------------------------------------------------------------------------ FC 3.0
def fc3_event(body: bytes, *, b64=False, method="POST", content_type=FORM) -> dict:
    headers = {"Content-Type": content_type} if content_type else {}
    return {"version": "v1", "rawPath": "/", "headers": headers,
            "body": base64.b64encode(body).decode() if b64 else body.decode("utf-8", "surrogateescape"),
            "isBase64Encoded": b64, "requestContext": {"http": {"method": method, "path": "/"}}}


@pytest.mark.parametrize("b64", [False, True])
def test_the_fc3_event_shape_reaches_the_same_core(env, pending, b64):
    handler = load_function("scan_callback").handler_fc3
    event = json.dumps(fc3_event(form(content_for(pending)), b64=b64)).encode("utf-8")
    answer = handler(event, None)
    assert answer["statusCode"] == 200 and json.loads(answer["body"]) == {"status": 200, "reason": "stored"}
    assert answer["headers"]["Content-Type"].startswith("application/json") and answer["isBase64Encoded"] is False
    assert result_doc(env)["status"] == "succeeded"


def test_the_fc3_components_sample_http_event_is_read_as_fc_delivers_it(env, pending):
    """The fc3 component's own sample (tests/data/fc3-event-http.json: capitalised header names, an
    octet-stream body): refused as no form (415); with a form body, base64 as FC sends bodies, it is stored."""
    sample = json.loads((REPO / "tests" / "data" / "fc3-event-http.json").read_text("utf-8"))
    assert sample["version"] == "v1" and sample["requestContext"]["http"]["method"] == "POST"
    answer = callback.handle_fc3_event(json.dumps(sample).encode("utf-8"))
    assert answer["statusCode"] == 415 and set(answer) == {"statusCode", "headers", "body", "isBase64Encoded"}
    sample["headers"]["Content-Type"] = FORM
    sample["body"], sample["isBase64Encoded"] = base64.b64encode(form(content_for(pending))).decode(), True
    answer = load_function("scan_callback").handler_fc3(json.dumps(sample).encode("utf-8"), None)
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["reason"] == "stored"
    assert isinstance(answer["headers"], dict) and all(isinstance(v, str) for v in answer["headers"].values())


@pytest.mark.parametrize("event,status", [
    (b"not json", 400),
    (b"[1, 2]", 400),
    (json.dumps(fc3_event(b"", method="GET")).encode(), 405),
    (json.dumps(fc3_event(b"x=1", content_type=None)).encode(), 415),
    (json.dumps({**fc3_event(b""), "body": "***not base64***", "isBase64Encoded": True}).encode(), 400),
    (json.dumps({**fc3_event(b""), "body": 12}).encode(), 400),
    (json.dumps(fc3_event(b"checksum=" + b"a" * callback.MAX_BODY)).encode(), 413),
    (json.dumps(fc3_event(b"checksum=" + b"a" * callback.MAX_BODY, b64=True)).encode(), 413),
])
def test_bad_fc3_events_are_refused(env, pending, event, status):
    before = snapshot(env)
    assert callback.handle_fc3_event(event)["statusCode"] == status
    assert snapshot(env) == before


def test_the_signed_samples_verify_with_the_uid_and_seed_the_readme_states(env, monkeypatch):
    readme = (REPO / "README.md").read_text("utf-8")
    uid = readme.split("sample UID `", 1)[1].split("`", 1)[0]
    seed = readme.split("and seed `", 1)[1].split("`", 1)[0]
    monkeypatch.setenv("GREEN_UID", uid)
    monkeypatch.setenv("GREEN_SEED", seed)
    for name, crypt in (("green-callback-sha256.json", "SHA256"), ("green-callback-sm3.json", "SM3")):
        event = (REPO / "events" / name).read_bytes()
        monkeypatch.setenv("GREEN_CRYPT_TYPE", crypt)
        # Verified (not 403), but no task of yours has this dataId.
        assert callback.handle_fc3_event(event)["statusCode"] == 404, name
        monkeypatch.setenv("GREEN_SEED", "not_the_sample_seed")
        assert callback.handle_fc3_event(event)["statusCode"] == 403, name
        monkeypatch.setenv("GREEN_SEED", seed)
    assert json.loads((REPO / "events" / "green-callback-sm3.json").read_text())["isBase64Encoded"] is True


# --------------------------------------------------------------------------------------- logs
def test_logs_name_what_happened_never_the_content_checksum_seed_or_uid(env, pending, server, capsys):
    content = content_for(pending)
    good = form(content)
    http_post(server, form(content, seed="wrong_seed"))
    http_post(server, good)
    http_post(server, good)  # a duplicate
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [(e["event"], e.get("status")) for e in lines if e["event"] == "callback"] == [
        ("callback", 403), ("callback", 200), ("callback", 200)]
    for secret in (SEED, UID, callback_checksum(UID, SEED, content), "二等座", "A000001", "1234567890****0000",
                   "姓名", "wrong_seed"):
        assert secret not in err
    assert repr(callback.CallbackRequest("c" * 64, content)).count("二等座") == 0


# ------------------------------------------------------------------------------- cold import
def test_the_rejection_path_imports_no_storage_or_vendor_sdk():
    script = f"""
import io, json, sys, time
t0 = time.perf_counter()
from fcocr.recognizers.green.callback import handle_wsgi
imported = time.perf_counter() - t0
body = b"checksum=" + b"ab" * 32 + b"&content=%7B%7D"
environ = {{"REQUEST_METHOD": "POST", "CONTENT_TYPE": "{FORM}", "CONTENT_LENGTH": str(len(body)),
           "wsgi.input": io.BytesIO(body)}}
seen = []
handle_wsgi(environ, lambda status, headers: seen.append(status))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {{"oss2", "aliyunsdkcore", "aliyunsdkgreen", "requests",
    "alibabacloud_tea_openapi", "darabonba", "tencentcloud", "PIL", "yaml", "numpy", "rapidocr", "onnxruntime"}}
    or m in {{"fcocr.storage", "fcocr.pipeline", "fcocr.tasks", "fcocr.results", "fcocr.prepare", "fcocr.imaging",
              "fcocr.recognizers.green.scan", "fcocr.recognizers.cloud", "fcocr.recognizers.aliyun",
              "fcocr.recognizers.market", "fcocr.recognizers.tencent", "fcocr.recognizers.local"}})
print(json.dumps({{"status": seen, "heavy": heavy, "importSeconds": imported}}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FCOCR_", "GREEN_"))}
    env.update(GREEN_UID=UID, GREEN_SEED=SEED, FCOCR_LOG_LEVEL="ERROR")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60,
                         cwd=str(REPO), check=True)
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["status"] == ["403 Forbidden"] and answer["heavy"] == []


# ----------------------------------------------------------------------------------- fuzzing
FUZZ = hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
                    max_leaves=20)
NAMES = st.sampled_from(["checksum", "Checksum", "content", "Content", "ReqId", "other"]) | st.text(max_size=6)


@FUZZ
@given(st.binary(max_size=512))
def test_fuzz_any_bytes_as_a_form(body):
    try:
        request = callback.parse_form(body)
    except callback.Rejected as exc:
        assert exc.status == 400 and exc.reason
    else:
        assert isinstance(request.checksum, str) and isinstance(request.content, str)


@FUZZ
@given(st.lists(st.tuples(NAMES, st.text(max_size=40)), max_size=20))
def test_fuzz_forms_with_the_right_names(pairs):
    body = "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in pairs).encode("ascii")
    try:
        request = callback.parse_form(body)
    except callback.Rejected as exc:
        assert exc.status == 400
    else:
        assert ("checksum", request.checksum) in [(n.lower(), v) for n, v in pairs]


@FUZZ
@given(st.one_of(st.text(max_size=200), JSON.map(lambda v: json.dumps(v)),
                 st.fixed_dictionaries({"dataId": JSON, "taskId": JSON, "code": JSON}).map(json.dumps),
                 st.fixed_dictionaries({"code": st.just(200), "data": st.lists(JSON, max_size=3)}).map(json.dumps)))
def test_fuzz_contents(content):
    try:
        parsed, items, request_id = callback.parse_content(content)
    except callback.Rejected as exc:
        assert exc.status == 400
    else:
        for item in items:
            assert isinstance(item.data_id, str) and isinstance(item.task_id, str) and item.data_id
            assert isinstance(item.element["code"], int)


@FUZZ
@given(st.one_of(st.binary(max_size=300), JSON, st.fixed_dictionaries(
    {"headers": st.dictionaries(st.sampled_from(["Content-Type", "content-type", "X"]), JSON | st.just(FORM)),
     "body": JSON | st.text(max_size=60), "isBase64Encoded": JSON,
     "requestContext": st.just({"http": {"method": "POST"}}) | JSON})))
def test_fuzz_fc3_events(event):
    try:
        request = callback.read_fc3_event(event)
    except callback.Rejected as exc:
        assert 400 <= exc.status < 500
    else:
        assert isinstance(request, callback.CallbackRequest)


@FUZZ
@given(content=st.one_of(st.text(max_size=120), JSON.map(json.dumps),
                         st.fixed_dictionaries({"dataId": st.sampled_from(["bucket/" + "b" * 40, "x/y", "bucket"]),
                                                "taskId": st.text(min_size=1, max_size=10),
                                                "code": st.integers(0, 600), "results": JSON}).map(json.dumps)))
def test_fuzz_signed_contents_through_the_whole_core(env, content):
    """Verified, then anything: an answer, never an exception, never a write (no task matches)."""
    before = snapshot(env)
    request = callback.CallbackRequest(callback_checksum(UID, SEED, content), content)
    reply = callback.handle(request, callback.Runtime(request_id="fuzz"), Settings.from_env())
    assert reply.status in (400, 404) and snapshot(env) == before
