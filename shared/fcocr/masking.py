"""Masking: the personal values FCOCR_MASK names never reach a stored result unmasked.

``apply`` is the last step before a result document is serialized (``ResultWriter.render``): everything that
looks at values -- field extraction, validation checks -- has already run on the unmasked document, so a check
that an ID number's checksum holds still says so while the number itself is stored as ``3102**********5411``.

A masked value keeps its first and last characters (up to four at each end, at most half of it). The fields named are masked wherever a ``fields`` object
appears (the document's, each of ``documents[]``, nested items); then every other string of the document
(``text``, ``lines``, ``raw``, ...) has each masked value replaced wherever it occurs, so the recognized text and
the vendor's raw answer cannot give it away. ``keep_raw=False`` drops the raw answer (``raw`` is null).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MASK_CHAR = "*"
# Members of a result document that describe the run, not the content: never rewritten.
_UNTOUCHED = frozenset({"schemaVersion", "status", "source", "recognizer", "startedAt", "finishedAt", "durationMs",
                        "requestId", "route", "options", "task", "engine", "vendorRequestId", "masked"})


def mask_value(text: str) -> str:
    """The first and last characters kept, the rest ``*``: up to four at each end and never more than half the
    value (``310228199601115400`` -> ``3102**********5400``, ``张三丰`` -> ``张*丰``); two characters keep the
    first, one keeps none."""
    if len(text) <= 2:
        return text[:1] + MASK_CHAR if len(text) == 2 else MASK_CHAR * len(text)
    keep = max(1, min(4, len(text) // 4))
    return text[:keep] + MASK_CHAR * (len(text) - 2 * keep) + text[-keep:]


@dataclass(frozen=True)
class Masking:
    """What to hide: field names to mask, and whether the vendor's raw answer is kept at all."""

    fields: tuple[str, ...] = ()
    keep_raw: bool = True

    @classmethod
    def from_settings(cls, settings: Any) -> "Masking | None":
        """None when nothing is to be hidden (the document is written as it is)."""
        names, keep_raw = tuple(getattr(settings, "mask", ()) or ()), bool(getattr(settings, "keep_raw", True))
        return cls(names, keep_raw) if names or not keep_raw else None

    def apply(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A copy of the serialized result ``doc`` with the named fields masked and ``raw`` masked or dropped."""
        out = dict(doc)
        if not self.keep_raw and "raw" in out:
            out["raw"] = None  # kept as a member: a succeeded document always has one
        if not self.fields:
            return out
        found: dict[str, str] = {}  # original text -> masked text
        masked_names: set[str] = set()
        for name, value in out.items():
            if name not in _UNTOUCHED:
                out[name] = self._mask_fields(value, name, found, masked_names)
        if found:
            # Longest first: a value that contains another is replaced whole.
            ordered = sorted(found.items(), key=lambda item: -len(item[0]))
            for name, value in out.items():
                if name not in _UNTOUCHED:
                    out[name] = _replace_everywhere(value, ordered)
        if masked_names:
            out["masked"] = sorted(masked_names)
        return out

    def _mask_fields(self, value: Any, member: str, found: dict[str, str], names: set[str]) -> Any:
        """Mask the named entries of every ``fields`` object under ``value`` (``member``: its name)."""
        if isinstance(value, dict):
            if member == "fields":
                return {k: self._mask_field(k, v, found, names) for k, v in value.items()}
            return {k: self._mask_fields(v, k, found, names) for k, v in value.items()}
        if isinstance(value, list):
            return [self._mask_fields(v, member, found, names) for v in value]
        return value

    def _mask_field(self, name: str, value: Any, found: dict[str, str], names: set[str]) -> Any:
        if name in self.fields and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value)
            if text:
                found[text] = mask_value(text)
                names.add(name)
                return found[text]
            return value
        if isinstance(value, dict):  # nested items (an invoice's lines): their named fields too
            return {k: self._mask_field(k, v, found, names) for k, v in value.items()}
        if isinstance(value, list):
            return [self._mask_field(name, v, found, names) for v in value]
        return value


def _replace_everywhere(value: Any, ordered: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for original, masked in ordered:
            if value == original:
                return masked
            if len(original) > 1 and original in value:  # one character inside text is no one's data
                value = value.replace(original, masked)
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = str(value)
        for original, masked in ordered:
            if text == original:
                return masked
        return value
    if isinstance(value, dict):
        return {k: _replace_everywhere(v, ordered) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_everywhere(v, ordered) for v in value]
    return value
