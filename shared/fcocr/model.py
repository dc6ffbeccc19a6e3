"""The vocabulary every layer shares: what a capability accepts, what a recognizer returns, where a source is.

The bottom of the library: it imports only the standard library and ``errors``, so ``imaging``, ``prepare``,
the recognizer families and the core all speak it without importing each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import ConfigError, PermanentError

# The documents an upload trigger is meant to cover (any letter case): what the deploy declaration subscribes
# to and what `fcocr process` looks for in a directory. A file named explicitly is processed whatever its suffix.
DOCUMENT_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pdf")

# OSS's bucket naming rule: 3-63 characters, lower-case letters, digits and '-', not starting or ending with '-'.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
MAX_KEY_BYTES = 1023  # OSS's limit on an object key, in UTF-8 bytes


def is_bucket_name(name: object) -> bool:
    return isinstance(name, str) and BUCKET_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class OssLocation:
    """``oss://bucket/prefix``: the one parser of OSS locations (settings, backfill, packaging)."""

    bucket: str
    prefix: str = ""

    @property
    def url(self) -> str:
        return f"oss://{self.bucket}/{self.prefix}"

    @classmethod
    def parse(cls, text: str, *, what: str = "location", folder: bool = False) -> "OssLocation":
        """``folder``: the prefix names a folder, so it is normalised to end in '/' (or be empty)."""
        if not isinstance(text, str) or not text.startswith("oss://"):
            raise ConfigError(f"{what} {text!r} is not an OSS location: write oss://bucket/prefix")
        bucket, _, prefix = text[len("oss://"):].partition("/")
        if not is_bucket_name(bucket):
            raise ConfigError(f"{what} {text!r}: {bucket!r} is not a bucket name (3-63 lower-case letters, digits "
                              "and '-')")
        if not prefix.isprintable() or len(prefix.encode("utf-8")) > MAX_KEY_BYTES:
            raise ConfigError(f"{what} {text!r}: the prefix holds a control character or is longer than an OSS key "
                              "may be")
        if folder:
            prefix = prefix.strip("/")
            prefix = prefix + "/" if prefix else ""
        return cls(bucket, prefix)


# Canonical format names, as imaging.sniff_format reports them.
IMAGE_FORMATS = frozenset({"jpeg", "png", "bmp", "gif", "webp", "tiff"})
VIDEO_FORMATS = frozenset({"mp4", "avi", "h264"})
# Image formats Pillow decodes but few vendors take (JPEG 2000, PBM/PGM/PPM): read, and converted by ``prepare``
# for any capability whose limits do not list them (market 001 takes them as they are).
CONVERTIBLE_FORMATS = frozenset({"jp2", "pnm"})
ALL_FORMATS = IMAGE_FORMATS | CONVERTIBLE_FORMATS | VIDEO_FORMATS | {"pdf"}



@dataclass(frozen=True)
class OptionSpec:
    """One route option: its type, allowed values and default."""

    type: type
    default: Any = None
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""

    def check(self, name: str, value: Any) -> Any:
        ok = isinstance(value, self.type) and not (self.type is not bool and isinstance(value, bool))
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise ConfigError(f"option {name!r} must be {self.type.__name__}, not {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"option {name!r} must be one of {list(self.choices)}, not {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"option {name!r} must be at least {self.minimum}, not {value!r}")
        if self.maximum is not None and value > self.maximum:
            raise ConfigError(f"option {name!r} must be at most {self.maximum}, not {value!r}")
        return value


# Route options fcocr itself reads (never sent to a vendor), declared once here: every capability that accepts
# multi-page input (PDF, TIFF) accepts them, whatever its family.
PAGE_OPTIONS: Mapping[str, OptionSpec] = {
    "requireAllPages": OptionSpec(bool, description="fail the document when any page fails (default: keep the pages "
                                                    "that produced a result, partial: true)"),
}
MULTI_PAGE_FORMATS = frozenset({"pdf", "tiff"})


def vendor_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options a family sends on the wire: without fcocr's own (PAGE_OPTIONS)."""
    return {k: v for k, v in options.items() if k not in PAGE_OPTIONS}


@dataclass(frozen=True)
class Limits:
    """What a capability accepts. ``None`` means the vendor states no limit."""

    formats: frozenset[str] = IMAGE_FORMATS
    max_bytes: int | None = None
    min_side: int | None = None
    max_side: int | None = None
    max_pixels: int | None = None
    max_pages: int | None = None


@dataclass(frozen=True)
class Capability:
    id: str  # full recognizer id, e.g. "local.text"
    title: str
    limits: Limits = field(default_factory=Limits)
    options: Mapping[str, OptionSpec] = field(default_factory=dict)
    mode: str = "sync"  # "sync" answers now; "async" leaves a pending result
    paid: bool = True  # a paid call is never repeated for the same source ETag
    document_type: str | None = None  # key into the normalized field sets
    routable: bool = True  # False: a helper capability fcocr calls itself (aliyun.GetAsyncJobResult)
    # The vendor's rate quota in calls per second, None when it states none; capabilities naming the same
    # ``qps_scope`` share one quota (green: one per API for every card), otherwise each has its own.
    qps: float | None = None
    qps_scope: str | None = None

    @property
    def family(self) -> str:
        """The name of the family that owns this capability (the id's first part)."""
        return self.id.split(".", 1)[0]

    @property
    def quota(self) -> str:
        """The name of the rate quota this capability's calls count against."""
        return self.qps_scope or self.id

    @property
    def all_options(self) -> Mapping[str, OptionSpec]:
        """The capability's own options, and fcocr's page options when it takes multi-page input."""
        if self.limits.formats & MULTI_PAGE_FORMATS and self.limits.max_pages != 1:
            return {**self.options, **PAGE_OPTIONS}
        return self.options

    def resolve_options(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Options checked against the table, with defaults filled in; unknown names are errors."""
        if not self.routable:
            raise ConfigError(f"{self.id} cannot be routed to: {self.title}")
        options = dict(options or {})
        table = self.all_options
        unknown = sorted(set(options) - set(table))
        if unknown:
            known = ", ".join(sorted(table)) or "none"
            raise ConfigError(f"{self.id} has no option {', '.join(map(repr, unknown))} (known: {known})")
        resolved = {}
        for name, spec in table.items():
            if name in options:
                resolved[name] = spec.check(name, options[name])
            elif spec.default is not None:
                resolved[name] = spec.default
        return resolved


@dataclass(frozen=True)
class Line:
    """One recognized text line: text, confidence 0–100, 4-point polygon, axis-aligned box, page."""

    text: str
    confidence: float | None  # None: the vendor gives no confidence
    polygon: tuple[tuple[float, float], ...]
    page: int = 0

    @property
    def box(self) -> dict[str, float]:
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
        left, top = min(xs), min(ys)
        return {"left": left, "top": top, "width": max(xs) - left, "height": max(ys) - top}

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": None if self.confidence is None else round(self.confidence, 2),
            "polygon": [[round(x, 1), round(y, 1)] for x, y in self.polygon],
            "box": {k: round(v, 1) for k, v in self.box.items()},
            "page": self.page,
        }


@dataclass
class Outcome:
    """What a recognizer returns: lines and/or fields, the vendor's answer verbatim, or a pending task."""

    lines: list[Line] | None = None
    fields: dict[str, Any] | None = None
    raw: Any = None
    pages: list[dict[str, Any]] = field(default_factory=list)
    engine: dict[str, Any] | None = None
    vendor_request_id: str | None = None
    task: TaskRef | None = None  # set for async capabilities: the result is pending
    warnings: list[str] = field(default_factory=list)
    document_type: str | None = None  # set when ``fields`` is a normalized field set (fcocr.fields)
    partial: bool = False  # some pages produced a result and the others failed permanently (pages[i].error)
    billed_calls: int | None = None  # vendor calls this document was charged for; None: the family does not say
    # Every document found in the input (several tickets in one image): [{documentType, fields, index, page}];
    # ``fields`` is the first one's. None for a capability that reads one document per page.
    documents: list[dict[str, Any]] | None = None


class AnswerUnusable(PermanentError):
    """The vendor answered (and charged), but nothing usable came of it: every page failed, or a page failed
    where the route requires all. ``outcome`` keeps what was paid for (raw, pages, billed calls) for the result."""

    def __init__(self, message: str, *, outcome: Outcome, code: str | None = None, **details: object) -> None:
        super().__init__(message, code=code, **details)
        self.outcome = outcome


@dataclass(frozen=True)
class SourceRef:
    bucket: str
    key: str
    etag: str = ""
    size: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "etag": self.etag, "size": self.size}


@dataclass(frozen=True)
class TaskRef:
    """The asynchronous task a pending (or finished) result belongs to, as the result document names it."""

    id: str
    kind: str  # the family's task kind, as written in task records ("green", "aliyun-async")
    data_id: str
    submitted_at: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "dataId": self.data_id, "submittedAt": self.submitted_at}

    @classmethod
    def from_json(cls, data: Any) -> "TaskRef | None":
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return None
        return cls(data["id"], str(data.get("kind") or ""), str(data.get("dataId") or ""),
                   str(data.get("submittedAt") or ""))
