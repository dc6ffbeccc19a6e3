"""Routes: which recognizer handles which object key.

```yaml
routes:
  - match: "idcard/**"            # * stays inside one path segment, ** crosses '/'
    recognizer: aliyun.RecognizeIdentityCard
    options: {Side: face}
  - match: "**"
    recognizer: local.text
```

First match wins. The whole file is checked when it is loaded (at start-up): a bad glob, an
unknown recognizer or a bad option names the entry at fault there, not at the first upload.
An upload may pick its own recognizer with the user metadata ``x-oss-meta-fcocr-recognizer``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Mapping

from .errors import ConfigError, PermanentError
from .model import Capability
from .recognizers import capability

METADATA_OVERRIDE = "fcocr-recognizer"  # x-oss-meta-fcocr-recognizer
METADATA_OPTIONS = "fcocr-options"  # x-oss-meta-fcocr-options: JSON object of options


class NoRoute(PermanentError):
    code = "NoRoute"


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a key glob: ``*`` and ``?`` stay in one segment, ``**`` crosses '/', ``{a,b}`` alternates.

    ``**/`` also matches no directory at all, so ``**/*.jpg`` matches ``a.jpg`` as well as ``x/y/a.jpg``.
    """
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError("match must be a non-empty string")
    out: list[str] = []
    i, n, in_brace = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                if pattern.startswith("**/", i):
                    out.append("(?:.*/)?")
                    i += 3
                else:
                    out.append(".*")
                    i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ConfigError(f"unclosed '[' in {pattern!r}")
            body = pattern[i + 1:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif c == "{" and not in_brace:
            in_brace = True
            out.append("(?:")
        elif c == "}" and in_brace:
            in_brace = False
            out.append(")")
        elif c == "," and in_brace:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if in_brace:
        raise ConfigError(f"unclosed '{{' in {pattern!r}")
    try:
        return re.compile("".join(out) + r"\Z", re.DOTALL)
    except re.error as exc:
        raise ConfigError(f"bad pattern {pattern!r}: {exc}") from None


# (recognizer id, resolved options, capability): one link of a route's chain, the recognizer then its fallbacks.
Link = tuple[str, dict[str, Any], Capability]


@dataclass(frozen=True)
class Route:
    match: str
    recognizer: str
    options: dict[str, Any]
    capability: Capability = field(repr=False, compare=False)
    regex: re.Pattern[str] = field(repr=False, compare=False)
    fallbacks: tuple[Link, ...] = field(default=(), repr=False, compare=False)  # fcocr.fallback
    fallback_after_billed: bool = False

    def matches(self, key: str) -> bool:
        return self.regex.match(key) is not None

    @property
    def chain(self) -> list[Link]:
        return [(self.recognizer, self.options, self.capability), *self.fallbacks]


@dataclass(frozen=True)
class Decision:
    """What the router decided for one key, and why (recorded in the result)."""

    recognizer: str
    options: dict[str, Any]
    capability: Capability
    via: str  # "route" or "metadata"
    match: str | None = None
    fallbacks: tuple[Link, ...] = ()
    fallback_after_billed: bool = False

    @property
    def chain(self) -> list[Link]:
        """The recognizer, then the route's fallbacks, in the order they are tried."""
        return [(self.recognizer, self.options, self.capability), *self.fallbacks]

    def describe(self) -> dict[str, Any]:
        return {"via": self.via, "match": self.match} if self.match is not None else {"via": self.via}


def _route(index: int, entry: Any) -> Route:
    where = f"routes[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a mapping with match and recognizer")
    unknown = sorted(set(entry) - ROUTE_FIELDS)
    if unknown:
        raise ConfigError(f"{where} has unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(ROUTE_FIELDS))})")
    match, recognizer = entry.get("match"), entry.get("recognizer")
    options = entry.get("options") or {}
    if not isinstance(recognizer, str) or not recognizer:
        raise ConfigError(f"{where} needs a recognizer id such as local.text")
    if not isinstance(options, dict):
        raise ConfigError(f"{where}.options must be a mapping")
    if not isinstance(match, str) or not match:
        raise ConfigError(f"{where}: match must be a non-empty string")
    fallback_ids = entry.get("fallback") or []
    after_billed = entry.get("fallbackAfterBilled", False)
    if not isinstance(fallback_ids, list) or not all(isinstance(f, str) and f for f in fallback_ids):
        raise ConfigError(f"{where}.fallback must be a list of recognizer ids")
    if not isinstance(after_billed, bool):
        raise ConfigError(f"{where}.fallbackAfterBilled must be true or false")
    if len(set([recognizer, *fallback_ids])) != len(fallback_ids) + 1:
        raise ConfigError(f"{where}.fallback names a recognizer twice")
    try:
        regex = glob_to_regex(match)
        _, cap = capability(recognizer)
        resolved = cap.resolve_options(options)
        fallbacks = []
        for other in fallback_ids:
            _, other_cap = capability(other)
            fallbacks.append((other, other_cap.resolve_options({}), other_cap))  # each with its own defaults
    except ConfigError as exc:
        raise ConfigError(f"{where} (match {match!r}, recognizer {recognizer!r}): {exc.message}") from None
    return Route(match=match, recognizer=recognizer, options=resolved, capability=cap, regex=regex,
                 fallbacks=tuple(fallbacks), fallback_after_billed=after_billed)


# The fields of a routes entry: fallback is the recognizers tried in turn when this one cannot answer for a
# reason of the vendor; fallbackAfterBilled also tries them after a charged answer that recognized nothing.
ROUTE_FIELDS = frozenset({"match", "recognizer", "options", "fallback", "fallbackAfterBilled"})


class Router:
    def __init__(self, routes: list[Route], source: str = "") -> None:
        self.routes = routes
        self.source = source

    @classmethod
    def from_data(cls, data: Any, source: str = "") -> "Router":
        where = f"routes {source}" if source else "routes"
        if not isinstance(data, dict) or not isinstance(data.get("routes"), list):
            raise ConfigError(f"{where}: expected a mapping with a 'routes' list")
        extra = sorted(set(data) - {"routes"})
        if extra:
            raise ConfigError(f"{where}: unknown top-level field(s) {', '.join(extra)}")
        try:
            return cls([_route(i, e) for i, e in enumerate(data["routes"])], source)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc.message}") from None

    @classmethod
    def load(cls, spec: str | None) -> "Router":
        """From FCOCR_ROUTES: a file path (YAML or JSON), inline JSON, or None for the shipped default."""
        if spec is None:
            text = resources.files("fcocr").joinpath("routes.yml").read_text("utf-8")
            return cls.from_data(_parse(text, "routes.yml"), "routes.yml (default)")
        if spec.lstrip().startswith("{"):
            try:
                data = json.loads(spec)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"FCOCR_ROUTES inline JSON is invalid: {exc.msg} at column {exc.colno}") from None
            except (ValueError, RecursionError) as exc:
                raise ConfigError(f"FCOCR_ROUTES inline JSON cannot be read: {type(exc).__name__}") from None
            return cls.from_data(data, "FCOCR_ROUTES (inline)")
        if not os.path.isfile(spec):
            raise ConfigError(f"FCOCR_ROUTES={spec!r} is neither inline JSON nor an existing file")
        with open(spec, encoding="utf-8") as fh:
            return cls.from_data(_parse(fh.read(), spec), spec)

    def route_for(self, key: str, metadata: Mapping[str, str] | None = None) -> Decision:
        """The recognizer for ``key``: the object's metadata override, else the first matching route."""
        metadata = metadata or {}
        override = (metadata.get(METADATA_OVERRIDE) or "").strip()
        if override:
            try:
                _, cap = capability(override)
                options = cap.resolve_options(_metadata_options(metadata))
            except ConfigError as exc:
                # The uploader's choice is bad: the upload fails, loudly, and nothing is guessed.
                raise PermanentError(f"x-oss-meta-{METADATA_OVERRIDE}: {exc.message}", code="BadRecognizerOverride") from None
            return Decision(override, options, cap, via="metadata")
        for route in self.routes:
            if route.matches(key):
                return Decision(route.recognizer, dict(route.options), route.capability, via="route", match=route.match,
                                fallbacks=route.fallbacks, fallback_after_billed=route.fallback_after_billed)
        raise NoRoute(f"no route matches key {key!r} (routes from {self.source or 'FCOCR_ROUTES'})")


def _metadata_options(metadata: Mapping[str, str]) -> dict[str, Any]:
    raw = (metadata.get(METADATA_OPTIONS) or "").strip()
    if not raw:
        return {}
    try:
        options = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, a 5000-digit number, nesting deeper than the stack
        raise ConfigError(f"x-oss-meta-{METADATA_OPTIONS} is not JSON fcocr can read") from None
    if not isinstance(options, dict):
        raise ConfigError(f"x-oss-meta-{METADATA_OPTIONS} must be a JSON object")
    return options


def _parse(text: str, source: str) -> Any:
    import yaml  # YAML is a superset of JSON: one parser for both file kinds

    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"routes {source}: nested too deeply to read") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"routes {source}: not valid YAML/JSON{where}: {getattr(exc, 'problem', exc)}") from None
