"""Every setting fcocr reads from the environment, validated at start-up.

The core's variables are declared here; each recognizer family declares its own (its ``SETTINGS`` class:
``ENVIRONMENT`` rows and ``from_env``), and ``environment()`` is the whole table. Reading the environment
anywhere else is a bug: the deploy declaration is held against that table, so no variable is read that the
deployed functions do not declare.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from .errors import ConfigError, clean_text, register_secret
from .model import DOCUMENT_SUFFIXES, OssLocation, is_bucket_name

MiB = 1024 * 1024

# name -> one-line description; the README's configuration table is this table.
CORE_ENVIRONMENT: dict[str, str] = {
    "FCOCR_LOCAL_ROOT": "Use a local directory instead of OSS: bucket B is the directory $FCOCR_LOCAL_ROOT/B.",
    "FCOCR_OSS_ENDPOINT": "OSS endpoint as a full URL (default https://oss-<region>-internal.aliyuncs.com).",
    "FCOCR_ROUTES": "Routes: a path to a YAML/JSON file, or inline JSON (default: the routes.yml shipped with the code).",
    "FCOCR_RESULT_SUFFIX": "Suffix of the result document written beside each source (default .ocr.json).",
    "FCOCR_MAX_BYTES": "Largest object accepted, in bytes (default 20971520 = 20 MiB).",
    "FCOCR_MAX_PIXELS": "Largest decoded image accepted, in pixels per page (default 50000000).",
    "FCOCR_MAX_PAGES": "Most PDF/TIFF pages recognized per document (default 20).",
    "FCOCR_PDF_DPI": "Resolution PDF pages are rendered at for the offline engine (default 150).",
    "FCOCR_PAGE_MEMORY_MB": "Memory one page may take to decode (images, estimated from the header) or to render "
                            "(PDFs, in a child process capped at this much), in MiB (default 512); a page over it "
                            "fails as InputTooComplex.",
    "FCOCR_LOG_LEVEL": "Log level of fcocr's JSON log lines (default INFO).",
    "FCOCR_OSS_PUBLIC_ENDPOINT": "OSS endpoint put in presigned URLs that vendors download (default https://oss-<region>.aliyuncs.com, "
                                 "or FCOCR_OSS_ENDPOINT when that is set).",
    "FCOCR_RETRY_ATTEMPTS": "Attempts per vendor call before a transient fault is handed to FC's retry (default 4).",
    "FCOCR_RETRY_BASE_MS": "First backoff step between attempts, doubled each time, half jittered (default 500).",
    "FCOCR_CALL_TIMEOUT": "Timeout of one vendor call in seconds, cut to the function's remaining time (default 15).",
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "Credentials when the FC context has none (python3.12 runtime) or outside FC.",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "See ALIBABA_CLOUD_ACCESS_KEY_ID.",
    "ALIBABA_CLOUD_SECURITY_TOKEN": "STS token that goes with the key above, if temporary.",
    "FCOCR_RECONCILE_BUCKETS": "Comma-separated buckets whose pending tasks the scan_reconcile timer finishes.",
    "FCOCR_RECONCILE_AFTER": "Seconds a task stays pending before the reconcile timer asks for its result (default 60).",
    "FCOCR_DELETE_WITH_SOURCE": "true (default) or false: when a source is deleted, delete its result, task record, "
                                "receipt, checkpoints and staged copies too.",
    "FCOCR_SSE": "OSS server-side encryption of every object fcocr writes: AES256, KMS or KMS:<key-id> (default none).",
    "FCOCR_MASK": "Comma-separated normalized field names whose values are masked in results (e.g. idNumber,cardNumber).",
    "FCOCR_KEEP_RAW": "true (default) or false: keep the vendor's raw answer in results (masked like the fields).",
    "FCOCR_NOTIFY": "Where to announce a final result: mns:topic/NAME or an https:// webhook (default none).",
    "FCOCR_NOTIFY_SECRET": "HMAC-SHA256 key that signs webhook notifications (required with an https:// FCOCR_NOTIFY) (secret).",
    "FCOCR_MNS_ENDPOINT": "MNS endpoint as a full URL, for FCOCR_NOTIFY=mns:topic/NAME "
                          "(https://<account-id>.mns.<region>-internal.aliyuncs.com).",
}
# Read by the fcocr command on the operator's machine (fcocr.tools), never by a deployed function.
CLI_ENVIRONMENT: dict[str, str] = {
    "FCOCR_FC_ENDPOINT": "Function Compute API endpoint for fcocr backfill --remote, as a full URL (default "
                         "https://<account-id>.<region>.fc.aliyuncs.com).",
    "ALIBABA_CLOUD_ACCOUNT_ID": "Your Alibaba Cloud account ID, for the default FC endpoint of fcocr backfill --remote "
                                "(or pass --account-id).",
}
CLI_ONLY = frozenset(CLI_ENVIRONMENT)
DEFAULT_RESULT_SUFFIX = ".ocr.json"
MAX_SUFFIX_CHARS = 64
CREDENTIAL_VARIABLES = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN")
# The largest values a setting may take: beyond them nothing works (a read of 2**63 bytes, a sleep of 2**63 ms).
MAX_BYTES_LIMIT = 1024 * MiB  # whole objects are held in memory; FC's largest instance has 32 GB
MAX_PIXELS_LIMIT = 1_000_000_000
MAX_PAGES_LIMIT = 10_000
DAY_SECONDS = 86_400


def family_names() -> tuple[str, ...]:
    from .recognizers import FAMILY_MODULES

    return tuple(FAMILY_MODULES)


def environment() -> dict[str, str]:
    """Every variable fcocr reads, name -> one-line description: the core's, each family's, the CLI's.
    The README's configuration table and the deploy declaration are this table."""
    from .recognizers import settings_type

    table = dict(CORE_ENVIRONMENT)
    for name in family_names():
        table.update(settings_type(name).ENVIRONMENT)
    table.update(CLI_ENVIRONMENT)
    return table


def __getattr__(name: str):  # ``config.ENVIRONMENT``: computed on first use (it imports every family's settings)
    if name == "ENVIRONMENT":
        return environment()
    raise AttributeError(name)


# ------------------------------------------------------------------------------ reading the environment
# The helpers every settings class (the core's and each family's) parses its variables with.
def env_text(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def env_int(env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    """A whole number in ``minimum..maximum``: a value no part of fcocr can work with is refused here, at start-up."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    # ASCII digits only: int() also reads full-width and other scripts' digits, which no one means in a setting.
    if not (raw.isascii() and raw.lstrip("+-").isdigit() and len(raw) <= 20):
        raise ConfigError(f"{name}={clean_text(raw, 60)!r} is not a whole number")
    value = int(raw)
    if value < minimum:
        raise ConfigError(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={value} is above the maximum {maximum}")
    return value


def env_url(env: Mapping[str, str], name: str) -> str | None:
    """An http(s) URL with a host (plain http is allowed: emulators and private endpoints use it)."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    shown = clean_text(raw, 120)
    if not raw.startswith(("http://", "https://")):
        raise ConfigError(f"{name}={shown!r} must be a full URL starting with http:// or https://")
    if not raw.isprintable() or any(ch.isspace() for ch in raw):
        raise ConfigError(f"{name}={shown!r} holds a space or a control character")
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError:
        raise ConfigError(f"{name}={shown!r} is not a valid URL (its host or port cannot be read)") from None
    if not parts.hostname:
        raise ConfigError(f"{name}={shown!r} names no host")
    return raw.rstrip("/")


def env_secret(env: Mapping[str, str], name: str, *, mask: bool = True) -> str | None:
    """A credential: printable ASCII without spaces (a pasted line break would otherwise travel into an HTTP
    header, and from the library's error into results and logs). Registered with the scrubber unless ``mask``
    is False (a value that may also be ordinary document text); errors name the variable, never the value."""
    value = env.get(name, "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isprintable()) or " " in value:
        raise ConfigError(f"{name} holds a space, a line break, a control or a non-ASCII character: set it to the "
                          "credential alone")
    if mask:
        register_secret(value)
    return value


def env_choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env.get(name, "").strip() or default
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r} must be one of {', '.join(choices)}")
    return raw


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"true", "1", "yes", "on"}:
        return True
    if raw in {"false", "0", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} must be true or false")


SSE_ALGORITHMS = ("AES256", "KMS")
_KMS_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_:/.-]{0,255}$")
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MNS_TOPIC = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,255}$")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def env_sse(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """FCOCR_SSE as (algorithm, KMS key id): AES256, KMS, or KMS:<key-id>."""
    raw = env.get("FCOCR_SSE", "").strip()
    if not raw:
        return None, None
    algorithm, sep, key_id = raw.partition(":")
    algorithm = algorithm.upper()
    if algorithm not in SSE_ALGORITHMS:
        raise ConfigError(f"FCOCR_SSE={raw!r} must be AES256, KMS or KMS:<key-id>")
    if sep and algorithm != "KMS":
        raise ConfigError(f"FCOCR_SSE={raw!r}: only KMS takes a key id")
    if sep and not _KMS_KEY_ID.match(key_id):
        raise ConfigError(f"FCOCR_SSE={raw!r}: the KMS key id is empty or holds characters a key id has not")
    return algorithm, key_id or None


def env_names(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in env.get(name, "").split(",") if n.strip()))
    for item in names:
        if not _FIELD_NAME.match(item):
            raise ConfigError(f"{name}: {item!r} is not a field name (letters, digits and _)")
    return names


def env_notify(env: Mapping[str, str]) -> str | None:
    """FCOCR_NOTIFY: mns:topic/NAME, or an https:// URL (http:// only to a loopback address, for tests)."""
    raw = env.get("FCOCR_NOTIFY", "").strip()
    if not raw:
        return None
    if raw.startswith("mns:"):
        kind, _, topic = raw[4:].partition("/")
        if kind != "topic" or not _MNS_TOPIC.match(topic):
            raise ConfigError(f"FCOCR_NOTIFY={raw!r} must be mns:topic/NAME (a topic name of letters, digits and -)")
        return raw
    if raw.startswith("https://") and len(raw) > len("https://"):
        return raw
    if raw.startswith("http://") and raw[len("http://"):].split("/")[0].rsplit(":", 1)[0] in LOOPBACK_HOSTS:
        return raw
    raise ConfigError(f"FCOCR_NOTIFY={raw!r} must be mns:topic/NAME or an https:// URL")


def env_oss_location(env: Mapping[str, str], name: str) -> OssLocation | None:
    """``oss://bucket/prefix``, the prefix a folder (ending in '/' or empty)."""
    raw = env.get(name, "").strip()
    return OssLocation.parse(raw, what=name, folder=True) if raw else None


@dataclass(frozen=True)
class Settings:
    """The core's settings, and each family's (``family(name)``), validated together at start-up."""

    local_root: str | None = None
    oss_endpoint: str | None = None
    routes: str | None = None
    result_suffix: str = DEFAULT_RESULT_SUFFIX
    max_bytes: int = 20 * MiB
    max_pixels: int = 50_000_000
    max_pages: int = 20
    pdf_dpi: int = 150
    page_memory_mb: int = 512
    log_level: str = "INFO"
    oss_public_endpoint: str | None = None
    retry_attempts: int = 4
    retry_base_ms: int = 500
    call_timeout: float = 15.0
    reconcile_buckets: tuple[str, ...] = ()
    reconcile_after: int = 60
    delete_with_source: bool = True
    sse: str | None = None  # "AES256" | "KMS"
    sse_key_id: str | None = None  # a KMS key id, with sse="KMS" only
    mask: tuple[str, ...] = ()
    keep_raw: bool = True
    notify: str | None = None
    notify_secret: str | None = field(default=None, repr=False)
    mns_endpoint: str | None = None
    families: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def family(self, name: str) -> Any:
        """Family ``name``'s settings object (its defaults when this Settings was built without it)."""
        found = self.families.get(name)
        if found is None:
            from .recognizers import settings_type

            found = settings_type(name).from_env({})
        return found

    def with_family(self, name: str, **changes: Any) -> "Settings":
        """A copy whose family ``name`` settings have ``changes`` (the CLI sharing cores between workers)."""
        import dataclasses

        return dataclasses.replace(self, families={**self.families,
                                                   name: dataclasses.replace(self.family(name), **changes)})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, families: tuple[str, ...] | None = None) -> "Settings":
        """Every setting from ``env``; ``families`` limits which families' settings are read (default: all)."""
        env = os.environ if env is None else env
        suffix = env.get("FCOCR_RESULT_SUFFIX", "").strip() or DEFAULT_RESULT_SUFFIX
        # The suffix is what keeps results from re-triggering the function: it must be unmistakable.
        if (not suffix.startswith(".") or "/" in suffix or not 3 <= len(suffix) <= MAX_SUFFIX_CHARS
                or not suffix.isprintable() or any(ch.isspace() for ch in suffix)):
            raise ConfigError(f"FCOCR_RESULT_SUFFIX={clean_text(suffix, 80)!r} must start with '.', hold no '/', space "
                              f"or control character, and be 3-{MAX_SUFFIX_CHARS} characters")
        if suffix.lower().endswith(DOCUMENT_SUFFIXES):  # every such upload would be skipped as a result
            raise ConfigError(f"FCOCR_RESULT_SUFFIX={suffix!r} ends like a document ({', '.join(DOCUMENT_SUFFIXES)}): "
                              "uploads would be taken for results")
        for name in CREDENTIAL_VARIABLES:  # read again per invocation by runtime.credentials_from; checked here
            env_secret(env, name)
        local_root = env_text(env, "FCOCR_LOCAL_ROOT")
        if local_root is not None and not os.path.isdir(local_root):
            raise ConfigError(f"FCOCR_LOCAL_ROOT={clean_text(local_root, 200)!r} is not an existing directory")
        endpoint = env_url(env, "FCOCR_OSS_ENDPOINT")
        level = (env.get("FCOCR_LOG_LEVEL", "").strip() or "INFO").upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(f"FCOCR_LOG_LEVEL={level!r} must be DEBUG, INFO, WARNING or ERROR")
        buckets = tuple(b.strip() for b in env.get("FCOCR_RECONCILE_BUCKETS", "").split(",") if b.strip())
        for bucket in buckets:
            if not is_bucket_name(bucket):
                raise ConfigError(f"FCOCR_RECONCILE_BUCKETS: {bucket!r} is not a bucket name")
        sse, sse_key_id = env_sse(env)
        notify = env_notify(env)
        notify_secret = env_text(env, "FCOCR_NOTIFY_SECRET")
        mns_endpoint = env_url(env, "FCOCR_MNS_ENDPOINT")
        if notify and notify.startswith("http") and not notify_secret:
            raise ConfigError("FCOCR_NOTIFY is a webhook: set FCOCR_NOTIFY_SECRET, the key its signature is made with")
        if notify and notify.startswith("mns:") and not mns_endpoint:
            raise ConfigError("FCOCR_NOTIFY is an MNS topic: set FCOCR_MNS_ENDPOINT "
                              "(https://<account-id>.mns.<region>-internal.aliyuncs.com)")
        from .recognizers import settings_type

        return cls(
            local_root=local_root,
            oss_endpoint=endpoint,
            routes=env_text(env, "FCOCR_ROUTES"),
            result_suffix=suffix,
            max_bytes=env_int(env, "FCOCR_MAX_BYTES", cls.max_bytes, 1, MAX_BYTES_LIMIT),
            max_pixels=env_int(env, "FCOCR_MAX_PIXELS", cls.max_pixels, 1, MAX_PIXELS_LIMIT),
            max_pages=env_int(env, "FCOCR_MAX_PAGES", cls.max_pages, 1, MAX_PAGES_LIMIT),
            pdf_dpi=env_int(env, "FCOCR_PDF_DPI", cls.pdf_dpi, 36, 1200),
            page_memory_mb=env_int(env, "FCOCR_PAGE_MEMORY_MB", cls.page_memory_mb, 16, 64 * 1024),
            log_level=level,
            oss_public_endpoint=env_url(env, "FCOCR_OSS_PUBLIC_ENDPOINT") or endpoint,
            retry_attempts=env_int(env, "FCOCR_RETRY_ATTEMPTS", cls.retry_attempts, 1, 20),
            retry_base_ms=env_int(env, "FCOCR_RETRY_BASE_MS", cls.retry_base_ms, 0, 60_000),
            call_timeout=float(env_int(env, "FCOCR_CALL_TIMEOUT", int(cls.call_timeout), 1, DAY_SECONDS)),
            reconcile_buckets=buckets,
            reconcile_after=env_int(env, "FCOCR_RECONCILE_AFTER", cls.reconcile_after, 0, 30 * DAY_SECONDS),
            delete_with_source=env_bool(env, "FCOCR_DELETE_WITH_SOURCE", cls.delete_with_source),
            sse=sse,
            sse_key_id=sse_key_id,
            mask=env_names(env, "FCOCR_MASK"),
            keep_raw=env_bool(env, "FCOCR_KEEP_RAW", cls.keep_raw),
            notify=notify,
            notify_secret=notify_secret,
            mns_endpoint=mns_endpoint,
            families={name: settings_type(name).from_env(env)
                      for name in (family_names() if families is None else families)},
        )
