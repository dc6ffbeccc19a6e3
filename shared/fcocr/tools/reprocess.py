"""What a run will cost before it starts: how many documents it recognizes, and how many billed vendor calls.

``fcocr process`` and ``fcocr backfill`` print it with ``--force`` (recognize again even when a final result
exists, e.g. after a route change) and with ``--dry-run`` (print it and stop). A document counts once per
recognition: one billed call for a paid capability (``Capability.paid``; the offline ``local.*`` is free). A
vendor that bills per page bills a multi-page PDF more, so the figure is a floor. A document whose asynchronous
task is in flight is never recognized again, forced or not.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from ..errors import FcocrError
from ..recognizers import capability
from ..results import ResultWriter
from ..routing import Router
from ..storage import ObjectInfo


@dataclasses.dataclass
class Cost:
    documents: int = 0  # that the run recognizes
    again: int = 0  # of which already had a final result (recognized again because of --force)
    billed: Counter = dataclasses.field(default_factory=Counter)  # paid recognizer -> documents

    @property
    def billed_calls(self) -> int:
        return sum(self.billed.values())

    def add(self, recognizer: str | None, *, again: bool) -> None:
        self.documents += 1
        self.again += again
        if recognizer is None:
            return
        try:
            paid = capability(recognizer)[1].paid
        except FcocrError:
            paid = False  # no such recognizer: the run records a failure without a vendor call
        if paid:
            self.billed[recognizer] += 1

    def describe(self) -> str:
        by = ", ".join(f"{name} {n}" for name, n in sorted(self.billed.items()))
        again = f" ({self.again} with a final result, recognized again)" if self.again else ""
        return (f"{self.documents} documents to recognize{again}: at least {self.billed_calls} billed vendor calls"
                + (f" ({by})" if by else ""))


def would_recognize(writer: ResultWriter, info: ObjectInfo, *, force: bool) -> tuple[bool, bool]:
    """(recognized by this run, already final): the pipeline's own skip rule, with --force's exception."""
    final = writer.settled(info.key, info.etag)
    if not final:
        return True, False
    return force and not writer.in_flight(info.key, info.etag), True


def route_of(router: Router, info: ObjectInfo) -> str | None:
    try:
        return router.route_for(info.key, info.metadata).recognizer
    except FcocrError:
        return None  # no route: a failed result, no vendor call
