"""``fcocr backfill oss://bucket/prefix``: the documents that were in a bucket before its trigger.

    list        Storage.list(prefix, start_after=<checkpoint>)      key order, 1000 keys a page
    filter      fcocr's own objects (results, .fcocr-tasks/, .fcocr-staging/), folder markers and
                names without a document suffix                        -> skipped, never read
    settled     ResultWriter.settled(key, etag)                         -> skipped: a final result exists
    dispatch    local     pipeline.process(Upload) on --workers threads; calls to a recognizer wait for
                          a token of its vendor quota's TokenBucket (Capability.qps)
                --remote  the deployed ocr_upload, invoked asynchronously through the official SDK
                          (FC 3.0: alibabacloud-fc20230330, fcocr.fc3_invoker; --fc-version 2: aliyun-fc2) with
                          synthetic OSS events, --batch records an invocation, --qps invocations a second;
                          throttling and 5xx are retried with backoff, each attempt taking a token
    checkpoint  the last listed key before which everything is done, and the keys that failed: a re-run
                retries those, then lists on after it

One thread (the caller's) lists, batches, counts and writes the checkpoint; workers only check, invoke or
process and report back through a queue, so the checkpoint never passes a key whose work is unfinished.
Ctrl-C stops the listing, lets the work in flight finish (the batch being filled is sent), saves the
checkpoint and prints the summary; a second Ctrl-C quits at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import queue
import re
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ..config import env_text, env_url
from ..errors import ConfigError, FcocrError, ObjectNotFound, PermanentError, TransientError
from ..events import Upload, oss_event
from ..model import DOCUMENT_SUFFIXES, OssLocation
from ..pipeline import App, Report, process
from ..ratelimit import TokenBucket
from ..recognizers import capability
from ..results import ResultWriter, is_result_object, utc_now
from ..retry import RetryPolicy, VendorFault, classify
from ..runtime import Credentials, Runtime, credentials_from
from ..storage import ObjectInfo, Storage, open_storage
from .deploy import FC2_SERVICE, fc3_name

DEFAULT_SERVICE, DEFAULT_FUNCTION = FC2_SERVICE, "ocr_upload"  # FC 2.0: deploy/fc2/template.yml's names
DEFAULT_FC_VERSION = 3
DEFAULT_FUNCTION_FC3 = fc3_name(DEFAULT_FUNCTION)  # FC 3.0: template.yml's
DEFAULT_QPS, DEFAULT_BATCH = 10.0, 10
MAX_BATCH = 100
# Quotas are paced at 98 %: a request that arrives a little late and the next one a little early must not put
# one more call into a second than the quota allows (the service counts arrivals, not our send times).
PACE = 0.98
# FC accepts at most 128 KB of payload for an asynchronous invocation; keep well inside it.
ASYNC_PAYLOAD_LIMIT = 128 * 1024
BATCH_BYTES = ASYNC_PAYLOAD_LIMIT - 28 * 1024
CHECKPOINT_DIR = ".fcocr-backfill"
EVENT_NAME = "ObjectCreated:PutObject"
_REGION = re.compile(r"[a-z]{2,}(-[a-z0-9]+)+")


# ------------------------------------------------------------------------------------------ pacing
class Quotas:
    """One TokenBucket per vendor quota (``Capability.quota``), at the capability's ``qps``, capped by ``--qps``."""

    def __init__(self, cap: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.cap, self.clock, self.sleep = cap, clock, sleep
        self._buckets: dict[str, TokenBucket | None] = {}
        self._lock = threading.Lock()

    def bucket_for(self, recognizer: str) -> TokenBucket | None:
        _, cap = capability(recognizer)
        rates = [r for r in (cap.qps, self.cap) if r]
        with self._lock:
            if cap.quota not in self._buckets:
                self._buckets[cap.quota] = TokenBucket(min(rates) * PACE, clock=self.clock, sleep=self.sleep) \
                    if rates else None
            return self._buckets[cap.quota]


# ------------------------------------------------------------------------------------------ target
Target = OssLocation  # what backfill walks: oss://bucket/prefix (the prefix may be empty: the whole bucket)


def parse_target(text: str) -> Target:
    return OssLocation.parse(text, what="the backfill target")


def skip_reason(key: str, suffix: str) -> str | None:
    """Why a listed key is not a document to recognize, judged by its name alone; None if it is one."""
    if key.endswith("/"):
        return "folder marker"
    if is_result_object(key, {}, suffix):
        return "fcocr's own object"
    if not key.lower().endswith(DOCUMENT_SUFFIXES):
        return "not a document suffix"
    return None


# ------------------------------------------------------------------------------------------ checkpoint
def default_checkpoint(target: Target, directory: str | os.PathLike = CHECKPOINT_DIR) -> Path:
    """``.fcocr-backfill/<bucket>-<prefix, slugged>-<hash>.json`` in the working directory: one per bucket+prefix."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", target.prefix).strip("_")[:40]
    digest = hashlib.sha256(target.url.encode("utf-8")).hexdigest()[:10]
    return Path(directory) / f"{target.bucket}-{slug + '-' if slug else ''}{digest}.json"


@dataclasses.dataclass
class Checkpoint:
    """Where a backfill stands: keys up to ``after`` are done, except ``retry``; ``complete`` once all are."""

    path: Path
    target: Target
    after: str = ""
    retry: list[str] = dataclasses.field(default_factory=list)
    complete: bool = False

    @classmethod
    def load(cls, path: Path, target: Target) -> "Checkpoint":
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return cls(path, target)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"checkpoint {path} is unreadable ({exc}); remove it or pass --restart") from None
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ConfigError(f"checkpoint {path} is not an fcocr backfill checkpoint; remove it or pass --restart")
        if data.get("target") != target.url:
            raise ConfigError(f"checkpoint {path} belongs to {data.get('target')!r}, not {target.url!r}")
        retry = data.get("retry") or []
        if not isinstance(data.get("after", ""), str) or not all(isinstance(k, str) for k in retry):
            raise ConfigError(f"checkpoint {path} is damaged; remove it or pass --restart")
        return cls(path, target, data.get("after", ""), list(retry), bool(data.get("complete")))

    def save(self) -> None:
        body = {"version": 1, "target": self.target.url, "after": self.after, "retry": sorted(self.retry),
                "complete": self.complete, "updatedAt": utc_now()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(json.dumps(body, ensure_ascii=False, indent=1), "utf-8")
        os.replace(tmp, self.path)  # a reader (or the next run) sees the old checkpoint or the new one


class Frontier:
    """Listing order against completion order: ``after`` moves only past keys whose work is finished."""

    def __init__(self, after: str) -> None:
        self.after = after
        self._keys: dict[int, str] = {}
        self._finished: set[int] = set()
        self._next = self._low = 0

    def add(self, key: str) -> int:
        seq, self._next = self._next, self._next + 1
        self._keys[seq] = key
        return seq

    def key(self, seq: int) -> str:
        return self._keys[seq]

    def finish(self, seq: int) -> None:
        self._finished.add(seq)
        while self._low in self._finished:
            self._finished.discard(self._low)
            self.after = max(self.after, self._keys.pop(self._low))  # retried keys come before the old frontier
            self._low += 1

    @property
    def unfinished(self) -> int:
        return self._next - self._low


# ------------------------------------------------------------------------------------------ FC
def fc_endpoint(region: str | None, account_id: str | None, env: Mapping[str, str] | None = None) -> str:
    """FCOCR_FC_ENDPOINT, else ``https://<account-id>.<region>.fc.aliyuncs.com`` (config.CLI_ENVIRONMENT)."""
    env = os.environ if env is None else env
    endpoint = env_url(env, "FCOCR_FC_ENDPOINT")
    if endpoint:
        return endpoint
    account = account_id or env_text(env, "ALIBABA_CLOUD_ACCOUNT_ID")
    if not account:
        raise ConfigError("--remote needs the FC endpoint: pass --account-id (or set ALIBABA_CLOUD_ACCOUNT_ID), "
                          "or set FCOCR_FC_ENDPOINT to the full URL")
    if not (account.isascii() and account.isdigit()):  # isdigit alone takes full-width digits
        raise ConfigError(f"--account-id {account!r} must be your Alibaba Cloud account ID: digits only (0-9)")
    if not region:
        raise ConfigError("--remote needs --region (the function's region, e.g. cn-shanghai) for the FC endpoint")
    if not re.fullmatch(r"[a-z]{2}(-[a-z0-9]+)+", region):  # it becomes part of a host name
        raise ConfigError(f"--region {region!r} is not a region id such as cn-shanghai")
    return f"https://{account}.{region}.fc.aliyuncs.com"


class _DropFc2Records(logging.Filter):
    """aliyun-fc2 logs every refused call on the root logger *with its request headers*: the STS token and the
    signature. Those records never reach a handler; backfill reports FC's answers itself."""

    def __init__(self, directory: str) -> None:
        super().__init__()
        self.directory = directory

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(self.directory)


_FC2_FILTER_LOCK = threading.Lock()


def silence_fc2_logging() -> None:
    import fc2

    directory = os.path.dirname(os.path.abspath(fc2.__file__))
    root = logging.getLogger()
    with _FC2_FILTER_LOCK:
        if not any(isinstance(f, _DropFc2Records) for f in root.filters):
            root.addFilter(_DropFc2Records(directory))


class FcInvoker:
    """Asynchronous invocations of one function through the official SDK (aliyun-fc2: FC 2.0 API, ``FC ak:sig``)."""

    def __init__(self, endpoint: str, credentials: Credentials | None, service: str, function: str,
                 qualifier: str | None = None, timeout: float = 30.0) -> None:
        if not credentials:
            raise ConfigError("--remote needs credentials allowed to invoke the function: set "
                              "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET "
                              "(and ALIBABA_CLOUD_SECURITY_TOKEN for STS)", code="NoCredentials")
        import fc2

        silence_fc2_logging()
        self.endpoint, self.service, self.function, self.qualifier = endpoint, service, function, qualifier
        self.client = fc2.Client(endpoint=endpoint, accessKeyID=credentials.access_key_id,
                                 accessKeySecret=credentials.access_key_secret,
                                 securityToken=credentials.security_token or "", Timeout=timeout)

    @property
    def name(self) -> str:
        return f"{self.service}/{self.function}" + (f" ({self.qualifier})" if self.qualifier else "")

    def invoke(self, payload: bytes) -> str:
        """Queue one asynchronous invocation; FC's request id. Refusals become Transient/PermanentError."""
        import requests
        from fc2.fc_exceptions import FcError

        try:
            answer = self.client.invoke_function(self.service, self.function, payload=payload,
                                                 headers={"x-fc-invocation-type": "Async"}, qualifier=self.qualifier)
        except FcError as exc:
            try:
                body = json.loads(exc.message)
            except (TypeError, ValueError):
                body = {}
            message = str(body.get("ErrorMessage") or body.get("errorMessage") or exc.message)[:300]
            code = str(exc.err_code or body.get("errorCode") or "")
            fault = VendorFault("fc", exc.status_code, code, message, exc.request_id)
            raise classify(fault, code_prefix="FC") from None
        except requests.exceptions.JSONDecodeError:
            # The SDK reads every error body as JSON: a proxy's or gateway's HTML page gets here.
            raise TransientError("FC answered an error that is not JSON (a gateway or proxy page)",
                                 code="FC.MalformedResponse") from None
        except requests.exceptions.RequestException as exc:
            raise TransientError(f"FC unreachable: {type(exc).__name__}", code="FC.Unreachable") from None
        return str(answer.headers.get("X-Fc-Request-Id") or answer.headers.get("x-fc-request-id") or "")


# ------------------------------------------------------------------------------------------ the run
@dataclasses.dataclass
class Summary:
    target: str
    mode: str  # "local" | "remote"
    dry_run: bool = False
    listed: int = 0
    skipped: Counter = dataclasses.field(default_factory=Counter)  # reason -> objects
    statuses: Counter = dataclasses.field(default_factory=Counter)  # local: result status -> documents
    invoked: int = 0  # remote: documents in accepted invocations
    invocations: int = 0
    retries: Counter = dataclasses.field(default_factory=Counter)  # error code -> retried attempts
    would: int = 0  # dry run: documents that would be dispatched
    would_recognizers: Counter = dataclasses.field(default_factory=Counter)
    samples: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)  # key -> why (retried by the next run)
    failed_documents: dict[str, str] = dataclasses.field(default_factory=dict)  # local: failed results written
    fatal: str | None = None
    interrupted: bool = False
    resumed_after: str = ""
    elapsed: float = 0.0
    first_invoke: float | None = None
    last_invoke: float | None = None
    checkpoint: str = ""
    complete: bool = False

    @property
    def invoke_rate(self) -> float | None:
        """Accepted invocations a second, first to last (the quota's unit)."""
        if self.first_invoke is None or self.last_invoke is None or self.invocations < 2:
            return None
        span = self.last_invoke - self.first_invoke
        return (self.invocations - 1) / span if span > 0 else None


class Backfill:
    """One run over a bucket prefix; ``run()`` returns the Summary. See the module docstring."""

    def __init__(self, target: Target, application: App, *, remote: bool = False, region: str = "",
                 workers: int = 4, qps: float | None = None, batch: int = DEFAULT_BATCH,
                 invoker: FcInvoker | None = None, invokers: int | None = None, checkpoint: Path | None = None,
                 restart: bool = False, dry_run: bool = False, credentials: Credentials | None = None,
                 attempts: int = 10, backoff: float = 0.2, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, progress: Any = None, count_total: bool = True,
                 force: bool = False) -> None:
        if workers < 1:
            raise ConfigError(f"--workers must be at least 1, not {workers}")
        if qps is not None and not qps > 0:
            raise ConfigError(f"--qps must be above 0, not {qps}")
        if not 1 <= batch <= MAX_BATCH:
            raise ConfigError(f"--batch must be between 1 and {MAX_BATCH}, not {batch}")
        if remote and application.settings.local_root:
            raise ConfigError("--remote invokes the deployed function, which cannot read FCOCR_LOCAL_ROOT: unset it")
        if remote and force:
            raise ConfigError("--force recognizes here only: the deployed function skips documents with a final "
                              "result (drop --remote)")
        if remote and invoker is None and not dry_run:
            raise ConfigError("--remote needs an FC invoker")
        settings = application.settings
        if not settings.local_root:
            if not region:
                raise ConfigError("--region is needed for an OSS bucket (the bucket's region, e.g. cn-shanghai): "
                                  "the events carry it, and the function picks its OSS endpoint by it")
            if not _REGION.fullmatch(region):
                raise ConfigError(f"--region {region!r} is not a region id such as cn-shanghai")
            if not settings.oss_endpoint:  # outside Alibaba Cloud the internal endpoint does not resolve
                settings = dataclasses.replace(settings, oss_endpoint=f"https://oss-{region}.aliyuncs.com")
                application = App(settings, application.router)
        self.target, self.app, self.remote, self.region = target, application, remote, region
        self.workers, self.batch_size, self.invoker, self.dry_run = workers, batch, invoker, dry_run
        self.force = force
        self.qps = qps if qps is not None else (DEFAULT_QPS if remote else None)
        self.invokers = invokers or max(2, min(32, math.ceil((self.qps or DEFAULT_QPS) / 5)))
        self.clock, self.sleep, self.count_total = clock, sleep, count_total
        self.credentials = credentials
        self.policy = RetryPolicy(attempts=attempts, base_delay=backoff, max_delay=8.0)
        self.run_id = uuid.uuid4().hex[:8]
        runtime = Runtime(request_id=f"backfill-{self.run_id}", credentials=credentials, region=region)
        self.storage: Storage = open_storage(target.bucket, runtime, settings, region)
        self.writer = ResultWriter(self.storage, settings.result_suffix)
        self.checkpoint = Checkpoint(checkpoint or default_checkpoint(target), target)
        if not restart:
            self.checkpoint = Checkpoint.load(self.checkpoint.path, target)
        elif not dry_run:
            self.checkpoint.save()  # --restart forgets the old position now, not only if this run gets far
        self.quotas = Quotas(None if remote else qps, clock=clock, sleep=sleep)
        self.fc_bucket = TokenBucket(self.qps * PACE, clock=clock, sleep=sleep) if remote else None
        self.progress = progress
        self.summary = Summary(target.url, "remote" if remote else "local", dry_run=dry_run,
                               resumed_after=self.checkpoint.after, checkpoint=str(self.checkpoint.path))
        self.stop = threading.Event()
        self.fatal = threading.Event()
        self.total: int | None = None
        self.frontier = Frontier(self.checkpoint.after)
        self._events: queue.Queue = queue.Queue()
        self._batch: list[tuple[int, ObjectInfo, bytes]] = []
        self._batch_bytes = 0
        self._inflight = Counter()  # "check" | "invoke" | "local" -> submitted, not yet reported
        self._retry_pending: set[str] = set()
        self._last_save = time.monotonic()

    # ----------------------------------------------------------------------------- main thread
    def run(self) -> Summary:
        started = time.monotonic()
        if self.checkpoint.complete and not self.dry_run:
            self.summary.complete = True
            return self.summary
        self._retry_pending = set(self.checkpoint.retry)
        window = max(256, self.batch_size * (self.invokers + 2) + 4 * self.workers)
        checks = ThreadPoolExecutor(self.workers, thread_name_prefix="fcocr-backfill")
        invokes = ThreadPoolExecutor(self.invokers, thread_name_prefix="fcocr-invoke") if self.remote else None
        self._pools = {"check": checks, "local": checks, "invoke": invokes}
        previous = self._install_sigint()
        if self.count_total:
            threading.Thread(target=self._count, name="fcocr-backfill-count", daemon=True).start()
        finished = False
        listed_all = False
        try:
            items = self._items()
            while not self.stop.is_set():
                try:
                    info = next(items)
                except StopIteration:
                    listed_all = True
                    break
                except FcocrError as exc:  # the listing itself failed: finish what is in flight, then say so
                    self.summary.fatal = f"listing {self.target.url} failed: {exc.code}: {exc.message}"
                    self.stop.set()
                    break
                while self.frontier.unfinished >= window and not self.stop.is_set():
                    self._pump(block=True)
                if self.stop.is_set():
                    break
                self._register(info)
                self._pump(block=False)
            # Everything registered is finished before the checkpoint is written: the checks, then the batch
            # being filled (sent even after Ctrl-C, so no listed key is left half done), then the invocations.
            while self._inflight["check"]:
                self._pump(block=True)
            self._flush()
            while self._inflight["invoke"] or self._inflight["local"]:
                self._pump(block=True)
            self._pump(block=False)
            finished = True
        finally:
            self._restore_sigint(previous)
            if not finished:  # a second Ctrl-C: quit now, keep what is known to be done
                for pool in (checks, invokes):
                    if pool is not None:
                        pool.shutdown(wait=False, cancel_futures=True)
            else:
                checks.shutdown()
                if invokes is not None:
                    invokes.shutdown()
            self.stop.set()  # ends the counting thread
            self.summary.elapsed = time.monotonic() - started
            complete = finished and listed_all and not self.summary.failed and not self._retry_pending \
                and not self.summary.fatal
            self.summary.complete = complete
            if not self.dry_run:
                self._save(complete=complete)
        return self.summary

    def _items(self) -> Iterator[ObjectInfo]:
        """The keys a previous run could not finish, then the listing after the checkpoint."""
        for key in sorted(self.checkpoint.retry):
            if self.stop.is_set():
                return
            try:
                yield self.storage.head(key)
            except ObjectNotFound:
                self._retry_pending.discard(key)
                self.summary.skipped["gone since the last run"] += 1
        yield from self.storage.list(self.target.prefix, start_after=self.checkpoint.after)

    def _count(self) -> None:
        """The objects this run will list (for the ETA): a second listing, of names only, beside the first."""
        n = len(self.checkpoint.retry)
        try:
            for _ in self.storage.list(self.target.prefix, start_after=self.checkpoint.after):
                if self.stop.is_set():
                    return
                n += 1
        except Exception:  # noqa: BLE001 - the count only feeds the ETA; the run reports listing errors itself
            return
        self.total = n

    def _register(self, info: ObjectInfo) -> None:
        seq = self.frontier.add(info.key)
        self.summary.listed += 1
        reason = skip_reason(info.key, self.app.settings.result_suffix)
        if reason is not None:
            self.summary.skipped[reason] += 1
            self._finish([seq])
            return
        kind = "check" if (self.remote or self.dry_run) else "local"
        work = self._check if kind == "check" else self._local
        self._inflight[kind] += 1
        self._pools[kind].submit(self._report, kind, work, seq, info)

    def _pump(self, block: bool) -> None:
        """Handle what the workers reported: all that is queued, waiting briefly for the first if ``block``."""
        try:
            event = self._events.get(timeout=0.2) if block else self._events.get_nowait()
        except queue.Empty:
            return
        while True:
            self._handle(*event)
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
        if self.progress is not None and self.total is not None and self.progress.total is None:
            self.progress.total = self.total
        if time.monotonic() - self._last_save >= 2.0 and not self.dry_run:
            self._save(complete=False)

    def _handle(self, kind: str, outcome: str, seqs: list[int], detail: Any) -> None:
        if outcome == "retry":  # a worker is about to try again: only counted
            self.summary.retries[detail] += 1
            return
        self._inflight[kind] -= 1
        keys = [self.frontier.key(s) for s in seqs]
        if outcome == "settled":
            self.summary.skipped["result already final"] += 1
        elif outcome == "ready":
            if self.dry_run:
                self.summary.would += 1
                self.summary.samples = sorted(self.summary.samples + keys)[:10]  # the first in key order
                if not self.remote:
                    self._would_route(detail)
            else:
                self._add_to_batch(seqs[0], detail)
                return  # finished when its invocation is
        elif outcome == "invoked":
            request_id, when = detail
            self.summary.invoked += len(seqs)
            self.summary.invocations += 1
            first, last = self.summary.first_invoke, self.summary.last_invoke
            self.summary.first_invoke = when if first is None else min(first, when)
            self.summary.last_invoke = when if last is None else max(last, when)
        elif outcome == "processed":
            report: Report = detail
            self.summary.statuses[report.status] += 1
            if report.status == "failed":
                self.summary.failed_documents[keys[0]] = f"{report.error_code}: {report.reason}"
        elif outcome == "failed":
            error: FcocrError = detail
            for key in keys:
                self.summary.failed[key] = f"{error.code}: {error.message}"
            if kind == "invoke" and not error.retryable and error.code != "FC.NotSent" and not self.fatal.is_set():
                # FC refused the request itself (credentials, permissions, no such function): every other
                # invocation would be refused too. Stop listing; what is in flight reports back first.
                self.summary.fatal = f"{error.code}: {error.message}"
                self.fatal.set()
                self.stop.set()
        self._finish(seqs)

    def _finish(self, seqs: list[int]) -> None:
        for seq in seqs:
            self._retry_pending.discard(self.frontier.key(seq))
            self.frontier.finish(seq)
        if self.progress is not None:
            self.progress.advance(len(seqs))

    def _would_route(self, info: ObjectInfo) -> None:
        try:
            recognizer = self.app.router.route_for(info.key, info.metadata).recognizer
        except FcocrError as exc:
            recognizer = f"({exc.code})"
        self.summary.would_recognizers[recognizer] += 1

    def _add_to_batch(self, seq: int, info: ObjectInfo) -> None:
        record = oss_event(self.target.bucket, info.key, size=info.size, etag=info.etag, region=self.region)
        size = len(json.dumps(record, ensure_ascii=False).encode("utf-8")) + 2
        if self._batch and self._batch_bytes + size > BATCH_BYTES:
            self._flush()
        self._batch.append((seq, info, json.dumps(record, ensure_ascii=False).encode("utf-8")))
        self._batch_bytes += size
        if len(self._batch) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        if not self._batch:
            return
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        payload = b'{"events": [' + b", ".join(r for _, _, r in batch) + b"]}"
        seqs = [seq for seq, _, _ in batch]
        self._inflight["invoke"] += 1
        self._pools["invoke"].submit(self._report, "invoke", self._invoke, seqs, payload)

    def _save(self, complete: bool) -> None:
        self._last_save = time.monotonic()
        after = self.frontier.after
        # A failed key past the frontier is listed again anyway; one before it must be remembered.
        retry = {k for k in self.summary.failed if k <= after} | self._retry_pending
        self.checkpoint.after, self.checkpoint.retry, self.checkpoint.complete = after, sorted(retry), complete
        self.checkpoint.save()

    def _install_sigint(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None

        def on_sigint(signum: int, frame: Any) -> None:
            if self.stop.is_set() and self.summary.interrupted:
                raise KeyboardInterrupt
            self.summary.interrupted = True
            self.stop.set()
            print("\ninterrupted: finishing what is in flight (Ctrl-C again to quit at once)...", file=sys.stderr)

        return signal.signal(signal.SIGINT, on_sigint)

    @staticmethod
    def _restore_sigint(previous: Any) -> None:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)

    # ----------------------------------------------------------------------------- workers
    def _report(self, kind: str, work: Callable, *args: Any) -> None:
        """Run ``work`` on a worker thread; whatever happens is reported to the main thread, exactly once."""
        seqs = args[0] if isinstance(args[0], list) else [args[0]]
        try:
            outcome, detail = work(*args)
        except FcocrError as exc:
            outcome, detail = "failed", exc
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the key: it is reported as failed
            outcome, detail = "failed", TransientError(f"unexpected {type(exc).__name__}: {exc}", code="InternalError")
        self._events.put((kind, outcome, seqs, detail))

    def _skipped(self, info: ObjectInfo) -> bool:
        """The function's own rule: a final result settles the document; with --force only a task in flight."""
        if self.force:
            return self.writer.in_flight(info.key, info.etag)
        return self.writer.settled(info.key, info.etag)

    def _check(self, seq: int, info: ObjectInfo) -> tuple[str, Any]:
        if self._skipped(info):
            return "settled", None
        if self.dry_run and not self.remote:
            try:
                info = self.storage.head(info.key)  # the metadata, for a route override
            except ObjectNotFound:
                pass
        return "ready", info

    def _local(self, seq: int, info: ObjectInfo) -> tuple[str, Any]:
        if self._skipped(info):
            return "settled", None
        bucket = self._quota_bucket(info)
        if bucket is not None:
            bucket.acquire()
        upload = Upload(EVENT_NAME, self.target.bucket, info.key, self.region, info.size, info.etag)
        runtime = Runtime(request_id=f"backfill-{self.run_id}-{seq}", credentials=self.credentials, region=self.region)
        return "processed", process(upload, runtime, self.app, force=self.force)

    def _quota_bucket(self, info: ObjectInfo) -> TokenBucket | None:
        """The token bucket of the recognizer this object is routed to (its metadata may choose one)."""
        try:
            metadata = self.storage.head(info.key).metadata
            recognizer = self.app.router.route_for(info.key, metadata).recognizer
            return self.quotas.bucket_for(recognizer)
        except FcocrError:
            return None  # no route, a bad override, a vanished object: process() records it without a vendor call

    def _invoke(self, seqs: list[int], payload: bytes) -> tuple[str, Any]:
        assert self.invoker is not None and self.fc_bucket is not None

        def attempt(timeout: float) -> str:
            if self.fatal.is_set():
                raise PermanentError("not sent: FC refused an earlier invocation", code="FC.NotSent")
            self.fc_bucket.acquire()
            return self.invoker.invoke(payload)

        def on_retry(n: int, exc: FcocrError, pause: float) -> None:
            self._events.put(("invoke", "retry", [], exc.code))

        request_id = self.policy.call(attempt, None, sleep=self.sleep, on_retry=on_retry)
        return "invoked", (request_id, self.clock())


# ------------------------------------------------------------------------------------------ summary
def cost_of(summary: Summary) -> Any:
    """The billed calls a (dry) run's routed documents cost (tools.reprocess)."""
    from .reprocess import Cost

    cost = Cost()
    for recognizer, n in summary.would_recognizers.items():
        for _ in range(n):
            cost.add(None if recognizer.startswith("(") else recognizer, again=False)
    return cost


def summary_rows(summary: Summary) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [("listed", str(summary.listed))]
    for reason, n in sorted(summary.skipped.items()):
        rows.append((f"skipped: {reason}", str(n)))
    if summary.dry_run:
        verb = "would invoke" if summary.mode == "remote" else "would process"
        rows.append((verb, str(summary.would)))
        for recognizer, n in sorted(summary.would_recognizers.items()):
            rows.append((f"  with {recognizer}", str(n)))
        if summary.mode == "local":
            rows.append(("billed vendor calls, at least", str(cost_of(summary).billed_calls)))
    elif summary.mode == "remote":
        rows.append(("invoked", f"{summary.invoked} documents in {summary.invocations} invocations"))
        if summary.invoke_rate is not None:
            rows.append(("invocation rate", f"{summary.invoke_rate:.2f}/s"))
    else:
        processed = sum(summary.statuses.values())
        detail = ", ".join(f"{n} {status}" for status, n in sorted(summary.statuses.items()))
        rows.append(("processed", f"{processed}" + (f" ({detail})" if detail else "")))
    for code, n in sorted(summary.retries.items()):
        rows.append((f"retried after {code}", str(n)))
    rows.append(("failed", str(len(summary.failed))))
    rows.append(("seconds", f"{summary.elapsed:.1f}"))
    return rows


# ------------------------------------------------------------------------------------------ the command
def add_arguments(p: Any) -> None:
    p.add_argument("target", metavar="oss://bucket/prefix",
                   help="the objects to backfill (no prefix: the whole bucket)")
    p.add_argument("--remote", action="store_true",
                   help="invoke the deployed function asynchronously instead of recognizing here")
    p.add_argument("--fc-version", type=int, choices=(2, 3), default=DEFAULT_FC_VERSION,
                   help="--remote: the function's Function Compute version (default 3: alibabacloud-fc20230330; "
                        "2: aliyun-fc2)")
    p.add_argument("--region", help="the bucket's region, which is the function's, e.g. cn-shanghai (needed for OSS)")
    p.add_argument("--workers", type=int, default=4, help="objects checked or processed at once (default 4)")
    p.add_argument("--qps", type=float,
                   help=f"--remote: invocations a second (default {DEFAULT_QPS:g}); locally: a cap on every "
                        "recognizer's rate (each vendor's own quota applies anyway)")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                   help=f"--remote: OSS records per invocation (default {DEFAULT_BATCH}, at most {MAX_BATCH})")
    p.add_argument("--account-id",
                   help="--remote: your account ID, for the FC endpoint (default: ALIBABA_CLOUD_ACCOUNT_ID)")
    p.add_argument("--service", default=DEFAULT_SERVICE,
                   help=f"--remote --fc-version 2: FC service (default {DEFAULT_SERVICE})")
    p.add_argument("--function",
                   help=f"--remote: FC function (default {DEFAULT_FUNCTION_FC3}; FC 2.0: {DEFAULT_FUNCTION})")
    p.add_argument("--qualifier", help="--remote: version or alias to invoke (default: LATEST)")
    p.add_argument("--checkpoint",
                   help=f"checkpoint file (default: one per bucket and prefix under ./{CHECKPOINT_DIR}/)")
    p.add_argument("--restart", action="store_true",
                   help="forget the checkpoint and list from the start (objects with a final result are still skipped)")
    p.add_argument("--dry-run", action="store_true",
                   help="list and check, and say what would be done: nothing is invoked, processed or written")
    p.add_argument("--force", action="store_true",
                   help="recognize again even documents with a final result (here only); a first pass lists the "
                        "prefix and says how many billed calls that costs")


def command(args: Any, out: Any = None) -> int:
    """``fcocr backfill``: 0 when everything listed was dispatched, 1 when some keys failed (a re-run retries
    them), 2 when FC or OSS refused the run, 130 when interrupted."""
    from .console import Progress, print_table

    out = out or sys.stdout
    target = parse_target(args.target)
    application = App.from_env()
    settings = application.settings
    credentials = None if settings.local_root else credentials_from(None)
    invoker, endpoint = None, ""
    fc3 = getattr(args, "fc_version", DEFAULT_FC_VERSION) == 3
    function = args.function or (DEFAULT_FUNCTION_FC3 if fc3 else DEFAULT_FUNCTION)
    if args.remote:
        endpoint = fc_endpoint(args.region, args.account_id)
        if not args.dry_run and fc3:
            from .fc3_invoker import Fc3Invoker

            invoker = Fc3Invoker(endpoint, credentials, function, args.qualifier)
        elif not args.dry_run:
            invoker = FcInvoker(endpoint, credentials, args.service, function, args.qualifier)
    progress = Progress(None)
    force = bool(getattr(args, "force", False))
    common = dict(remote=args.remote, region=args.region or "", workers=args.workers, qps=args.qps,
                  batch=args.batch, checkpoint=Path(args.checkpoint) if args.checkpoint else None,
                  restart=args.restart, credentials=credentials, force=force)
    if force and not args.dry_run:  # the cost first: a dry pass over the same listing
        counted = Backfill(target, application, dry_run=True, **common).run()
        print(f"--force: {counted.would} documents to recognize again or for the first time: at least "
              f"{cost_of(counted).billed_calls} billed vendor calls", file=out)
    runner = Backfill(target, application, invoker=invoker, dry_run=args.dry_run, progress=progress, **common)
    if args.remote:
        name = invoker.name if invoker else (function if fc3 else f"{args.service}/{function}")
        how = (f"{name} at {endpoint}, asynchronously: {args.batch} records an invocation, "
               f"{runner.qps:g} invocations a second")
    else:
        how = f"here, {args.workers} at once, each recognizer at its vendor's quota" + (
            f" (at most {args.qps:g}/s)" if args.qps else "")
    print(f"backfill {target.url} -> {how}" + ("  [dry run: nothing is invoked or written]" if args.dry_run else ""),
          file=out)
    checkpoint = runner.checkpoint
    if checkpoint.complete and not args.dry_run:
        print(f"already complete (checkpoint {checkpoint.path}); pass --restart to list the prefix again", file=out)
        return 0
    if checkpoint.after or checkpoint.retry:
        retry = f", {len(checkpoint.retry)} failed keys first" if checkpoint.retry else ""
        print(f"resuming after {checkpoint.after!r}{retry} (checkpoint {checkpoint.path})", file=out)
    summary = runner.run()
    if progress.tty and progress.done:
        progress.stream.write("\n")
    print("", file=out)
    print_table(summary_rows(summary), out)
    if summary.dry_run:
        if summary.mode == "remote" and summary.would:
            invocations = math.ceil(summary.would / args.batch)
            print(f"\nwould send {invocations} invocations, about {invocations / runner.qps:.0f} s at "
                  f"{runner.qps:g}/s", file=out)
        if summary.samples:
            print("first: " + ", ".join(summary.samples), file=out)
    for key, why in list(summary.failed_documents.items())[:20]:
        print(f"failed result: {key}  {why[:100]}", file=out)
    if summary.fatal:  # one cause for every key not done: say it once
        print(f"stopped: {summary.fatal}" + (f"\n{len(summary.failed)} keys not done" if summary.failed else ""),
              file=out)
    else:
        for key, why in sorted(summary.failed.items())[:20]:
            print(f"not done: {key}  {why[:100]}", file=out)
        if len(summary.failed) > 20:
            print(f"... and {len(summary.failed) - 20} more not done", file=out)
    if not args.dry_run:
        state = "complete" if summary.complete else "run the same command again to continue"
        print(f"checkpoint {checkpoint.path}: {state}", file=out)
    if summary.interrupted:
        return 130
    if summary.fatal:
        return 2
    return 1 if summary.failed else 0
