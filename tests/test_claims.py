"""Claims: duplicates and retries of one object version never call a recognizer twice; the newest version wins.

Vendor calls are counted from the market emulator's own request log; the offline engine's runs from a counting
stand-in engine that appends one line per run to a file (processes share it). Clocks are injected.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from collections import Counter

import pytest

from fcocr import checkpoints, claims, pipeline
from fcocr.config import Settings
from fcocr.events import oss_event
from fcocr.model import SourceRef
from fcocr.recognizers import local
from fcocr.routing import Router
from fcocr.runtime import Runtime
from fcocr.storage import CLAIM_PREFIX, RESERVED_PREFIXES, LocalStorage, open_storage

from .cloud import BUCKET, fc_context, image, market_emulator, result, route
from .conftest import event_bytes, put_local, read_result

NOW = 1_800_000_000.0
FORK = multiprocessing.get_context("fork")


@pytest.fixture
def market(monkeypatch, oss):
    with market_emulator(monkeypatch, ("general",)) as emulator:
        route(monkeypatch, "market.general")
        yield emulator


def app_at(now: float) -> pipeline.App:
    settings = Settings.from_env()
    return pipeline.App(settings, Router.load(settings.routes), clock=lambda: now)


def run_event(key: str, application: pipeline.App, bucket: str = BUCKET, timeout: float = 120) -> dict:
    return pipeline.handle_oss_event(event_bytes(oss_event(bucket, key)), fc_context(timeout), application)


def claim_keys(oss) -> list[str]:
    return [k for k in oss.keys(BUCKET) if k.startswith(CLAIM_PREFIX)]


def test_claims_live_under_a_reserved_prefix():
    assert CLAIM_PREFIX in RESERVED_PREFIXES


# ----------------------------------------------------------------------------------- exclusive create
def test_local_exclusive_create_has_one_winner_among_threads(tmp_path):
    storage = LocalStorage(str(tmp_path), "b")
    os.makedirs(tmp_path / "b")
    start = threading.Barrier(8)
    wins: list[bool] = []

    def create(n: int) -> None:
        start.wait()
        wins.append(storage.create_exclusive("c/1", f"{n}".encode(), content_type="text/plain", metadata={}))

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]
    assert [k.key for k in storage.list("c/")] == ["c/1"]  # no temporary file left behind


def test_oss_exclusive_create_sends_forbid_overwrite_and_has_one_winner(oss):
    storage = open_storage(BUCKET, Runtime.from_context(fc_context()), Settings.from_env())
    start = threading.Barrier(6)
    wins: list[bool] = []

    def create() -> None:
        start.wait()
        wins.append(storage.create_exclusive("c/1", b"x", content_type="text/plain", metadata={"fcocr-kind": "claim"}))

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 5 + [True]
    puts = [r for r in oss.requests if r.key == "c/1" and r.method == "PUT"]
    assert len(puts) == 6 and sum(r.status == 200 for r in puts) == 1
    assert {r.error_code for r in puts if r.status != 200} == {"FileAlreadyExists"}


# --------------------------------------------------------------------------------------- leases
def test_a_live_claim_holds_an_expired_one_is_taken_over_by_exactly_one(tmp_path):
    os.makedirs(tmp_path / "b")
    storage = LocalStorage(str(tmp_path), "b")
    source = SourceRef("b", "x.png", "E1", 3)
    first = claims.acquire(storage, source, Runtime("dead", deadline=None), NOW)
    assert first.ours and first.generation == 1
    assert first.expires_at == NOW + claims.DEFAULT_LEASE + claims.LEASE_MARGIN
    assert not claims.acquire(storage, source, Runtime("dup"), NOW + 1).ours
    later = first.expires_at + 1
    start = threading.Barrier(6)
    got: list[claims.Claim] = []

    def take() -> None:
        start.wait()
        got.append(claims.acquire(storage, source, Runtime(f"t{threading.get_ident()}"), later))

    threads = [threading.Thread(target=take) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    owners = [c for c in got if c.ours]
    assert len(owners) == 1 and owners[0].generation == 2
    assert all(c.generation == 2 and c.owner == owners[0].owner for c in got)
    claims.release(storage, owners[0])
    assert list(storage.list(CLAIM_PREFIX)) == []


def test_the_lease_follows_the_function_timeout(tmp_path):
    os.makedirs(tmp_path / "b")
    storage = LocalStorage(str(tmp_path), "b")
    runtime = Runtime.from_context(fc_context(timeout=300))
    claim = claims.acquire(storage, SourceRef("b", "k", "E"), runtime, NOW)
    assert NOW + 300 - 5 < claim.expires_at <= NOW + 300 + claims.LEASE_MARGIN


# ------------------------------------------------------------------------ concurrent duplicates: cloud
def test_a_duplicate_delivered_while_the_first_is_in_flight_calls_no_vendor(oss, market):
    oss.put(BUCKET, "dup.jpg", image())
    market.inject_fault("general", kind="delay")  # the first call is held until the duplicates are done
    first: list[dict] = []
    holder = threading.Thread(target=lambda: first.append(run_event("dup.jpg", app_at(NOW))))
    holder.start()
    assert market.delay_started.wait(60)  # the first invocation holds the claim and is inside the vendor call
    duplicates = [run_event("dup.jpg", app_at(NOW + 1)) for _ in range(4)]
    market.release_delayed()
    holder.join()
    assert [d["records"][0]["status"] for d in duplicates] == ["skipped"] * 4
    assert all("another invocation is recognizing" in d["records"][0]["reason"] for d in duplicates)
    assert first[0]["records"][0]["status"] == "succeeded"
    assert len(market.requests) == 1
    assert result(oss, "dup.jpg")["status"] == "succeeded"
    assert claim_keys(oss) == []  # released with the result


def test_n_threads_at_once_make_exactly_one_vendor_call(oss, market):
    oss.put(BUCKET, "race.jpg", image())
    start = threading.Barrier(6)
    out: list[dict] = []

    def go() -> None:
        start.wait()
        out.append(run_event("race.jpg", app_at(NOW)))

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = Counter(o["records"][0]["status"] for o in out)
    assert statuses == {"succeeded": 1, "skipped": 5}
    assert len(market.requests) == 1


def _child(key: str, start, code) -> None:
    start.wait()
    try:
        run_event(key, app_at(NOW))
        code.value = 0
    except BaseException:  # noqa: BLE001 - reported to the parent through the exit code
        code.value = 1


def test_n_processes_at_once_make_exactly_one_vendor_call(oss, market):
    oss.put(BUCKET, "procs.jpg", image())
    start = FORK.Barrier(4)
    codes = [FORK.Value("i", -1) for _ in range(4)]
    procs = [FORK.Process(target=_child, args=("procs.jpg", start, code)) for code in codes]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [c.value for c in codes] == [0, 0, 0, 0]
    assert len(market.requests) == 1
    assert result(oss, "procs.jpg")["status"] == "succeeded"


# ----------------------------------------------------------------------- concurrent duplicates: local
class CountingEngine:
    """A stand-in for the offline engine's page reader that records each run as a line in a file (shared by
    forked processes)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, models, image):
        import numpy as np

        from fcocr.recognizers.local_engine import PageReading, TextLine

        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
        box = np.array([[1, 1], [50, 1], [50, 20], [1, 20]], dtype=np.float32)
        return PageReading(lines=[TextLine("COUNTED", 0.99, box, box)])

    def runs(self) -> int:
        try:
            with open(self.path, encoding="utf-8") as fh:
                return len(fh.read().split())
        except FileNotFoundError:
            return 0


@pytest.fixture
def counting_engine(tmp_path, monkeypatch):
    from fcocr.recognizers import local_engine

    fake = CountingEngine(str(tmp_path / "engine-runs"))
    # The page reader is the seam: no model loads, and every page read is counted.
    monkeypatch.setattr(local, "engine", lambda threads=0, backend="onnxruntime": None)
    monkeypatch.setattr(local_engine, "Models", lambda instance: instance)
    monkeypatch.setattr(local_engine, "read_page", fake)
    return fake


def _local_child(start, code) -> None:
    start.wait()
    try:
        pipeline.handle_oss_event(event_bytes(oss_event("bucket", "a.png")), None, app_at(NOW))
        code.value = 0
    except BaseException:  # noqa: BLE001
        code.value = 1


def test_local_text_threads_and_processes_run_the_engine_once(local_root, counting_engine):
    from .conftest import text_image

    put_local(local_root, "a.png", text_image(["ONCE"]))
    start = FORK.Barrier(3)
    codes = [FORK.Value("i", -1) for _ in range(3)]
    procs = [FORK.Process(target=_local_child, args=(start, code)) for code in codes]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [c.value for c in codes] == [0, 0, 0]
    assert counting_engine.runs() == 1
    assert read_result(local_root, "a.png")["text"] == "COUNTED"
    # And threads, for a new version of the same key.
    put_local(local_root, "a.png", text_image(["TWICE"]))
    gate = threading.Barrier(5)

    def go() -> None:
        gate.wait()
        pipeline.handle_oss_event(event_bytes(oss_event("bucket", "a.png")), None, app_at(NOW))

    threads = [threading.Thread(target=go) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counting_engine.runs() == 2
    claim_dir = local_root / "bucket" / CLAIM_PREFIX.rstrip("/")
    assert list(claim_dir.iterdir()) == []  # released, and no folders left behind


# ------------------------------------------------------------------------------ the re-upload race
def test_a_run_for_a_replaced_version_never_overwrites_the_newer_result(oss, market, monkeypatch):
    from fcocr.recognizers import market as market_family

    oss.put(BUCKET, "r.jpg", image(color=(200, 200, 200)))
    original = market_family.FAMILY.recognize
    nested: list[dict] = []
    replaced = threading.Event()

    def recognize(capability, job, options):
        if not replaced.is_set():  # while v1 is being recognized, v2 is uploaded and fully processed
            replaced.set()
            oss.put(BUCKET, "r.jpg", image(color=(10, 10, 10)))
            nested.append(run_event("r.jpg", app_at(NOW)))
        return original(capability, job, options)

    monkeypatch.setattr(market_family.FAMILY, "recognize", recognize)
    out = run_event("r.jpg", app_at(NOW))
    v2_etag = oss.head(BUCKET, "r.jpg")["etag"].strip('"').upper()
    assert nested[0]["records"][0]["status"] == "succeeded"
    assert out["records"][0]["status"] == "skipped" and "replaced" in out["records"][0]["reason"]
    assert result(oss, "r.jpg")["source"]["etag"] == v2_etag
    assert len(market.requests) == 2  # each version once


def test_the_page_answers_of_a_version_replaced_while_it_was_recognized_are_removed(oss, market, monkeypatch):
    from fcocr import checkpoints
    from fcocr.recognizers import market as market_family

    oss.put(BUCKET, "p.jpg", image(color=(200, 200, 200)))
    original = market_family.FAMILY.recognize
    kept: list[str] = []

    def recognize(capability, job, options):
        if not kept:  # v1 keeps a page's answer, then v2 is uploaded before v1's result is written
            pages = checkpoints.PageCheckpoints(job.storage, job.source, capability.id)
            pages.save(1, {"lines": [{"text": "personal data"}]})
            kept.append(pages.key(1))
            oss.put(BUCKET, "p.jpg", image(color=(10, 10, 10)))
        return original(capability, job, options)

    monkeypatch.setattr(market_family.FAMILY, "recognize", recognize)
    out = run_event("p.jpg", app_at(NOW))
    assert out["records"][0]["status"] == "skipped" and "replaced" in out["records"][0]["reason"]
    assert kept and kept[0] not in oss.keys(BUCKET)


# ------------------------------------------------------------- a claimant killed mid-call, then retried
def _killed_child(key: str) -> None:
    from fcocr.recognizers import market as market_family

    original = market_family.FAMILY.recognize

    def recognize_then_die(capability, job, options):
        original(capability, job, options)  # the vendor answers (and bills) ...
        os._exit(9)  # ... and the instance dies before the result is written: no finally runs

    market_family.FAMILY.recognize = recognize_then_die
    run_event(key, app_at(NOW), timeout=120)


def test_a_claimant_killed_mid_call_blocks_duplicates_until_its_lease_ends_then_the_retry_runs(oss, market):
    oss.put(BUCKET, "killed.jpg", image())
    child = FORK.Process(target=_killed_child, args=("killed.jpg",))
    child.start()
    child.join()
    assert child.exitcode == 9 and len(market.requests) == 1
    assert result(oss, "killed.jpg") is None and len(claim_keys(oss)) == 1
    # FC's retry within the lease: the claim holds, no vendor call.
    early = run_event("killed.jpg", app_at(NOW + 60))
    assert early["records"][0]["status"] == "skipped" and len(market.requests) == 1
    # After the lease (the function's 120 s timeout plus the margin): taken over, recognized once more.
    late = run_event("killed.jpg", app_at(NOW + 120 + claims.LEASE_MARGIN + 1))
    assert late["records"][0]["status"] == "succeeded" and len(market.requests) == 2
    assert result(oss, "killed.jpg")["status"] == "succeeded" and claim_keys(oss) == []


def test_reconcile_finishes_a_version_whose_claimant_died_after_the_retries(oss, market, monkeypatch):
    from fcocr import reconcile

    oss.put(BUCKET, "orphan.jpg", image())
    etag = oss.head(BUCKET, "orphan.jpg")["etag"].strip('"').upper()
    settings = Settings.from_env()
    storage = open_storage(BUCKET, Runtime.from_context(fc_context()), settings)
    dead = claims.acquire(storage, SourceRef(BUCKET, "orphan.jpg", etag, 1), Runtime("dead-1", deadline=None), NOW,
                          recognizer="market.general")
    runtime = Runtime.from_context(fc_context())
    monkeypatch.setenv("FCOCR_RECONCILE_BUCKETS", BUCKET)
    before = reconcile.run(Settings.from_env(), runtime, now=NOW + 10)
    assert before["buckets"][BUCKET].get("claimsHeld") == 1 and result(oss, "orphan.jpg") is None
    after = reconcile.run(Settings.from_env(), runtime, now=dead.expires_at + 1)
    assert after["buckets"][BUCKET]["claimsExpired"] == 1
    doc = result(oss, "orphan.jpg")
    assert doc["status"] == "failed" and doc["error"]["code"] == "ClaimExpired" and doc["error"]["retryable"] is True
    assert doc["recognizer"] == "market.general" and "dead-1" in doc["error"]["message"]
    assert claim_keys(oss) == [] and market.requests == []
    # The failure is retryable: a backfill (or any later event) recognizes it.
    assert run_event("orphan.jpg", app_at(dead.expires_at + 2))["records"][0]["status"] == "succeeded"


def test_reconcile_only_clears_claims_of_versions_that_are_settled_or_replaced(oss, market):
    from fcocr import reconcile

    oss.put(BUCKET, "done.jpg", image())
    run_event("done.jpg", app_at(NOW))
    settings = Settings.from_env()
    runtime = Runtime.from_context(fc_context())
    storage = open_storage(BUCKET, runtime, settings)
    etag = oss.head(BUCKET, "done.jpg")["etag"].strip('"').upper()
    claims.acquire(storage, SourceRef(BUCKET, "done.jpg", etag), Runtime("late", deadline=None), NOW)
    gone = SourceRef(BUCKET, "gone.jpg", "AAAA")
    claims.acquire(storage, gone, Runtime("gone", deadline=None), NOW)
    pages = checkpoints.PageCheckpoints(storage, gone, "market.general")
    pages.save(1, {"lines": [{"text": "personal data"}]})  # its claimant died after a page was answered
    live = SourceRef(BUCKET, "live.jpg", "BBBB")
    held = claims.acquire(storage, live, Runtime("live", deadline=None), NOW + 10_000)  # still being recognized
    live_pages = checkpoints.PageCheckpoints(storage, live, "market.general")
    live_pages.save(1, {"lines": []})
    counts = reconcile.reconcile_bucket(storage, settings, runtime, NOW + 10_000)
    assert counts["claimsCleared"] == 2 and counts["claimsHeld"] == 1 and "claimsExpired" not in counts
    assert pages.key(1) not in oss.keys(BUCKET) and live_pages.key(1) in oss.keys(BUCKET)
    assert claim_keys(oss) == [claims.generation_key(live, held.generation)]
    assert result(oss, "done.jpg")["status"] == "succeeded"
    assert json.loads(oss.get(BUCKET, "done.jpg.ocr.json"))["status"] == "succeeded"
