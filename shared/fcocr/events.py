"""Typed events, parsed once at the edge; everything inward takes these objects, not dicts.

An OSS trigger delivers the bytes of ``{"events": [...]}``. The payload's
``eventName`` has no ``oss:`` prefix (``ObjectCreated:PutObject``), though the
trigger's configuration does; both spellings are accepted. An EventBridge-based
OSS trigger (FC 3.0) delivers a CloudEvents envelope with the same OSS record in
``data`` (or a list of envelopes when EventBridge batches): ``parse_oss_event``
reads both into the same ``Upload`` objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import PermanentError


class InvalidEvent(PermanentError):
    code = "InvalidEvent"


# What we do with each event name. Anything else is logged and ignored.
PROCESS = "process"
RESOLVE_SYMLINK = "resolve-symlink"
REMOVE = "remove"  # the source was deleted: what fcocr derived from it goes too (removal.py)
ACTIONS: dict[str, str] = {
    "ObjectCreated:PutObject": PROCESS,
    "ObjectCreated:PostObject": PROCESS,
    "ObjectCreated:CompleteMultipartUpload": PROCESS,
    "ObjectCreated:CopyObject": PROCESS,
    "ObjectCreated:PutSymlink": RESOLVE_SYMLINK,
    "ObjectRemoved:DeleteObject": REMOVE,
    "ObjectRemoved:DeleteObjects": REMOVE,
}


@dataclass(frozen=True)
class Upload:
    """One OSS record: an object that appeared (or an event we will ignore)."""

    event_name: str
    bucket: str
    key: str
    region: str = ""
    size: int | None = None
    etag: str = ""
    event_time: str = ""
    oss_request_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def action(self) -> str | None:
        """``process``, ``resolve-symlink``, ``remove``, or None for an event to ignore."""
        return ACTIONS.get(self.event_name)


def normalize_etag(etag: str | None) -> str:
    """OSS ETags come quoted in headers and bare in events; compare them bare and upper-case."""
    return (etag or "").strip().strip('"').upper()


def _decode(payload: bytes | bytearray | str | dict | list) -> dict | list:
    if isinstance(payload, (dict, list)):
        return payload
    if isinstance(payload, (bytes, bytearray)):
        try:
            payload = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"event is not UTF-8: {exc}") from None
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(f"event is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, (dict, list)):
        raise InvalidEvent("event must be a JSON object with an 'events' list")
    return data


def _record(index: int, raw: Any) -> Upload:
    where = f"events[{index}]"
    if not isinstance(raw, dict):
        raise InvalidEvent(f"{where} is not an object")
    name = raw.get("eventName")
    oss = raw.get("oss")
    if not isinstance(name, str) or not isinstance(oss, dict):
        raise InvalidEvent(f"{where} lacks eventName or oss")
    bucket = (oss.get("bucket") or {}).get("name")
    obj = oss.get("object") or {}
    key = obj.get("key")
    if not isinstance(bucket, str) or not bucket:
        raise InvalidEvent(f"{where}.oss.bucket.name is missing")
    if not isinstance(key, str) or not key:
        raise InvalidEvent(f"{where}.oss.object.key is missing")
    size = obj.get("size")
    if size is not None:
        try:
            size = int(size)
        except (TypeError, ValueError):
            raise InvalidEvent(f"{where}.oss.object.size is not a number: {size!r}") from None
    return Upload(
        event_name=name[4:] if name.startswith("oss:") else name,
        bucket=bucket,
        key=key,  # as given: whether OSS percent-encodes it is undocumented (see pipeline)
        region=str(raw.get("region") or ""),
        size=size,
        etag=normalize_etag(obj.get("eTag")),
        event_time=str(raw.get("eventTime") or ""),
        oss_request_id=str((raw.get("responseElements") or {}).get("requestId") or ""),
        extra={"ruleId": oss.get("ruleId"), "versionId": obj.get("versionId")},
    )


CLOUD_EVENT_SOURCE = "acs.oss"


def _cloud_event_records(data: Any) -> list | None:
    """The OSS records of an EventBridge delivery: one CloudEvent, or a batch (a list); None if it is neither."""
    envelopes = data if isinstance(data, list) else [data]
    if not envelopes or not all(isinstance(e, dict) and "specversion" in e and "data" in e for e in envelopes):
        return None
    records = []
    for index, envelope in enumerate(envelopes):
        if envelope.get("source") != CLOUD_EVENT_SOURCE:
            raise InvalidEvent(f"CloudEvent {index} is not an OSS event (source {str(envelope.get('source'))[:40]!r})")
        record = envelope["data"]
        if isinstance(record, dict) and not record.get("region") and envelope.get("aliyunregionid"):
            record = dict(record, region=envelope["aliyunregionid"])
        records.append(record)
    return records


def parse_oss_event(payload: bytes | bytearray | str | dict | list) -> list[Upload]:
    """Every record of an OSS trigger event (or of an EventBridge OSS delivery), in order."""
    data = _decode(payload)
    cloud = _cloud_event_records(data)
    if cloud is not None:
        return [_record(i, r) for i, r in enumerate(cloud)]
    if isinstance(data, list):
        raise InvalidEvent("event must be a JSON object with an 'events' list, or CloudEvents from acs.oss")
    records = data.get("events")
    if not isinstance(records, list):
        raise InvalidEvent("event has no 'events' list: is this an OSS trigger event?")
    return [_record(i, r) for i, r in enumerate(records)]


def oss_event(bucket: str, key: str, *, size: int | None = None, etag: str = "",
              event_name: str = "ObjectCreated:PutObject", region: str = "cn-shanghai") -> dict:
    """A synthetic OSS trigger record in FC's exact shape (CLI ``process``, backfill, tests)."""
    obj: dict[str, Any] = {"key": key, "eTag": etag}
    if size is not None:
        obj.update(size=size, deltaSize=size)
    return {
        "eventName": event_name,
        "eventSource": "acs:oss",
        "eventVersion": "1.0",
        "region": region,
        "oss": {
            "bucket": {"name": bucket, "arn": f"acs:oss:{region}::{bucket}"},
            "object": obj,
            "ossSchemaVersion": "1.0",
        },
    }
