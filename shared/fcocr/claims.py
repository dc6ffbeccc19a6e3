"""Claims: exactly one invocation recognizes a given object version (bucket, key, ETag).

Before any recognizer runs, the pipeline creates a claim object ``.fcocr-claims/<version digest>.<generation>``
with an exclusive create (``Storage.create_exclusive``: OSS ``x-oss-forbid-overwrite``, a local directory's
exclusive link). Of any number of concurrent deliveries of one upload exactly one creates it; the others read the
claim and return without calling a vendor.

A claim has a lease: the claimant's remaining function time plus ``LEASE_MARGIN`` (FC stops an invocation at
its timeout, so a claimant past its lease is dead). An expired claim is taken over by creating the next
generation, exclusively too, so two takers at once still leave one owner: the highest generation whose lease has
not expired owns the version. The owner releases its claim (its generation and the older ones) once its result is
written, whatever the result. The reconcile timer (``sweep``) finishes versions whose claimant died after FC's
retries were spent: a clear ``failed`` result (``ClaimExpired``, retryable, so a backfill tries again).

Limits: the guarantee rests on clocks agreeing to within ``LEASE_MARGIN`` (leases are wall-clock times compared
across instances) and on FC ending an invocation at its timeout.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from . import checkpoints, logs
from .errors import FcocrError, ObjectNotFound, TransientError
from .model import SourceRef
from .results import ResultDocument, ResultWriter, utc_now
from .runtime import Runtime
from .storage import CLAIM_PREFIX, Storage, read_own_json
from .tasks import version_digest

CLAIM_MARK = {"fcocr-kind": "claim"}
LEASE_MARGIN = 60.0  # seconds past the claimant's deadline: clock skew between instances, FC's stop
DEFAULT_LEASE = 900.0  # seconds, when the claimant's deadline is unknown (the CLI, a laptop)
MAX_CLAIM_BYTES = 8 * 1024
GENERATION_DIGITS = 10  # zero-padded, so generations list in order


@dataclass(frozen=True)
class Claim:
    """A claim as found or made: ``ours`` when this invocation holds it."""

    source: SourceRef
    generation: int
    owner: str  # the claimant's request id
    expires_at: float  # seconds since the epoch
    ours: bool
    recognizer: str | None = None
    claimed_at: float = 0.0

    @property
    def key(self) -> str:
        return generation_key(self.source, self.generation)

    def describe(self) -> str:
        return f"claim generation {self.generation} held by request {self.owner} until {_iso(self.expires_at)}"


def folder(source: SourceRef) -> str:
    """The prefix of every generation of ``source``'s claim (flat names: a local directory keeps no folders)."""
    return f"{CLAIM_PREFIX}{version_digest(source.bucket, source.key, source.etag)}."


def generation_key(source: SourceRef, generation: int) -> str:
    return f"{folder(source)}{generation:0{GENERATION_DIGITS}d}"


def lease_seconds(runtime: Runtime) -> float:
    """How long a claim made now is held: the claimant's time left (FC stops it then), plus the margin."""
    remaining = runtime.remaining_seconds()
    return (DEFAULT_LEASE if remaining is None else remaining) + LEASE_MARGIN


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _body(source: SourceRef, generation: int, owner: str, now: float, expires_at: float,
          recognizer: str | None) -> bytes:
    return json.dumps({"bucket": source.bucket, "key": source.key, "etag": source.etag, "size": source.size,
                       "generation": generation, "owner": owner, "recognizer": recognizer, "claimedAt": now,
                       "expiresAt": expires_at}, ensure_ascii=False).encode("utf-8")


def _load(storage: Storage, key: str) -> Claim | None:
    """The claim stored at ``key``; None when it is gone or unreadable (then it holds nothing)."""
    data = read_own_json(storage, key, MAX_CLAIM_BYTES)
    if not isinstance(data, dict):
        return None
    try:
        size = data.get("size")
        return Claim(SourceRef(str(data["bucket"]), str(data["key"]), str(data["etag"]),
                               size if isinstance(size, int) else None),
                     int(data["generation"]), str(data.get("owner") or ""), float(data["expiresAt"]), ours=False,
                     recognizer=data.get("recognizer") if isinstance(data.get("recognizer"), str) else None,
                     claimed_at=float(data.get("claimedAt") or 0.0))
    except (KeyError, TypeError, ValueError):
        return None


def _generations(storage: Storage, prefix: str) -> list[tuple[int, str]]:
    found = []
    for info in storage.list(prefix):
        name = info.key[len(prefix):]
        if name.isdigit():
            found.append((int(name), info.key))
    return sorted(found)


def acquire(storage: Storage, source: SourceRef, runtime: Runtime, now: float, *,
            recognizer: str | None = None) -> Claim:
    """Claim ``source``'s version for this invocation. The Claim returned is ours, or the live one someone
    else holds (then this invocation must not recognize). Storage faults raise (TransientError)."""
    lease = lease_seconds(runtime)
    generation = 1  # the common case costs one exclusive create; a conflict costs a listing
    for _ in range(4):
        body = _body(source, generation, runtime.request_id, now, now + lease, recognizer)
        if storage.create_exclusive(generation_key(source, generation), body, content_type="application/json",
                                    metadata=dict(CLAIM_MARK)):
            return Claim(source, generation, runtime.request_id, now + lease, ours=True, recognizer=recognizer,
                         claimed_at=now)
        held = _generations(storage, folder(source))
        if not held:  # released between our create and the listing: try again from the start
            generation = 1
            continue
        top, top_key = held[-1]
        current = _load(storage, top_key)
        if current is not None and current.expires_at > now:
            return current
        generation = top + 1  # expired (or unreadable): take over with the next generation, exclusively
    raise TransientError("the claim on this object version kept changing hands", code="ClaimContended")


def release(storage: Storage, claim: Claim) -> None:
    """Drop our claim and every older generation (a takeover leaves the expired ones behind)."""
    if not claim.ours:
        return
    # By name, newest first, no listing: the common case (generation 1) is one DELETE; deleting absent keys is fine.
    for generation in range(claim.generation, 0, -1):
        storage.delete(generation_key(claim.source, generation))


def sweep(storage: Storage, settings: Any, runtime: Runtime, now: float, counts: Counter) -> None:
    """The reconcile timer's part: every version whose newest claim expired without a final result gets one.

    A version already settled, replaced or deleted only has its leftover claims removed. Otherwise the timer
    takes the claim over (so a retry running right now is not overwritten) and writes a ``failed`` result,
    ``ClaimExpired``, retryable: the claimant stopped (timeout, crash) after FC's retries were spent.
    """
    folders: dict[str, list[str]] = {}
    for info in storage.list(CLAIM_PREFIX):
        head, _, name = info.key.rpartition(".")
        if name.isdigit():
            folders.setdefault(head + ".", []).append(info.key)
    writer = ResultWriter(storage, settings.result_suffix)
    for prefix, keys in folders.items():
        top = _load(storage, max(keys))
        if top is not None and top.expires_at > now:
            counts["claimsHeld"] += 1
            continue
        try:
            if top is None or top.source.bucket != storage.bucket:
                _drop(storage, keys)
                counts["claimsCleared"] += 1
                continue
            source = top.source
            try:
                current = storage.head(source.key).etag
            except ObjectNotFound:
                current = None
            if current != source.etag or writer.settled(source.key, source.etag):
                # Settled, replaced or deleted: no retry will resume from this version's page answers either.
                checkpoints.clear(storage, source)
                _drop(storage, keys)
                counts["claimsCleared"] += 1
                continue
            mine = acquire(storage, source, runtime, now, recognizer=top.recognizer)
            if not mine.ours:
                counts["claimsHeld"] += 1
                continue
            error = TransientError(
                f"the invocation that claimed this object (request {top.owner}) stopped before writing a result "
                "(a timeout or a crash) and Function Compute's retries are spent; run fcocr backfill over it to "
                "try again", code="ClaimExpired")
            started = _iso(top.claimed_at) if top.claimed_at else utc_now()
            doc = ResultDocument.from_error(error, source=source, recognizer=top.recognizer, options={}, route=None,
                                            started_at=started, finished_at=utc_now(),
                                            duration_ms=max(0, round((now - top.claimed_at) * 1000)),
                                            request_id=runtime.request_id)
            writer.write(doc)
            release(storage, mine)
            counts["claimsExpired"] += 1
            logs.log(logging.WARNING, "claim expired", requestId=runtime.request_id, bucket=storage.bucket,
                     key=source.key, recognizer=top.recognizer, claimOwner=top.owner, errorCode=error.code)
        except FcocrError as exc:
            logs.log(logging.WARNING, "claim not swept", requestId=runtime.request_id, bucket=storage.bucket,
                     claim=prefix, errorCode=exc.code)
            counts["errors"] += 1


def _drop(storage: Storage, keys: list[str]) -> None:
    for key in keys:
        storage.delete(key)
