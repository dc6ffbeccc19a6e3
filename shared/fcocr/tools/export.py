"""``fcocr export PATH|oss://bucket/prefix --format csv|xlsx|jsonl [--type T]``: a batch's results as a table.

One row per result document -- or, when a result holds several documents (``documents[]``, one image with two
invoices), one row per document -- with: the source (bucket, key, ETag), the document's index in the image,
status, documentType, error code, checks, and its normalized fields, one column each (nested values such as an
invoice's items as JSON). Results are exported as stored: masked fields stay masked.

PATH is a directory (searched for ``*<FCOCR_RESULT_SUFFIX>``) or one result file; ``oss://bucket/prefix`` lists
the prefix (``--region``; credentials from ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET/_SECURITY_TOKEN). A progress line
goes to stderr while results are read.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..config import Settings
from ..errors import ConfigError, FcocrError
from ..model import OssLocation
from ..results import MAX_RESULT_BYTES
from ..runtime import Runtime, credentials_from
from ..storage import RESERVED_PREFIXES, open_storage
from .console import Progress

FORMATS = ("csv", "xlsx", "jsonl")
# The columns every row has, before the fields'.
FIXED_COLUMNS = ("bucket", "key", "etag", "document", "status", "documentType", "errorCode", "checks")
# A spreadsheet takes a cell starting with one of these as a formula: such text is written so it stays text.
_FORMULA_START = ("=", "+", "@")


def rows_of(doc: Any, *, document_type: str | None = None) -> list[dict[str, Any]]:
    """The rows of one result document (none for what is not one, or not of ``document_type``)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("status"), str):
        return []
    source = doc.get("source") if isinstance(doc.get("source"), dict) else {}
    base = {"bucket": source.get("bucket"), "key": source.get("key"), "etag": source.get("etag"),
            "status": doc["status"], "errorCode": (doc.get("error") or {}).get("code")}
    documents = doc.get("documents")
    parts = [d for d in documents if isinstance(d, dict)] if isinstance(documents, list) and documents else [doc]
    rows = []
    for index, part in enumerate(parts):
        kind = part.get("documentType", doc.get("documentType"))
        if document_type is not None and kind != document_type:
            continue
        fields = part.get("fields") if isinstance(part.get("fields"), dict) else {}
        row = dict(base, document=index, documentType=kind, checks=part.get("checks"))
        row["fields"] = fields
        rows.append(row)
    return rows


def _cell(value: Any) -> Any:
    """A table cell: text and numbers as they are, anything nested as compact JSON, None as empty."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class Table:
    """Rows collected with the union of their field names as columns, in the order first seen."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.field_names: dict[str, None] = {}

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.rows.append(row)
            for name in row["fields"]:
                self.field_names.setdefault(name, None)

    @property
    def header(self) -> list[str]:
        # A field is its own column, named as in the result (prefixed only if it would clash with a fixed one).
        fields = [f"fields.{name}" if name in FIXED_COLUMNS else name for name in self.field_names]
        return list(FIXED_COLUMNS) + fields

    def records(self) -> Iterator[list[Any]]:
        for row in self.rows:
            yield ([_cell(row.get(c)) for c in FIXED_COLUMNS]
                   + [_cell(row["fields"].get(name)) for name in self.field_names])


def write_csv(table: Table, out: io.TextIOBase) -> None:
    writer = csv.writer(out)
    writer.writerow(table.header)
    for record in table.records():
        writer.writerow(["'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else
                         ("" if v is None else v) for v in record])


def write_xlsx(table: Table, path: Path) -> None:
    try:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
    except ImportError:
        raise ConfigError("--format xlsx needs openpyxl: pip install 'fcocr[tools]'") from None
    book = Workbook(write_only=True)
    sheet = book.create_sheet("fcocr")
    sheet.append(table.header)
    for record in table.records():
        cells = []
        for value in record:
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # text stays text: no formula, and long digit strings keep every digit
            cells.append(cell)
        sheet.append(cells)
    book.save(path)


def write_jsonl(table: Table, out: io.TextIOBase) -> None:
    for row in table.rows:
        out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")


# ------------------------------------------------------------------------------------------ reading
def local_documents(path: Path, suffix: str) -> Iterator[Any]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob(f"*{suffix}") if p.is_file())
    for file in files:
        try:
            yield json.loads(file.read_text("utf-8"))
        except (OSError, ValueError):
            continue


def oss_documents(location: OssLocation, settings: Settings, region: str) -> Iterator[Any]:
    if not settings.oss_endpoint:  # outside Alibaba Cloud the internal endpoint does not resolve
        settings = dataclasses.replace(settings, oss_endpoint=f"https://oss-{region}.aliyuncs.com")
    runtime = Runtime(request_id="export", credentials=credentials_from(None), region=region)
    storage = open_storage(location.bucket, runtime, settings, region)
    for info in storage.list(location.prefix):
        if not info.key.endswith(settings.result_suffix) or info.key.startswith(RESERVED_PREFIXES):
            continue
        try:
            yield json.loads(storage.read(info.key, MAX_RESULT_BYTES))
        except ValueError:
            continue


def export(source: str, fmt: str, *, out_path: str | None = None, document_type: str | None = None,
           region: str = "", settings: Settings | None = None, progress_stream=None, out=None) -> int:
    """Write the table; the number of rows."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}")
    if fmt == "xlsx" and not out_path:
        raise ConfigError("--format xlsx writes a file: give --out FILE.xlsx")
    settings = settings or Settings.from_env(families=())
    if source.startswith("oss://"):
        if not region:
            raise ConfigError("--region is needed for an OSS prefix (the bucket's region, e.g. cn-shanghai)")
        documents = oss_documents(OssLocation.parse(source, what="the export source"), settings, region)
    else:
        path = Path(source)
        if not path.exists():
            raise ConfigError(f"{source}: no such file or directory")
        documents = local_documents(path, settings.result_suffix)
    progress = Progress(None, progress_stream or sys.stderr)
    table = Table()
    for doc in documents:
        table.add(rows_of(doc, document_type=document_type))
        progress.advance()
    if fmt == "xlsx":
        write_xlsx(table, Path(out_path or ""))
    else:
        stream = open(out_path, "w", encoding="utf-8", newline="") if out_path else (out or sys.stdout)
        try:
            (write_csv if fmt == "csv" else write_jsonl)(table, stream)
        finally:
            if out_path:
                stream.close()
    return len(table.rows)


def add_arguments(p: Any) -> None:
    p.add_argument("source", metavar="PATH|oss://bucket/prefix", help="a directory of results, or an OSS prefix")
    p.add_argument("--format", choices=FORMATS, default="csv")
    p.add_argument("--type", dest="document_type", help="only documents of this documentType (e.g. vat_invoice)")
    p.add_argument("--out", "-o", help="the file to write (default: stdout; required for xlsx)")
    p.add_argument("--region", default="", help="the bucket's region, for an oss:// source")


def command(args: Any) -> int:
    try:
        rows = export(args.source, args.format, out_path=args.out, document_type=args.document_type,
                      region=args.region)
    except FcocrError as exc:
        print(f"fcocr export: {exc.message}", file=sys.stderr)
        return 2
    print(f"{rows} rows", file=sys.stderr)
    return 0


__all__: Sequence[str] = ("export", "rows_of", "Table", "add_arguments", "command")
