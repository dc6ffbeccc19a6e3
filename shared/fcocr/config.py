"""Every setting fcocr reads from the environment, in one place, validated at start-up.

Reading the environment anywhere else is a bug: the deploy tests hold template.yml
against ``ENVIRONMENT`` so no variable is read that the template does not declare.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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
    "FCOCR_LOG_LEVEL": "Log level of fcocr's JSON log lines (default INFO).",
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "Credentials when the FC context has none (python3.12 runtime) or outside FC.",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "See ALIBABA_CLOUD_ACCESS_KEY_ID.",
    "ALIBABA_CLOUD_SECURITY_TOKEN": "STS token that goes with the key above, if temporary.",
}

DEFAULT_RESULT_SUFFIX = ".ocr.json"


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
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        suffix = env.get("FCOCR_RESULT_SUFFIX", "").strip() or DEFAULT_RESULT_SUFFIX
        # The suffix is what keeps results from re-triggering the function: it must be unmistakable.
        if not suffix.startswith(".") or "/" in suffix or len(suffix) < 3:
            raise ConfigError(f"FCOCR_RESULT_SUFFIX={suffix!r} must start with '.', hold no '/', and be at least 3 characters")
        endpoint = env.get("FCOCR_OSS_ENDPOINT", "").strip() or None
        if endpoint and not endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"FCOCR_OSS_ENDPOINT={endpoint!r} must be a full URL starting with http:// or https://")
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
            log_level=level,
        )
