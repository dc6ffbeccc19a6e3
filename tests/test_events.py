import json

import pytest

from fcocr.events import InvalidEvent, normalize_etag, oss_event, parse_oss_event

from .conftest import REPO, cloud_event

# The sample OSS trigger event from the Function Compute documentation, as FC delivers it (bytes).
OFFICIAL_SAMPLE = b"""{
  "events": [
    {
      "eventName": "ObjectCreated:PutObject",
      "eventSource": "acs:oss",
      "eventTime": "2017-04-21T12:46:37.000Z",
      "eventVersion": "1.0",
      "oss": {
        "bucket": {
          "arn": "acs:oss:cn-shanghai:123456789:bucketname",
          "name": "testbucket",
          "ownerIdentity": "123456789",
          "virtualBucket": ""
        },
        "object": {
          "deltaSize": 122539,
          "eTag": "688A7BF4F233DC9C88A80BF985AB7329",
          "key": "image/a.jpg",
          "size": 122539
        },
        "ossSchemaVersion": "1.0",
        "ruleId": "9adac8e253828f4f7c0466d941fa3db81161e853"
      },
      "region": "cn-shanghai",
      "requestParameters": {
        "sourceIPAddress": "140.205.***.***"
      },
      "responseElements": {
        "requestId": "58F9FF2D3DF792092E12044C"
      },
      "userIdentity": {
        "principalId": "123456789"
      }
    }
  ]
}"""


def test_official_sample_parses_into_a_typed_upload():
    (upload,) = parse_oss_event(OFFICIAL_SAMPLE)
    assert upload.event_name == "ObjectCreated:PutObject"
    assert upload.action == "process"
    assert (upload.bucket, upload.key, upload.size) == ("testbucket", "image/a.jpg", 122539)
    assert upload.etag == "688A7BF4F233DC9C88A80BF985AB7329"
    assert upload.region == "cn-shanghai"
    assert upload.oss_request_id == "58F9FF2D3DF792092E12044C"


def test_every_record_is_returned_in_order():
    event = {"events": [oss_event("b", f"k{i}.png", size=i) for i in range(5)]}
    uploads = parse_oss_event(json.dumps(event).encode())
    assert [u.key for u in uploads] == [f"k{i}.png" for i in range(5)]


@pytest.mark.parametrize("key", [
    "a b.jpg", "a+b.jpg", "100%.jpg", "a%20b.jpg", "发票/2026年 11月/增值税 发票.png",
    "deep/" * 20 + "x.png", "ends with space .png",
])
def test_keys_are_taken_exactly_as_given(key):
    (upload,) = parse_oss_event(json.dumps({"events": [oss_event("b", key)]}, ensure_ascii=False).encode("utf-8"))
    assert upload.key == key


@pytest.mark.parametrize("name,action", [
    ("ObjectCreated:PutObject", "process"),
    ("ObjectCreated:PostObject", "process"),
    ("ObjectCreated:CompleteMultipartUpload", "process"),
    ("ObjectCreated:CopyObject", "process"),
    ("ObjectCreated:PutSymlink", "resolve-symlink"),
    ("oss:ObjectCreated:PutObject", "process"),  # the trigger configuration's spelling
    ("ObjectCreated:AppendObject", None),
    ("ObjectCreated:InitiateMultipartUpload", None),
    ("ObjectCreated:UploadPart", None),
    ("ObjectRemoved:DeleteObject", "remove"),
    ("ObjectRemoved:DeleteObjects", "remove"),
    ("ObjectRemoved:AbortMultipartUpload", None),
    ("ObjectModified:UpdateObjectMeta", None),
])
def test_event_names_map_to_actions(name, action):
    (upload,) = parse_oss_event({"events": [oss_event("b", "k.png", event_name=name)]})
    assert upload.action == action


@pytest.mark.parametrize("payload,fragment", [
    (b"not json", "not JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[]", "JSON object"),
    (b'{"Records": []}', "no 'events' list"),
    (b'{"events": [1]}', "events[0] is not an object"),
    (b'{"events": [{"eventName": "ObjectCreated:PutObject", "oss": {"bucket": {}, "object": {"key": "k"}}}]}',
     "bucket.name"),
    (b'{"events": [{"eventName": "ObjectCreated:PutObject", "oss": {"bucket": {"name": "b"}, "object": {}}}]}',
     "object.key"),
    (b'{"events": [{"eventName": "ObjectCreated:PutObject", "oss": {"bucket": {"name": "b"}, '
     b'"object": {"key": "k", "size": "big"}}}]}', "size is not a number"),
])
def test_malformed_events_are_refused_with_the_reason(payload, fragment):
    with pytest.raises(InvalidEvent) as info:
        parse_oss_event(payload)
    assert fragment in info.value.message


def test_etags_compare_bare_and_upper_case():
    assert normalize_etag('"5b3b7d4e1a"') == "5B3B7D4E1A"
    assert normalize_etag(None) == ""


def test_shipped_console_events_all_parse():
    files = sorted((REPO / "events").glob("oss-*.json"))
    assert len(files) >= 5
    for path in files:
        assert parse_oss_event(path.read_bytes()), path.name


# ------------------------------------------------------------------------------------------ EventBridge
def test_the_eventbridge_console_event_parses_like_the_oss_trigger_record_it_carries():
    envelope = json.loads((REPO / "events" / "eventbridge-oss-put-object.json").read_bytes())
    (upload,) = parse_oss_event((REPO / "events" / "eventbridge-oss-put-object.json").read_bytes())
    (same,) = parse_oss_event({"events": [envelope["data"]]})
    assert upload == same and upload.action == "process"
    assert (upload.bucket, upload.key, upload.region, upload.etag) == (
        "samples", "vat_invoice.png", "cn-shanghai", "688A7BF4F233DC9C88A80BF985AB7329")
    assert envelope["type"] == "oss:" + upload.event_name and envelope["subject"].endswith("samples/vat_invoice.png")


def test_a_batch_of_cloud_events_is_every_record_in_order_whatever_the_letter_case():
    keys = ["IMG_0001.JPG", "scan.Pdf", "a/b.tiff"]
    uploads = parse_oss_event(json.dumps([cloud_event("b", k) for k in keys]).encode())
    assert [u.key for u in uploads] == keys and {u.action for u in uploads} == {"process"}


def test_the_envelope_region_fills_a_record_without_one():
    envelope = cloud_event("b", "k.png", region="cn-beijing")
    del envelope["data"]["region"]
    (upload,) = parse_oss_event(envelope)
    assert upload.region == "cn-beijing"


@pytest.mark.parametrize("payload,fragment", [
    (dict(cloud_event("b", "k.png"), source="acs.ecs"), "not an OSS event"),
    ([1, 2], "or CloudEvents from acs.oss"),
    (dict(cloud_event("b", "k.png"), data={"oss": {}}), "lacks eventName"),
])
def test_malformed_cloud_events_are_refused_with_the_reason(payload, fragment):
    with pytest.raises(InvalidEvent) as info:
        parse_oss_event(json.dumps(payload))
    assert fragment in info.value.message
