"""Pipeline overhead of the cloud recognizers: what fcocr itself costs per document.

    python bench/cloud.py          (or: make bench)

Each run is a fresh process: the real OSS emulator holds the upload, a stub vendor answers every
call at once with the documented example (zero latency, no download, no verification), and the real
handler processes the same image under new keys. The figure is fcocr's own work: reading the source
(or presigning it), preparing the input (recompressing when over the vendor's limit), encoding,
signing and sending the request through the vendor SDK, parsing, normalizing and writing the result.
Printed: median ms per document over the warm runs, the first (cold) document, and peak RSS.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = 7
CASES = [  # (recognizer, vendor reply family)
    ("aliyun.RecognizeQrCode", "aliyun"),  # fits up to 10 MB: a presigned URL, no bytes through fcocr
    ("aliyun.RecognizeBankCard", "aliyun"),  # 3 MB limit: the 10 MB photo is recompressed and staged
    ("market.general", "market"),  # base64 in JSON, 1.5 MB limit
    ("tencent.VatInvoiceOCR", "tencent"),  # base64, 7 MB after encoding
]
SIZES_MB = (1, 10)


def photo(megabytes: float) -> bytes:
    """A noisy JPEG close to ``megabytes`` (noise resists compression, like a phone photo's detail)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(11)
    side = int(600 * megabytes ** 0.5)
    while True:
        arr = rng.integers(0, 255, (side, int(side * 4 / 3), 3), dtype="uint8")
        out = io.BytesIO()
        Image.fromarray(arr).save(out, "JPEG", quality=85)
        if out.tell() >= megabytes * 1_000_000 * 0.95:
            return out.getvalue()
        side = int(side * (megabytes * 1_000_000 / out.tell()) ** 0.5 * 1.02)


REPLIES = {
    "aliyun": {"RequestId": "BENCH-1", "Data": {"CardNumber": "6212262315007683105", "BankName": "中国工商银行",
                                                 "ValidDate": "07/26", "Elements": []}},
    "market": {"request_id": "bench", "success": True,
               "ret": [{"prob": 0.99, "rect": {"angle": 0, "left": 1, "top": 1, "width": 9, "height": 9}, "word": "x"}]},
    "tencent": {"Response": {"RequestId": "bench", "PdfPageSize": 0, "Angle": 0, "Items": [],
                             "VatInvoiceInfos": [{"Name": "发票代码", "Value": "012001900311", "Polygon": None}]}},
}


def stub(family: str) -> ThreadingHTTPServer:
    body = json.dumps(REPLIES[family], ensure_ascii=False).encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def one(recognizer: str, family: str, megabytes: int) -> dict:
    """Run in a fresh process: median and first document times, and peak RSS."""
    import resource

    sys.path.insert(0, str(REPO))
    from fcocr.events import oss_event
    from tests.conftest import event_bytes, load_function
    from tests.emulators.oss import OssEmulator

    data = photo(megabytes)
    ak, sk = "bench-ak", "bench-secret"
    oss = OssEmulator(credentials={ak: (sk, None)}).start()
    oss.create_bucket("bench")
    vendor = stub(family)
    endpoint = f"http://127.0.0.1:{vendor.server_address[1]}"
    os.environ.update({
        "FCOCR_OSS_ENDPOINT": oss.endpoint, "ALIBABA_CLOUD_ACCESS_KEY_ID": ak, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": sk,
        "FCOCR_ROUTES": json.dumps({"routes": [{"match": "**", "recognizer": recognizer}]}),
        "FCOCR_ALIYUN_OCR_ENDPOINT": endpoint, "ALIYUN_MARKET_APPCODE": "bench", "FCOCR_MARKET_URL_GENERAL": endpoint,
        "TENCENTCLOUD_SECRET_ID": "bench", "TENCENTCLOUD_SECRET_KEY": "bench", "FCOCR_TENCENT_ENDPOINT": endpoint,
        "FCOCR_LOG_LEVEL": "ERROR"})
    handler = load_function("ocr_upload").handler
    times = []
    for run in range(RUNS + 1):
        key = f"photos/{run}.jpg"
        oss.put("bench", key, data)
        started = time.perf_counter()
        out = json.loads(handler(event_bytes(oss_event("bench", key)), None))
        times.append((time.perf_counter() - started) * 1000)
        assert out["records"][0]["status"] == "succeeded", out
    vendor.shutdown()
    oss.stop()
    return {"recognizer": recognizer, "bytes": len(data), "first_ms": times[0],
            "median_ms": statistics.median(times[1:]), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        recognizer, size = sys.argv[2], int(sys.argv[3])
        family = dict(CASES)[recognizer]
        print(json.dumps(one(recognizer, family, size)))
        return
    print("cloud recognizers: fcocr's own cost per document against a zero-latency vendor stub")
    print(f"{'recognizer':28} {'input':>9} {'median ms':>10} {'first ms':>9} {'peak RSS MB':>12}")
    for recognizer, _ in CASES:
        for size in SIZES_MB:
            out = subprocess.run([sys.executable, __file__, "--one", recognizer, str(size)], check=True,
                                 capture_output=True, text=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            print(f"{recognizer:28} {row['bytes'] / 1e6:7.1f}MB {row['median_ms']:10.0f} {row['first_ms']:9.0f} "
                  f"{row['peak_rss_mb']:12.0f}")


if __name__ == "__main__":
    main()
