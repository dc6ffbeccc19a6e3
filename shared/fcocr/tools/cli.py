"""The ``fcocr`` command: run the real handlers on a laptop, against a local directory.

    fcocr process PATH... [--force] [--dry-run]
                                     recognize files (or every document under directories); results land beside them
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
    fcocr export PATH|oss://bucket/prefix --format csv|xlsx|jsonl [--type T] [--out FILE]
                                     the results as one table: a row per document, its fields, status and checks
    fcocr check                      validate the environment and routes, as a cold start would
    fcocr package [--routes SPEC]    build build/<function>.zip (fcocr + runtime dependencies) for Function Compute
    fcocr deploy-files [--check]     write template.yml, s.yaml and deploy/ from fcocr.deploy (the one declaration)
    fcocr capabilities [--markdown | --write README.md | --check README.md]
                                     every recognizer's input modes, limits, options and fields, from the tables
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import FcocrError, vendor_text
from ..events import Upload
from ..model import DOCUMENT_SUFFIXES
from ..pipeline import App, Report, handle_oss_event, process
from ..results import is_result_key
from ..routing import Router
from ..runtime import LocalContext, Runtime
from .console import Progress, print_table

# The demo also places one sample under this key, so events/oss-chinese-key.json has something to read.
PROCESS_EVENT = "ObjectCreated:PutObject"  # what a local file counts as: an upload
DEMO_ODD_KEY = "发票 样本/2026年11月 报销+差旅/增值税 发票.png"


@dataclasses.dataclass(frozen=True)
class LocalUpload:
    root: Path
    bucket: str
    key: str

    @property
    def path(self) -> Path:
        return self.root / self.bucket / self.key


def collect(paths: Iterable[str], suffix: str, unlisted: list[str] | None = None) -> list[LocalUpload]:
    """Each file becomes an upload into a local bucket: a directory argument is the bucket, its files the keys.
    A directory that cannot be listed is said on stderr (and added to ``unlisted``), never skipped silently."""
    uploads: list[LocalUpload] = []

    def cannot_list(exc: OSError) -> None:
        print(f"fcocr: cannot list {exc.filename}: {exc.strerror or exc}; its documents are not processed",
              file=sys.stderr)
        if unlisted is not None:
            unlisted.append(str(exc.filename))

    for raw in paths:
        path = Path(raw).resolve()
        if path.is_dir():
            files = [Path(d) / f for d, _, names in os.walk(path, onerror=cannot_list) for f in names]
            for file in sorted(p for p in files if p.is_file()):
                name = file.name
                if (name.lower().endswith(DOCUMENT_SUFFIXES) and not is_result_key(name, suffix)
                        and not name.startswith(".")):
                    uploads.append(LocalUpload(path.parent, path.name, file.relative_to(path).as_posix()))
        elif path.is_file():
            uploads.append(LocalUpload(path.parent.parent, path.parent.name, path.name))
        else:
            raise SystemExit(f"fcocr: {raw}: no such file or directory")
    return uploads


def _run_one(application: App, upload: LocalUpload, force: bool = False) -> Report:
    record = Upload(PROCESS_EVENT, upload.bucket, upload.key)
    try:  # the upload function's own entry, as FC would call it for this record
        return process(record, Runtime.from_context(LocalContext()), application, force=force)
    except FcocrError as exc:  # a transient fault that FC would retry (a result it could not write): go on
        return Report(upload.bucket, upload.key, "failed", reason=exc.message, error_code=exc.code)
    except Exception as exc:  # noqa: BLE001 - a bug on one document must not end the run over the others
        return Report(upload.bucket, upload.key, "failed", reason=f"unexpected {type(exc).__name__}: "
                      f"{vendor_text(exc)}", error_code="InternalError")


def estimate(application: App, uploads: Sequence[LocalUpload], force: bool):
    """What processing ``uploads`` will recognize and cost (tools.reprocess)."""
    from ..results import ResultWriter
    from ..storage import LocalStorage
    from .reprocess import Cost, route_of, would_recognize

    cost = Cost()
    for upload in uploads:
        storage = LocalStorage(str(upload.root), upload.bucket)
        try:
            info = storage.head(upload.key)
        except FcocrError:
            continue
        recognize, final = would_recognize(ResultWriter(storage, application.settings.result_suffix), info,
                                           force=force)
        if recognize:
            cost.add(route_of(application.router, info), again=final)
    return cost


def process_paths(paths: Sequence[str], *, workers: int = 1, recognizer: str | None = None,
                  routes: str | None = None, out=None, force: bool = False,
                  dry_run: bool = False, unlisted: list[str] | None = None) -> list[tuple[LocalUpload, Report]]:
    out = out or sys.stdout
    if workers < 1:
        raise SystemExit(f"fcocr: --workers {workers}: must be at least 1")
    application = App.from_env()
    if routes:
        application = App(application.settings, Router.load(routes))
    if recognizer:
        every_key = {"routes": [{"match": "**", "recognizer": recognizer}]}
        application = App(application.settings, Router.from_data(every_key, "--recognizer"))
    uploads = collect(paths, application.settings.result_suffix, unlisted)
    if not uploads:
        print("fcocr: nothing to process (directories are searched for " + " ".join(DOCUMENT_SUFFIXES) + ")", file=out)
        return []
    if force or dry_run:  # say what it costs before the first call
        print(("dry run: " if dry_run else "") + estimate(application, uploads, force).describe(), file=out)
        if dry_run:
            return []
    threads = application.settings.family("local").ocr_threads
    if threads == 0 and workers > 1:  # give each worker its share of the cores
        threads = max(1, (os.cpu_count() or 1) // workers)
    progress = Progress(len(uploads))
    done: list[tuple[LocalUpload, Report]] = []

    def run(upload: LocalUpload) -> tuple[LocalUpload, Report]:
        settings = dataclasses.replace(application.settings.with_family("local", ocr_threads=threads),
                                       local_root=str(upload.root))
        report = _run_one(App(settings, application.router), upload, force)
        return upload, report

    pool = ThreadPoolExecutor(max_workers=workers)
    futures = [pool.submit(run, upload) for upload in uploads]
    order = {id(upload): i for i, upload in enumerate(uploads)}
    try:
        for future in as_completed(futures):
            done.append(future.result())
            progress.advance()
    except KeyboardInterrupt:
        # Drop the queued documents, let the ones in flight finish (their results are written, not
        # torn), and say how to resume: a re-run skips whatever already has a final result.
        print("\ninterrupted: finishing the documents in flight...", file=sys.stderr)
        pool.shutdown(wait=True, cancel_futures=True)
        counted = {id(item[0]) for item in done}
        # What finished while we were interrupted counts too: its result is written.
        done.extend(f.result() for f in futures if f.done() and not f.cancelled() and f.exception() is None
                    and id(f.result()[0]) not in counted)
        done.sort(key=lambda item: order[id(item[0])])
        print_summary(done, out)
        print(f"interrupted after {len(done)} of {len(uploads)}; run the same command again to finish", file=out)
        raise
    pool.shutdown()
    done.sort(key=lambda item: order[id(item[0])])  # the table in the order the documents were given
    print_summary(done, out)
    return done


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
    unlisted: list[str] = []
    done = process_paths(args.paths, workers=args.workers, recognizer=args.recognizer, routes=args.routes,
                         force=args.force, dry_run=args.dry_run, unlisted=unlisted)
    return 1 if (unlisted or any(r.status == "failed" for _, r in done)) and args.strict else 0


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
    from ..config import Settings
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
        from ..reconcile import handle_timer_event

        event = read_event(args.event) if args.event else b"{}"
        print(json.dumps(handle_timer_event(event, LocalContext()), ensure_ascii=False, indent=2))
        return 0
    if not args.event:
        raise SystemExit(f"fcocr invoke {args.function}: --event FILE is required")
    if args.function == "scan-callback":
        from ..recognizers.green.callback import handle_fc3_event

        answer = handle_fc3_event(read_event(args.event), LocalContext())
        print(f"HTTP {answer['statusCode']}: {json.loads(answer['body'])['reason']}")
        return 0 if 200 <= int(answer["statusCode"]) < 300 else 1  # what the service would see as a failure
    if not os.environ.get("FCOCR_LOCAL_ROOT"):
        raise SystemExit("fcocr invoke: set FCOCR_LOCAL_ROOT or pass --root DIR (bucket B is DIR/B)")
    event = read_event(args.event)
    application = App.from_env()
    try:
        result = handle_oss_event(event, LocalContext(), application)
    except FcocrError as exc:
        print(f"handler raised {exc.code}: {exc.message} (FC would retry this invocation)", file=sys.stderr)
        return 2
    root = Path(application.settings.local_root or ".")
    for record in result["records"]:
        where = f"{record.get('bucket', '')}/{record.get('key', '')}" if record.get("key") else "(malformed record)"
        print(f"{record['status']:<9}  {where}  {record.get('reason', '')}".rstrip())
        if record.get("result_key"):
            path = root / record["bucket"] / record["result_key"]
            print(f"  wrote {path}")
            if args.show:
                print(path.read_text("utf-8"))
    return 0


def read_event(path: str) -> bytes:
    """An --event file's bytes; a missing, unreadable or directory path is a plain message, not a traceback."""
    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise SystemExit(f"fcocr: --event {path}: is a directory, not an event file") from None
    except OSError as exc:
        raise SystemExit(f"fcocr: --event {path}: {exc.strerror or exc}") from None


# A client that stops sending mid-request is cut off after this long, so it cannot hold a thread forever.
READ_TIMEOUT_SECONDS = 30.0


def callback_server(host: str = "127.0.0.1", port: int = 0, read_timeout: float = READ_TIMEOUT_SECONDS):
    """The callback function's WSGI handler on a threaded HTTP server (not started); ``server.url`` is its URL."""
    import socketserver
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from ..recognizers.green.callback import handle_wsgi

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        timeout = read_timeout  # every read and write of the connection: a stalled client is dropped

        def log_message(self, format, *args):  # noqa: A002 - fcocr logs every callback itself, as JSON
            pass

    try:
        server = make_server(host, port, handle_wsgi, server_class=Server, handler_class=Quiet)
    except OverflowError:
        raise SystemExit(f"fcocr: port {port} is out of range (0-65535)") from None
    except OSError as exc:
        raise SystemExit(f"fcocr: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    server.url = f"http://{host}:{server.server_address[1]}/"
    return server


def cmd_serve(args: argparse.Namespace) -> int:
    if args.function != "callback":
        raise SystemExit(f"fcocr: unknown server {args.function!r} (available: callback)")
    from ..config import Settings

    Settings.from_env(families=("green",))  # a bad GREEN_* setting stops here, not at the first callback
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


def cmd_deploy_files(args: argparse.Namespace) -> int:
    from .deploy_files import run_cli

    return run_cli(args)


def cmd_check(args: argparse.Namespace) -> int:
    application = App.from_env()
    print(f"settings ok; {len(application.router.routes)} routes from {application.router.source}:")
    for route in application.router.routes:
        print(f"  {route.match:<30} -> {route.recognizer} {json.dumps(route.options, ensure_ascii=False)}")
    return 0


def at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is out of range (0-65535)")
    return value


def cmd_capabilities(args: argparse.Namespace) -> int:
    from .capabilities import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fcocr", description="Serverless OCR for Alibaba Cloud Function Compute.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("process", help="recognize local files; results land beside them")
    p.add_argument("paths", nargs="+", help="files, or directories (searched for documents)")
    p.add_argument("--workers", type=at_least_one, default=1, help="documents in parallel (cores are shared between them)")
    p.add_argument("--recognizer", help="use this recognizer for every file instead of the routes")
    p.add_argument("--routes", help="routes file or inline JSON (default: FCOCR_ROUTES, else the shipped routes.yml)")
    p.add_argument("--strict", action="store_true", help="exit 1 if any document failed")
    p.add_argument("--force", action="store_true",
                   help="recognize again even when a final result exists (says how many billed calls first)")
    p.add_argument("--dry-run", action="store_true", help="say what would be recognized and billed; do nothing")
    p.set_defaults(func=cmd_process)

    p = sub.add_parser("demo", help="process the shipped sample documents, offline")
    p.add_argument("--out", default="demo-out", help="where to copy the samples (default ./demo-out)")
    p.add_argument("--workers", type=at_least_one, default=1)
    p.add_argument("--lines", type=int, default=12, help="lines to show per document")
    p.add_argument("--recognizer", default="local.auto",
                   help="recognizer for every sample (default local.auto: fields where a page is a known document)")
    p.set_defaults(func=cmd_demo)

    from .show import add_arguments as add_show_arguments
    from .show import cmd_show

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
    p.add_argument("--port", type=port_number, default=9000, help="port (default 9000; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.set_defaults(func=cmd_serve)

    from .backfill import add_arguments

    p = sub.add_parser("backfill", help="recognize the documents already under an OSS prefix, here or by invoking "
                                        "the deployed function")
    add_arguments(p)
    p.set_defaults(func=cmd_backfill)

    from ..recognizers import FAMILY_MODULES
    from . import export
    from .package import BUDGET_MB

    p = sub.add_parser("export", help="the results under a directory or an OSS prefix as one table (csv, xlsx, jsonl)")
    export.add_arguments(p)
    p.set_defaults(func=export.command)

    p = sub.add_parser("package", help="build the deployable zips of the FC functions (build/<function>.zip)")
    p.add_argument("--out", default="build", help="output directory (default ./build, template.yml's CodeUri)")
    p.add_argument("--routes", help="routes file or inline JSON deciding which vendor SDKs go in "
                                    "(default: FCOCR_ROUTES, else the shipped routes.yml)")
    p.add_argument("--with", dest="providers", action="append", default=[], choices=tuple(FAMILY_MODULES),
                   help="also package this recognizer family (for uploads that pick it by metadata); repeatable")
    p.add_argument("--plan", action="store_true", help="print the families and requirements; build nothing")
    from .deploy import DEFAULT_RUNTIME, FC3_RUNTIMES

    p.add_argument("--runtime", choices=FC3_RUNTIMES, default=DEFAULT_RUNTIME,
                   help="FC's Python runtime to build for: what it ships stays out of the zips (default %(default)s)")
    p.add_argument("--verify", metavar="PYTHON", help="a CPython of the runtime's version to import every handler and "
                                                      "SDK from each zip with, and call each handler as FC would")
    p.add_argument("--code-bucket", help="also write OUT/template.yml with code on oss://BUCKET/PREFIX... (for ROS)")
    p.add_argument("--code-prefix", default="fcocr-code/", help="object prefix of the zips (default fcocr-code/)")
    p.add_argument("--budget-mb", type=float, default=BUDGET_MB, help="size budget per zip (default %(default)s MB)")
    p.add_argument("--strict", action="store_true", help="exit 1 if a zip is over the budget")
    p.set_defaults(func=cmd_package)

    from .deploy_files import add_arguments as add_deploy_files_arguments

    p = sub.add_parser("deploy-files", help="write template.yml, s.yaml and deploy/ from the functions' declaration")
    add_deploy_files_arguments(p)
    p.set_defaults(func=cmd_deploy_files)

    from .capabilities import add_arguments as add_capabilities_arguments

    p = sub.add_parser("capabilities", help="every recognizer's input modes, limits, options and normalized fields")
    add_capabilities_arguments(p)
    p.set_defaults(func=cmd_capabilities)

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
