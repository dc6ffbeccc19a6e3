"""What paying once costs: the claim and the ETag re-check per document (fcocr.claims, pipeline._replaced).

    python bench/claims.py          (or: make bench)

One process: the real OSS emulator holds the uploads, a stub vendor answers at once (zero latency; bench/cloud.py's
stub), and the real handler recognizes a small photo with market.general under new keys. Two figures, medians of
RUNS documents:

* the pay-once steps alone, timed against the same emulator: an exclusive create of the claim, the second
  settled-check HEAD, the re-check HEAD of the source, and the release (a listing and a delete);
* the whole document with those steps and without them (stubbed out: the pipeline as it was before them), the
  two paths alternated so both see the same machine.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = 21


def main() -> None:
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "bench"))
    from cloud import photo, stub

    from fcocr import claims, pipeline
    from fcocr.config import Settings
    from fcocr.events import oss_event
    from fcocr.model import SourceRef
    from fcocr.results import ResultWriter
    from fcocr.runtime import Runtime
    from fcocr.storage import open_storage
    from tests.conftest import event_bytes, load_function
    from tests.emulators.oss import OssEmulator

    ak, sk = "bench-ak", "bench-secret"
    oss = OssEmulator(credentials={ak: (sk, None)}).start()
    oss.create_bucket("bench")
    vendor = stub("market")
    endpoint = f"http://127.0.0.1:{vendor.server_address[1]}"
    os.environ.update({
        "FCOCR_OSS_ENDPOINT": oss.endpoint, "ALIBABA_CLOUD_ACCESS_KEY_ID": ak, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": sk,
        "FCOCR_ROUTES": json.dumps({"routes": [{"match": "**", "recognizer": "market.general"}]}),
        "ALIYUN_MARKET_APPCODE": "bench", "FCOCR_MARKET_URL_GENERAL": endpoint, "FCOCR_LOG_LEVEL": "ERROR"})
    data = photo(0.2)
    handler = load_function("ocr_upload").handler
    settings = Settings.from_env()
    runtime = Runtime.from_context(None)
    storage = open_storage("bench", runtime, settings)
    writer = ResultWriter(storage, settings.result_suffix)

    # The pay-once steps alone.
    steps = []
    for run in range(RUNS + 1):
        key = f"steps/{run}.jpg"
        etag = oss.put("bench", key, data).strip('"').upper()
        source = SourceRef("bench", key, etag, len(data))
        started = time.perf_counter()
        claim = claims.acquire(storage, source, runtime, time.time(), recognizer="market.general")
        writer.settled(key, etag)
        pipeline._replaced(storage, key, etag)  # noqa: SLF001 - the re-check the pipeline makes before writing
        claims.release(storage, claim)
        steps.append((time.perf_counter() - started) * 1000)
        assert claim.ours

    # The whole document, with and without them.
    real = (claims.acquire, claims.release, pipeline._replaced)  # noqa: SLF001

    def without() -> None:
        claims.acquire = lambda storage, source, runtime, now, recognizer=None: claims.Claim(
            source, 1, runtime.request_id, now + 1, ours=True)
        claims.release = lambda storage, claim: None
        pipeline._replaced = lambda storage, key, etag: False  # noqa: SLF001

    def with_() -> None:
        claims.acquire, claims.release, pipeline._replaced = real  # noqa: SLF001

    settled_real = ResultWriter.settled
    timings: dict[str, list[float]] = {"with": [], "without": []}
    for run in range(RUNS + 1):
        for mode in ("with", "without"):
            (with_ if mode == "with" else without)()
            if mode == "without":  # the second settled check is part of the claim step: once, as before
                calls = {"n": 0}

                def settled_once(self, key, etag, calls=calls):
                    calls["n"] += 1
                    return settled_real(self, key, etag) if calls["n"] == 1 else False

                ResultWriter.settled = settled_once
            else:
                ResultWriter.settled = settled_real
            key = f"docs/{mode}-{run}.jpg"
            oss.put("bench", key, data)
            started = time.perf_counter()
            out = json.loads(handler(event_bytes(oss_event("bench", key)), None))
            elapsed = (time.perf_counter() - started) * 1000
            assert out["records"][0]["status"] == "succeeded", out
            if run:  # the first of each is warm-up
                timings[mode].append(elapsed)
    with_()
    ResultWriter.settled = settled_real
    vendor.shutdown()
    oss.stop()
    print("pay once: the claim and the ETag re-check per document, against the zero-latency OSS emulator")
    print(f"  claim + settled re-check + source ETag re-check + release: median {statistics.median(steps[1:]):.1f} ms "
          f"({RUNS} documents)")
    with_ms, without_ms = statistics.median(timings["with"]), statistics.median(timings["without"])
    print(f"  whole document (market.general, {len(data) / 1000:.0f} kB photo, zero-latency vendor): "
          f"{without_ms:.1f} ms without them (before), {with_ms:.1f} ms with them: {with_ms - without_ms:+.1f} ms")


if __name__ == "__main__":
    main()
