import os
import threading

import pytest

from fcocr.errors import ObjectNotFound, UnsafeKeyError
from fcocr.storage import LocalStorage


@pytest.fixture
def store(tmp_path):
    (tmp_path / "bkt").mkdir()
    return LocalStorage(str(tmp_path), "bkt")


@pytest.mark.parametrize("key", [
    "../outside.png", "a/../../outside.png", "a/..", "/etc/passwd", "a\0b.png", "", "a//b.png", "./a.png",
])
def test_keys_that_would_escape_or_are_ambiguous_are_refused(store, key):
    with pytest.raises(UnsafeKeyError):
        store.path_for(key)


@pytest.mark.parametrize("bucket", ["..", ".", "a/b", "", "x\0"])
def test_bucket_names_cannot_escape_the_root(tmp_path, bucket):
    with pytest.raises(UnsafeKeyError):
        LocalStorage(str(tmp_path), bucket)


def test_a_symlink_pointing_outside_is_never_followed(tmp_path, store):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    os.symlink(secret, tmp_path / "bkt" / "link.png")
    os.symlink(tmp_path, tmp_path / "bkt" / "dirlink")
    for key in ("link.png", "dirlink/secret.txt"):
        with pytest.raises(UnsafeKeyError):
            store.read(key, 1000)
    with pytest.raises(UnsafeKeyError):
        store.write("dirlink/evil.json", b"{}", content_type="application/json", metadata={})
    assert not (tmp_path / "evil.json").exists()


def test_a_symlink_inside_the_bucket_resolves_to_its_key(tmp_path, store):
    (tmp_path / "bkt" / "real").mkdir()
    (tmp_path / "bkt" / "real" / "a.png").write_bytes(b"x")
    os.symlink("real/a.png", tmp_path / "bkt" / "alias.png")
    assert store.symlink_target("alias.png") == "real/a.png"


def test_odd_keys_round_trip(store):
    for key in ("a b+c%20d.png", "发票/2026年 11月/报销 单.png", "deep/" * 10 + "x.png"):
        store.write(key, b"data:" + key.encode(), content_type="image/png", metadata={"fcocr-recognizer": "local.text"})
        assert store.read(key, 1000) == b"data:" + key.encode()
        info = store.head(key)
        assert info.size == len(b"data:" + key.encode())
        assert info.metadata["fcocr-recognizer"] == "local.text"
        assert len(info.etag) == 32 and info.etag == info.etag.upper()


def test_missing_objects_and_size_limits(store, tmp_path):
    with pytest.raises(ObjectNotFound):
        store.head("nope.png")
    with pytest.raises(ObjectNotFound):
        store.read("nope.png", 10)
    (tmp_path / "bkt" / "big.png").write_bytes(b"x" * 11)
    with pytest.raises(Exception) as info:
        store.read("big.png", 10)
    assert getattr(info.value, "code", "") == "InputTooLarge"


def test_writes_are_atomic_for_concurrent_readers(store):
    """A reader racing a writer sees one whole version or the other, never a mix or a partial file."""
    versions = [bytes([65 + i]) * 200_000 for i in range(6)]
    store.write("doc.json", versions[0], content_type="application/json", metadata={})
    seen, stop = set(), threading.Event()

    def reader():
        while not stop.is_set():
            data = store.read("doc.json", 10_000_000)
            seen.add(data if data in versions else b"TORN")

    t = threading.Thread(target=reader)
    t.start()
    for _ in range(10):
        for v in versions:
            store.write("doc.json", v, content_type="application/json", metadata={})
    stop.set()
    t.join()
    assert b"TORN" not in seen and seen
    leftovers = [n for n in os.listdir(store.directory) if n.endswith(".tmp")]
    assert leftovers == []


def test_list_walks_keys_in_order_with_prefix(store):
    for key in ("b/2.png", "a/1.png", "b/1.png", "c.png"):
        store.write(key, b"x", content_type="image/png", metadata={})
    assert [o.key for o in store.list()] == ["a/1.png", "b/1.png", "b/2.png", "c.png"]  # key order, as OSS lists
    assert [o.key for o in store.list(start_after="b/1.png")] == ["b/2.png", "c.png"]
    assert [o.key for o in store.list("b/")] == ["b/1.png", "b/2.png"]
