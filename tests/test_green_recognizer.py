"""green.<card> end to end: the real upload handler submits through the official SDK to the ROA-verifying green
emulator, which downloads the presigned URL from the OSS emulator and POSTs its callback, with the real
checksum, to the callback function served over HTTP by `fcocr serve callback`'s server; the reconcile function
finishes what no callback did (green tasks and viapi async jobs)."""

from __future__ import annotations

import copy
import json
import threading
import time
import urllib.request
from urllib.parse import urlencode

import pytest

from fcocr import pipeline, reconcile, tasks
from fcocr.config import Settings
from fcocr.recognizers.green import scan as green_module
from fcocr.results import ResultDocument, ResultWriter, utc_now
from fcocr.runtime import Credentials, Runtime
from fcocr.storage import OssStorage
from fcocr.tools import cli

from .cloud import (
    AK,
    BUCKET,
    SK,
    TOKEN,
    fc_context,
    frozen_time_left,
    image,
    pdf,
    result,
    route,
    upload,
    viapi_emulator,
)
from .emulators.green import GreenEmulator, load_examples

UID, SEED = "1234567890123456", "fcocr_test_seed_42"
EXAMPLES = load_examples()


@pytest.fixture
def oss(oss, monkeypatch):
    # The served callback has no FC context here: it takes the environment's key (python3.12's way).
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)
    return oss


@pytest.fixture
def served():
    """The callback function on the loopback HTTP server `fcocr serve callback` runs."""
    server = cli.callback_server()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def green(monkeypatch, oss):
    with GreenEmulator(credentials={AK: (SK, TOKEN)}, uid=UID, random_seed=7) as emulator:
        monkeypatch.setenv("FCOCR_GREEN_ENDPOINT", emulator.endpoint)
        monkeypatch.setenv("GREEN_UID", UID)
        monkeypatch.setenv("GREEN_SEED", SEED)
        monkeypatch.setenv("FCOCR_RECONCILE_BUCKETS", BUCKET)
        yield emulator


def with_callback(monkeypatch, served, crypt="SHA256"):
    monkeypatch.setenv("GREEN_CALLBACK_URL", served.url)
    monkeypatch.setenv("GREEN_CRYPT_TYPE", crypt)


def storage():
    return OssStorage(BUCKET, endpoint=pipeline.app().settings.oss_endpoint, region="cn-shanghai",
                      credentials=Credentials(AK, SK, TOKEN))


def records_left(oss):
    return [k for k in oss.keys(BUCKET) if k.startswith(".fcocr-tasks/") and k.endswith(".json")]


def submits(green):
    return [r for r in green.requests if r.path == "/green/image/asyncscan"]


def queries(green):
    return [r for r in green.requests if r.path == "/green/image/results"]


def masked(text: str) -> str:
    """``text`` as fcocr writes it into a result: the credentials it holds replaced by ***."""
    return text.replace(AK, "***").replace(TOKEN, "***")


def run_reconcile(now=None):
    """The scan_reconcile function's work, with the clock moved to ``now`` (default: two minutes on)."""
    runtime = Runtime.from_context(fc_context())
    return reconcile.run(Settings.from_env(), runtime, now=time.time() + 120 if now is None else now)


def post_again(attempt, url):
    """Replay a push exactly as green sent it."""
    body = urlencode({"checksum": attempt.checksum, "content": attempt.content}).encode("ascii")
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# ------------------------------------------------------------------------------ upload -> callback
@pytest.mark.parametrize("crypt", ["SHA256", "SM3"])
def test_upload_is_pending_then_the_verified_callback_makes_it_succeed(monkeypatch, oss, green, served, crypt):
    with_callback(monkeypatch, served, crypt)
    route(monkeypatch, "green.train-ticket")
    key = "票据/2026年 差旅/火车 票+1.png"
    out = upload(oss, key, image(fmt="PNG"))
    assert out["records"][0]["status"] == "pending"

    pending = result(oss, key)
    [submit] = submits(green)
    body = submit.body
    assert body["scenes"] == ["ocr"] and body["extras"] == {"card": "train-ticket"}
    assert (body["callback"], body["seed"], body["cryptType"]) == (served.url.rstrip("/"), SEED, crypt)
    [task] = body["tasks"]
    record = tasks.load(storage(), task["dataId"])
    assert task["dataId"] == tasks.data_id_for(BUCKET, key, pending["source"]["etag"]) and task["dataId"].isascii()
    assert "x-oss-expires=7200" in task["url"]  # a 2-hour URL: the scan may download late
    assert pending["task"] == {"id": record.task_id, "kind": "green", "dataId": task["dataId"],
                               "submittedAt": record.submitted_at}
    assert submit.response["data"][0]["taskId"] == record.task_id and record.key == key
    assert [d.code for d in green.downloads] == [200]  # fetched through the presigned URL

    [attempt] = green.deliver_callbacks()
    assert attempt.status == 200 and attempt.crypt_type == crypt
    doc = result(oss, key)
    assert doc["status"] == "succeeded" and doc["documentType"] == "train_ticket"
    assert doc["fields"] == {"trainNumber": "G0000", "departureStation": "始发站", "arrivalStation": "终到站",
                             "departureTime": "2019年01月01日00:00开", "seat": "01车01F号", "seatClass": "二等座",
                             "price": "0.0", "passengerName": "姓名", "ticketNumber": "A000001"}
    # The content verbatim, but for the key id and STS token in the presigned URL it echoes: no credential in a result.
    assert doc["raw"] == json.loads(masked(attempt.content)) and TOKEN not in json.dumps(doc)
    assert doc["task"]["id"] == record.task_id and doc["startedAt"] == pending["startedAt"]
    assert doc["route"] == pending["route"] and doc["source"] == pending["source"]
    assert tasks.load(storage(), task["dataId"]) is None  # the record is gone, a receipt remains
    assert tasks.load_receipt(storage(), task["dataId"])["taskId"] == record.task_id

    # Acknowledged: not pushed again. A duplicate push is answered 200 and rewrites nothing.
    assert green.deliver_callbacks() == []
    before = oss.get(BUCKET, key + ".ocr.json")
    assert post_again(attempt, served.url) == (200, {"status": 200, "reason": "already final"})
    assert oss.get(BUCKET, key + ".ocr.json") == before
    # And the upload of the same content is settled: nothing is submitted twice.
    assert upload(oss, key, image(fmt="PNG"))["records"][0]["status"] == "skipped"
    assert len(submits(green)) == 1


@pytest.mark.parametrize("card,variant", [("invoice", None), ("quota-account-permit", None),
                                          ("taxi-ticket", None), ("taxi-ticket", "taxi-ticket-table-spelling")])
def test_every_card_becomes_its_fields(monkeypatch, oss, green, served, card, variant):
    with_callback(monkeypatch, served)
    route(monkeypatch, f"green.{card}")
    if variant:
        green.set_card_results(card, EXAMPLES["variants"][variant]["results"])
    upload(oss, "t.jpg", image())
    [attempt] = green.deliver_callbacks()
    assert attempt.status == 200
    doc = result(oss, "t.jpg")
    assert doc["status"] == "succeeded"
    fields = doc["fields"]
    if card == "invoice":
        assert doc["documentType"] == "vat_invoice"
        assert (fields["invoiceCode"], fields["invoiceNumber"], fields["invoiceDate"]) == ("110015****", "5795****",
                                                                                           "2017-04-22")
        assert (fields["totalAmount"], fields["totalTax"], fields["amountWithTax"]) == ("4222.22", "717.78", "4940.00")
        assert (fields["buyerName"], fields["sellerTaxId"], fields["drawer"]) == ("****软件有限公司",
                                                                                 "91110000000000****", "张某某")
        assert fields["reviewer"] is None and fields["checkCode"] is None  # "" is not a value; no 校验码 in green
        assert fields["items"][1] == {"name": "大佛龙井绿茶", "spec": None, "unit": None, "quantity": "50",
                                      "unitPrice": "66.6666667", "amount": "3333.33", "taxRate": "17%",
                                      "tax": "566.67"}
    elif card == "quota-account-permit":
        assert "documentType" not in doc
        assert fields == EXAMPLES["results"]["quota-account-permit"]["data"][0]["results"][0]["ocrCardInfo"] and fields["invoiceSerial"]["batchNumber"] == "01"
    else:
        assert doc["documentType"] == "taxi_ticket"
        assert fields == {"invoiceCode": "25000071****", "invoiceNumber": "5485G0****", "plateNumber": "A•T****",
                          "date": "2008109月16日", "boardingTime": "[K068016:50", "alightingTime": "16:58",
                          "mileage": "42.0", "amount": None}


def test_numbers_where_text_is_expected_become_strings_with_a_warning(monkeypatch, oss, green, served):
    with_callback(monkeypatch, served)
    route(monkeypatch, "green.invoice")
    results = copy.deepcopy(green.card_results["invoice"])
    results[0]["invoiceInfo"].update(invoice_id=3300200041, invoice_totalamount=87.5, invoice_date=20170422)
    green.set_card_results("invoice", results)
    upload(oss, "n.png", image(fmt="PNG"))
    green.deliver_callbacks()
    doc = result(oss, "n.png")
    fields = doc["fields"]
    assert (fields["invoiceCode"], fields["totalAmount"], fields["invoiceDate"]) == ("3300200041", "87.5", "2017-04-22")
    assert any(w.startswith("invoiceCode:") for w in doc["warnings"])


def test_a_ticket_with_no_text_is_a_failure_not_an_empty_success(monkeypatch, oss, green, served):
    with_callback(monkeypatch, served)
    route(monkeypatch, "green.train-ticket")
    green.set_card_results("train-ticket", [{"scene": "ocr", "label": "normal", "suggestion": "pass", "rate": 99.9}])
    upload(oss, "blank.png", image(fmt="PNG"))
    assert [a.status for a in green.deliver_callbacks()] == [200]
    blank = result(oss, "blank.png")
    assert blank["status"] == "failed" and blank["error"]["code"] == "Green.NoFields"
    assert "'normal'" in blank["error"]["message"] and blank["error"]["retryable"] is False
    assert blank["task"]["id"] and not records_left(oss)


def test_an_image_the_service_cannot_download_fails_with_its_code(monkeypatch, oss, green, served):
    with_callback(monkeypatch, served)
    monkeypatch.setenv("FCOCR_OSS_PUBLIC_ENDPOINT", "http://127.0.0.1:9")  # URLs signed for a dead endpoint
    route(monkeypatch, "green.train-ticket")
    upload(oss, "gone.png", image(fmt="PNG"))
    assert [a.status for a in green.deliver_callbacks()] == [200]
    gone = result(oss, "gone.png")
    assert gone["status"] == "failed" and gone["error"]["vendorCode"] == "DOWNLOAD_FAILED"
    assert gone["error"]["retryable"] is True  # the service's download: reprocessing may well work
    assert not records_left(oss)


# ------------------------------------------------------------------------------------ storage faults
@pytest.mark.parametrize("fault", ["write-result", "read-record"])
def test_callbacks_failing_on_storage_are_pushed_again_until_one_is_stored(monkeypatch, oss, green, served, fault):
    with_callback(monkeypatch, served)
    route(monkeypatch, "green.taxi-ticket")
    upload(oss, "taxi.png", image(fmt="PNG"))
    doc = result(oss, "taxi.png")
    record_key = tasks.parse_data_id(doc["task"]["dataId"])[1]
    if fault == "write-result":
        oss.inject_fault(method="PUT", key="taxi.png.ocr.json", status=503, code="ServiceUnavailable", times=2)
    else:
        oss.inject_fault(method="GET", key=record_key, status=500, code="InternalError", times=2)
    rounds = [[a.status for a in green.deliver_callbacks()] for _ in range(4)]
    assert rounds == [[503], [503], [200], []]
    assert result(oss, "taxi.png")["status"] == "succeeded"
    assert record_key not in oss.keys(BUCKET)


def test_a_callback_that_overtakes_the_pending_document_is_answered_503_and_stored_on_the_next_push(
        monkeypatch, oss, green, served):
    """The service may answer before the upload function has written `pending`: the final result must win."""
    with_callback(monkeypatch, served)
    route(monkeypatch, "green.train-ticket")
    oss.put(BUCKET, "race.png", image(fmt="PNG"))
    application = pipeline.app()
    store = storage()
    info = store.head("race.png")
    from fcocr.pipeline import Job
    from fcocr.results import SourceRef

    source = SourceRef(BUCKET, "race.png", info.etag, info.size)
    job = Job(source, "race.png", info, store, Runtime.from_context(fc_context()), application.settings, "cn-shanghai")
    [outcome] = green_module.submit_batch([job], "train-ticket")  # submitted; `pending` not yet written
    assert [a.status for a in green.deliver_callbacks()] == [503]
    assert result(oss, "race.png") is None
    ResultWriter(store, ".ocr.json").write(ResultDocument.from_outcome(
        outcome, source=source, recognizer="green.train-ticket", started_at=utc_now(), finished_at=utc_now(),
        duration_ms=1))
    assert [a.status for a in green.deliver_callbacks()] == [200]
    assert result(oss, "race.png")["status"] == "succeeded"


# ------------------------------------------------------------------------------------------ replays
def test_an_old_callback_replayed_after_a_newer_upload_writes_nothing(monkeypatch, oss, green, served):
    with_callback(monkeypatch, served)
    route(monkeypatch, "green.train-ticket")
    upload(oss, "k.png", image(fmt="PNG", color=(250, 250, 250)))
    [old] = green.deliver_callbacks()
    upload(oss, "k.png", image(fmt="PNG", color=(200, 200, 200)))  # a new ETag: a new task
    [new] = green.deliver_callbacks()
    assert old.task_id != new.task_id and old.status == new.status == 200
    final = oss.get(BUCKET, "k.png.ocr.json")
    assert json.loads(final)["task"]["id"] == new.task_id
    # The old push again, exactly as green sent it: verified, but its task is over; nothing is written.
    status, _ = post_again(old, served.url)
    assert status == 200 and oss.get(BUCKET, "k.png.ocr.json") == final


def test_a_late_callback_for_a_replaced_object_is_dropped_without_writing(monkeypatch, oss, green, served):
    with_callback(monkeypatch, served)
    route(monkeypatch, "green.train-ticket")
    upload(oss, "late.png", image(fmt="PNG", color=(250, 250, 250)))
    first_task = submits(green)[0].response["data"][0]["taskId"]
    # Replace the object before the first task's result is pushed; the second task finishes first.
    upload(oss, "late.png", image(fmt="PNG", color=(100, 100, 100)))
    second_task = submits(green)[1].response["data"][0]["taskId"]
    attempts = {a.task_id: a for a in green.deliver_callbacks()}
    assert attempts[first_task].status == 200 and attempts[second_task].status == 200
    doc = result(oss, "late.png")
    assert doc["status"] == "succeeded" and doc["task"]["id"] == second_task
    assert not records_left(oss)


# --------------------------------------------------------------------------------------- reconcile
def test_without_a_callback_the_reconcile_function_finishes_the_task(monkeypatch, oss, green):
    route(monkeypatch, "green.invoice")
    upload(oss, "inv.png", image(fmt="PNG"))
    [submit] = submits(green)
    assert not {"callback", "seed", "cryptType"} & set(submit.body)  # polled instead
    assert result(oss, "inv.png")["status"] == "pending"

    assert run_reconcile(now=time.time())["buckets"][BUCKET] == {"waiting": 1}  # younger than 60 s: not asked
    assert queries(green) == []
    summary = run_reconcile()
    assert summary["buckets"][BUCKET] == {"finished": 1}
    [query] = queries(green)
    assert query.body == [submit.response["data"][0]["taskId"]]
    doc = result(oss, "inv.png")
    assert doc["status"] == "succeeded" and doc["fields"]["invoiceNumber"] == "5795****"
    assert doc["raw"] == json.loads(masked(json.dumps(query.response["data"][0])))  # no credential
    assert doc["vendorRequestId"] == query.response["requestId"]
    assert not records_left(oss)
    assert run_reconcile()["buckets"][BUCKET] == {} and len(queries(green)) == 1


def test_the_scan_reconcile_function_runs_on_the_timer_event(monkeypatch, oss, green):
    from .conftest import REPO, load_function

    route(monkeypatch, "green.train-ticket")
    monkeypatch.setenv("FCOCR_RECONCILE_AFTER", "0")
    upload(oss, "timer.png", image(fmt="PNG"))
    event = (REPO / "events" / "timer-reconcile.json").read_bytes()
    answer = json.loads(load_function("scan_reconcile").handler(event, fc_context()))
    assert answer["buckets"][BUCKET] == {"finished": 1} and answer["requestId"] == "fc-cloud-1"
    assert result(oss, "timer.png")["status"] == "succeeded"


def test_a_task_still_processing_stays_pending_until_it_is_done(monkeypatch, oss):
    with GreenEmulator(credentials={AK: (SK, TOKEN)}, uid=UID, processing_delay=600) as slow:
        monkeypatch.setenv("FCOCR_GREEN_ENDPOINT", slow.endpoint)
        monkeypatch.setenv("FCOCR_RECONCILE_BUCKETS", BUCKET)
        route(monkeypatch, "green.train-ticket")
        upload(oss, "slow.png", image(fmt="PNG"))
        assert run_reconcile()["buckets"][BUCKET] == {"pending": 1}
        assert result(oss, "slow.png")["status"] == "pending"
        slow.advance_clock(600)
        assert run_reconcile()["buckets"][BUCKET] == {"finished": 1}
        assert result(oss, "slow.png")["status"] == "succeeded"


def test_past_the_services_retention_the_task_fails_with_the_reason(monkeypatch, oss, green):
    route(monkeypatch, "green.train-ticket")
    upload(oss, "a.png", image(fmt="PNG"))
    upload(oss, "b.png", image(fmt="PNG", color=(10, 10, 10)))
    green.advance_clock(2 * 3600)  # the service has dropped the results
    summary = run_reconcile(now=time.time() + 2 * 3600)
    assert summary["buckets"][BUCKET] == {"finished": 2}
    [query] = queries(green)
    assert len(query.body) == 2  # one query for both
    for key in ("a.png", "b.png"):
        error = result(oss, key)["error"]
        assert error["code"] == "Green.Expired" and error["vendorCode"] == "EXPIRED" and "1 h" in error["message"]


def test_past_the_four_hour_query_window_nothing_is_asked(monkeypatch, oss, green):
    route(monkeypatch, "green.train-ticket")
    upload(oss, "old.png", image(fmt="PNG"))
    assert run_reconcile(now=time.time() + 4 * 3600 + 60)["buckets"][BUCKET] == {"finished": 1}
    assert queries(green) == []
    assert result(oss, "old.png")["error"]["code"] == "Green.Expired"


def test_a_record_whose_object_was_replaced_is_dropped_without_writing(monkeypatch, oss, green):
    route(monkeypatch, "green.train-ticket")
    upload(oss, "r.png", image(fmt="PNG"))
    upload(oss, "r.png", image(fmt="PNG", color=(0, 0, 0)))  # replaced: a second task, for the new ETag
    first, second = (r.response["data"][0]["taskId"] for r in submits(green))
    assert run_reconcile()["buckets"][BUCKET] == {"stale": 1, "finished": 1}
    doc = result(oss, "r.png")
    assert doc["status"] == "succeeded" and doc["task"]["id"] == second
    [query] = queries(green)
    assert sorted(query.body) == sorted([first, second])  # both answered; only the current one is written
    assert not records_left(oss) and first != second


def test_batches_of_100_tasks_at_most_10_calls_a_second(monkeypatch, oss, green):
    """submit_batch (backfill's path) and the reconcile queries both cut at 100 and pace themselves."""
    route(monkeypatch, "green.train-ticket")
    settings = pipeline.app().settings
    store = storage()
    runtime = Runtime.from_context(fc_context())
    from fcocr.pipeline import Job
    from fcocr.results import SourceRef

    png = image(size=(64, 64), fmt="PNG")
    jobs = []
    for i in range(120):
        oss.put(BUCKET, f"bulk/{i:03d}.png", png)
        info = store.head(f"bulk/{i:03d}.png")
        source = SourceRef(BUCKET, info.key, info.etag, info.size)
        jobs.append(Job(source, info.key, info, store, runtime, settings, "cn-shanghai"))
    answers = green_module.submit_batch(jobs + jobs[:1], "train-ticket")  # the same object twice: one task
    assert [len(r.body["tasks"]) for r in submits(green)] == [100, 20]
    assert all(a.task for a in answers) and answers[-1] is answers[0]
    writer = ResultWriter(store, ".ocr.json")
    for job, answer in zip(jobs, answers, strict=False):
        writer.write(ResultDocument.from_outcome(answer, source=job.source, recognizer="green.train-ticket",
                                                 started_at=utc_now(), finished_at=utc_now(), duration_ms=0))
    assert run_reconcile()["buckets"][BUCKET] == {"finished": 120}
    assert [len(r.body) for r in queries(green)] == [100, 20]
    assert all(r.error_code is None for r in green.requests)  # never throttled
    assert result(oss, "bulk/119.png")["status"] == "succeeded"


def test_the_rate_limiter_allows_10_calls_in_any_second():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    limiter = green_module.LIMITERS["submit"]
    fresh = type(limiter)(limiter.rate, limiter.burst, clock=lambda: now[0], sleep=sleep)
    stamps = []
    for _ in range(25):
        fresh.acquire()
        stamps.append(now[0])
    assert slept and stamps[0] == 0.0
    assert all(stamps[i + 10] - stamps[i] > 1.0 for i in range(15))  # never 11 calls inside any second
    assert stamps[-1] == pytest.approx(24 / (10 * 0.98))  # and no slower than the quota allows


def test_a_task_the_service_refuses_fails_alone_and_leaves_no_record(monkeypatch, oss, green):
    route(monkeypatch, "green.train-ticket")
    green.inject_fault("/green/image/asyncscan", kind="business", status=400, code="BAD_REQUEST", times=1)
    out = upload(oss, "refused.png", image(fmt="PNG"))
    assert out["records"][0]["status"] == "failed"
    error = result(oss, "refused.png")["error"]
    assert error["code"] == "Green.BAD_REQUEST" and error["retryable"] is False
    assert not [k for k in oss.keys(BUCKET) if k.startswith(".fcocr-")]


def test_throttling_is_retried_and_the_submission_succeeds(monkeypatch, oss, green):
    route(monkeypatch, "green.train-ticket")
    green.inject_fault("/green/image/asyncscan", status=400, code="Throttling.User", times=2)
    assert upload(oss, "busy.png", image(fmt="PNG"))["records"][0]["status"] == "pending"
    assert [r.error_code for r in submits(green)] == ["Throttling.User", "Throttling.User", None]


def test_an_oversized_image_is_prepared_and_the_staged_copy_deleted_when_final(monkeypatch, oss, green, served):
    with_callback(monkeypatch, served)
    route(monkeypatch, "green.train-ticket")
    monkeypatch.setattr(green_module, "LIMITS", green_module.Limits(
        formats=green_module.LIMITS.formats, max_bytes=20_000, max_side=30_001, max_pixels=250_000_000))
    upload(oss, "big.png", image(size=(900, 700), fmt="PNG", noise=True))
    staged = [k for k in oss.keys(BUCKET) if k.startswith(".fcocr-staging/")]
    assert len(staged) == 1 and len(oss.get(BUCKET, staged[0])) <= 20_000
    [task] = submits(green)[0].body["tasks"]
    assert "/.fcocr-staging/" in task["url"] and green.downloads[0].code == 200
    assert result(oss, "big.png")["warnings"]
    [attempt] = green.deliver_callbacks()
    assert attempt.status == 200 and result(oss, "big.png")["status"] == "succeeded"
    [left] = [k for k in oss.keys(BUCKET) if k.startswith(".fcocr-")]  # the staged copy is gone
    assert left.endswith(".done")  # only the receipt is left


def test_a_multi_page_pdf_is_refused_before_paying(monkeypatch, oss, green):
    route(monkeypatch, "green.invoice")
    upload(oss, "two.pdf", pdf(2))
    assert result(oss, "two.pdf")["error"]["code"] == "TooManyPages" and not submits(green)


# ------------------------------------------------------------------------------------ viapi async
@pytest.fixture
def viapi(monkeypatch, oss):
    with viapi_emulator(monkeypatch, oss) as emulator:
        monkeypatch.setenv("FCOCR_RECONCILE_BUCKETS", BUCKET)
        yield emulator


def test_a_pending_viapi_async_job_is_finished_by_reconcile_and_its_staged_copy_dropped(monkeypatch, oss, viapi):
    viapi.async_polls_before_done = 10_000
    monkeypatch.setenv("FCOCR_VIAPI_POLL_MS", "60000")
    route(monkeypatch, "aliyun.TrimDocument")
    frozen_time_left(monkeypatch, 50.0)  # time for the calls, not for another poll interval: pending
    out = upload(oss, "docs/long.pdf", pdf(1))
    assert out["records"][0]["status"] == "pending"
    doc = result(oss, "docs/long.pdf")
    # A staged input to drop when the job is final (as for a converted or non-Shanghai input).
    store = storage()
    record = tasks.load(store, doc["task"]["dataId"])
    oss.put(BUCKET, ".fcocr-staging/x-p1.fcocr-staging", b"%PDF-1.4 staged copy")
    record.extra["staging"] = {"bucket": BUCKET, "key": ".fcocr-staging/x-p1.fcocr-staging"}
    tasks.save(store, record)

    assert run_reconcile()["buckets"][BUCKET] == {"pending": 1}  # still running: asked once, left pending
    viapi.async_polls_before_done = 0
    assert run_reconcile()["buckets"][BUCKET] == {"finished": 1}
    final = result(oss, "docs/long.pdf")
    assert final["status"] == "succeeded" and final["fields"] and final["task"]["id"] == doc["task"]["id"]
    assert final["raw"]["Data"]["Status"] == "PROCESS_SUCCESS"
    assert not [k for k in oss.keys(BUCKET) if k.startswith(".fcocr-")]  # record and staged copy gone


def test_a_failed_viapi_async_job_is_recorded_failed_by_reconcile(monkeypatch, oss, viapi):
    viapi.async_polls_before_done = 10_000
    monkeypatch.setenv("FCOCR_VIAPI_POLL_MS", "60000")
    route(monkeypatch, "aliyun.TrimDocument")
    viapi.fail_async_job(status="PROCESS_FAILED", code="InvalidFile", message="the file is damaged")
    # Time for the calls (15 s each, 5 s reserve) but not for one more poll interval: pending, after one poll.
    frozen_time_left(monkeypatch, 50.0)
    upload(oss, "docs/bad.pdf", pdf(1))
    assert result(oss, "docs/bad.pdf")["status"] == "pending"
    viapi.async_polls_before_done = 0
    assert run_reconcile()["buckets"][BUCKET] == {"finished": 1}
    error = result(oss, "docs/bad.pdf")["error"]
    assert error["code"] == "Aliyun.PROCESS_FAILED" and error["vendorCode"] == "InvalidFile"


def test_a_bucket_that_cannot_be_read_does_not_stop_the_others(monkeypatch, oss, green):
    monkeypatch.setenv("FCOCR_RECONCILE_BUCKETS", f"no-such-bucket,{BUCKET}")
    route(monkeypatch, "green.train-ticket")
    upload(oss, "ok.png", image(fmt="PNG"))
    summary = run_reconcile()["buckets"]
    assert summary["no-such-bucket"] == {"error": "NoSuchBucket"} and summary[BUCKET] == {"finished": 1}


def test_receipts_are_dropped_after_four_hours(monkeypatch, oss, green, served):
    with_callback(monkeypatch, served)
    route(monkeypatch, "green.train-ticket")
    upload(oss, "rc.png", image(fmt="PNG"))
    [attempt] = green.deliver_callbacks()
    receipts = [k for k in oss.keys(BUCKET) if k.endswith(".done")]
    assert len(receipts) == 1
    assert run_reconcile()["buckets"][BUCKET] == {}
    assert run_reconcile(now=time.time() + 4 * 3600 + 60)["buckets"][BUCKET] == {"receiptsDropped": 1}
    assert not [k for k in oss.keys(BUCKET) if k.endswith(".done")]
    # After that, a replay of the push finds nothing at all.
    assert post_again(attempt, served.url)[0] == 404



def test_a_storage_fault_on_one_task_leaves_it_for_the_next_tick_and_finishes_the_others(monkeypatch, oss, green):
    route(monkeypatch, "green.train-ticket")
    upload(oss, "one.png", image(fmt="PNG"))
    upload(oss, "two.png", image(fmt="PNG", color=(1, 2, 3)))
    oss.inject_fault(method="PUT", key="one.png.ocr.json", status=503, code="ServiceUnavailable", times=1)
    assert run_reconcile()["buckets"][BUCKET] == {"finished": 1, "errors": 1}
    assert result(oss, "one.png")["status"] == "pending" and result(oss, "two.png")["status"] == "succeeded"
    assert run_reconcile()["buckets"][BUCKET] == {"finished": 1}
    assert result(oss, "one.png")["status"] == "succeeded" and not records_left(oss)


def test_a_staged_copy_is_deleted_when_the_task_record_cannot_be_saved(monkeypatch, oss, green):
    route(monkeypatch, "green.train-ticket")
    monkeypatch.setattr(green_module, "LIMITS", green_module.Limits(
        formats=green_module.LIMITS.formats, max_bytes=20_000, max_side=30_001, max_pixels=250_000_000))
    data = image(size=(900, 700), fmt="PNG", noise=True)
    oss.put(BUCKET, "nosave.png", data)
    etag = oss.head(BUCKET, "nosave.png")["etag"].strip('"').upper()
    record_key = tasks.parse_data_id(tasks.data_id_for(BUCKET, "nosave.png", etag))[1]
    oss.inject_fault(method="PUT", key=record_key, status=403, code="AccessDenied", times=10)
    out = upload(oss, "nosave.png", data)
    assert out["records"][0]["status"] == "failed" and result(oss, "nosave.png")["error"]["code"] == "Oss.AccessDenied"
    assert any(r.method == "PUT" and r.key.startswith(".fcocr-staging/") for r in oss.requests)  # it was staged
    assert not [k for k in oss.keys(BUCKET) if k.startswith(".fcocr-")] and not submits(green)


def test_a_record_never_submitted_waits_an_hour_then_fails_retryable(monkeypatch, oss, green):
    """The upload function died between saving the record and submitting: nobody will complete it."""
    route(monkeypatch, "green.train-ticket")
    upload(oss, "half.png", image(fmt="PNG"))
    store = storage()
    record = tasks.load(store, result(oss, "half.png")["task"]["dataId"])
    record.task_id = ""
    tasks.save(store, record)
    assert run_reconcile()["buckets"][BUCKET] == {"waiting": 1}
    assert run_reconcile(now=time.time() + 2 * 3600)["buckets"][BUCKET] == {"finished": 1}
    error = result(oss, "half.png")["error"]
    assert error["code"] == "Green.NotSubmitted" and error["retryable"] is True and not queries(green)
    assert not records_left(oss)


def test_biz_type_is_a_route_option_sent_only_when_set(monkeypatch, oss, green):
    route(monkeypatch, "green.invoice", {"bizType": "invoices_2026"})
    upload(oss, "biz.png", image(fmt="PNG"))
    route(monkeypatch, "green.invoice")
    upload(oss, "plain.png", image(fmt="PNG", color=(240, 240, 240)))
    with_biz, without = submits(green)
    assert with_biz.body["bizType"] == "invoices_2026" and "bizType" not in without.body
    assert result(oss, "biz.png")["status"] == "pending"
