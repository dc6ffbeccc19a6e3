"""fcocr backfill: the OSS emulator holds the bucket, the FC emulator checks every invocation's signature and quota.

The 10 QPS runs use a fake clock shared by the client's token bucket, its backoff and the emulator's quota
window, so 100 invocations of emulated time take a fraction of a second of real time.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
from collections import Counter
from pathlib import Path

import pytest

from fcocr.errors import ConfigError
from fcocr.pipeline import App
from fcocr.recognizers import family as provider
from fcocr.storage import OssStorage
from fcocr.tools import cli
from fcocr.tools.backfill import (
    PACE,
    Backfill,
    Checkpoint,
    FcInvoker,
    Frontier,
    Quotas,
    TokenBucket,
    default_checkpoint,
    parse_target,
    skip_reason,
)

from .cloud import AK, BUCKET, SK, TOKEN, fc_context, image, route
from .conftest import load_function
from .emulators.fc import FcEmulator
from .emulators.market import MarketEmulator

REGION = "cn-shanghai"
ACCOUNT = "1234567890123456"


class FakeClock:
    """Time that moves only when someone sleeps on it: exact nanoseconds, so a 0.1 s spacing stays 0.1 s."""

    def __init__(self) -> None:
        self.ns = 0
        self.sleeps = 0
        self._lock = threading.Lock()

    def now(self) -> float:
        return self.ns / 1e9

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps += 1
            self.ns += max(0, math.ceil(seconds * 1e9))


@pytest.fixture
def creds(monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def fc(clock):
    with FcEmulator({AK: (SK, TOKEN)}, account_id=ACCOUNT, qps_limit=10, rate_clock=clock.now) as emulator:
        yield emulator


def invoker(fc, sk=SK, **kw):
    from fcocr.runtime import Credentials

    return FcInvoker(fc.endpoint, Credentials(AK, sk, TOKEN), "fcocr", "ocr_upload", **kw)


def fc3_invoker(fc, sk=SK, **kw):
    from fcocr.runtime import Credentials
    from fcocr.tools.fc3_invoker import Fc3Invoker

    return Fc3Invoker(fc.endpoint, Credentials(AK, sk, TOKEN), "fcocr-ocr_upload", **kw)


def backfill(fc, clock, tmp_path, target="scans/", **kw) -> Backfill:
    kw.setdefault("invoker", invoker(fc) if fc is not None else None)
    kw.setdefault("remote", fc is not None)
    kw.setdefault("invokers", 1)  # one sender: the fake clock then models time exactly
    kw.setdefault("count_total", False)
    from fcocr.runtime import credentials_from

    return Backfill(parse_target(f"oss://{BUCKET}/{target}"), App.from_env(), region=REGION,
                    checkpoint=tmp_path / "checkpoint.json", credentials=credentials_from(None),
                    clock=clock.now, sleep=clock.sleep, **kw)


def put_documents(oss, n: int, prefix: str = "scans/") -> list[str]:
    keys = [f"{prefix}{i:04d}.jpg" for i in range(n)]
    for i, key in enumerate(keys):
        oss.put(BUCKET, key, b"document %d" % i)
    return keys


def settle(oss, key: str, status: str = "succeeded", etag: str | None = None, retryable: bool = False) -> None:
    meta = {"fcocr-kind": "result", "fcocr-status": status,
            "fcocr-source-etag": etag or oss.head(BUCKET, key)["etag"]}
    if status == "failed":
        meta["fcocr-retryable"] = "true" if retryable else "false"
    oss.put(BUCKET, key + ".ocr.json", b"{}", metadata=meta)


def invoked_keys(fc) -> Counter:
    return Counter(r["oss"]["object"]["key"] for r in fc.invoked_records())


# ------------------------------------------------------------------------------------------ the 1,000-object run
def test_1000_objects_at_10_qps_each_invoked_once_across_an_interruption(oss, fc, clock, creds, tmp_path, monkeypatch):
    monkeypatch.setattr(OssStorage, "list_page", 250)  # several pages in each run, resumed from the checkpoint
    keys = put_documents(oss, 1000)
    # Around them: fcocr's own objects, a folder marker, a non-document, and results already there.
    oss.put(BUCKET, "scans/", b"")
    oss.put(BUCKET, "scans/notes.txt", b"not a document")
    oss.put(BUCKET, "scans/.fcocr-tasks/x.json", b"{}")  # only reserved at the bucket root: a .json anyway
    settle(oss, keys[3])  # final for this ETag: skipped
    settle(oss, keys[4], status="failed")  # permanently failed: final too
    settle(oss, keys[5], status="failed", retryable=True)  # a transient failure: invoked again
    settle(oss, keys[6], etag="0" * 32)  # a result for an older version of the object: invoked
    expected = set(keys) - {keys[3], keys[4]}

    sent = []

    def interrupt(invocation):  # Ctrl-C, as the terminal delivers it, after the 40th invocation
        sent.append(invocation)
        if len(sent) == 40:
            os.kill(os.getpid(), signal.SIGINT)

    fc.on_invoke = interrupt
    first = backfill(fc, clock, tmp_path).run()
    assert first.interrupted and not first.complete and not first.failed
    assert 40 <= first.invocations < 100 and first.invoked == len(invoked_keys(fc))
    saved = json.loads((tmp_path / "checkpoint.json").read_text())
    assert saved["target"] == f"oss://{BUCKET}/scans/" and not saved["complete"] and saved["retry"] == []
    # The checkpoint passed exactly the keys dispatched (or skipped): every document up to it, none after it.
    assert set(invoked_keys(fc)) == {k for k in keys if k <= saved["after"]} - {keys[3], keys[4]}

    fc.on_invoke = None
    clock.sleep(1.0)  # the operator runs the command again: more than a second later
    started = clock.now()
    second = backfill(fc, clock, tmp_path).run()
    assert second.complete and not second.interrupted and not second.failed and second.resumed_after == saved["after"]
    assert json.loads((tmp_path / "checkpoint.json").read_text())["complete"]

    counts = invoked_keys(fc)
    assert set(counts) == expected and set(counts.values()) == {1}  # every document exactly once, nothing else
    assert first.invoked + second.invoked == len(expected)
    assert first.skipped["result already final"] + second.skipped["result already final"] == 2
    assert first.listed + second.listed == 1000 + 4 + 3  # the objects, the extras, the results
    assert sum(first.skipped.values()) + sum(second.skipped.values()) == 9  # 2 final, 4 extras... and 3 results
    for record in fc.invoked_records():
        key = record["oss"]["object"]["key"]
        assert record["eventName"] == "ObjectCreated:PutObject" and record["region"] == REGION
        assert record["oss"]["bucket"]["name"] == BUCKET
        assert record["oss"]["object"]["eTag"] == oss.head(BUCKET, key)["etag"]
        assert record["oss"]["object"]["size"] == oss.head(BUCKET, key)["size"]
    assert all(i.invocation_type == "Async" and len(i.json()["events"]) <= 10 for i in fc.invocations)
    # Under the quota all along, and close to it: the second run's rate, in the emulated time of its invocations.
    assert fc.max_in_any_second() <= 10 and {r.status for r in fc.requests} == {202}
    assert second.invoke_rate >= 0.95 * 10 and clock.now() - started >= (second.invocations - 1) / 10
    # The listing went page by page, each run's first page starting after its checkpoint.
    lists = [r.query for r in oss.requests if r.method == "GET" and not r.key and r.query.get("list-type") == "2"]
    assert len(lists) >= 5 and sum(bool(q.get("continuation-token")) for q in lists) >= 3
    assert [q.get("start-after", "") for q in lists if not q.get("continuation-token")] == ["", saved["after"]]


def test_a_finished_backfill_is_not_repeated_and_restart_skips_what_is_final(oss, fc, clock, creds, tmp_path):
    keys = put_documents(oss, 25)
    assert backfill(fc, clock, tmp_path).run().invoked == 25
    again = backfill(fc, clock, tmp_path).run()
    assert again.complete and again.listed == 0 and len(fc.invocations) == 3
    for key in keys:
        settle(oss, key)
    restarted = backfill(fc, clock, tmp_path, restart=True).run()
    assert restarted.skipped["result already final"] == 25 and restarted.invoked == 0 and len(fc.invocations) == 3


# ------------------------------------------------------------------------------------------ faults
def test_throttling_and_5xx_are_answered_by_backoff_not_failure(oss, clock, creds, tmp_path):
    keys = put_documents(oss, 200)
    with FcEmulator({AK: (SK, TOKEN)}, qps_limit=5, rate_clock=clock.now) as fc:
        fc.inject_fault("error", status=503, code="ServiceUnavailable", times=2)
        fc.inject_fault("html")  # a gateway's page: not JSON
        fc.inject_fault("drop")  # the connection closed before FC took the request
        summary = backfill(fc, clock, tmp_path, qps=20).run()  # four times the quota
    assert summary.complete and not summary.failed and summary.invoked == 200
    assert Counter(invoked_keys(fc).values()) == {1: 200} and set(invoked_keys(fc)) == set(keys)
    assert summary.retries["FC.ResourceThrottled"] > 0 and summary.retries["FC.ServiceUnavailable"] == 2
    assert summary.retries["FC.MalformedResponse"] == 1 and summary.retries["FC.Unreachable"] == 1
    assert fc.max_in_any_second() <= 5


def test_a_batch_that_keeps_failing_is_retried_by_the_next_run_only(oss, fc, clock, creds, tmp_path):
    keys = put_documents(oss, 50)
    fc.inject_fault("error", status=500, code="InternalServerError", times=3)  # the first batch's every attempt
    summary = backfill(fc, clock, tmp_path, attempts=3).run()
    assert len(summary.failed) == 10 and summary.invoked == 40 and not summary.complete
    assert summary.retries["FC.InternalServerError"] == 2 and not summary.fatal  # a 5xx is not FC refusing us
    assert json.loads((tmp_path / "checkpoint.json").read_text())["retry"] == sorted(summary.failed)
    rerun = backfill(fc, clock, tmp_path).run()
    assert rerun.complete and rerun.invoked == 10 and rerun.listed == 10
    assert set(invoked_keys(fc)) == set(keys) and Counter(invoked_keys(fc).values()) == {1: 50}
    assert set(invoked_keys(fc)) - set(summary.failed) == {r["oss"]["object"]["key"] for i in fc.invocations[:4]
                                                           for r in i.json()["events"]}


def test_fc_refusing_the_credentials_stops_the_run_without_printing_them(oss, fc, clock, creds, tmp_path, capsys):
    keys = put_documents(oss, 60)
    summary = backfill(fc, clock, tmp_path, invoker=invoker(fc, sk="wrong-secret-value")).run()
    assert summary.fatal.startswith("FC.SignatureNotMatch") and fc.invocations == []
    assert not summary.complete and len(summary.failed) <= 60
    # Nothing the SDK logs on its way out (it logs request headers) reaches the terminal: no token, no signature.
    captured = capsys.readouterr()
    for secret in (TOKEN, "wrong-secret-value", SK, "FC " + AK):
        assert secret not in captured.err and secret not in captured.out
    rerun = backfill(fc, clock, tmp_path).run()
    assert rerun.complete and Counter(invoked_keys(fc).values()) == {1: 60} and set(invoked_keys(fc)) == set(keys)


def test_fc3_invocations_are_signed_acs3_and_paced_to_the_quota_through_faults(oss, clock, creds, tmp_path):
    keys = put_documents(oss, 300)
    with FcEmulator({AK: (SK, TOKEN)}, qps_limit=10, rate_clock=clock.now) as fc:
        fc.inject_fault("error", status=503, code="ServiceUnavailable", times=2)
        fc.inject_fault("drop")
        summary = backfill(fc, clock, tmp_path, invoker=fc3_invoker(fc)).run()
    assert summary.complete and not summary.failed and summary.invoked == 300
    assert Counter(invoked_keys(fc).values()) == {1: 300} and set(invoked_keys(fc)) == set(keys)
    assert {r.path for r in fc.requests} == {"/2023-03-30/functions/fcocr-ocr_upload/invocations"}
    assert all(i.invocation_type == "Async" and i.service == "" for i in fc.invocations)
    assert summary.retries["FC.ServiceUnavailable"] == 2 and summary.retries["FC.Unreachable"] == 1
    assert fc.max_in_any_second() <= 10 and summary.invoke_rate >= 0.95 * 10


def test_fc3_refusing_the_signature_stops_the_run_without_printing_secrets(oss, fc, clock, creds, tmp_path, capsys):
    put_documents(oss, 30)
    summary = backfill(fc, clock, tmp_path, invoker=fc3_invoker(fc, sk="wrong-secret-value")).run()
    assert summary.fatal.startswith("FC.SignatureDoesNotMatch") and fc.invocations == []
    captured = capsys.readouterr()
    for secret in (TOKEN, "wrong-secret-value", SK):
        assert secret not in captured.err and secret not in captured.out
    assert fc3_invoker(fc).invoke(b'{"events": []}') and len(fc.invocations) == 1  # the right secret passes


def test_a_lost_acknowledgement_is_retried_and_the_function_stays_idempotent(oss, clock, creds, tmp_path):
    """FC took the invocation but the answer was lost: backfill cannot know, so it sends the batch again; the
    function skips what is already final, so no document is recognized twice."""
    handler = load_function("ocr_upload").handler
    with MarketEmulator(appcode="0123456789abcdef0123456789abcdef") as market, \
            FcEmulator({AK: (SK, TOKEN)}, functions={("fcocr", "ocr_upload"): handler}, rate_clock=clock.now) as fc:
        os.environ["ALIYUN_MARKET_APPCODE"] = "0123456789abcdef0123456789abcdef"
        os.environ["FCOCR_MARKET_URL_GENERAL"] = market.url_for("general")
        os.environ["FCOCR_ROUTES"] = json.dumps({"routes": [{"match": "**", "recognizer": "market.general"}]})
        for i in range(3):
            oss.put(BUCKET, f"scans/{i}.jpg", image())
        fc.inject_fault("drop", accepted=True)
        summary = backfill(fc, clock, tmp_path).run()
        assert summary.complete and summary.retries["FC.Unreachable"] == 1 and len(fc.invocations) == 2
        fc.run_async(lambda inv: fc_context())
    assert [i.error for i in fc.invocations] == [None, None]
    assert len(market.requests) == 3  # each document recognized once
    for i in range(3):
        assert json.loads(oss.get(BUCKET, f"scans/{i}.jpg.ocr.json"))["status"] == "succeeded"


# ------------------------------------------------------------------------------------------ dry run, local mode
def test_dry_run_lists_and_checks_but_invokes_and_writes_nothing(oss, fc, clock, creds, tmp_path):
    keys = put_documents(oss, 30)
    settle(oss, keys[0])
    before = len(oss.requests)
    summary = backfill(fc, clock, tmp_path, dry_run=True).run()
    assert summary.would == 29 and summary.skipped["result already final"] == 1 and summary.samples[0] == keys[1]
    assert fc.requests == [] and not (tmp_path / "checkpoint.json").exists()
    assert {r.method for r in oss.requests[before:]} <= {"GET", "HEAD"}


def test_local_backfill_processes_at_the_vendors_quota(oss, monkeypatch, clock, creds, tmp_path):
    with MarketEmulator(appcode="0123456789abcdef0123456789abcdef") as market:
        monkeypatch.setenv("ALIYUN_MARKET_APPCODE", "0123456789abcdef0123456789abcdef")
        monkeypatch.setenv("FCOCR_MARKET_URL_GENERAL", market.url_for("general"))
        route(monkeypatch, "market.general")
        for i in range(12):
            oss.put(BUCKET, f"scans/{i:02d}.png", image(fmt="PNG"))
        settle(oss, "scans/00.png")
        summary = backfill(None, clock, tmp_path, workers=1).run()
        assert summary.complete and summary.statuses == {"succeeded": 11}
        assert summary.skipped["result already final"] == 1
        assert len(market.requests) == 11
        # market.* allows 5 calls a second: 11 calls take at least 2 s (of the fake clock the buckets wait on).
        assert provider("market").capabilities["market.general"].qps == 5 and clock.now() >= 2.0
        for i in range(1, 12):
            assert json.loads(oss.get(BUCKET, f"scans/{i:02d}.png.ocr.json"))["status"] == "succeeded"
        again = backfill(None, clock, tmp_path, workers=1, restart=True).run()
        assert again.skipped["result already final"] == 12 and len(market.requests) == 11


def test_local_dry_run_says_which_recognizer_would_run(oss, monkeypatch, clock, creds, tmp_path):
    monkeypatch.setenv("FCOCR_ROUTES", json.dumps({"routes": [
        {"match": "scans/id/**", "recognizer": "aliyun.RecognizeIdentityCard"},
        {"match": "**", "recognizer": "local.text"}]}))
    put_documents(oss, 3, "scans/id/")
    put_documents(oss, 2, "scans/other/")
    oss.put(BUCKET, "scans/other/meta.png", b"x", metadata={"fcocr-recognizer": "market.general"})
    summary = backfill(None, clock, tmp_path, dry_run=True).run()
    assert summary.would_recognizers == {"aliyun.RecognizeIdentityCard": 3, "local.text": 2, "market.general": 1}


# ------------------------------------------------------------------------------------------ the pieces
def test_token_bucket_spaces_acquisitions_at_its_rate(clock):
    bucket = TokenBucket(4, clock=clock.now, sleep=clock.sleep)
    stamps = []
    for _ in range(9):
        bucket.acquire()
        stamps.append(clock.now())
    assert stamps[0] == 0 and all(b - a >= 0.25 for a, b in zip(stamps, stamps[1:], strict=False))
    assert stamps[-1] == pytest.approx(2.0, abs=1e-6)
    burst = TokenBucket(4, burst=3, clock=clock.now, sleep=clock.sleep)
    clock.sleep(10)  # idle: the bucket fills up to its burst, no further
    before = clock.now()
    for _ in range(4):
        burst.acquire()
    assert clock.now() - before == pytest.approx(0.25, abs=1e-6)
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_token_bucket_holds_its_rate_across_threads(clock):
    # Eight real threads, one fake clock (time moves only when the bucket sleeps): however the threads are
    # scheduled on a busy machine, 200 tokens at 200 a second take exactly 199/200 s, never less, never more.
    bucket = TokenBucket(200, clock=clock.now, sleep=clock.sleep)
    taken, lock = [], threading.Lock()

    def take():
        for _ in range(25):
            bucket.acquire()
            with lock:
                taken.append(1)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 200 and clock.now() == pytest.approx(199 / 200, abs=1e-6)


def test_quotas_follow_the_capability_table():
    quotas = Quotas()
    assert quotas.bucket_for("local.text") is None and quotas.bucket_for("aliyun.RecognizeBankCard") is None
    idcard, general = quotas.bucket_for("market.idcard"), quotas.bucket_for("market.general")
    assert idcard.rate == general.rate == 5 * PACE and idcard is not general  # 5 QPS per market API
    assert quotas.bucket_for("tencent.VatInvoiceOCR").rate == 10 * PACE
    assert quotas.bucket_for("green.invoice") is quotas.bucket_for("green.train-ticket")  # one asyncscan quota
    assert quotas.bucket_for("green.invoice").rate == 10 * PACE
    capped = Quotas(cap=2)
    assert capped.bucket_for("market.idcard").rate == capped.bucket_for("local.text").rate == 2 * PACE


def test_frontier_only_passes_finished_keys():
    frontier = Frontier("a")
    seqs = [frontier.add(k) for k in ("b", "c", "d")]
    frontier.finish(seqs[1])
    assert frontier.after == "a" and frontier.unfinished == 3
    frontier.finish(seqs[0])
    assert frontier.after == "c" and frontier.unfinished == 1
    frontier.finish(seqs[2])
    assert frontier.after == "d" and frontier.unfinished == 0


def test_names_that_are_skipped_without_reading():
    assert skip_reason("a/", ".ocr.json") == "folder marker"
    assert skip_reason("a/b.jpg.ocr.json", ".ocr.json") == "fcocr's own object"
    assert skip_reason(".fcocr-tasks/x.jpg", ".ocr.json") == "fcocr's own object"
    assert skip_reason(".fcocr-staging/x.png", ".ocr.json") == "fcocr's own object"
    assert skip_reason("a/readme.txt", ".ocr.json") == "not a document suffix"
    assert skip_reason("a/SCAN.JPEG", ".ocr.json") is None and skip_reason("发票/a.pdf", ".ocr.json") is None


def test_checkpoints_belong_to_one_target_and_are_checked(tmp_path):
    target = parse_target("oss://my-bucket/a/b/")
    path = default_checkpoint(target, tmp_path)
    assert path.parent == tmp_path and path.name.startswith("my-bucket-a_b-")
    assert default_checkpoint(parse_target("oss://my-bucket/a/c/"), tmp_path) != path
    Checkpoint(path, target, after="a/b/x.jpg", retry=["a/b/w.jpg"]).save()
    loaded = Checkpoint.load(path, target)
    assert (loaded.after, loaded.retry, loaded.complete) == ("a/b/x.jpg", ["a/b/w.jpg"], False)
    with pytest.raises(ConfigError, match="belongs to"):
        Checkpoint.load(path, parse_target("oss://my-bucket/other/"))
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable"):
        Checkpoint.load(path, target)


@pytest.mark.parametrize("text, message", [
    ("s3://bucket/x", "not an OSS location"),
    ("oss://Bad_Bucket/x", "not a bucket name"),
    ("oss://ab/x", "not a bucket name"),
])
def test_bad_targets_are_refused_with_a_reason(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_target(text)


# ------------------------------------------------------------------------------------------ the command
@pytest.mark.parametrize("version,name,path", [
    ([], "fcocr-ocr_upload", "/2023-03-30/functions/fcocr-ocr_upload/invocations"),  # FC 3.0 by default
    (["--fc-version", "2"], "fcocr/ocr_upload", "/2016-08-15/services/fcocr/functions/ocr_upload/invocations"),
])
def test_the_command_prints_a_summary_and_resumes_from_its_checkpoint(oss, creds, monkeypatch, tmp_path, capsys,
                                                                       version, name, path):
    with FcEmulator({AK: (SK, TOKEN)}) as fc:
        monkeypatch.setenv("FCOCR_FC_ENDPOINT", fc.endpoint)
        monkeypatch.chdir(tmp_path)
        put_documents(oss, 15)
        oss.put(BUCKET, "scans/a.txt", b"x")
        argv = ["backfill", f"oss://{BUCKET}/scans/", "--remote", "--region", REGION, "--qps", "500", "--batch", "4",
                *version]
        assert cli.main(argv) == 0
        out = capsys.readouterr().out
        assert f"{name} at {fc.endpoint}" in out
        assert {r.path for r in fc.requests} == {path} and {r.status for r in fc.requests} == {202}
        assert "15 documents in 4 invocations" in out and "skipped: not a document suffix  1" in out
        [checkpoint] = (tmp_path / ".fcocr-backfill").iterdir()
        assert f"checkpoint {Path('.fcocr-backfill') / checkpoint.name}: complete" in out
        assert cli.main(argv) == 0
        assert "already complete" in capsys.readouterr().out and len(fc.invocations) == 4
        assert cli.main(argv + ["--dry-run", "--restart"]) == 0
        out = capsys.readouterr().out
        assert "would invoke" in out and "would send 4 invocations" in out and len(fc.invocations) == 4


@pytest.mark.parametrize("argv, message", [
    (["--remote"], "--account-id"),
    (["--remote", "--account-id", "12ab"], "digits only"),
    (["--batch", "0"], "--batch must be between 1 and 100"),
    (["--qps", "0"], "--qps must be above 0"),
    (["--workers", "0"], "--workers must be at least 1"),
    ([], None),  # no --region: the bucket is on OSS
])
def test_bad_arguments_stop_with_a_clear_message(oss, creds, monkeypatch, tmp_path, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    region = [] if argv == [] else ["--region", REGION]
    assert cli.main(["backfill", f"oss://{BUCKET}/x/", *region, *argv]) == 2
    err = capsys.readouterr().err
    assert (message or "--region is needed") in err


def test_remote_refuses_a_local_root(local_root, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FCOCR_FC_ENDPOINT", "http://127.0.0.1:9")
    assert cli.main(["backfill", "oss://bucket/x/", "--remote", "--dry-run"]) == 2
    assert "FCOCR_LOCAL_ROOT" in capsys.readouterr().err


def test_a_local_root_is_backfilled_like_a_bucket(local_root, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    (local_root / "bucket" / "in").mkdir()
    (local_root / "bucket" / "in" / "a.png").write_bytes(b"not really a png")
    (local_root / "bucket" / "in" / "b.txt").write_bytes(b"text")
    assert cli.main(["backfill", "oss://bucket/in/"]) == 0
    out = capsys.readouterr().out
    assert "processed" in out and "1 failed" in out and "failed result: in/a.png  UnsupportedFormat" in out
    assert json.loads((local_root / "bucket" / "in" / "a.png.ocr.json").read_text())["error"]["code"] == \
        "UnsupportedFormat"


def test_progress_shows_no_eta_until_the_total_is_known():
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    progress = cli.Progress(None, stream=stream)
    progress.advance(3)
    assert "3/? " in stream.getvalue() and "ETA ?" in stream.getvalue()
    progress.total = 6
    progress.advance(3)
    assert stream.getvalue().rstrip().endswith("ETA 0s") and "[" + "#" * 28 + "] 6/6" in stream.getvalue()
