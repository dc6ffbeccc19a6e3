"""The recognizer registry: capabilities described as data, one small provider per vendor family.

A recognizer id is ``<provider>.<capability>``: ``local.text``, ``aliyun.RecognizeIdentityCard``,
``market.idcard``, ``green.invoice``, ``tencent.VatInvoiceOCR``. A provider module exposes
``PROVIDER``, whose ``capabilities`` table says, per capability, what input it takes, its limits,
its options and the document type its fields normalise to. Adding a capability is adding a row;
adding a vendor family is adding a module and a line to ``PROVIDER_MODULES``.

Provider modules are imported only when a route names them, so a deployment pays the import
cost of the vendors it uses and nothing else.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from ..errors import ConfigError

# Canonical format names, as imaging.sniff_format reports them.
IMAGE_FORMATS = frozenset({"jpeg", "png", "bmp", "gif", "webp", "tiff"})
VIDEO_FORMATS = frozenset({"mp4", "avi", "h264"})
ALL_FORMATS = IMAGE_FORMATS | VIDEO_FORMATS | {"pdf"}

PROVIDER_MODULES: dict[str, str] = {
    "local": "fcocr.recognizers.local",
    "aliyun": "fcocr.recognizers.aliyun",
    "market": "fcocr.recognizers.market",
    "tencent": "fcocr.recognizers.tencent",
    "green": "fcocr.recognizers.green",
}


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
    def quota(self) -> str:
        """The name of the rate quota this capability's calls count against."""
        return self.qps_scope or self.id

    def resolve_options(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Options checked against the table, with defaults filled in; unknown names are errors."""
        if not self.routable:
            raise ConfigError(f"{self.id} cannot be routed to: {self.title}")
        options = dict(options or {})
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise ConfigError(f"{self.id} has no option {', '.join(map(repr, unknown))} (known: {known})")
        resolved = {}
        for name, spec in self.options.items():
            if name in options:
                resolved[name] = spec.check(name, options[name])
            elif spec.default is not None:
                resolved[name] = spec.default
        return resolved


class Provider(Protocol):
    name: str
    capabilities: Mapping[str, Capability]  # keyed by full recognizer id

    def recognize(self, capability: Capability, job: Any, options: dict) -> Any:
        """Recognize ``job`` (a ``pipeline.Job``: ``job.document(capability)`` for checked bytes and pages,
        ``job.presigned_url(seconds)`` for URL-fed vendors, ``job.runtime`` for credentials and time left)
        and return an ``fcocr.results.Outcome``;
        raise PermanentError / TransientError on failure."""


def provider(name: str) -> Provider:
    module = PROVIDER_MODULES.get(name)
    if module is None:
        known = ", ".join(sorted(PROVIDER_MODULES))
        raise ConfigError(f"unknown recognizer provider {name!r} (available: {known})")
    return importlib.import_module(module).PROVIDER


def capability(recognizer_id: str) -> tuple[Provider, Capability]:
    """The provider and capability row for ``recognizer_id``; ConfigError when there is none."""
    if not isinstance(recognizer_id, str) or "." not in recognizer_id:
        raise ConfigError(f"recognizer id {recognizer_id!r} is not of the form <provider>.<capability>")
    prov = provider(recognizer_id.split(".", 1)[0])
    cap = prov.capabilities.get(recognizer_id)
    if cap is None:
        known = ", ".join(sorted(prov.capabilities))
        raise ConfigError(f"unknown recognizer {recognizer_id!r} (provider {prov.name!r} has: {known})")
    return prov, cap
