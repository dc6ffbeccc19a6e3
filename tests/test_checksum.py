"""fcocr.recognizers.green.checksum: SM3 through each backend, the green callback checksum, hostile verification."""

from __future__ import annotations

import hashlib
import sys
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcocr.recognizers.green import checksum
from fcocr.recognizers.green.checksum import callback_checksum, sm3_hexdigest, verify_callback

# GB/T 32905-2016 appendix A: the two standard SM3 vectors.
SM3_ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
SM3_ABCD16 = "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
SM3_EMPTY = "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"

UID, SEED = "1234567890123456", "aabbcc123"
CONTENT = '{"code":200,"msg":"OK","dataId":"测试_1","results":[{"scene":"ocr"}]}'


_HASHLIB_NEW = hashlib.new  # captured before any test hides a backend


def _real_sm3(data: bytes) -> str:
    """SM3 computed here, independently of fcocr.recognizers.green.checksum (and of the backends tests hide)."""
    try:
        return _HASHLIB_NEW("sm3", data).hexdigest()
    except ValueError:
        pass
    try:
        from cryptography.hazmat.primitives import hashes
    except ImportError:
        pytest.skip("no SM3 implementation on this machine to compare against")
    h = hashes.Hash(_CRYPTOGRAPHY_SM3())
    h.update(data)
    return h.finalize().hex()


try:
    from cryptography.hazmat.primitives.hashes import SM3 as _CRYPTOGRAPHY_SM3
except ImportError:  # pragma: no cover
    _CRYPTOGRAPHY_SM3 = None


# ---- backend switches -----------------------------------------------------------------------

def _hide_hashlib_sm3(monkeypatch):
    def new(name, *args, **kwargs):
        if str(name).lower() == "sm3":
            raise ValueError("unsupported hash type sm3")
        return _HASHLIB_NEW(name, *args, **kwargs)

    monkeypatch.setattr(hashlib, "new", new)


def _hide_cryptography_sm3(monkeypatch):
    from cryptography.hazmat.primitives import hashes

    monkeypatch.delattr(hashes, "SM3", raising=False)


def _hide_gmssl(monkeypatch):
    # A None entry in sys.modules makes `import gmssl` raise ImportError even if it is installed.
    monkeypatch.setitem(sys.modules, "gmssl", None)
    monkeypatch.setitem(sys.modules, "gmssl.sm3", None)


def _fake_gmssl(monkeypatch, calls):
    """A stand-in `gmssl` whose sm3_hash checks it gets what the real one needs: a list of ints."""
    def sm3_hash(msg):
        assert isinstance(msg, list) and all(isinstance(b, int) for b in msg)
        calls.append(bytes(msg))
        return _real_sm3(bytes(msg))

    package = types.ModuleType("gmssl")
    module = types.ModuleType("gmssl.sm3")
    module.sm3_hash = sm3_hash
    package.sm3 = module
    monkeypatch.setitem(sys.modules, "gmssl", package)
    monkeypatch.setitem(sys.modules, "gmssl.sm3", module)


# ---- SM3 ------------------------------------------------------------------------------------

def test_sm3_standard_vectors():
    assert sm3_hexdigest(b"abc") == SM3_ABC
    assert sm3_hexdigest(b"abcd" * 16) == SM3_ABCD16
    assert sm3_hexdigest(b"") == SM3_EMPTY
    assert sm3_hexdigest(bytearray(b"abc")) == SM3_ABC


def test_sm3_through_hashlib_when_openssl_has_it():
    if "sm3" not in hashlib.algorithms_available:
        pytest.skip("this Python's OpenSSL has no SM3")
    assert checksum._sm3_hashlib(b"abc") == SM3_ABC
    assert checksum._sm3_hashlib(b"abcd" * 16) == SM3_ABCD16


def test_sm3_falls_back_to_cryptography(monkeypatch):
    pytest.importorskip("cryptography")
    _hide_hashlib_sm3(monkeypatch)
    _hide_gmssl(monkeypatch)
    assert checksum._sm3_hashlib(b"abc") is None
    try:
        digest = checksum._sm3_cryptography(b"abc")
    except Exception as exc:  # pragma: no cover - the function must never raise
        pytest.fail("cryptography backend raised %r" % exc)
    if digest is None:
        pytest.skip("this cryptography build has no SM3")
    assert digest == SM3_ABC
    assert sm3_hexdigest(b"abcd" * 16) == SM3_ABCD16


def test_sm3_falls_back_to_gmssl(monkeypatch):
    calls = []
    _hide_hashlib_sm3(monkeypatch)
    _hide_cryptography_sm3(monkeypatch)
    _fake_gmssl(monkeypatch, calls)
    assert sm3_hexdigest(b"abc") == SM3_ABC
    assert sm3_hexdigest(b"abcd" * 16) == SM3_ABCD16
    assert calls == [b"abc", b"abcd" * 16]
    assert callback_checksum(UID, SEED, CONTENT, "SM3") == _real_sm3(
        (UID + SEED + CONTENT).encode("utf-8"))


def test_sm3_with_the_real_gmssl_package(monkeypatch):
    gmssl_sm3 = pytest.importorskip("gmssl.sm3")
    _hide_hashlib_sm3(monkeypatch)
    _hide_cryptography_sm3(monkeypatch)
    assert gmssl_sm3.sm3_hash(list(b"abc")) == SM3_ABC
    assert sm3_hexdigest(b"abc") == SM3_ABC
    assert sm3_hexdigest(b"abcd" * 16) == SM3_ABCD16


def test_sm3_without_any_backend_names_all_three(monkeypatch):
    _hide_hashlib_sm3(monkeypatch)
    _hide_cryptography_sm3(monkeypatch)
    _hide_gmssl(monkeypatch)
    with pytest.raises(RuntimeError) as info:
        sm3_hexdigest(b"abc")
    message = str(info.value)
    assert "hashlib" in message and "cryptography" in message and "gmssl" in message
    # SHA256 callbacks still work; an SM3 one is a deployment fault and says so loudly.
    good = hashlib.sha256((UID + SEED + CONTENT).encode()).hexdigest()
    assert verify_callback(UID, SEED, CONTENT, good, "SHA256")
    with pytest.raises(RuntimeError):
        verify_callback(UID, SEED, CONTENT, SM3_ABC, "SM3")


def test_cryptography_without_openssl_sm3_is_skipped_not_fatal(monkeypatch):
    from cryptography.hazmat.primitives import hashes

    class Unsupported:
        def __init__(self):
            raise RuntimeError("UnsupportedAlgorithm")

    monkeypatch.setattr(hashes, "SM3", Unsupported, raising=False)
    assert checksum._sm3_cryptography(b"abc") is None


def test_module_imports_nothing_third_party():
    code = ("import sys, fcocr.recognizers.green.checksum; "
            "bad = [m for m in ('cryptography', 'gmssl') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    import subprocess

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- the callback checksum ------------------------------------------------------------------

def test_checksum_sha256_is_uid_seed_content_in_that_order():
    expected = hashlib.sha256((UID + SEED + CONTENT).encode("utf-8")).hexdigest()
    assert callback_checksum(UID, SEED, CONTENT, "SHA256") == expected
    assert callback_checksum(UID, SEED, CONTENT) == expected  # SHA256 is the default
    assert callback_checksum(SEED, UID, CONTENT, "SHA256") != expected
    assert expected == expected.lower()


def test_checksum_sm3():
    expected = _real_sm3((UID + SEED + CONTENT).encode("utf-8"))
    assert callback_checksum(UID, SEED, CONTENT, "SM3") == expected
    # The documentation's worked example: "abc" -> 66c7f0f4...
    assert callback_checksum("a", "b", "c", "SM3") == SM3_ABC


@pytest.mark.parametrize("name", ["sha256", "Sha256", "SHA256", "sm3", "Sm3", "SM3"])
def test_crypt_type_is_case_insensitive(name):
    expected = callback_checksum(UID, SEED, CONTENT, name.upper())
    assert callback_checksum(UID, SEED, CONTENT, name) == expected
    assert verify_callback(UID, SEED, CONTENT, expected, name)


@pytest.mark.parametrize("name", ["MD5", "SHA1", "HMAC-SM3", "SHA-256", "", " SHA256", "\u017fha256",
                                  None, 256])
def test_unknown_crypt_type(name):
    with pytest.raises(ValueError):
        callback_checksum(UID, SEED, CONTENT, name)
    good = callback_checksum(UID, SEED, CONTENT, "SHA256")
    assert verify_callback(UID, SEED, CONTENT, good, name) is False


@pytest.mark.parametrize("crypt", ["SHA256", "SM3"])
def test_verify_accepts_either_hex_case(crypt):
    good = callback_checksum(UID, SEED, CONTENT, crypt)
    assert verify_callback(UID, SEED, CONTENT, good, crypt)
    assert verify_callback(UID, SEED, CONTENT, good.upper(), crypt)
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(good))
    assert verify_callback(UID, SEED, CONTENT, mixed, crypt)


@pytest.mark.parametrize("crypt", ["SHA256", "SM3"])
def test_verify_rejects_tampering(crypt):
    good = callback_checksum(UID, SEED, CONTENT, crypt)
    assert not verify_callback(UID, SEED, CONTENT + " ", good, crypt)
    assert not verify_callback(UID, "other_seed", CONTENT, good, crypt)
    assert not verify_callback("1234567890123457", SEED, CONTENT, good, crypt)
    flipped = ("0" if good[0] != "0" else "1") + good[1:]
    assert not verify_callback(UID, SEED, CONTENT, flipped, crypt)
    other = "SM3" if crypt == "SHA256" else "SHA256"
    assert not verify_callback(UID, SEED, CONTENT, good, other)


@pytest.mark.parametrize("bad", [
    "", "0", "0" * 63, "0" * 65, "g" * 64, " " + "0" * 63, "0" * 63 + "\n", "0x" + "0" * 62,
    "０" * 64,  # full-width digits: str.isdigit() would say yes
    "\u0660" * 64,  # Arabic-Indic zeros
    None, 0, b"0" * 64, ["0" * 64], "\ud800" * 64,
])
def test_verify_hostile_checksums_are_false(bad):
    assert verify_callback(UID, SEED, CONTENT, bad, "SHA256") is False
    assert verify_callback(UID, SEED, CONTENT, bad, "SM3") is False


@pytest.mark.parametrize("field", ["uid", "seed", "content"])
@pytest.mark.parametrize("bad", [None, 1, b"bytes", "\udcff lone surrogate"])
def test_verify_hostile_fields_are_false(field, bad):
    args = {"uid": UID, "seed": SEED, "content": CONTENT}
    args[field] = bad
    assert verify_callback(args["uid"], args["seed"], args["content"], "0" * 64, "SHA256") is False


# ---- properties -----------------------------------------------------------------------------

_anything = st.one_of(st.text(), st.binary(), st.none(), st.integers(), st.floats(),
                      st.lists(st.text(max_size=3), max_size=2))
_crypt = st.sampled_from(["SHA256", "SM3", "sha256", "sm3", "Sm3"])


@settings(max_examples=300, deadline=None)
@given(uid=_anything, seed=_anything, content=_anything,
       digest=st.one_of(_anything, st.text(alphabet="0123456789abcdefABCDEF", min_size=64,
                                           max_size=64)),
       crypt=st.one_of(_crypt, _anything))
def test_verify_never_raises(uid, seed, content, digest, crypt):
    assert verify_callback(uid, seed, content, digest, crypt) in (True, False)


@settings(max_examples=200, deadline=None)
@given(uid=st.text(), seed=st.text(), content=st.text(), crypt=_crypt)
def test_verify_accepts_its_own_checksum(uid, seed, content, crypt):
    try:
        digest = callback_checksum(uid, seed, content, crypt)
    except UnicodeEncodeError:
        # Lone surrogates cannot be UTF-8 encoded: no checksum exists, and verify says False.
        assert verify_callback(uid, seed, content, "0" * 64, crypt) is False
        return
    assert len(digest) == 64 and digest == digest.lower()
    assert verify_callback(uid, seed, content, digest, crypt)
    assert verify_callback(uid, seed, content, digest.upper(), crypt)
