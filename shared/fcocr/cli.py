"""The ``fcocr`` command: run the real handlers on a laptop, against a local directory.

    fcocr process PATH...            recognize files (or every document under directories); results land beside them
    fcocr demo [--out DIR]           copy the shipped samples to DIR and process them (local.auto), then show them
    fcocr show PATH... [--out DIR]   draw each result over its page, one PNG per page, into DIR (./fcocr-show)
    fcocr invoke ocr-upload --event FILE [--root DIR]
                                     run functions/ocr_upload's handler on a console test event
    fcocr invoke scan-callback --event FILE
                                     run functions/scan_callback's handler on an FC 3.0 HTTP event (events/green-*)
    fcocr invoke scan-reconcile [--event FILE]
                                     run functions/scan_reconcile's handler once (events/timer-reconcile.json)
    fcocr serve callback [--port N]  the callback function on a loopback HTTP server (what Content Security POSTs to)
    fcocr backfill oss://bucket/prefix [--remote]
                                     the documents already in a bucket: recognized here, or by invoking the deployed function
    fcocr check                      validate the environment and routes, as a cold start would
    fcocr package [--routes SPEC]    build build/<function>.zip (fcocr + runtime dependencies) for Function Compute
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

from .errors import FcocrError
from .events import oss_event
from .pipeline import App, Report, handle_oss_event
from .results import is_result_key
from .routing import Router
from .runtime import LocalContext

# The documents a directory is searched for (any case): the suffixes an upload trigger is meant to
# cover. A file named on the command line is processed whatever its suffix.
DOCUMENT_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pdf")
# The demo also places one sample under this key, so events/oss-chinese-key.json has something to read.
DEMO_ODD_KEY = "发票 样本/2026年11月 报销+差旅/增值税 发票.png"


class Progress:
    """A one-line progress bar on a terminal (rate, ETA); sparse plain lines otherwise.

    ``total`` may be None until it is known (backfill counts while it works): no ETA until then.
    """

    def __init__(self, total: int | None, stream=None) -> None:
        self.total, self.done, self.stream = total, 0, stream or sys.stderr
        self.started = time.monotonic()
        self.tty = self.stream.isatty()
        self._last_plain = -1

    def advance(self, n: int = 1) -> None:
        self.done += n
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        total = self.total if self.total is not None else 0
        eta = f"ETA {max(total - self.done, 0) / rate:.0f}s" if self.total is not None and rate else "ETA ?"
        shown = f"{self.done}/{self.total if self.total is not None else '?'}"
        if self.tty:
            width = 28
            filled = int(width * min(self.done, total) / max(total, 1))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {shown} {rate:.2f}/s {eta} ")
            if self.done == self.total:
                self.stream.write("\n")
        else:
            # Each tenth of a known total; every 10 seconds while the total is unknown.
            step = 10 * self.done // max(total, 1) if self.total is not None else int(elapsed // 10) - 1
            if step != self._last_plain or self.done == self.total:
                self._last_plain = step
                self.stream.write(f"progress {shown} {rate:.2f}/s {eta}\n")
        self.stream.flush()


@dataclasses.dataclass(frozen=True)
class LocalUpload:
    root: Path
    bucket: str
    key: str

    @property
    def path(self) -> Path:
        return self.root / self.bucket / self.key


def collect(paths: Iterable[str], suffix: str) -> list[LocalUpload]:
    """Each file becomes an upload into a local bucket: a directory argument is the bucket, its files the keys."""
    uploads: list[LocalUpload] = []
    for raw in paths:
        path = Path(raw).resolve()
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                name = file.name
                if (name.lower().endswith(DOCUMENT_SUFFIXES) and not is_result_key(name, suffix)
                        and not name.startswith(".")):
                    uploads.append(LocalUpload(path.parent, path.name, file.relative_to(path).as_posix()))
        elif path.is_file():
            uploads.append(LocalUpload(path.parent.parent, path.parent.name, path.name))
        else:
            raise SystemExit(f"fcocr: {raw}: no such file or directory")
    return uploads


def _run_one(application: App, upload: LocalUpload) -> Report:
    size = upload.path.stat().st_size
    event = {"events": [oss_event(upload.bucket, upload.key, size=size)]}
    try:
        result = handle_oss_event(json.dumps(event).encode("utf-8"), LocalContext(), application)
        return Report(**result["records"][0])
    except FcocrError as exc:  # a transient fault that FC would retry: report it, go on with the rest
        return Report(upload.bucket, upload.key, "failed", reason=exc.message, error_code=exc.code)


def process_paths(paths: Sequence[str], *, workers: int = 1, recognizer: str | None = None,
                  routes: str | None = None, out=None) -> list[tuple[LocalUpload, Report]]:
    out = out or sys.stdout
    application = App.from_env()
    if routes:
        application = App(application.settings, Router.load(routes))
    if recognizer:
        every_key = {"routes": [{"match": "**", "recognizer": recognizer}]}
        application = App(application.settings, Router.from_data(every_key, "--recognizer"))
    uploads = collect(paths, application.settings.result_suffix)
    if not uploads:
        print("fcocr: nothing to process (directories are searched for " + " ".join(DOCUMENT_SUFFIXES) + ")", file=out)
        return []
    workers = max(1, workers)
    threads = application.settings.ocr_threads
    if threads == 0 and workers > 1:  # give each worker its share of the cores
        threads = max(1, (os.cpu_count() or 1) // workers)
    progress = Progress(len(uploads))
    done: list[tuple[LocalUpload, Report]] = []

    def run(upload: LocalUpload) -> tuple[LocalUpload, Report]:
        settings = dataclasses.replace(application.settings, local_root=str(upload.root), ocr_threads=threads)
        report = _run_one(App(settings, application.router), upload)
        return upload, report

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for item in pool.map(run, uploads):
            done.append(item)
            progress.advance()
    except KeyboardInterrupt:
        # Drop the queued documents, let the ones in flight finish (their results are written, not
        # torn), and say how to resume: a re-run skips whatever already has a final result.
        print("\ninterrupted: finishing the documents in flight...", file=sys.stderr)
        pool.shutdown(wait=True, cancel_futures=True)
        print_summary(done, out)
        print(f"interrupted after {len(done)} of {len(uploads)}; run the same command again to finish", file=out)
        raise
    pool.shutdown()
    print_summary(done, out)
    return done


def _width(text: str) -> int:
    """Columns a string takes in a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def print_table(rows: Sequence[Sequence[str]], out=None) -> None:
    """Columns aligned for a terminal (CJK characters take two); the last one is left ragged."""
    out = out or sys.stdout
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c + " " * (w - _width(c)) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1], file=out)


def print_summary(done: list[tuple[LocalUpload, Report]], out=None) -> None:
    out = out or sys.stdout
    rows = [("document", "status", "recognizer", "lines", "seconds", "note")]
    counts: dict[str, int] = {}
    for upload, report in done:
        counts[report.status] = counts.get(report.status, 0) + 1
        lines = ""
        if report.result_key and report.status == "succeeded":
            try:
                doc = json.loads((upload.root / upload.bucket / report.result_key).read_text("utf-8"))
                lines = str(len(doc.get("lines") or []))
            except (OSError, ValueError):
                lines = "?"
        note = f"{report.error_code}: {report.reason}" if report.error_code else report.reason
        rows.append((f"{upload.bucket}/{upload.key}", report.status, report.recognizer or "-", lines,
                     f"{report.duration_ms / 1000:.2f}", note[:80]))
    print_table(rows, out)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"\n{len(done)} documents: {summary}", file=out)


def cmd_process(args: argparse.Namespace) -> int:
    done = process_paths(args.paths, workers=args.workers, recognizer=args.recognizer, routes=args.routes)
    return 1 if any(r.status == "failed" for _, r in done) and args.strict else 0


def cmd_demo(args: argparse.Namespace) -> int:
    out_dir = Path(args.out).resolve() / "samples"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    samples = resources.files("fcocr").joinpath("samples")
    for entry in samples.iterdir():
        if entry.name.lower().endswith(DOCUMENT_SUFFIXES):
            (out_dir / entry.name).write_bytes(entry.read_bytes())
    odd = out_dir / DEMO_ODD_KEY
    odd.parent.mkdir(parents=True)
    odd.write_bytes(samples.joinpath("vat_invoice.png").read_bytes())
    print(f"fcocr demo: the real ocr_upload handler, offline, over the samples copied to {out_dir}\n")
    done = process_paths([str(out_dir)], workers=args.workers, recognizer=args.recognizer)
    for upload, report in done:
        if report.status != "succeeded" or not report.result_key:
            continue
        doc = json.loads((upload.root / upload.bucket / report.result_key).read_text("utf-8"))
        print(f"\n== {report.result_key}  ({len(doc['lines'])} lines, {doc['durationMs']} ms)")
        for line in doc["lines"][: args.lines]:
            print(f"  {line['confidence']:6.2f}  {line['text']}")
        if len(doc["lines"]) > args.lines:
            print(f"  ... {len(doc['lines']) - args.lines} more lines in the file")
        if doc.get("documentType"):
            read = sum(value not in (None, []) for value in doc["fields"].values())
            failed = [f"{c['field']} {c['rule']}" for c in doc["checks"] if not c["ok"]]
            print(f"  {doc['documentType']}: {read} of {len(doc['fields'])} fields read; "
                  f"checks failed: {', '.join(failed) or 'none'}")
    from .config import Settings
    from .show import show

    pictures = show([str(out_dir)], str(Path(args.out).resolve() / "show"), Settings.from_env().result_suffix)
    print(f"\nfcocr demo: {len(pictures)} pictures of the results (fcocr show) in {Path(args.out).resolve() / 'show'}")
    failed = [r for _, r in done if r.status != "succeeded"]
    return 1 if failed else 0


INVOKABLE = ("ocr-upload", "scan-callback", "scan-reconcile")


def cmd_invoke(args: argparse.Namespace) -> int:
    if args.function not in INVOKABLE:
        raise SystemExit(f"fcocr: unknown function {args.function!r} (available: {', '.join(INVOKABLE)})")
    if args.root:
        os.environ["FCOCR_LOCAL_ROOT"] = str(Path(args.root).resolve())
    if args.function == "scan-reconcile":
        from .reconcile import handle_timer_event

        event = Path(args.event).read_bytes() if args.event else b"{}"
        print(json.dumps(handle_timer_event(event, LocalContext()), ensure_ascii=False, indent=2))
        return 0
    if not args.event:
        raise SystemExit(f"fcocr invoke {args.function}: --event FILE is required")
    if args.function == "scan-callback":
        from .callback import handle_fc3_event

        answer = handle_fc3_event(Path(args.event).read_bytes(), LocalContext())
        print(f"HTTP {answer['statusCode']}: {json.loads(answer['body'])['reason']}")
        return 0
    if not os.environ.get("FCOCR_LOCAL_ROOT"):
        raise SystemExit("fcocr invoke: set FCOCR_LOCAL_ROOT or pass --root DIR (bucket B is DIR/B)")
    event = Path(args.event).read_bytes()
    application = App.from_env()
    try:
        result = handle_oss_event(event, LocalContext(), application)
    except FcocrError as exc:
        print(f"handler raised {exc.code}: {exc.message} (FC would retry this invocation)", file=sys.stderr)
        return 2
    root = Path(application.settings.local_root or ".")
    for record in result["records"]:
        print(f"{record['status']:<9}  {record['bucket']}/{record['key']}  {record.get('reason', '')}".rstrip())
        if record.get("result_key"):
            path = root / record["bucket"] / record["result_key"]
            print(f"  wrote {path}")
            if args.show:
                print(path.read_text("utf-8"))
    return 0


def callback_server(host: str = "127.0.0.1", port: int = 0):
    """The callback function's WSGI handler on a threaded HTTP server (not started); ``server.url`` is its URL."""
    import socketserver
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from .callback import handle_wsgi

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - fcocr logs every callback itself, as JSON
            pass

    server = make_server(host, port, handle_wsgi, server_class=Server, handler_class=Quiet)
    server.url = f"http://{host}:{server.server_address[1]}/"
    return server


def cmd_serve(args: argparse.Namespace) -> int:
    if args.function != "callback":
        raise SystemExit(f"fcocr: unknown server {args.function!r} (available: callback)")
    from .config import Settings

    Settings.from_env()  # a bad GREEN_* setting stops here, not at the first callback
    server = callback_server(args.host, args.port)
    print(f"fcocr: scan_callback listening on {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from .backfill import command

    return command(args)


def cmd_package(args: argparse.Namespace) -> int:
    from .package import run_cli

    return run_cli(args)


def cmd_check(args: argparse.Namespace) -> int:
    application = App.from_env()
    print(f"settings ok; {len(application.router.routes)} routes from {application.router.source}:")
    for route in application.router.routes:
        print(f"  {route.match:<30} -> {route.recognizer} {json.dumps(route.options, ensure_ascii=False)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fcocr", description="Serverless OCR for Alibaba Cloud Function Compute.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("process", help="recognize local files; results land beside them")
    p.add_argument("paths", nargs="+", help="files, or directories (searched for documents)")
    p.add_argument("--workers", type=int, default=1, help="documents in parallel (cores are shared between them)")
    p.add_argument("--recognizer", help="use this recognizer for every file instead of the routes")
    p.add_argument("--routes", help="routes file or inline JSON (default: FCOCR_ROUTES, else the shipped routes.yml)")
    p.add_argument("--strict", action="store_true", help="exit 1 if any document failed")
    p.set_defaults(func=cmd_process)

    p = sub.add_parser("demo", help="process the shipped sample documents, offline")
    p.add_argument("--out", default="demo-out", help="where to copy the samples (default ./demo-out)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--lines", type=int, default=12, help="lines to show per document")
    p.add_argument("--recognizer", default="local.auto",
                   help="recognizer for every sample (default local.auto: fields where a page is a known document)")
    p.set_defaults(func=cmd_demo)

    from .show import add_arguments as add_show_arguments, cmd_show

    p = sub.add_parser("show", help="draw each result over its page (boxes, text, fields, failed checks) into PNGs")
    add_show_arguments(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("invoke", help="run a function's real handler on a console test event")
    p.add_argument("function", help=", ".join(INVOKABLE))
    p.add_argument("--event", help="event JSON file (see events/); optional for scan-reconcile")
    p.add_argument("--root", help="local bucket root (default: FCOCR_LOCAL_ROOT)")
    p.add_argument("--show", action="store_true", help="print each result document")
    p.set_defaults(func=cmd_invoke)

    p = sub.add_parser("serve", help="run a function on a loopback HTTP server")
    p.add_argument("function", help="callback")
    p.add_argument("--port", type=int, default=9000, help="port (default 9000; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.set_defaults(func=cmd_serve)

    from .backfill import add_arguments

    p = sub.add_parser("backfill", help="recognize the documents already under an OSS prefix, here or by invoking "
                                        "the deployed function")
    add_arguments(p)
    p.set_defaults(func=cmd_backfill)

    from .package import BUDGET_MB, PROVIDERS

    p = sub.add_parser("package", help="build the deployable zips of the FC functions (build/<function>.zip)")
    p.add_argument("--out", default="build", help="output directory (default ./build, template.yml's CodeUri)")
    p.add_argument("--routes", help="routes file or inline JSON deciding which vendor SDKs go in "
                                    "(default: FCOCR_ROUTES, else the shipped routes.yml)")
    p.add_argument("--with", dest="providers", action="append", default=[], choices=PROVIDERS,
                   help="also package this recognizer family (for uploads that pick it by metadata); repeatable")
    p.add_argument("--plan", action="store_true", help="print the families and requirements; build nothing")
    p.add_argument("--verify", metavar="PYTHON", help="a CPython 3.10 to import every handler and SDK from each zip with")
    p.add_argument("--code-bucket", help="also write OUT/template.yml with CodeUri oss://BUCKET/PREFIX... (for ROS)")
    p.add_argument("--code-prefix", default="fcocr-code/", help="object prefix of the zips (default fcocr-code/)")
    p.add_argument("--budget-mb", type=float, default=BUDGET_MB, help="size budget per zip (default %(default)s MB)")
    p.add_argument("--strict", action="store_true", help="exit 1 if a zip is over the budget")
    p.set_defaults(func=cmd_package)

    p = sub.add_parser("check", help="validate settings and routes as a cold start would")
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in {"process", "demo", "backfill"}:
        # The summary table says what the per-document log lines would; keep the terminal readable.
        os.environ.setdefault("FCOCR_LOG_LEVEL", "ERROR")
    try:
        return args.func(args)
    except FcocrError as exc:
        print(f"fcocr: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
