"""Structured logs: one JSON object per line, and never a secret or a recognized value.

Log lines carry identifiers (request id, bucket, key, recognizer, status, timings, vendor
request id), never credentials, seeds, APPCODEs, or what was read off a document.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

from .errors import scrub

LOGGER_NAME = "fcocr"
_configured = False


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "event": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            # Type, message and where it was raised: enough to find a bug, without dumping locals.
            entry["exception"] = self.formatException(record.exc_info).splitlines()[-3:]
        # Whatever a field or an exception's text quotes (a library echoing a header), no credential leaves.
        return scrub(json.dumps(entry, ensure_ascii=False, default=str))


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (FC's, the CLI's, or a test's capture)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure(level: str = "INFO") -> logging.Logger:
    """Route fcocr's logger to stderr as JSON lines (FC ships stderr to SLS)."""
    global _configured
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if not _configured:
        handler = _StderrHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
        _configured = True
    return logger


def log(level: int, event: str, exc_info: BaseException | None = None, **fields: Any) -> None:
    """One JSON line: ``event`` plus identifying ``fields``; ``exc_info`` adds where and what was raised."""
    logging.getLogger(LOGGER_NAME).log(level, event, exc_info=exc_info,
                                       extra={"fields": {k: v for k, v in fields.items() if v is not None}})
