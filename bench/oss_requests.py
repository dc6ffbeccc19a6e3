"""OSS requests per upload: what one document costs in object-storage calls, by method.

    python bench/oss_requests.py [REPO]

The real handler processes three uploads routed to market.idcard (the Cloud Market emulator answers) against
the OSS emulator, and the requests OSS saw for each are counted by method. REPO (default: this checkout) lets
the same script measure another checkout of fcocr, e.g. one before a change.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

REPO = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "shared"), str(REPO)]
for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(name, None)

from fcocr.recognizers.market import IDS, url_variable  # noqa: E402
from tests.cloud import AK, BUCKET, SK, TOKEN, image, route, upload  # noqa: E402
from tests.emulators.market import MarketEmulator  # noqa: E402
from tests.emulators.oss import OssEmulator  # noqa: E402

APPCODE = "0123456789abcdef0123456789abcdef"


class Env:
    def setenv(self, name: str, value: str) -> None:
        os.environ[name] = value


def main() -> None:
    with OssEmulator(region="cn-shanghai", credentials={AK: (SK, TOKEN)}) as oss, \
            MarketEmulator(appcode=APPCODE) as market:
        oss.create_bucket(BUCKET)
        os.environ.update(FCOCR_OSS_ENDPOINT=oss.endpoint, ALIYUN_MARKET_APPCODE=APPCODE)
        for market_id in IDS:
            os.environ[url_variable(market_id)] = market.url_for(market_id)
        route(Env(), "market.idcard")
        for i in range(3):
            before = len(oss.requests)
            upload(oss, f"bench/{i}.jpg", image())
            counts = Counter(r.method for r in oss.requests[before:])
            print(f"upload {i}: " + ", ".join(f"{method} {n}" for method, n in sorted(counts.items())))


if __name__ == "__main__":
    main()
