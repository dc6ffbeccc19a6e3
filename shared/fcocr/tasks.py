"""Task records: what an asynchronous recognition needs to be finished later, by someone else.

A recognizer that answers later (Content Security's async scan, viapi's TrimDocument and
RecognizeVideoCharacter) leaves a ``pending`` result beside the source and a small task record
under the reserved prefix ``.fcocr-tasks/`` of the source bucket. The callback function and the
reconcile timer find the source through the record, never through anything else in a request.

The record's id (the Content Security ``dataId``) is ``<bucket>/<40 hex>``: ASCII and short
whatever the key (long, Chinese, with spaces), derived from bucket, key and ETag so a re-upload
of the same key is a new task, and a replay of the old one cannot finish the new upload.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

from .errors import ObjectNotFound, PermanentError
from .storage import TASK_PREFIX, Storage

TASK_SUFFIX = ".json"
TASK_MARK = {"fcocr-kind": "task"}
_DATA_ID = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9-]{1,62})/(?P<digest>[0-9a-f]{40})$")
MAX_RECORD_BYTES = 64 * 1024


def data_id_for(bucket: str, key: str, etag: str) -> str:
    digest = hashlib.sha256(f"{bucket}\n{key}\n{etag}".encode("utf-8")).hexdigest()[:40]
    return f"{bucket}/{digest}"


def parse_data_id(data_id: Any) -> tuple[str, str] | None:
    """(bucket, record key) for a well-formed id; None for anything else (never a path we did not make)."""
    if not isinstance(data_id, str):
        return None
    match = _DATA_ID.match(data_id)
    if not match:
        return None
    return match["bucket"], f"{TASK_PREFIX}{match['digest']}{TASK_SUFFIX}"


@dataclass
class TaskRecord:
    data_id: str
    kind: str  # "green" | "aliyun-async"
    task_id: str
    bucket: str
    key: str
    etag: str
    recognizer: str
    submitted_at: str
    size: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the green card, a staging object to delete

    @property
    def record_key(self) -> str:
        parsed = parse_data_id(self.data_id)
        assert parsed is not None, self.data_id
        return parsed[1]

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> "TaskRecord":
        raw = json.loads(data)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known})


def save(storage: Storage, record: TaskRecord) -> None:
    storage.write(record.record_key, record.to_bytes(), content_type="application/json", metadata=dict(TASK_MARK))


def load(storage: Storage, data_id: str) -> TaskRecord | None:
    """The record for ``data_id`` in ``storage``'s bucket, or None when there is none."""
    parsed = parse_data_id(data_id)
    if parsed is None:
        return None
    try:
        record = TaskRecord.from_bytes(storage.read(parsed[1], MAX_RECORD_BYTES))
    except ObjectNotFound:
        return None
    except (ValueError, TypeError) as exc:
        raise PermanentError(f"task record {parsed[1]} is unreadable: {exc}", code="BadTaskRecord") from None
    return record if record.data_id == data_id else None


def delete(storage: Storage, record: TaskRecord) -> None:
    storage.delete(record.record_key)


def pending(storage: Storage) -> Iterator[TaskRecord]:
    """Every task record in the bucket (records are deleted when their task is final)."""
    for info in storage.list(TASK_PREFIX):
        if not info.key.endswith(TASK_SUFFIX):
            continue
        try:
            yield TaskRecord.from_bytes(storage.read(info.key, MAX_RECORD_BYTES))
        except (ObjectNotFound, ValueError, TypeError):
            continue
