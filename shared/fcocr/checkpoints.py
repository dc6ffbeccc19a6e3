"""Page checkpoints: the answers a multi-page document already paid for, kept until its result is final.

A recognizer that calls a vendor once per page stores each page's answer (or its permanent failure) under the
reserved task prefix, ``.fcocr-tasks/<version digest>.p<page>.page``, before it sends the next page. When a
transient fault stops the invocation and Function Compute retries it, the retry reads those answers back and
resumes at the first unanswered page, so no page of an object version is paid for twice. The pipeline removes the
checkpoints once the document's final result is written. Their names end in ``.page``: never a task record.
"""

from __future__ import annotations

import json
from typing import Any

from .model import SourceRef
from .storage import TASK_PREFIX, Storage, read_own_json
from .tasks import version_digest

CHECKPOINT_SUFFIX = ".page"
CHECKPOINT_MARK = {"fcocr-kind": "checkpoint"}
MAX_CHECKPOINT_BYTES = 16 * 1024 * 1024  # a page's whole vendor answer


def prefix(source: SourceRef) -> str:
    return f"{TASK_PREFIX}{version_digest(source.bucket, source.key, source.etag)}.p"  # flat: no folders left behind


class PageCheckpoints:
    """The checkpoints of one object version as one recognizer left them (another recognizer's are ignored)."""

    def __init__(self, storage: Storage, source: SourceRef, recognizer: str) -> None:
        self.storage = storage
        self.prefix = prefix(source)
        self.recognizer = recognizer

    def key(self, page: int) -> str:
        return f"{self.prefix}{page:05d}{CHECKPOINT_SUFFIX}"

    def load(self, page: int) -> dict[str, Any] | None:
        """What was kept for ``page``, or None (never answered, unreadable, or another recognizer's)."""
        body = read_own_json(self.storage, self.key(page), MAX_CHECKPOINT_BYTES)
        if not isinstance(body, dict) or body.get("recognizer") != self.recognizer or body.get("page") != page:
            return None
        return body

    def save(self, page: int, body: dict[str, Any]) -> None:
        data = json.dumps({**body, "recognizer": self.recognizer, "page": page}, ensure_ascii=False).encode("utf-8")
        self.storage.write(self.key(page), data, content_type="application/json", metadata=dict(CHECKPOINT_MARK))


def clear(storage: Storage, source: SourceRef) -> None:
    """Remove every checkpoint of ``source``'s version (its result is final)."""
    for info in storage.list(prefix(source)):
        storage.delete(info.key)
