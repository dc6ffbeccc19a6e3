"""fcocr backfill --remote against an emulated 10 QPS quota: the rate it achieves, in real time.

    python bench/backfill.py [--objects 1000] [--qps 10] [--batch 10] [--workers 4] [--fc-version 3|2]

The OSS emulator holds the objects, the FC emulator verifies every invocation's signature (FC 3.0: ACS3-HMAC-SHA256
through alibabacloud-fc20230330, the default; FC 2.0: aliyun-fc2) and enforces the
quota (``qps`` invocations in any sliding second, 429 ResourceThrottled over it) on the real monotonic clock;
backfill runs exactly as ``fcocr backfill --remote`` does (real oss2, real aliyun-fc2, real threads, real
sleeps). Printed: the time taken, the achieved invocation rate (accepted invocations, first to last, as the
emulator timed them) divided by the quota, throttled answers, failures, and whether every object was invoked
exactly once. The done-when target is >= 95 % of the quota with 0 failures.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "shared"))

AK, SK, TOKEN = "STS.bench-ak", "bench-secret", "bench-token"
BUCKET, REGION = "fcocr-bench", "cn-shanghai"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--qps", type=float, default=10, help="the emulated quota, and the client's --qps")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--fc-version", type=int, choices=(2, 3), default=3)
    args = parser.parse_args()

    for name in list(os.environ):
        if name.startswith(("FCOCR_", "ALIBABA_CLOUD_")) or name.lower().endswith("_proxy"):
            del os.environ[name]
    from fcocr.pipeline import App
    from fcocr.runtime import Credentials
    from fcocr.tools.backfill import Backfill, FcInvoker, parse_target
    from fcocr.tools.fc3_invoker import Fc3Invoker
    from tests.emulators.fc import FcEmulator
    from tests.emulators.oss import OssEmulator

    creds = Credentials(AK, SK, TOKEN)
    with OssEmulator(region=REGION, credentials={AK: (SK, TOKEN)}) as oss, \
            FcEmulator({AK: (SK, TOKEN)}, qps_limit=int(args.qps)) as fc, tempfile.TemporaryDirectory() as tmp:
        oss.create_bucket(BUCKET)
        keys = [f"archive/{i:06d}.jpg" for i in range(args.objects)]
        for i, key in enumerate(keys):
            oss.put(BUCKET, key, b"scan %d" % i)
        os.environ["FCOCR_OSS_ENDPOINT"] = oss.endpoint
        runner = Backfill(parse_target(f"oss://{BUCKET}/archive/"), App.from_env(), remote=True, region=REGION,
                          workers=args.workers, qps=args.qps, batch=args.batch, credentials=creds,
                          invoker=(Fc3Invoker(fc.endpoint, creds, "fcocr-ocr_upload") if args.fc_version == 3
                                   else FcInvoker(fc.endpoint, creds, "fcocr", "ocr_upload")),
                          checkpoint=Path(tmp) / "checkpoint.json")
        started = time.monotonic()
        summary = runner.run()
        elapsed = time.monotonic() - started

    accepted = sorted(i.at for i in fc.invocations)
    rate = (len(accepted) - 1) / (accepted[-1] - accepted[0]) if len(accepted) > 1 else float("nan")
    counts = Counter(r["oss"]["object"]["key"] for r in fc.invoked_records())
    exactly_once = set(counts) == set(keys) and set(counts.values()) == {1}
    throttled = sum(r.status == 429 for r in fc.requests)
    print(f"fcocr backfill --remote bench, FC {args.fc_version}.0 API, Python {sys.version.split()[0]}")
    print(f"  {args.objects} objects, batches of {args.batch}, quota {args.qps:g} invocations/s "
          f"({len(accepted)} invocations), {args.workers} check workers")
    print(f"  time taken             {elapsed:.1f} s (listing, settled checks and invocations)")
    print(f"  achieved rate          {rate:.2f} invocations/s = {rate / args.qps:.1%} of the quota "
          f"({rate * args.batch:.0f} objects/s)")
    print(f"  most in any second     {fc.max_in_any_second()} (quota {args.qps:g})")
    print(f"  throttled answers      {throttled}")
    print(f"  failures               {len(summary.failed)}")
    print(f"  every object once      {'yes' if exactly_once else 'NO'}")
    ok = rate >= 0.95 * args.qps and not summary.failed and exactly_once
    print(f"  target (>= 95 %, 0 failures): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
