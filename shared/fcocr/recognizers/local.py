"""``local.text``: the embedded offline engine (RapidOCR 3.10 on onnxruntime or OpenVINO: FCOCR_ENGINE).

How a page is read with the engine's models is ``local_engine``'s business.

Only the default small models shipped inside the rapidocr wheel are used: any other model
choice makes rapidocr download at start, which fails on a machine without internet (and
would on FC without a NAT). The engine loads once per process and is reused; several
threads may share it (onnxruntime sessions are thread-safe), each call pinned to the
configured intra-op thread count.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping

from .. import logs
from ..config import env_choice, env_int
from ..errors import ConfigError, PermanentError
from ..model import IMAGE_FORMATS, Capability, Limits, Line, OptionSpec, Outcome
from . import Job, Packaging, local_fields

ENGINE_NAME = "rapidocr"


@dataclass(frozen=True)
class LocalSettings:
    ENVIRONMENT = {
        "FCOCR_OCR_THREADS": "Intra-op threads of the offline engine per process (default 0 = all cores).",
        "FCOCR_ENGINE": "Inference backend of the offline engine: onnxruntime (default) or openvino "
                        "(pip install 'fcocr[openvino]').",
    }
    ocr_threads: int = 0
    ocr_engine: str = "onnxruntime"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "LocalSettings":
        return cls(ocr_threads=env_int(env, "FCOCR_OCR_THREADS", cls.ocr_threads, 0, 256),
                   ocr_engine=env_choice(env, "FCOCR_ENGINE", ("onnxruntime", "openvino"), cls.ocr_engine))


SETTINGS = LocalSettings

TEXT = Capability(
    id="local.text",
    title="Offline general text recognition (RapidOCR, PP-OCR small models, Chinese + English)",
    limits=Limits(formats=IMAGE_FORMATS | {"pdf"}),
    options={
        "minConfidence": OptionSpec(float, default=50.0, minimum=0, maximum=100,
                                    description="drop lines whose confidence (0–100) is below this"),
    },
    paid=False,
)

# The same engine and options, then normalized fields read from the lines' text and geometry (local_fields).
FIELD_CAPABILITIES = {
    f"local.{document_type}": Capability(id=f"local.{document_type}", title=f"Offline {title} fields from the engine's lines",
                                         limits=TEXT.limits, options=TEXT.options, paid=False, document_type=document_type)
    for document_type, title in (("idcard", "ID card (front or back)"), ("vat_invoice", "VAT invoice"),
                                 ("train_ticket", "train ticket"), ("bank_card", "bank card"),
                                 ("business_license", "business licence"))
}
AUTO = Capability(id="local.auto", title="Offline: fields of an ID card, VAT invoice, train ticket, bank card or "
                                         "business licence, whichever the page is; otherwise lines like local.text",
                  limits=TEXT.limits, options=TEXT.options, paid=False)

_ENGINES: dict[tuple[int, str], Any] = {}
_ENGINES_LOCK = threading.Lock()
BACKENDS = ("onnxruntime", "openvino")  # FCOCR_ENGINE
# The models inside the rapidocr wheel, named explicitly for OpenVINO: rapidocr would otherwise look them up
# in its download table (no network on FC without a NAT).
_WHEEL_MODELS = {"Det": "PP-OCRv6_det_small.onnx", "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
                 "Rec": "PP-OCRv6_rec_small.onnx"}


class _AtFcocrLevel(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.getLogger(logs.LOGGER_NAME).getEffectiveLevel()


def engine(threads: int = 0, backend: str = "onnxruntime") -> Any:
    """The process-wide RapidOCR instance for ``threads`` intra-op threads (0 = the runtime's choice) on
    ``backend`` (onnxruntime or openvino)."""
    with _ENGINES_LOCK:
        existing = _ENGINES.get((threads, backend))
        if existing is not None:
            return existing
        try:
            import rapidocr
            from rapidocr import EngineType, RapidOCR
        except ImportError:
            raise ConfigError("local.text needs the offline engine: pip install 'fcocr[local]'") from None
        params: dict[str, Any] = {
            "Global.log_level": "warning",
            # Keep every line the engine reads; minConfidence filters afterwards, per route.
            "Global.text_score": 0.0,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads if threads > 0 else -1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1 if threads > 0 else -1,
        }
        if backend == "openvino":
            try:
                import openvino  # noqa: F401
            except ImportError:
                raise ConfigError("FCOCR_ENGINE=openvino needs OpenVINO: pip install 'fcocr[openvino]'") from None
            models = os.path.join(os.path.dirname(rapidocr.__file__), "models")
            params["EngineConfig.openvino.inference_num_threads"] = threads if threads > 0 else -1
            for task, model in _WHEEL_MODELS.items():
                params[f"{task}.engine_type"] = EngineType.OPENVINO
                params[f"{task}.model_path"] = os.path.join(models, model)
        instance = RapidOCR(params=params)
        # rapidocr's own logger ignores Global.log_level for a few start-up lines, and warns once per blank
        # page ("detection result is empty", an empty result, not a fault): it says no more than fcocr's level.
        engine_logger = logging.getLogger("RapidOCR")
        engine_logger.setLevel(logging.WARNING)
        if not any(isinstance(f, _AtFcocrLevel) for f in engine_logger.filters):
            engine_logger.addFilter(_AtFcocrLevel())
        for model in (instance._load_det_model(), instance._load_rec_model()):  # no classifier: local_engine
            if backend == "openvino":
                model.session = _OneCallAtATime(model.session)
        _ENGINES[threads, backend] = instance
        return instance


class _OneCallAtATime:
    """rapidocr's OpenVINO session is one infer request whose output buffer the next call overwrites: workers
    sharing the engine take turns, each leaving with its own copy of the output."""

    def __init__(self, session: Any):
        self._session = session
        self._lock = threading.Lock()

    def __call__(self, tensor: Any) -> Any:
        import numpy as np

        with self._lock:
            return np.array(self._session(tensor))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def engine_info() -> dict[str, Any]:
    try:
        from importlib.metadata import version

        return {"name": ENGINE_NAME, "version": version("rapidocr"), "models": "PP-OCRv6 small (det, rec)"}
    except Exception:  # pragma: no cover
        return {"name": ENGINE_NAME}


def reading_order(lines: list[Line]) -> list[Line]:
    """Top-to-bottom rows, left-to-right within a row.

    Two lines share a row when their vertical centres are closer than half the shorter line's
    height: tolerant of slight skew, strict enough to keep stacked lines apart.
    """

    def centre_y(line: Line) -> float:
        box = line.box
        return box["top"] + box["height"] / 2

    ordered: list[Line] = []
    rows: list[list[Line]] = []
    for line in sorted(lines, key=lambda item: (item.page, centre_y(item))):
        row = rows[-1] if rows else None
        if row and row[0].page == line.page:
            anchor = row[0]
            tolerance = min(anchor.box["height"], line.box["height"]) / 2
            if abs(centre_y(line) - centre_y(anchor)) < tolerance:
                row.append(line)
                continue
        rows.append([line])
    for row in rows:
        ordered.extend(sorted(row, key=lambda item: item.box["left"]))
    return ordered


def engine_failure(index: int, width: int, height: int, exc: Exception) -> str:
    """Why the engine failed on a page, in fcocr's words (the engine's own text is often empty or internal)."""
    where = f"page {index + 1} ({width}×{height})"
    if type(exc).__name__ == "ResizeImgError":  # rapidocr shrinks the long side; the short one rounds to nothing
        ratio = max(width, height) / max(1, min(width, height))
        return (f"the offline engine cannot read {where}: a strip this long and thin (about {ratio:.0f}:1) "
                "leaves its text detector no pixels across; crop the strip into shorter pieces or pad it")
    return f"the offline engine failed on {where} ({type(exc).__name__})"


class LocalFamily:
    name = "local"
    capabilities = {TEXT.id: TEXT, **FIELD_CAPABILITIES, AUTO.id: AUTO}
    transient_codes: frozenset[str] = frozenset()  # nothing it does can pass: the engine is here
    packaging = Packaging(requirements=("rapidocr", "onnxruntime"),
                          verify=("fcocr.recognizers.local", "fcocr.recognizers.local_fields", "rapidocr",
                                  "onnxruntime", "numpy"))
    task_kinds: tuple[str, ...] = ()

    def warm_up(self, settings: Any) -> None:
        from . import local_engine  # numpy and the engine: imported when a page is read, not when routes load

        own = settings.family(self.name)
        local_engine.Models(engine(own.ocr_threads, own.ocr_engine))

    def recognize(self, capability: Capability, job: Job, options: dict) -> Outcome:
        import numpy as np

        from . import local_engine

        document = job.document(capability)  # read and checked before the engine loads
        own = job.settings.family(self.name)
        models = local_engine.Models(engine(own.ocr_threads, own.ocr_engine))
        min_conf = float(options.get("minConfidence", 0.0))
        lines: list[Line] = []
        pages: list[dict[str, Any]] = []
        raw_pages: list[dict[str, Any]] = []
        for page in document.pages():
            width, height = page.size
            # BGR, as the engine wants it; one copy of the page, released after the call.
            bgr = np.ascontiguousarray(np.asarray(page.image)[:, :, ::-1])
            started = time.perf_counter()
            try:
                reading = local_engine.read_page(models, bgr)
            except Exception as exc:
                raise PermanentError(engine_failure(page.index, width, height, exc), code="EngineError") from None
            del bgr
            elapsed = round((time.perf_counter() - started) * 1000)
            pages.append({"index": page.index, "width": width, "height": height, "elapsedMs": elapsed})
            raw_pages.append({"page": page.index, "txts": [line.text for line in reading.lines],
                              "scores": [line.score for line in reading.lines],
                              "boxes": [line.box.round(1).tolist() for line in reading.lines],
                              "turned": reading.turned, "detectorPasses": reading.tiles, "rereads": reading.rereads})
            # Reading order is taken on the page turned upright; the polygons stay in the uploaded page's pixels.
            upright, placed = [], {}
            for line in reading.lines:
                confidence = max(0.0, min(100.0, line.score * 100.0))
                if line.text.strip() and confidence >= min_conf:
                    key = Line(text=line.text, confidence=confidence, page=page.index,
                               polygon=tuple((float(x), float(y)) for x, y in line.upright_box))
                    upright.append(key)
                    placed[id(key)] = Line(text=line.text, confidence=confidence, page=page.index,
                                           polygon=tuple((float(x), float(y)) for x, y in line.box))
            lines.extend(placed[id(key)] for key in reading_order(upright))
        warnings = []
        if document.page_count > document.pages_to_read:
            warnings.append(f"only the first {document.pages_to_read} of {document.page_count} pages were "
                            "recognized (FCOCR_MAX_PAGES)")
        outcome = Outcome(lines=lines, raw={"pages": raw_pages}, pages=pages,
                          engine={**engine_info(), "backend": own.ocr_engine}, warnings=warnings)
        if capability.id == TEXT.id:
            return outcome
        return local_fields.structure(capability.document_type, outcome, capability.id)


FAMILY = LocalFamily()
