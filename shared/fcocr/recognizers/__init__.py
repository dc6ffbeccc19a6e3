"""The recognizer registry and the one contract every vendor family keeps.

A recognizer id is ``<family>.<capability>``: ``local.text``, ``aliyun.RecognizeIdentityCard``,
``market.idcard``, ``green.invoice``, ``tencent.VatInvoiceOCR``. A family module (or package) exposes

* ``FAMILY``: an object keeping the ``Family`` contract below: its capability table (data: input, limits,
  options, document type per row), its transient error codes, its packaging needs, ``recognize``, and for
  asynchronous families the task kinds it finishes and ``finish_due``;
* ``SETTINGS``: the class of its settings (``ENVIRONMENT`` rows and ``from_env``), importable without the rest
  of the family, so a process can validate every setting at start-up without loading every vendor.

Adding a family is adding its module, a line to ``FAMILY_MODULES``, a ``pyproject`` extra, its emulator and
tests: nothing in the core names a vendor. Family modules are imported only when something names them, so a
deployment pays the import cost of the vendors it uses.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol

from ..errors import ConfigError
from ..model import Capability, Outcome, SourceRef

if TYPE_CHECKING:  # the core's types, for the contract's signatures only
    from ..config import Settings
    from ..imaging import Document
    from ..runtime import Runtime
    from ..storage import ObjectInfo, Storage

FAMILY_MODULES: dict[str, str] = {
    "local": "fcocr.recognizers.local",
    "aliyun": "fcocr.recognizers.aliyun",
    "market": "fcocr.recognizers.market",
    "tencent": "fcocr.recognizers.tencent",
    "green": "fcocr.recognizers.green",
}


@dataclass(frozen=True)
class Packaging:
    """What a family's code needs on Function Compute: distributions of fcocr's extras, and the modules
    ``fcocr package --verify`` imports from a built zip to prove they load there."""

    requirements: tuple[str, ...] = ()
    verify: tuple[str, ...] = ()


class Job(Protocol):
    """One object to recognize, as a family sees it (``fcocr.pipeline.Job``)."""

    source: SourceRef  # the object the result sits beside (bucket, key, ETag, size)
    settings: "Settings"
    runtime: "Runtime"
    storage: "Storage"
    info: "ObjectInfo"
    region: str

    def source_document(self) -> "Document":
        """The content, read once and checked against fcocr's own limits only (``prepare.fit`` does the rest)."""

    def document(self, capability: Capability) -> "Document":
        """The content, read once and checked against the capability's limits and fcocr's."""

    def presigned_url(self, expires_seconds: int) -> str: ...


class Family(Protocol):
    name: str
    capabilities: Mapping[str, Capability]  # keyed by full recognizer id
    transient_codes: frozenset[str]  # vendor codes meaning "try again later" (retry.classify)
    packaging: Packaging
    task_kinds: tuple[str, ...]  # the kinds of task record this family finishes ("" for none)

    def recognize(self, capability: Capability, job: Job, options: dict) -> Outcome:
        """Recognize ``job`` and return an Outcome; raise PermanentError / TransientError on failure.
        An asynchronous capability returns an Outcome with ``task`` set and saves a task record."""

    # Optional: ``input_modes(capability)``: how the input travels to the vendor, for the README's capability table
    # (``fcocr capabilities --markdown``); ``setting(capability)``: the environment variable a capability needs;
    # ``warm_up(settings)``, called by FC's initializer for the families the routes name;
    # ``finish_due(storage, due, settings, runtime, counts)`` for a family with task kinds: finish what it can of
    # ``due``, a list of (TaskRecord, age in seconds), through ``tasks.finish``, counting what happened.


def _module(name: str) -> Any:
    module = FAMILY_MODULES.get(name)
    if module is None:
        known = ", ".join(sorted(FAMILY_MODULES))
        raise ConfigError(f"unknown recognizer family {name!r} (available: {known})")
    return importlib.import_module(module)


def family(name: str) -> Family:
    return _module(name).FAMILY


def families() -> Iterator[Family]:
    """Every registered family (importing each)."""
    for name in FAMILY_MODULES:
        yield family(name)


def settings_type(name: str) -> Any:
    """The settings class of family ``name``, without importing the rest of the family where it can."""
    return _module(name).SETTINGS


def transient_codes(name: str) -> frozenset[str]:
    """The codes family ``name`` declares transient; none for a name that is not a family (the FC API)."""
    return family(name).transient_codes if name in FAMILY_MODULES else frozenset()


def family_for_task(kind: str) -> Family | None:
    """The family that finishes task records of ``kind``."""
    for fam in families():
        if kind in fam.task_kinds:
            return fam
    return None


def capability(recognizer_id: str) -> tuple[Family, Capability]:
    """The family and capability row for ``recognizer_id``; ConfigError when there is none."""
    if not isinstance(recognizer_id, str) or "." not in recognizer_id:
        raise ConfigError(f"recognizer id {recognizer_id!r} is not of the form <family>.<capability>")
    fam = family(recognizer_id.split(".", 1)[0])
    cap = fam.capabilities.get(recognizer_id)
    if cap is None:
        known = ", ".join(sorted(fam.capabilities))
        raise ConfigError(f"unknown recognizer {recognizer_id!r} (family {fam.name!r} has: {known})")
    return fam, cap
