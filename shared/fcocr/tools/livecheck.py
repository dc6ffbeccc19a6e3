"""``make live-check``: call each cloud family you have credentials for once, with a shipped sample, and set what the
real service answered beside what fcocr's emulator (tests/emulators/) answers for the same request.

Opt-in and never in CI: it spends one paid call per family. It verifies an account before deploying (the result
says whether the call worked) and tells us when an emulator has drifted from its service: the comparison is of
the answers' *shapes* (status, error code, the keys and value types of the vendor's raw answer), since the values
read off a real sample differ from an emulator's documented example by nature.

Each side runs ``fcocr process`` on a copy of the sample in a fresh directory, in its own process, so the two sides
share nothing but the request: the real side with your environment, the emulator side with the family's settings
pointed at an emulator on 127.0.0.1. Without credentials it says so and exits 0. It needs a repository checkout
(the emulators live in tests/, which never ships).

Families it cannot check from local files: ``aliyun.*`` and ``green.*`` download their input from OSS (presigned
URLs), so they need a bucket; they are named and skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

MAX_DIFFERENCES = 20
CLOUD_KEYS = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET")
# The market ids tried first when several are configured (general text answers any sample).
MARKET_PREFERENCE = ("text", "general")
SAMPLES = {"idcard": "idcard_front.png", "tencent": "vat_invoice.png"}
DEFAULT_SAMPLE = "notice_en.png"


# ------------------------------------------------------------------------------------------- comparison
def shape(value: Any, path: str = "$", out: dict[str, str] | None = None) -> dict[str, str]:
    """{path: type} of every value in ``value``; list items are folded into ``path[]``."""
    out = {} if out is None else out
    if isinstance(value, dict):
        out[path] = "object"
        for key, item in value.items():
            shape(item, f"{path}.{key}", out)
    elif isinstance(value, list):
        out[path] = "array"
        for item in value:
            shape(item, f"{path}[]", out)
    else:
        kind = {bool: "boolean", int: "number", float: "number", str: "string", type(None): "null"}.get(type(value))
        previous = out.get(path)
        out[path] = kind or "other" if previous in (None, kind) else f"{previous}|{kind}"
    return out


def compare(real: Mapping[str, Any], emulated: Mapping[str, Any]) -> list[str]:
    """What differs between two result documents for the same request: status, error code, raw answer shape."""
    differences = []
    if real.get("status") != emulated.get("status"):
        differences.append(f"status: service {real.get('status')!r}, emulator {emulated.get('status')!r}")
    real_error, emulated_error = real.get("error") or {}, emulated.get("error") or {}
    for key in ("code", "vendorCode"):
        if real_error.get(key) != emulated_error.get(key):
            differences.append(f"error.{key}: service {real_error.get(key)!r}, emulator {emulated_error.get(key)!r}")
    real_shape, emulated_shape = shape(real.get("raw")), shape(emulated.get("raw"))
    for path in sorted(set(real_shape) | set(emulated_shape)):
        a, b = real_shape.get(path), emulated_shape.get(path)
        if a == b or ("null" in (a, b) and None not in (a, b)):
            continue  # a null where the other side has a value: the sample's content, not the wire format
        if (a is None and _under_null(path, real_shape)) or (b is None and _under_null(path, emulated_shape)):
            continue  # inside a value the other side answered null
        if a is None:
            differences.append(f"raw {path}: only the emulator answers it ({b})")
        elif b is None:
            differences.append(f"raw {path}: only the service answers it ({a})")
        else:
            differences.append(f"raw {path}: service {a}, emulator {b}")
    return differences[:MAX_DIFFERENCES] + ([f"... {len(differences) - MAX_DIFFERENCES} more"]
                                           if len(differences) > MAX_DIFFERENCES else [])


def _under_null(path: str, found: Mapping[str, str]) -> bool:
    return any("null" in kind.split("|") and path.startswith(parent) and path[len(parent):][:1] in (".", "[")
               for parent, kind in found.items())


# ------------------------------------------------------------------------------------------- the checks
@dataclass
class Check:
    family: str
    recognizer: str
    sample: str
    emulator: Callable[[Mapping[str, str]], Any]  # env -> context manager yielding the emulator side's env


def _market_emulator(env: Mapping[str, str], market_id: str):
    @contextmanager
    def run() -> Iterator[dict[str, str]]:
        from tests.emulators.market import MarketEmulator

        from ..recognizers.market import url_variable

        with MarketEmulator(appcode="live-check") as emulator:
            yield {"ALIYUN_MARKET_APPCODE": "live-check", url_variable(market_id): emulator.url_for(market_id)}

    return run()


def _tencent_emulator(env: Mapping[str, str]):
    @contextmanager
    def run() -> Iterator[dict[str, str]]:
        from tests.emulators.tencent import TencentEmulator

        with TencentEmulator(credentials={"live-check-id": "live-check-key"}) as emulator:
            yield {"TENCENTCLOUD_SECRET_ID": "live-check-id", "TENCENTCLOUD_SECRET_KEY": "live-check-key",
                   "FCOCR_TENCENT_ENDPOINT": emulator.endpoint, "FCOCR_TENCENT_INPUT": "base64"}

    return run()


def plan(env: Mapping[str, str]) -> tuple[list[Check], list[str]]:
    """The checks the credentials in ``env`` allow, and notes on the families skipped."""
    from ..recognizers.market import IDS, url_variable

    checks: list[Check] = []
    notes: list[str] = []
    if env.get("ALIYUN_MARKET_APPCODE"):
        configured = [i for i in (*MARKET_PREFERENCE, *IDS) if env.get(url_variable(i)) and i != "template"]
        if configured:
            market_id = configured[0]
            checks.append(Check("market", f"market.{market_id}", SAMPLES.get(market_id, DEFAULT_SAMPLE),
                                lambda e, i=market_id: _market_emulator(e, i)))
        else:
            notes.append("market: ALIYUN_MARKET_APPCODE is set but no FCOCR_MARKET_URL_<ID>: nothing to call")
    if env.get("TENCENTCLOUD_SECRET_ID") and env.get("TENCENTCLOUD_SECRET_KEY"):
        checks.append(Check("tencent", "tencent.VatInvoiceOCR", SAMPLES["tencent"], _tencent_emulator))
    if all(env.get(k) for k in CLOUD_KEYS):
        notes.append("aliyun, green: not checked (their services download the input from OSS; live-check runs on "
                     "local files)")
    return checks, notes


def _process(recognizer: str, sample: str, env: Mapping[str, str], workdir: Path) -> dict[str, Any]:
    """``fcocr process`` of a copy of ``sample`` in its own process; its result document."""
    workdir.mkdir(parents=True)
    path = workdir / sample
    path.write_bytes(resources.files("fcocr").joinpath("samples", sample).read_bytes())
    subprocess.run([sys.executable, "-m", "fcocr.tools.cli", "process", str(path), "--recognizer", recognizer],
                   env={**env, "FCOCR_LOG_LEVEL": "ERROR"}, check=False, capture_output=True, timeout=300)
    result = path.with_name(path.name + ".ocr.json")
    if not result.is_file():
        return {"status": "no result", "error": {"code": "LiveCheck.NoResult"}}
    return json.loads(result.read_text("utf-8"))


def run_check(check: Check, env: Mapping[str, str], workdir: Path) -> tuple[dict, dict, list[str]]:
    real = _process(check.recognizer, check.sample, env, workdir / "service")
    loopback = {k: v for k, v in env.items() if k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}}
    with check.emulator(env) as emulator_env:
        emulated = _process(check.recognizer, check.sample, {**loopback, **emulator_env}, workdir / "emulator")
    return real, emulated, compare(real, emulated)


def main(env: Mapping[str, str] | None = None, out=None) -> int:
    env = dict(os.environ if env is None else env)
    out = out or sys.stdout
    checks, notes = plan(env)
    for note in notes:
        print(f"live-check: {note}", file=out)
    if not checks:
        print("live-check: no credentials for a family it can check (ALIYUN_MARKET_APPCODE with a "
              "FCOCR_MARKET_URL_<ID>, or TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY): nothing called",
              file=out)
        return 0
    drifted = False
    workdir = Path(tempfile.mkdtemp(prefix="fcocr-live-check-"))
    try:
        for check in checks:
            real, emulated, differences = run_check(check, env, workdir / check.family)
            error = real.get("error") or {}
            said = f"{real.get('status')}" + (f" ({error.get('code')}: {error.get('message')})" if error else "")
            print(f"live-check: {check.recognizer} on {check.sample}: the service answered {said}", file=out)
            if differences:
                drifted = True
                print(f"  the emulator differs ({len(differences)}):", file=out)
                for line in differences:
                    print(f"    {line}", file=out)
            else:
                print("  the emulator answers the same status and answer shape", file=out)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if drifted else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
