"""Every setting fcocr reads from the environment, in one place, validated at start-up.

Reading the environment anywhere else is a bug: the deploy tests hold template.yml
against ``ENVIRONMENT`` so no variable is read that the template does not declare.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Mapping

from .errors import ConfigError

MiB = 1024 * 1024

# name -> one-line description; the README's configuration table is this table.
ENVIRONMENT: dict[str, str] = {
    "FCOCR_LOCAL_ROOT": "Use a local directory instead of OSS: bucket B is the directory $FCOCR_LOCAL_ROOT/B.",
    "FCOCR_OSS_ENDPOINT": "OSS endpoint as a full URL (default https://oss-<region>-internal.aliyuncs.com).",
    "FCOCR_ROUTES": "Routes: a path to a YAML/JSON file, or inline JSON (default: the routes.yml shipped with the code).",
    "FCOCR_RESULT_SUFFIX": "Suffix of the result document written beside each source (default .ocr.json).",
    "FCOCR_MAX_BYTES": "Largest object accepted, in bytes (default 20971520 = 20 MiB).",
    "FCOCR_MAX_PIXELS": "Largest decoded image accepted, in pixels per page (default 50000000).",
    "FCOCR_MAX_PAGES": "Most PDF/TIFF pages recognized per document (default 20).",
    "FCOCR_PDF_DPI": "Resolution PDF pages are rendered at for the offline engine (default 150).",
    "FCOCR_OCR_THREADS": "Intra-op threads of the offline engine per process (default 0 = all cores).",
    "FCOCR_ENGINE": "Inference backend of the offline engine: onnxruntime (default) or openvino (pip install 'fcocr[openvino]').",
    "FCOCR_LOG_LEVEL": "Log level of fcocr's JSON log lines (default INFO).",
    "FCOCR_OSS_PUBLIC_ENDPOINT": "OSS endpoint put in presigned URLs that vendors download (default https://oss-<region>.aliyuncs.com, "
                                 "or FCOCR_OSS_ENDPOINT when that is set).",
    "FCOCR_RETRY_ATTEMPTS": "Attempts per vendor call before a transient fault is handed to FC's retry (default 4).",
    "FCOCR_RETRY_BASE_MS": "First backoff step between attempts, doubled each time, half jittered (default 500).",
    "FCOCR_CALL_TIMEOUT": "Timeout of one vendor call in seconds, cut to the function's remaining time (default 15).",
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "Credentials when the FC context has none (python3.12 runtime) or outside FC.",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "See ALIBABA_CLOUD_ACCESS_KEY_ID.",
    "ALIBABA_CLOUD_SECURITY_TOKEN": "STS token that goes with the key above, if temporary.",
    "FCOCR_ALIYUN_OCR_ENDPOINT": "Vision Intelligence OCR endpoint as a full URL (default https://ocr.cn-shanghai.aliyuncs.com).",
    "FCOCR_VIAPI_STAGING": "oss://bucket/prefix in cn-shanghai where inputs are staged for aliyun.* when the source bucket is "
                           "elsewhere or the input must be converted (default: <source bucket>/.fcocr-staging/ for Shanghai buckets).",
    "FCOCR_VIAPI_STAGING_ENDPOINT": "OSS endpoint of the staging bucket (default https://oss-cn-shanghai.aliyuncs.com: "
                                    "a function outside Shanghai cannot use that region's internal endpoint).",
    "FCOCR_VIAPI_POLL_MS": "Interval between GetAsyncJobResult polls for TrimDocument and RecognizeVideoCharacter (default 2000).",
    "ALIYUN_MARKET_APPCODE": "APPCODE of your Alibaba Cloud Market purchases, sent as 'Authorization: APPCODE ...' (secret).",
    # FCOCR_MARKET_URL_<ID> rows are added below, one per market API id.
    "TENCENTCLOUD_SECRET_ID": "Tencent Cloud SecretId for tencent.VatInvoiceOCR (secret).",
    "TENCENTCLOUD_SECRET_KEY": "Tencent Cloud SecretKey (secret).",
    "TENCENTCLOUD_REGION": "Tencent region: ap-beijing, ap-guangzhou, ap-hongkong, ap-shanghai (default) or na-toronto.",
    "FCOCR_TENCENT_ENDPOINT": "Tencent OCR endpoint as a full URL (default https://ocr.tencentcloudapi.com).",
    "FCOCR_TENCENT_INPUT": "How tencent.VatInvoiceOCR receives the file: base64 (default) or url (a presigned OSS URL).",
    "GREEN_UID": "Your Alibaba Cloud main-account UID (not a RAM user's): green.* callbacks are checksummed with it (secret).",
    "GREEN_SEED": "Seed sent with every green.* scan and mixed into its callback checksum: 1-64 letters, digits or "
                  "underscores (secret).",
    "GREEN_CRYPT_TYPE": "Callback checksum algorithm for green.*: SHA256 (default) or SM3.",
    "GREEN_CALLBACK_URL": "The scan_callback function's HTTP trigger URL, sent with every green.* scan (unset: results "
                          "come only through the reconcile timer).",
    "FCOCR_GREEN_ENDPOINT": "Content Security endpoint as a full URL (default https://green.cn-shanghai.aliyuncs.com).",
    "FCOCR_RECONCILE_BUCKETS": "Comma-separated buckets whose pending tasks the scan_reconcile timer finishes.",
    "FCOCR_RECONCILE_AFTER": "Seconds a task stays pending before the reconcile timer asks for its result (default 60).",
    "FCOCR_FC_ENDPOINT": "Function Compute API endpoint for fcocr backfill --remote, as a full URL (default "
                         "https://<account-id>.<region>.fc.aliyuncs.com).",
    "ALIBABA_CLOUD_ACCOUNT_ID": "Your Alibaba Cloud account ID, for the default FC endpoint of fcocr backfill --remote "
                                "(or pass --account-id).",
}
# Read by the fcocr command on the operator's machine, never by a deployed function: a template need not declare them.
CLI_ONLY = frozenset({"FCOCR_FC_ENDPOINT", "ALIBABA_CLOUD_ACCOUNT_ID"})

# The Cloud Market API ids (recognizer market.<id>); each API's URL comes with the user's purchase.
MARKET_IDS = ("idcard", "driver-license", "vehicle-license", "business-license", "bank-card", "business-card",
              "general", "passport", "hukou", "template", "table", "stamp", "taxi", "train", "plate", "vin", "text")


def market_url_variable(market_id: str) -> str:
    return "FCOCR_MARKET_URL_" + market_id.upper().replace("-", "_")


for _id in MARKET_IDS:
    ENVIRONMENT[market_url_variable(_id)] = f"URL of your market.{_id} purchase (from its API page in the Cloud Market console)."

TENCENT_REGIONS = ("ap-beijing", "ap-guangzhou", "ap-hongkong", "ap-shanghai", "na-toronto")

DEFAULT_RESULT_SUFFIX = ".ocr.json"
_GREEN_SEED = re.compile(r"[A-Za-z0-9_]{1,64}")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} is below the minimum {minimum}")
    return value


def _url(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    if raw and not raw.startswith(("http://", "https://")):
        raise ConfigError(f"{name}={raw!r} must be a full URL starting with http:// or https://")
    return raw.rstrip("/") or None


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env.get(name, "").strip() or default
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r} must be one of {', '.join(choices)}")
    return raw


def _oss_location(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """``oss://bucket/prefix`` as (bucket, prefix ending in '/' or empty)."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not raw.startswith("oss://") or len(raw) <= len("oss://"):
        raise ConfigError(f"{name}={raw!r} must look like oss://bucket/prefix")
    bucket, _, prefix = raw[len("oss://"):].partition("/")
    prefix = prefix.strip("/")
    return bucket, (prefix + "/") if prefix else ""


@dataclass(frozen=True)
class Settings:
    local_root: str | None = None
    oss_endpoint: str | None = None
    routes: str | None = None
    result_suffix: str = DEFAULT_RESULT_SUFFIX
    max_bytes: int = 20 * MiB
    max_pixels: int = 50_000_000
    max_pages: int = 20
    pdf_dpi: int = 150
    ocr_threads: int = 0
    ocr_engine: str = "onnxruntime"
    log_level: str = "INFO"
    oss_public_endpoint: str | None = None
    retry_attempts: int = 4
    retry_base_ms: int = 500
    call_timeout: float = 15.0
    aliyun_ocr_endpoint: str = "https://ocr.cn-shanghai.aliyuncs.com"
    viapi_staging: tuple[str, str] | None = None  # (bucket, prefix)
    viapi_staging_endpoint: str = "https://oss-cn-shanghai.aliyuncs.com"
    viapi_poll_ms: int = 2000
    market_appcode: str | None = field(default=None, repr=False)
    market_urls: Mapping[str, str] = field(default_factory=dict)
    tencent_secret_id: str | None = field(default=None, repr=False)
    tencent_secret_key: str | None = field(default=None, repr=False)
    tencent_region: str = "ap-shanghai"
    tencent_endpoint: str = "https://ocr.tencentcloudapi.com"
    tencent_input: str = "base64"
    green_uid: str | None = field(default=None, repr=False)
    green_seed: str | None = field(default=None, repr=False)
    green_crypt_type: str = "SHA256"
    green_callback_url: str | None = None
    green_endpoint: str = "https://green.cn-shanghai.aliyuncs.com"
    reconcile_buckets: tuple[str, ...] = ()
    reconcile_after: int = 60
    fc_endpoint: str | None = None  # CLI only (fcocr backfill --remote)
    account_id: str | None = None  # CLI only

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        suffix = env.get("FCOCR_RESULT_SUFFIX", "").strip() or DEFAULT_RESULT_SUFFIX
        # The suffix is what keeps results from re-triggering the function: it must be unmistakable.
        if not suffix.startswith(".") or "/" in suffix or len(suffix) < 3:
            raise ConfigError(f"FCOCR_RESULT_SUFFIX={suffix!r} must start with '.', hold no '/', and be at least 3 characters")
        endpoint = _url(env, "FCOCR_OSS_ENDPOINT")
        level = (env.get("FCOCR_LOG_LEVEL", "").strip() or "INFO").upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(f"FCOCR_LOG_LEVEL={level!r} must be DEBUG, INFO, WARNING or ERROR")
        return cls(
            local_root=env.get("FCOCR_LOCAL_ROOT", "").strip() or None,
            oss_endpoint=endpoint,
            routes=env.get("FCOCR_ROUTES", "").strip() or None,
            result_suffix=suffix,
            max_bytes=_int(env, "FCOCR_MAX_BYTES", cls.max_bytes, 1),
            max_pixels=_int(env, "FCOCR_MAX_PIXELS", cls.max_pixels, 1),
            max_pages=_int(env, "FCOCR_MAX_PAGES", cls.max_pages, 1),
            pdf_dpi=_int(env, "FCOCR_PDF_DPI", cls.pdf_dpi, 36),
            ocr_threads=_int(env, "FCOCR_OCR_THREADS", cls.ocr_threads, 0),
            ocr_engine=_choice(env, "FCOCR_ENGINE", ("onnxruntime", "openvino"), cls.ocr_engine),
            log_level=level,
            oss_public_endpoint=_url(env, "FCOCR_OSS_PUBLIC_ENDPOINT") or endpoint,
            retry_attempts=_int(env, "FCOCR_RETRY_ATTEMPTS", cls.retry_attempts, 1),
            retry_base_ms=_int(env, "FCOCR_RETRY_BASE_MS", cls.retry_base_ms, 0),
            call_timeout=float(_int(env, "FCOCR_CALL_TIMEOUT", int(cls.call_timeout), 1)),
            aliyun_ocr_endpoint=_url(env, "FCOCR_ALIYUN_OCR_ENDPOINT") or cls.aliyun_ocr_endpoint,
            viapi_staging=_oss_location(env, "FCOCR_VIAPI_STAGING"),
            viapi_staging_endpoint=_url(env, "FCOCR_VIAPI_STAGING_ENDPOINT") or cls.viapi_staging_endpoint,
            viapi_poll_ms=_int(env, "FCOCR_VIAPI_POLL_MS", cls.viapi_poll_ms, 1),
            market_appcode=env.get("ALIYUN_MARKET_APPCODE", "").strip() or None,
            market_urls={i: u for i in MARKET_IDS if (u := _url(env, market_url_variable(i)))},
            tencent_secret_id=env.get("TENCENTCLOUD_SECRET_ID", "").strip() or None,
            tencent_secret_key=env.get("TENCENTCLOUD_SECRET_KEY", "").strip() or None,
            tencent_region=_choice(env, "TENCENTCLOUD_REGION", TENCENT_REGIONS, "ap-shanghai"),
            tencent_endpoint=_url(env, "FCOCR_TENCENT_ENDPOINT") or cls.tencent_endpoint,
            tencent_input=_choice(env, "FCOCR_TENCENT_INPUT", ("base64", "url"), "base64"),
            **_green(env),
            **_backfill(env),
        )


def _backfill(env: Mapping[str, str]) -> dict:
    account = env.get("ALIBABA_CLOUD_ACCOUNT_ID", "").strip() or None
    if account is not None and not account.isdigit():
        raise ConfigError(f"ALIBABA_CLOUD_ACCOUNT_ID={account!r} must be your account ID: digits only")
    return dict(fc_endpoint=_url(env, "FCOCR_FC_ENDPOINT"), account_id=account)


def _green(env: Mapping[str, str]) -> dict:
    """Content Security settings. The seed and UID are secrets: errors name the variable, never the value."""
    uid = env.get("GREEN_UID", "").strip() or None
    if uid is not None and not uid.isdigit():
        raise ConfigError("GREEN_UID must be your Alibaba Cloud main-account UID: digits only")
    seed = env.get("GREEN_SEED", "").strip() or None
    if seed is not None and not _GREEN_SEED.fullmatch(seed):
        raise ConfigError("GREEN_SEED must be 1-64 letters, digits or underscores (the service's rule)")
    from .checksum import CRYPT_TYPES, sm3_hexdigest  # stdlib only; SM3's own imports wait until it is used

    crypt_type = env.get("GREEN_CRYPT_TYPE", "").strip().upper() or "SHA256"
    if crypt_type not in CRYPT_TYPES:
        raise ConfigError(f"GREEN_CRYPT_TYPE={crypt_type!r} must be SHA256 or SM3")
    if crypt_type == "SM3":
        try:
            sm3_hexdigest(b"abc")
        except RuntimeError as exc:
            raise ConfigError(f"GREEN_CRYPT_TYPE=SM3: {exc}") from None
    callback = _url(env, "GREEN_CALLBACK_URL")
    if callback and not (uid and seed):
        raise ConfigError("GREEN_CALLBACK_URL needs GREEN_SEED (sent with each scan) and GREEN_UID (to verify callbacks)")
    buckets = tuple(b.strip() for b in env.get("FCOCR_RECONCILE_BUCKETS", "").split(",") if b.strip())
    for bucket in buckets:
        if not _BUCKET_NAME.fullmatch(bucket):
            raise ConfigError(f"FCOCR_RECONCILE_BUCKETS: {bucket!r} is not a bucket name")
    return dict(green_uid=uid, green_seed=seed, green_crypt_type=crypt_type, green_callback_url=callback,
                green_endpoint=_url(env, "FCOCR_GREEN_ENDPOINT") or Settings.green_endpoint,
                reconcile_buckets=buckets, reconcile_after=_int(env, "FCOCR_RECONCILE_AFTER", Settings.reconcile_after, 0))
