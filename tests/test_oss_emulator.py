"""The OSS emulator, driven through the real oss2 SDK.

Every test goes through oss2 (or, for presigned URLs, a plain HTTP client) so what is checked is
the wire protocol oss2 speaks: signatures, key encoding, headers, XML and error mapping.
"""

import base64
import datetime
import email.utils
import hashlib
import itertools
import time
import urllib.request
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import oss2
import pytest
import requests

from tests.emulators.oss import OssEmulator, crc64_ecma

AK, SECRET, TOKEN = "STS.test-ak", "test-secret", "test-token"
BUCKET = "test-bucket"
ODD_KEY = "a b+c%20d/中文 文件.jpg"
FLAVORS = ("v1", "v4")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # requests honours proxy variables even for 127.0.0.1; the emulator must be reached directly.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def oss():
    with OssEmulator() as emulator:
        emulator.create_bucket(BUCKET)
        yield emulator


def make_bucket(oss, flavor, ak=AK, secret=SECRET, token=TOKEN, region="cn-shanghai",
                bucket=BUCKET):
    """An oss2.Bucket signing with V1 (StsAuth / Auth) or V4 (ProviderAuthV4)."""
    if flavor == "v1":
        auth = oss2.StsAuth(ak, secret, token) if token is not None else oss2.Auth(ak, secret)
    else:
        auth = oss2.ProviderAuthV4(oss2.credentials.StaticCredentialsProvider(ak, secret, token))
    return oss2.Bucket(auth, oss.endpoint, bucket, region=region)


def error_code(response):
    """The <Code> of an OSS XML error body fetched with requests."""
    return oss2.exceptions._parse_error_body(response.content).get("Code")


def with_query(url, **changes):
    """`url` with query parameters replaced (value None removes one), order kept."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in changes]
    query += [(k, v) for k, v in changes.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def tamper(signature):
    """The same signature with its first character changed."""
    return ("B" if signature[0] != "B" else "C") + signature[1:]


class _ShiftedDatetime(datetime.datetime):
    """Stands in for oss2.auth.datetime so V4 signatures carry a chosen x-oss-date."""
    shift = datetime.timedelta(0)

    @classmethod
    def utcnow(cls):
        return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + cls.shift


def shift_v4_clock(monkeypatch, delta):
    monkeypatch.setattr(_ShiftedDatetime, "shift", delta)
    monkeypatch.setattr(oss2.auth, "datetime", _ShiftedDatetime)


def shift_v1_clock(monkeypatch, seconds):
    monkeypatch.setattr(oss2.utils, "http_date",
                        lambda timeval=None: email.utils.formatdate(time.time() + seconds,
                                                                    usegmt=True))


# ---- round trips ---------------------------------------------------------------------------

@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("key", [
    ODD_KEY,
    "deep/er/path/that/goes/on/and/on/image.png",
    "literal%2Fslash and %25 percent",
    "tilde~(parens)!*'quote;semi=eq&amp?.txt",
    "dir-marker/",
])
def test_put_get_head_round_trip_keeps_key_and_bytes(oss, flavor, key):
    bucket = make_bucket(oss, flavor)
    data = bytes(range(256)) * 3

    put = bucket.put_object(key, data, headers={"x-oss-meta-Source": "camera-7"})

    assert oss.keys(BUCKET) == [key]                      # decoded exactly once
    assert oss.get(BUCKET, key) == data
    assert put.etag == hashlib.md5(data).hexdigest().upper()
    assert put.crc == crc64_ecma(data)
    got = bucket.get_object(key)
    assert got.read() == data
    assert got.headers["x-oss-meta-source"] == "camera-7"
    head = bucket.head_object(key)
    assert head.content_length == len(data)
    assert head.etag == put.etag
    assert head.object_type == "Normal"
    assert [r.auth for r in oss.requests] == [flavor] * 3
    assert [r.key for r in oss.requests] == [key] * 3


def test_metadata_content_type_and_stored_headers(oss):
    bucket = make_bucket(oss, "v4")
    bucket.put_object("scan", b"x", headers={
        "Content-Type": "image/webp", "x-oss-meta-Page-Count": "3",
        "Cache-Control": "no-cache", "Content-Disposition": 'attachment; filename="s.webp"'})

    head = bucket.head_object("scan")
    assert head.content_type == "image/webp"
    assert head.headers["x-oss-meta-page-count"] == "3"   # OSS lower-cases metadata names
    assert head.headers["Cache-Control"] == "no-cache"
    assert head.headers["Content-Disposition"] == 'attachment; filename="s.webp"'
    assert oss.head(BUCKET, "scan") == {"etag": hashlib.md5(b"x").hexdigest().upper(), "size": 1,
                                        "metadata": {"page-count": "3"},
                                        "content_type": "image/webp"}


def test_seeded_object_is_served_with_its_metadata(oss):
    etag = oss.put(BUCKET, "in/photo.jpg", b"\xff\xd8jpeg", metadata={"x-oss-meta-Origin": "seed"},
                   content_type="image/jpeg")

    got = make_bucket(oss, "v1").get_object("in/photo.jpg")
    assert got.read() == b"\xff\xd8jpeg"
    assert got.etag == etag == hashlib.md5(b"\xff\xd8jpeg").hexdigest().upper()
    assert got.content_type == "image/jpeg"
    assert got.headers["x-oss-meta-origin"] == "seed"
    assert got.headers["ETag"] == '"%s"' % etag
    assert len(got.headers["x-oss-request-id"]) == 24


def test_default_content_type_is_octet_stream(oss):
    bucket = make_bucket(oss, "v1")
    bucket.put_object("no-extension", b"?")
    assert bucket.head_object("no-extension").content_type == "application/octet-stream"


def test_chunked_upload_is_stored_and_crc_checked(oss):
    bucket = make_bucket(oss, "v4")
    parts = [b"first;", b"second;", b"third"]

    result = bucket.put_object("streamed.bin", iter(parts))   # no length: chunked encoding

    assert oss.get(BUCKET, "streamed.bin") == b"".join(parts)
    assert result.crc == crc64_ecma(b"".join(parts))


def test_crc64_is_crc64_ecma_as_oss2_computes_it(oss, tmp_path):
    assert crc64_ecma(b"123456789") == 0x995DC9BBDF1939FA   # CRC-64/XZ check value
    data = b"crc" * 5000
    oss.put(BUCKET, "c.bin", data)
    bucket = make_bucket(oss, "v1")

    # get_object_to_file compares the body's CRC with x-oss-hash-crc64ecma (enable_crc=True).
    result = bucket.get_object_to_file("c.bin", str(tmp_path / "c.bin"))
    crc = oss2.utils.Crc64()
    crc.update(data)
    assert result.server_crc == crc.crc
    assert (tmp_path / "c.bin").read_bytes() == data


# ---- not found, ranges, conditions ------------------------------------------------------------

@pytest.mark.parametrize("flavor", FLAVORS)
def test_missing_key_raises_nosuchkey_from_get_head_and_meta(oss, flavor):
    bucket = make_bucket(oss, flavor)
    with pytest.raises(oss2.exceptions.NoSuchKey) as got:
        bucket.get_object("missing.jpg")
    assert got.value.details["Key"] == "missing.jpg"
    # HEAD has no body: the error travels in x-oss-err, so oss2 still raises NoSuchKey.
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.head_object("missing.jpg")
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object_meta("missing.jpg")
    assert bucket.object_exists("missing.jpg") is False
    assert [r.error_code for r in oss.requests] == ["NoSuchKey"] * 4


def test_missing_bucket_raises_nosuchbucket(oss):
    bucket = make_bucket(oss, "v4", bucket="no-such-bucket")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        bucket.get_object("k")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        bucket.object_exists("k")


def test_range_requests(oss):
    oss.put(BUCKET, "r", b"0123456789")
    bucket = make_bucket(oss, "v1")

    part = bucket.get_object("r", byte_range=(2, 5))
    assert (part.status, part.read()) == (206, b"2345")
    assert part.headers["Content-Range"] == "bytes 2-5/10"
    assert bucket.get_object("r", byte_range=(None, 3)).read() == b"789"
    assert bucket.get_object("r", byte_range=(7, 100)).read() == b"789"
    with pytest.raises(oss2.exceptions.ServerError) as got:
        bucket.get_object("r", byte_range=(10, 12))
    assert (got.value.status, got.value.code) == (416, "InvalidRange")


def test_if_none_match_gives_not_modified(oss):
    etag = oss.put(BUCKET, "cached", b"body")
    bucket = make_bucket(oss, "v4")
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object("cached", headers={"If-None-Match": '"%s"' % etag})
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.get_object("cached", headers={"If-Match": '"0123"'})
    assert bucket.get_object("cached", headers={"If-None-Match": '"other"'}).read() == b"body"


# ---- writes: overwrite protection, Content-MD5, copy, symlink, delete --------------------------

@pytest.mark.parametrize("flavor", FLAVORS)
def test_forbid_overwrite(oss, flavor):
    bucket = make_bucket(oss, flavor)
    forbid = {"x-oss-forbid-overwrite": "true"}
    bucket.put_object("once.json", b"first", headers=forbid)

    with pytest.raises(oss2.exceptions.ServerError) as got:
        bucket.put_object("once.json", b"second", headers=forbid)
    assert (got.value.status, got.value.code) == (409, "FileAlreadyExists")
    assert oss.get(BUCKET, "once.json") == b"first"
    bucket.put_object("once.json", b"third")                 # without the header it overwrites
    assert oss.get(BUCKET, "once.json") == b"third"


def test_content_md5_must_match_body(oss):
    bucket = make_bucket(oss, "v1")
    good = base64.b64encode(hashlib.md5(b"payload").digest()).decode()
    bucket.put_object("md5-ok", b"payload", headers={"Content-MD5": good})
    assert oss.get(BUCKET, "md5-ok") == b"payload"

    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.put_object("md5-bad", b"payload!", headers={"Content-MD5": good})
    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.put_object("md5-bad", b"payload", headers={"Content-MD5": "not-base64"})
    assert "md5-bad" not in oss.keys(BUCKET)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_copy_object_copies_or_replaces_metadata(oss, flavor):
    oss.put(BUCKET, "src/a b.png", b"png-bytes", metadata={"kind": "src"}, content_type="image/png")
    bucket = make_bucket(oss, flavor)

    copied = bucket.copy_object(BUCKET, "src/a b.png", "dst/copy.png")
    assert copied.etag == hashlib.md5(b"png-bytes").hexdigest().upper()
    assert oss.head(BUCKET, "dst/copy.png")["metadata"] == {"kind": "src"}
    assert oss.head(BUCKET, "dst/copy.png")["content_type"] == "image/png"

    bucket.copy_object(BUCKET, "src/a b.png", "dst/replaced.png", headers={
        "x-oss-metadata-directive": "REPLACE", "x-oss-meta-kind": "new",
        "Content-Type": "image/x-png"})
    replaced = oss.head(BUCKET, "dst/replaced.png")
    assert (replaced["metadata"], replaced["content_type"]) == ({"kind": "new"}, "image/x-png")
    assert oss.get(BUCKET, "dst/replaced.png") == b"png-bytes"

    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.copy_object(BUCKET, "src/none.png", "dst/none.png")


@pytest.mark.parametrize("flavor", FLAVORS)
def test_symlinks(oss, flavor):
    bucket = make_bucket(oss, flavor)
    bucket.put_object(ODD_KEY, b"target bytes")

    bucket.put_symlink(ODD_KEY, "links/latest")
    assert bucket.get_symlink("links/latest").target_key == ODD_KEY
    got = bucket.get_object("links/latest")
    assert got.read() == b"target bytes"
    assert got.object_type == "Symlink"
    assert oss.head(BUCKET, "links/latest")["symlink_target"] == ODD_KEY

    with pytest.raises(oss2.exceptions.ServerError) as not_link:
        bucket.get_symlink(ODD_KEY)
    assert (not_link.value.status, not_link.value.code) == (400, "NotSymlink")
    oss.put_symlink(BUCKET, "links/dangling", "gone.jpg")
    with pytest.raises(oss2.exceptions.ServerError) as dangling:
        bucket.get_object("links/dangling")
    assert (dangling.value.status, dangling.value.code) == (404, "SymlinkTargetNotExist")


def test_delete_and_batch_delete(oss):
    for key in ("a", "b", "c d"):
        oss.put(BUCKET, key, b".")
    bucket = make_bucket(oss, "v4")

    assert bucket.delete_object("a").status == 204
    assert bucket.delete_object("never-existed").status == 204
    result = bucket.batch_delete_objects(["b", "c d"])
    assert sorted(result.deleted_keys) == ["b", "c d"]
    assert oss.keys(BUCKET) == []


@pytest.mark.parametrize("key", ["/leading-slash", "x" * 1024])
def test_invalid_object_names_rejected(oss, key):
    with pytest.raises(oss2.exceptions.InvalidObjectName):
        make_bucket(oss, "v1").put_object(key, b".")
    assert oss.keys(BUCKET) == []


# ---- listing ----------------------------------------------------------------------------------

@pytest.mark.parametrize("flavor", FLAVORS)
def test_list_objects_v2_paginates(oss, flavor):
    keys = sorted(["img/%02d 空格+%%.jpg" % i for i in range(25)])
    for key in keys:
        oss.put(BUCKET, key, key.encode())
    oss.put(BUCKET, "other/outside-prefix", b".")
    bucket = make_bucket(oss, flavor)

    pages, token = [], ""
    while True:
        page = bucket.list_objects_v2(prefix="img/", continuation_token=token, max_keys=10)
        pages.append([o.key for o in page.object_list])
        if not page.is_truncated:
            break
        token = page.next_continuation_token

    assert [len(p) for p in pages] == [10, 10, 5]
    assert sum(pages, []) == keys
    assert page.object_list[-1].size == len(keys[-1].encode())
    assert page.object_list[-1].etag == hashlib.md5(keys[-1].encode()).hexdigest().upper()
    everything = [o.key for o in oss2.ObjectIteratorV2(bucket, max_keys=7)]
    assert everything == keys + ["other/outside-prefix"]


def test_list_v2_delimiter_reports_each_common_prefix_once(oss):
    for key in ("top.txt", "a/1", "a/2", "a/sub/3", "b/1", "c/1"):
        oss.put(BUCKET, key, b".")
    bucket = make_bucket(oss, "v4")

    first = bucket.list_objects_v2(delimiter="/")
    assert [o.key for o in first.object_list] == ["top.txt"]
    assert first.prefix_list == ["a/", "b/", "c/"]
    inner = bucket.list_objects_v2(prefix="a/", delimiter="/")
    assert ([o.key for o in inner.object_list], inner.prefix_list) == (["a/1", "a/2"], ["a/sub/"])
    # One entry per page: a prefix is never repeated on the next page (bounded, so a repeat
    # fails the test instead of looping forever).
    entries = itertools.islice(oss2.ObjectIteratorV2(bucket, delimiter="/", max_keys=1), 10)
    assert [o.key for o in entries] == ["a/", "b/", "c/", "top.txt"]


def test_list_objects_v1_marker_pagination(oss):
    keys = sorted("k/%03d+x y" % i for i in range(23))
    for key in keys:
        oss.put(BUCKET, key, b".")
    bucket = make_bucket(oss, "v1")

    page = bucket.list_objects(max_keys=10)
    assert page.is_truncated and page.next_marker == keys[9]
    second = bucket.list_objects(marker=page.next_marker, max_keys=10)
    assert [o.key for o in second.object_list] == keys[10:20]
    assert [o.key for o in oss2.ObjectIterator(bucket, max_keys=10)] == keys
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.list_objects(max_keys=1001)


def test_list_buckets(oss):
    oss.create_bucket("second-bucket")
    service = oss2.Service(oss2.StsAuth(AK, SECRET, TOKEN), oss.endpoint)
    assert [b.name for b in service.list_buckets().buckets] == ["second-bucket", BUCKET]


# ---- authentication ---------------------------------------------------------------------------

@pytest.mark.parametrize("flavor", FLAVORS)
def test_wrong_secret_is_signature_does_not_match(oss, flavor):
    bucket = make_bucket(oss, flavor, secret="not-the-secret")
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as got:
        bucket.put_object("k", b"data")
    assert got.value.status == 403
    assert "StringToSign" in got.value.details
    assert oss.keys(BUCKET) == []


@pytest.mark.parametrize("flavor", FLAVORS)
def test_security_token_is_enforced(oss, flavor):
    oss.put(BUCKET, "k", b".")
    with pytest.raises(oss2.exceptions.ServerError) as wrong:
        make_bucket(oss, flavor, token="forged-token").get_object("k")
    assert (wrong.value.status, wrong.value.code) == (403, "InvalidSecurityToken")

    with pytest.raises(oss2.exceptions.ServerError) as missing:
        make_bucket(oss, flavor, token=None).get_object("k")
    assert (missing.value.status, missing.value.code) == (403, "InvalidAccessKeyId")

    with pytest.raises(oss2.exceptions.ServerError) as unknown:
        make_bucket(oss, flavor, ak="STS.unknown").get_object("k")
    assert (unknown.value.status, unknown.value.code) == (403, "InvalidAccessKeyId")


def test_long_term_key_needs_no_token_and_refuses_one():
    with OssEmulator(credentials={"LTAI-long-term": ("long-secret", None)}) as oss:
        oss.create_bucket(BUCKET)
        make_bucket(oss, "v1", ak="LTAI-long-term", secret="long-secret", token=None).put_object(
            "k", b"v")
        assert oss.get(BUCKET, "k") == b"v"
        # A request carrying a token is an STS request, and this is not an STS key.
        with pytest.raises(oss2.exceptions.ServerError) as got:
            make_bucket(oss, "v4", ak="LTAI-long-term", secret="long-secret",
                        token="t").get_object("k")
        assert got.value.code == "InvalidAccessKeyId"


def test_anonymous_requests_are_denied(oss):
    oss.put(BUCKET, "private.jpg", b".")
    response = requests.get("%s/%s/private.jpg" % (oss.endpoint, BUCKET))
    assert response.status_code == 403 and error_code(response) == "AccessDenied"
    with pytest.raises(oss2.exceptions.AccessDenied):
        oss2.Bucket(oss2.AnonymousAuth(), oss.endpoint, BUCKET).get_object("private.jpg")
    assert oss.requests[-1].auth == "anonymous"


def test_v4_with_wrong_region_is_rejected(oss):
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        make_bucket(oss, "v4", region="cn-hangzhou").put_object("k", b".")
    assert oss.keys(BUCKET) == []


@pytest.mark.parametrize("flavor", FLAVORS)
def test_clock_skew_over_15_minutes_is_rejected(oss, monkeypatch, flavor):
    shift = shift_v1_clock if flavor == "v1" else (
        lambda mp, s: shift_v4_clock(mp, datetime.timedelta(seconds=s)))
    bucket = make_bucket(oss, flavor)

    shift(monkeypatch, -14 * 60)                    # inside the window: accepted
    bucket.put_object("k", b"ok")
    shift(monkeypatch, -16 * 60)
    with pytest.raises(oss2.exceptions.ServerError) as got:
        bucket.put_object("k", b"late")
    assert (got.value.status, got.value.code) == (403, "RequestTimeTooSkewed")
    assert oss.get(BUCKET, "k") == b"ok"


# ---- presigned URLs ---------------------------------------------------------------------------

@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("slash_safe", [False, True])
def test_presigned_get_works_from_plain_http_clients(oss, flavor, slash_safe):
    oss.put(BUCKET, ODD_KEY, b"image bytes", content_type="image/jpeg")
    url = make_bucket(oss, flavor).sign_url("GET", ODD_KEY, 300, slash_safe=slash_safe)

    response = requests.get(url)
    assert response.status_code == 200
    assert response.content == b"image bytes"
    assert response.headers["Content-Type"] == "image/jpeg"
    with urllib.request.urlopen(url) as stdlib_response:
        assert stdlib_response.read() == b"image bytes"
    assert [r.auth for r in oss.requests] == ["presign-" + flavor] * 2
    assert oss.requests[-1].key == ODD_KEY


@pytest.mark.parametrize("flavor", FLAVORS)
def test_literal_plus_in_path_is_a_plus_not_a_space(oss, flavor):
    # oss2 always sends '+' as %2B, but other clients (or a URL rewritten by hand) may send it
    # raw. In a path '+' is a plus: the key "1+1.jpg" must not be read as "1 1.jpg".
    oss.put(BUCKET, "1+1.jpg", b"plus")
    oss.put(BUCKET, "1 1.jpg", b"space")
    url = make_bucket(oss, flavor).sign_url("GET", "1+1.jpg", 300)
    assert "/1%2B1.jpg?" in url

    response = requests.get(url.replace("/1%2B1.jpg?", "/1+1.jpg?"))
    assert (response.status_code, response.content) == (200, b"plus")
    assert oss.requests[-1].key == "1+1.jpg"


def test_expired_presigned_urls_are_rejected(oss, monkeypatch):
    oss.put(BUCKET, "k.jpg", b".")
    v1_url = make_bucket(oss, "v1").sign_url("GET", "k.jpg", -1)
    shift_v4_clock(monkeypatch, datetime.timedelta(hours=-2))
    v4_url = make_bucket(oss, "v4").sign_url("GET", "k.jpg", 3600)   # lapsed an hour ago

    for url in (v1_url, v4_url):
        response = requests.get(url)
        assert response.status_code == 403
        assert error_code(response) == "AccessDenied"
        assert "Request has expired" in response.text


@pytest.mark.parametrize("flavor,signature_param", [("v1", "Signature"), ("v4", "x-oss-signature")])
def test_tampered_presigned_urls_are_rejected(oss, flavor, signature_param):
    oss.put(BUCKET, "a.jpg", b"a")
    oss.put(BUCKET, "b.jpg", b"b")
    url = make_bucket(oss, flavor).sign_url("GET", "a.jpg", 300)
    signature = dict(parse_qsl(urlsplit(url).query))[signature_param]

    attempts = {
        "signature": with_query(url, **{signature_param: tamper(signature)}),
        "other key": url.replace("/a.jpg?", "/b.jpg?"),
        "added override": with_query(url, **{"response-content-type": "text/html"}),
    }
    for what, bad_url in attempts.items():
        response = requests.get(bad_url)
        assert (response.status_code, error_code(response)) == (403, "SignatureDoesNotMatch"), what

    no_token = with_query(url, **{"security-token" if flavor == "v1" else "x-oss-security-token":
                                  None})
    response = requests.get(no_token)
    assert (response.status_code, error_code(response)) == (403, "InvalidAccessKeyId")


@pytest.mark.parametrize("flavor", FLAVORS)
def test_presigned_response_overrides_are_signed_and_applied(oss, flavor):
    oss.put(BUCKET, "doc.pdf", b"%PDF", content_type="application/pdf")
    disposition = 'attachment; filename="report 1.pdf"'
    url = make_bucket(oss, flavor).sign_url(
        "GET", "doc.pdf", 300, params={"response-content-disposition": disposition})

    response = requests.get(url)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == disposition
    stripped = requests.get(with_query(url, **{"response-content-disposition": None}))
    assert (stripped.status_code, error_code(stripped)) == (403, "SignatureDoesNotMatch")


# ---- fault injection and the request log ------------------------------------------------------

@pytest.mark.parametrize("flavor", FLAVORS)
def test_injected_503_surfaces_as_server_error_then_clears(oss, flavor):
    oss.put(BUCKET, "k", b"v")
    bucket = make_bucket(oss, flavor)
    oss.inject_fault(method="GET", key="k", times=2)

    # A request that fails authentication does not use up the fault.
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        make_bucket(oss, flavor, secret="wrong").get_object("k")
    for _ in range(2):
        with pytest.raises(oss2.exceptions.ServerError) as got:
            bucket.get_object("k")
        assert (got.value.status, got.value.code) == (503, "ServiceUnavailable")
    assert bucket.get_object("k").read() == b"v"
    assert [(r.status, r.error_code) for r in oss.requests] == [
        (403, "SignatureDoesNotMatch"), (503, "ServiceUnavailable"),
        (503, "ServiceUnavailable"), (200, None)]


def test_fault_filters_on_method_and_key_and_can_be_cleared(oss):
    oss.put(BUCKET, "k", b"v")
    bucket = make_bucket(oss, "v1")
    oss.inject_fault(method="HEAD", key="k", status=500, code="InternalError")
    oss.inject_fault(key="other", times=5)

    assert bucket.get_object("k").read() == b"v"              # GET is not HEAD
    with pytest.raises(oss2.exceptions.ServerError) as got:
        bucket.head_object("k")                                 # code arrives via x-oss-err
    assert (got.value.status, got.value.code) == (500, "InternalError")
    oss.clear_faults()
    bucket.put_object("other", b".")


def test_dropped_connection_fault_is_request_error(oss):
    oss.put(BUCKET, "k", b"v")
    bucket = make_bucket(oss, "v4")
    oss.inject_fault(method="GET", key="k", status=0)
    with pytest.raises(oss2.exceptions.RequestError):
        bucket.get_object("k")
    assert bucket.get_object("k").read() == b"v"
    assert oss.requests[0].status == 0


def test_listing_retries_through_a_transient_fault(oss):
    for i in range(3):
        oss.put(BUCKET, "f%d" % i, b".")
    oss.inject_fault(method="GET", key="")          # bucket-level request: the listing
    assert len(list(oss2.ObjectIteratorV2(make_bucket(oss, "v4")))) == 3
    assert [r.status for r in oss.requests] == [503, 200]
    assert oss.requests[1].query["list-type"] == "2"
