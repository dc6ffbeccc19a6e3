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
from typing import Any, Callable

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
    if not isinstance(payload, str):
        raise InvalidEvent(f"event is a {type(payload).__name__}, not JSON bytes or text")
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(f"event is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # a number of 5000 digits; nesting deeper than Python's stack
        raise InvalidEvent(f"event is not JSON fcocr can read: {type(exc).__name__}") from None
    if not isinstance(data, (dict, list)):
        raise InvalidEvent("event must be a JSON object with an 'events' list")
    return data


def _member(where: str, parent: dict, name: str) -> dict:
    """``parent[name]`` as an object: absent is empty, any other type is a malformed record."""
    value = parent.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEvent(f"{where}.{name} is not an object")
    return value


def _text(where: str, value: Any) -> str:
    """An optional string field: absent is "", a number is its digits, anything else is a malformed record."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidEvent(f"{where} is not a string")
    return str(value)


def _size(where: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():  # 1e3 is a size; inf, nan and 1.5 are not
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidEvent(f"{where}.oss.object.size is not a number: {str(value)[:40]!r}")
    return value


def _record(index: int, raw: Any) -> Upload:
    where = f"events[{index}]"
    if not isinstance(raw, dict):
        raise InvalidEvent(f"{where} is not an object", index=index)
    try:
        return _checked_record(where, raw)
    except InvalidEvent as exc:
        exc.details.setdefault("index", index)
        raise


def _checked_record(where: str, raw: dict) -> Upload:
    name = raw.get("eventName")
    oss = raw.get("oss")
    if not isinstance(name, str) or not isinstance(oss, dict):
        raise InvalidEvent(f"{where} lacks eventName or oss")
    bucket = _member(f"{where}.oss", oss, "bucket").get("name")
    obj = _member(f"{where}.oss", oss, "object")
    key = obj.get("key")
    if not isinstance(bucket, str) or not bucket:
        raise InvalidEvent(f"{where}.oss.bucket.name is missing")
    if not isinstance(key, str) or not key:
        raise InvalidEvent(f"{where}.oss.object.key is missing")
    return Upload(
        event_name=name[4:] if name.startswith("oss:") else name,
        bucket=bucket,
        key=key,  # as given: whether OSS percent-encodes it is undocumented (see pipeline)
        region=_text(f"{where}.region", raw.get("region")),
        size=_size(where, obj.get("size")),
        etag=normalize_etag(_text(f"{where}.oss.object.eTag", obj.get("eTag"))),
        event_time=_text(f"{where}.eventTime", raw.get("eventTime")),
        oss_request_id=_text(f"{where}.responseElements.requestId",
                             _member(where, raw, "responseElements").get("requestId")),
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
        if isinstance(record, dict) and not record.get("region") and isinstance(envelope.get("aliyunregionid"), str):
            record = dict(record, region=envelope["aliyunregionid"])
        records.append(record)
    return records


def _oss_trigger_records(data: Any) -> list | None:
    """The records of a native OSS trigger's ``{"events": [...]}``; None if it is not one."""
    if not isinstance(data, dict) or "events" not in data:
        return None
    if not isinstance(data["events"], list):
        raise InvalidEvent("the event's 'events' is not a list")
    return data["events"]


# Where an upload can come from: each source turns a decoded payload into its OSS records, or says it is not its
# kind (None). Another trigger kind is one function and one line here; everything inward sees only ``Upload``.
UPLOAD_SOURCES: tuple[tuple[str, Callable[[Any], list | None]], ...] = (
    ("EventBridge OSS event (CloudEvents)", _cloud_event_records),
    ("OSS trigger event", _oss_trigger_records),
)


def parse_oss_event(payload: bytes | bytearray | str | dict | list,
                    rejected: list[InvalidEvent] | None = None) -> list[Upload]:
    """Every record of an upload event (an OSS trigger's, or an EventBridge OSS delivery), in order.

    A malformed record raises ``InvalidEvent``; given a ``rejected`` list, it is put there instead (its
    ``details["index"]`` says which record) and the well-formed records beside it are still returned.
    """
    data = _decode(payload)
    for _source, records_of in UPLOAD_SOURCES:
        records = records_of(data)
        if records is not None:
            break
    else:
        raise InvalidEvent("event has no 'events' list: it must be a JSON object with one (an OSS trigger event), "
                           "or CloudEvents from acs.oss")
    uploads = []
    for i, r in enumerate(records):
        try:
            uploads.append(_record(i, r))
        except InvalidEvent as exc:
            if rejected is None:
                raise
            rejected.append(exc)
    return uploads


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
