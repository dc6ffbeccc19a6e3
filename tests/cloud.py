"""What the cloud-recognizer tests share: an OSS emulator bucket, FC's context, routes, results."""

from __future__ import annotations

import dataclasses
import io
import json
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Iterator

from PIL import Image

from fcocr import pipeline
from fcocr.events import oss_event
from fcocr.runtime import Runtime

from .conftest import event_bytes, load_function
from .emulators.market import MarketEmulator
from .emulators.tencent import TencentEmulator
from .emulators.viapi import ViapiEmulator

handler = load_function("ocr_upload").handler
BUCKET = "fcocr-cloud"
AK, SK, TOKEN = "STS.cloud-ak", "cloud-secret", "cloud-token"
APPCODE = "0123456789abcdef0123456789abcdef"
SECRET_ID, SECRET_KEY = "AKIDfcocrtest", "tencent-secret"


# The vendor emulators as the recognizer tests run them: started, and fcocr's environment pointed at them.
@contextmanager
def viapi_emulator(monkeypatch, oss, poll_ms: str | None = "5") -> Iterator[ViapiEmulator]:
    with ViapiEmulator(credentials={AK: (SK, TOKEN)}, oss=oss) as emulator:
        monkeypatch.setenv("FCOCR_ALIYUN_OCR_ENDPOINT", emulator.endpoint)
        if poll_ms is not None:
            monkeypatch.setenv("FCOCR_VIAPI_POLL_MS", poll_ms)
        yield emulator


@contextmanager
def market_emulator(monkeypatch, market_ids: tuple[str, ...] | None = None) -> Iterator[MarketEmulator]:
    """The market emulator, with the URL of each of ``market_ids`` (default: every market API) set."""
    from fcocr.recognizers.market import IDS, url_variable

    with MarketEmulator(appcode=APPCODE) as emulator:
        monkeypatch.setenv("ALIYUN_MARKET_APPCODE", APPCODE)
        for market_id in market_ids or IDS:
            monkeypatch.setenv(url_variable(market_id), emulator.url_for(market_id))
        yield emulator


@contextmanager
def tencent_emulator(monkeypatch) -> Iterator[TencentEmulator]:
    with TencentEmulator(credentials={SECRET_ID: SECRET_KEY}) as emulator:
        monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", SECRET_ID)
        monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", SECRET_KEY)
        monkeypatch.setenv("FCOCR_TENCENT_ENDPOINT", emulator.endpoint)
        yield emulator


def frozen_time_left(monkeypatch, seconds: float) -> None:
    """Every invocation's Runtime has ``seconds`` left on a clock that stands still: what the code does with
    its remaining time is decided by that number, never by how busy the machine running the tests is."""
    real = Runtime.from_context.__func__

    def from_context(cls, context=None):
        return dataclasses.replace(real(cls, context), deadline=seconds, clock=lambda: 0.0)

    monkeypatch.setattr(Runtime, "from_context", classmethod(from_context))


def fc_context(timeout: float = 120):
    creds = SimpleNamespace(access_key_id=AK, access_key_secret=SK, security_token=TOKEN)
    return SimpleNamespace(request_id="fc-cloud-1", credentials=creds, region="cn-shanghai",
                           function=SimpleNamespace(name="ocr_upload", timeout=timeout))


def route(monkeypatch, recognizer: str, options: dict | None = None, match: str = "**") -> None:
    entry = {"match": match, "recognizer": recognizer}
    if options:
        entry["options"] = options
    monkeypatch.setenv("FCOCR_ROUTES", json.dumps({"routes": [entry]}))
    pipeline.reset_app()  # the process caches its routes, as a warm FC instance does


def upload(oss, key: str, data: bytes, region: str = "cn-shanghai", **kw) -> dict:
    """Put ``key``, run the real handler on its event, return the handler's JSON answer."""
    oss.put(BUCKET, key, data)
    return json.loads(handler(event_bytes(oss_event(BUCKET, key, region=region)), fc_context(**kw)))


def result(oss, key: str) -> dict | None:
    data = oss.get(BUCKET, key + ".ocr.json")
    return None if data is None else json.loads(data)


def image(size=(1200, 800), fmt="JPEG", color=(245, 245, 245), noise: bool = False, **save) -> bytes:
    if noise:
        import numpy as np

        img = Image.fromarray(np.random.default_rng(3).integers(0, 255, (size[1], size[0], 3), dtype="uint8"))
    else:
        img = Image.new("RGB", size, color)
    out = io.BytesIO()
    img.save(out, fmt, **save)
    return out.getvalue()


def pdf(pages: int) -> bytes:
    images = [Image.new("RGB", (600, 400), (255, 255, 255)) for _ in range(pages)]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:])
    return out.getvalue()
