"""What the wire choices cost: bytes the function sends and vendor calls, against the emulators.

    python bench/wire.py

* market.text (seed 002) with each input mode, for a photo under and one over the 2 MB request limit: the
  request bytes that left the function, whether the image was recompressed, and the median ms per document;
* market.vin (seed 001) under a gateway refusing bodies over 4 MiB: calls for the first big photo (the 413,
  then the recompressed one) and for the next (the refused size remembered);
* aliyun.RecognizeQrCode on a 12-page PDF: vendor calls (10 images a request).

Everything runs in this process on 127.0.0.1 (the real handler, the OSS, market and viapi emulators).
"""

from __future__ import annotations

import io
import json
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RUNS = 3
AK, SK, TOKEN = "STS.bench-ak", "bench-secret", "bench-token"
BUCKET = "fcocr-bench"


def photo(size: tuple[int, int], quality: int = 97) -> bytes:
    import numpy as np
    from PIL import Image

    arr = np.random.default_rng(3).integers(0, 255, (size[1], size[0], 3), dtype="uint8")
    out = io.BytesIO()
    Image.fromarray(arr).save(out, "JPEG", quality=quality)
    return out.getvalue()


def pdf(pages: int) -> bytes:
    from PIL import Image

    images = [Image.new("RGB", (600, 400), "white") for _ in range(pages)]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:])
    return out.getvalue()


def main() -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        os.environ.pop(name, None)
    from fcocr import pipeline
    from fcocr.events import oss_event
    from fcocr.recognizers.market import IDS, url_variable
    from tests.conftest import event_bytes, load_function
    from tests.emulators.market import MarketEmulator
    from tests.emulators.oss import OssEmulator
    from tests.emulators.viapi import ViapiEmulator

    handler = load_function("ocr_upload").handler
    creds = SimpleNamespace(access_key_id=AK, access_key_secret=SK, security_token=TOKEN)
    context = SimpleNamespace(request_id="bench", credentials=creds, region="cn-shanghai",
                              function=SimpleNamespace(name="ocr_upload", timeout=600))
    with OssEmulator(region="cn-shanghai", credentials={AK: (SK, TOKEN)}) as oss, \
            MarketEmulator(appcode="bench") as market, ViapiEmulator(credentials={AK: (SK, TOKEN)}, oss=oss) as viapi:
        oss.create_bucket(BUCKET)
        os.environ.update({"FCOCR_OSS_ENDPOINT": oss.endpoint, "ALIYUN_MARKET_APPCODE": "bench",
                           "FCOCR_ALIYUN_OCR_ENDPOINT": viapi.endpoint, "FCOCR_LOG_LEVEL": "ERROR",
                           **{url_variable(i): market.url_for(i) for i in IDS}})
        counter = [0]

        def process(recognizer: str, data: bytes, options: dict | None = None) -> dict:
            counter[0] += 1
            entry = {"match": "**", "recognizer": recognizer, **({"options": options} if options else {})}
            os.environ["FCOCR_ROUTES"] = json.dumps({"routes": [entry]})
            pipeline.reset_app()
            key = f"bench/{counter[0]}.{'pdf' if data[:4] == b'%PDF' else 'jpg'}"
            oss.put(BUCKET, key, data)
            handler(event_bytes(oss_event(BUCKET, key, region="cn-shanghai")), context)
            return json.loads(oss.get(BUCKET, key + ".ocr.json"))

        print("market.text input modes (bytes the function sent per document; the image's own size beside it)")
        print(f"{'photo':>12} {'mode':>7} {'request bytes':>14} {'sent as':>10} {'recompressed':>13} {'ms':>6}")
        for size in ((1400, 1000), (2000, 1500)):
            data = photo(size)
            for mode in ("file", "base64", "url", "auto"):
                times = []
                for _ in range(RUNS):
                    market.requests.clear()
                    start = time.perf_counter()
                    doc = process("market.text", data, {"input": mode})
                    times.append((time.perf_counter() - start) * 1000)
                [call] = market.requests
                print(f"{len(data):>12} {mode:>7} {call.body_bytes:>14} {call.source:>10} "
                      f"{'yes' if doc.get('warnings') else 'no':>13} {statistics.median(times):>6.0f}")

        market.max_body = 4 * 1024 * 1024
        big = photo((2400, 1800))
        print(f"\nmarket.vin, gateway limit 4 MiB, a {len(big)}-byte photo (base64 body over the limit)")
        for label in ("first document", "next document"):
            market.requests.clear()
            process("market.vin", big)
            print(f"  {label}: {len(market.requests)} call(s), statuses {[r.status for r in market.requests]}")

        viapi.requests.clear()
        process("aliyun.RecognizeQrCode", pdf(12))
        calls = [r for r in viapi.requests if r.action == "RecognizeQrCode"]
        print(f"\naliyun.RecognizeQrCode, a 12-page PDF: {len(calls)} vendor calls "
              f"({', '.join(str(len(r.params)) for r in calls)} images)")


if __name__ == "__main__":
    main()
