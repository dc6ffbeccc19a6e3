"""Shared fixtures: a clean environment per test, and a schema check on every document written."""

from __future__ import annotations

import io
import json
import os
from importlib import resources
from pathlib import Path

import pytest

from fcocr import errors, pipeline, results
from fcocr.model import Outcome
from fcocr.recognizers import local

REPO = Path(__file__).resolve().parent.parent
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    # Loopback only: the vendors' SDKs must never route 127.0.0.1 through a proxy.
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith(("FCOCR_", "ALIBABA_CLOUD_", "ALIYUN_MARKET_", "TENCENTCLOUD_", "GREEN_")):
            monkeypatch.delenv(name, raising=False)
    pipeline.reset_app()
    errors.forget_secrets()  # the credentials one test registered must not mask the next test's text
    yield
    pipeline.reset_app()


def _validator():
    import jsonschema

    schema = json.loads(resources.files("fcocr").joinpath("schema/result.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


VALIDATOR = _validator()
WRITTEN: list[dict] = []


@pytest.fixture(autouse=True)
def validate_written_documents(monkeypatch):
    """Every result document any test writes is held against the shipped JSON Schema."""
    original = results.ResultWriter.write

    def checked_write(self, doc):
        body = json.loads(doc.to_bytes())
        VALIDATOR.validate(body)
        WRITTEN.append(body)
        return original(self, doc)

    monkeypatch.setattr(results.ResultWriter, "write", checked_write)
    WRITTEN.clear()
    yield WRITTEN


def text_image(lines: list[str], *, size: int = 40, fmt: str = "PNG", width: int = 900) -> bytes:
    """A white image with ``lines`` in black: text the engine must read back.

    At least 736 px tall: RapidOCR's detector scales the shorter side up to 736 px, so a short
    strip would be upscaled ~6x and take five times longer for nothing.
    """
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=size)
    height = max(736, 40 + len(lines) * int(size * 2.2))
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((30, 20 + i * int(size * 2.2)), line, fill="black", font=font)
    out = io.BytesIO()
    img.save(out, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return out.getvalue()


@pytest.fixture
def local_root(tmp_path, monkeypatch):
    root = tmp_path / "buckets"
    (root / "bucket").mkdir(parents=True)
    monkeypatch.setenv("FCOCR_LOCAL_ROOT", str(root))
    return root


def put_local(root: Path, key: str, data: bytes, bucket: str = "bucket") -> Path:
    path = root / bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def read_result(root: Path, key: str, bucket: str = "bucket", suffix: str = ".ocr.json") -> dict:
    return json.loads((root / bucket / (key + suffix)).read_text("utf-8"))


def event_bytes(*records: dict) -> bytes:
    return json.dumps({"events": list(records)}, ensure_ascii=False).encode("utf-8")


def cloud_event(bucket: str, key: str, event_name: str = "ObjectCreated:PutObject", region: str = "cn-shanghai") -> dict:
    """An EventBridge-based OSS trigger's CloudEvent (FC 3.0), the OSS record in data (events/eventbridge-*.json)."""
    from fcocr.events import oss_event

    record = oss_event(bucket, key, size=3, etag="ABC", event_name=event_name, region=region)
    return {"specversion": "1.0", "id": "6364D216511B143733C5A67B", "source": "acs.oss", "type": "oss:" + event_name,
            "subject": f"acs:oss:{region}:1234567890123456:{bucket}/{key}", "datacontenttype": "application/json",
            "aliyunregionid": region, "data": record}


def load_function(name: str):
    """functions/<name>/index.py as FC loads it: by file, not as a package."""
    import importlib.util

    path = REPO / "functions" / name / "index.py"
    spec = importlib.util.spec_from_file_location(f"fc_{name}_index", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def oss(monkeypatch):
    """A Shanghai OSS emulator with the cloud tests' bucket, and fcocr pointed at it."""
    from .cloud import AK, BUCKET, SK, TOKEN
    from .emulators.oss import OssEmulator

    with OssEmulator(region="cn-shanghai", credentials={AK: (SK, TOKEN)}) as emulator:
        emulator.create_bucket(BUCKET)
        monkeypatch.setenv("FCOCR_OSS_ENDPOINT", emulator.endpoint)
        monkeypatch.setenv("FCOCR_RETRY_BASE_MS", "1")  # the policy's pauses, shortened: tests check counts, not time
        yield emulator


@pytest.fixture
def recognized(monkeypatch):
    """The offline engine replaced by a stand-in that records each key it is paid for."""
    calls: list[str] = []

    def fake(self, capability, job, options):
        calls.append(job.source.key)
        return Outcome(lines=[], raw={"stand-in": True})

    monkeypatch.setattr(local.LocalFamily, "recognize", fake)
    return calls
