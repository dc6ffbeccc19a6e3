"""``green.*``: Alibaba Cloud Content Security's async image scan (seed 003), the family in one folder.

* ``scan``: the capability table, submitting scans, reading their answers, finishing due tasks (``FAMILY``);
* ``callback``: the HTTP function the service pushes results to, verified before anything is parsed;
* ``checksum``: SHA256 / SM3 of ``uid + seed + content``;
* ``settings``: ``GREEN_*``.

This ``__init__`` stays light: the callback's rejection path imports ``settings`` and ``checksum`` only, and
``FAMILY`` (with storage, tasks and the SDK) loads on first use.
"""

from __future__ import annotations

from typing import Any

from .settings import GreenSettings as SETTINGS

__all__ = ["SETTINGS", "FAMILY"]


def __getattr__(name: str) -> Any:
    if name == "FAMILY":
        from .scan import FAMILY

        return FAMILY
    raise AttributeError(name)
