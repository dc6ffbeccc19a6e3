"""Checksums for Alibaba Cloud Content Security ("green") result callbacks.

When an async scan is submitted with ``callback``, ``seed`` and ``cryptType``, green POSTs each
result to the callback URL as the form fields ``checksum`` and ``content``, where::

    checksum = hex( HASH( uid + seed + content ) )      # UTF-8, in exactly this order

``uid`` is the Alibaba Cloud *main account* ID (not a RAM user's), ``seed`` the value sent with the
submission and ``content`` the form value exactly as received (a JSON string). ``HASH`` is SHA-256
(the default) or SM3. The documentation calls the SM3 variant "HMAC-SM3" but names no key, and its
worked example (``abc`` -> ``66c7f0f4...``) is the *plain* SM3 digest of ``abc``, so both are plain
hashes here. Hex case is only stated for SM3 (lower case); verification accepts either case.

SM3 comes from whichever of these is available, in this order:

1. ``hashlib.new('sm3')`` -- Python's hashlib on an OpenSSL build that has SM3;
2. the ``cryptography`` package (``hashes.SM3``);
3. the pure-Python ``gmssl`` package (``gmssl.sm3.sm3_hash``).

Nothing outside the standard library is imported until SM3 is actually needed.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["sm3_hexdigest", "callback_checksum", "verify_callback", "CRYPT_TYPES"]

CRYPT_TYPES = ("SHA256", "SM3")

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_DIGEST_HEX_LEN = 64  # both SHA-256 and SM3 produce 32 bytes


def _sm3_hashlib(data: bytes) -> str | None:
    try:
        h = hashlib.new("sm3")
    except (ValueError, TypeError):  # "unsupported hash type sm3" on OpenSSL builds without it
        return None
    h.update(data)
    return h.hexdigest()


def _sm3_cryptography(data: bytes) -> str | None:
    try:
        from cryptography.hazmat.primitives import hashes
    except ImportError:
        return None
    algorithm = getattr(hashes, "SM3", None)
    if algorithm is None:
        return None
    try:
        h = hashes.Hash(algorithm())
    except Exception:  # UnsupportedAlgorithm when the linked OpenSSL lacks SM3
        return None
    h.update(data)
    return h.finalize().hex()


def _sm3_gmssl(data: bytes) -> str | None:
    try:
        from gmssl import sm3
    except ImportError:
        return None
    # gmssl wants a list of byte values (it appends padding to it in place).
    return str(sm3.sm3_hash(list(data))).lower()


_SM3_BACKENDS = (_sm3_hashlib, _sm3_cryptography, _sm3_gmssl)


def sm3_hexdigest(data: bytes) -> str:
    """The SM3 (GB/T 32905) digest of ``data`` as 64 lower-case hex digits."""
    data = bytes(data)
    for backend in _SM3_BACKENDS:
        digest = backend(data)
        if digest is not None:
            return digest
    raise RuntimeError(
        "SM3 is not available: it needs Python's hashlib built against an OpenSSL with SM3 "
        "(hashlib.new('sm3')), or the 'cryptography' package (hashes.SM3), or the 'gmssl' "
        "package (pip install gmssl)"
    )


def _normalise_crypt_type(crypt_type: str) -> str:
    # ASCII only: str.upper() would turn e.g. "\u017fha256" (long s) into "SHA256".
    name = crypt_type.upper() if isinstance(crypt_type, str) and crypt_type.isascii() else None
    if name not in CRYPT_TYPES:
        raise ValueError("cryptType must be 'SHA256' or 'SM3', got %r" % (crypt_type,))
    return name


def callback_checksum(uid: str, seed: str, content: str, crypt_type: str = "SHA256") -> str:
    """Lower-case hex ``SHA256|SM3(uid + seed + content)`` over UTF-8, as green computes it.

    ``crypt_type`` is case-insensitive; anything but SHA256/SM3 raises ValueError.
    """
    algorithm = _normalise_crypt_type(crypt_type)
    data = (uid + seed + content).encode("utf-8")
    if algorithm == "SM3":
        return sm3_hexdigest(data)
    return hashlib.sha256(data).hexdigest()


def verify_callback(uid, seed, content, checksum, crypt_type="SHA256") -> bool:
    """True when ``checksum`` is the callback checksum of ``uid + seed + content``.

    Built for hostile input: any type, a wrong length, non-hex characters, an unknown
    ``crypt_type`` or text that cannot be encoded all give False rather than an exception. Hex
    case is ignored and the comparison runs in constant time. The one exception is a deployment
    fault, not an input: SM3 requested where no SM3 implementation exists raises RuntimeError,
    so a missing dependency is loud instead of silently rejecting every callback.
    """
    try:
        if not all(isinstance(v, str) for v in (uid, seed, content, checksum, crypt_type)):
            return False
        if len(checksum) != _DIGEST_HEX_LEN or not set(checksum) <= _HEX_DIGITS:
            return False
        expected = callback_checksum(uid, seed, content, crypt_type)
    except (ValueError, UnicodeError):  # unknown crypt_type; lone surrogates in the text
        return False
    return hmac.compare_digest(expected.encode("ascii"), checksum.lower().encode("ascii"))
