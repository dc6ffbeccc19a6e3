"""Content Security settings: what a scan sends and what its callback is verified with.

Importable alone (standard library, ``config``'s parsers and ``checksum``): the callback's rejection path reads
these and nothing else. The seed and UID are secrets: errors name the variable, never the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from ...config import env_secret, env_url
from ...errors import ConfigError
from .checksum import CRYPT_TYPES, sm3_hexdigest

_SEED = re.compile(r"[A-Za-z0-9_]{1,64}")


@dataclass(frozen=True)
class GreenSettings:
    ENVIRONMENT = {
        "GREEN_UID": "Your Alibaba Cloud main-account UID (not a RAM user's): green.* callbacks are checksummed with it "
                     "(secret).",
        "GREEN_SEED": "Seed sent with every green.* scan and mixed into its callback checksum: 1-64 letters, digits or "
                      "underscores (secret).",
        "GREEN_CRYPT_TYPE": "Callback checksum algorithm for green.*: SHA256 (default) or SM3.",
        "GREEN_CALLBACK_URL": "The scan_callback function's HTTP trigger URL, sent with every green.* scan (unset: "
                              "results come only through the reconcile timer).",
        "FCOCR_GREEN_ENDPOINT": "Content Security endpoint as a full URL (default https://green.cn-shanghai.aliyuncs.com).",
    }
    uid: str | None = field(default=None, repr=False)
    seed: str | None = field(default=None, repr=False)
    crypt_type: str = "SHA256"
    callback_url: str | None = None
    endpoint: str = "https://green.cn-shanghai.aliyuncs.com"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "GreenSettings":
        # Checked like a credential, not masked: a 16-digit number may well be printed on a document too.
        uid = env_secret(env, "GREEN_UID", mask=False)
        if uid is not None and not (uid.isascii() and uid.isdigit()):  # isdigit alone takes full-width digits
            raise ConfigError("GREEN_UID must be your Alibaba Cloud main-account UID: digits 0-9 only")
        seed = env_secret(env, "GREEN_SEED")
        if seed is not None and not _SEED.fullmatch(seed):
            raise ConfigError("GREEN_SEED must be 1-64 letters, digits or underscores (the service's rule)")
        crypt_type = env.get("GREEN_CRYPT_TYPE", "").strip().upper() or "SHA256"
        if crypt_type not in CRYPT_TYPES:
            raise ConfigError(f"GREEN_CRYPT_TYPE={crypt_type!r} must be SHA256 or SM3")
        if crypt_type == "SM3":
            try:
                sm3_hexdigest(b"abc")
            except RuntimeError as exc:
                raise ConfigError(f"GREEN_CRYPT_TYPE=SM3: {exc}") from None
        callback = env_url(env, "GREEN_CALLBACK_URL")
        if callback and not (uid and seed):
            raise ConfigError("GREEN_CALLBACK_URL needs GREEN_SEED (sent with each scan) and GREEN_UID (to verify "
                              "callbacks)")
        return cls(uid=uid, seed=seed, crypt_type=crypt_type, callback_url=callback,
                   endpoint=env_url(env, "FCOCR_GREEN_ENDPOINT") or cls.endpoint)
