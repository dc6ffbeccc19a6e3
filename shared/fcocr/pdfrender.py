"""Open and render PDFs in a child process whose memory and CPU time are capped.

A PDF's cost cannot be read from its header: a 1 MB file can hold a content stream that inflates to
1 GiB, or an image that decodes to gigapixels, and PDFium allocates all of it inside one call. So
PDFium never runs in the function's own process: a fresh interpreter (``python -c`` running
``_child_main``) opens the document under an address-space cap (``RLIMIT_AS``: what it may map on top
of its start-up size) and renders each page under a CPU-time cap (``RLIMIT_CPU``). A page that needs
more is refused as ``InputTooComplex``, a permanent failure, and the function's own memory never
sees the attempt.

Protocol (pipes; the child trusts only its caps): the parent writes the PDF's bytes; the child
answers one JSON line ``{"pages": n}`` or ``{"error": code, "message": text}``. Then, per request
line ``{"page": i, "dpi": d, "maxPixels": m}``, it answers ``{"width", "height", "stride"}``
followed by ``height * stride`` bytes of RGB rows, or an error line. End of input ends the child.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from typing import IO, Any

from .errors import InputError, TransientError

MiB = 1024 * 1024
RENDER_CPU_SECONDS = 60  # per page: PDFium renders an ordinary page in well under a second
_STRIP_BYTES = 4 * MiB  # RGB rows are copied into the page image this many bytes at a time


def too_complex(what: str, memory_bytes: int) -> InputError:
    return InputError(f"{what} needs more than {memory_bytes // MiB} MiB of memory to render "
                      "(FCOCR_PAGE_MEMORY_MB), or stopped the PDF renderer: it is too complex or damaged",
                      code="InputTooComplex")


def _spawn(memory_bytes: int, cpu_seconds: int) -> subprocess.Popen:
    # The child finds fcocr and pypdfium2 where this process found them (FC puts the code on sys.path, not
    # necessarily on PYTHONPATH).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    code = "from fcocr.pdfrender import _child_main; _child_main()"
    try:
        return subprocess.Popen([sys.executable, "-c", code, str(memory_bytes), str(cpu_seconds)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    except OSError as exc:  # no process slot or memory to start one: the instance's fault, not the file's
        raise TransientError(f"the PDF renderer could not start: {exc.strerror or type(exc).__name__}",
                             code="RendererUnavailable") from None


# One idle child per cap, started when the previous one is taken: starting Python and importing PDFium takes
# 0.1-0.2 s, which the next PDF then does not wait for. It holds about 20 MB and no document.
_STANDBY: dict[tuple[int, int], subprocess.Popen] = {}
_STANDBY_LOCK = threading.Lock()


def _take_child(memory_bytes: int, cpu_seconds: int) -> subprocess.Popen:
    caps = (memory_bytes, cpu_seconds)
    with _STANDBY_LOCK:
        process = _STANDBY.pop(caps, None)
        if process is None or process.poll() is not None:
            process = _spawn(*caps)
        try:
            _STANDBY[caps] = _spawn(*caps)
        except TransientError:  # this document has its child; the next one will try again
            pass
    return process


class PdfRenderer:
    """A child process holding one open PDF; ``page_count`` and ``render`` ask it. Use as a context manager."""

    def __init__(self, data: bytes, *, memory_bytes: int, cpu_seconds: int = RENDER_CPU_SECONDS) -> None:
        self.memory_bytes = memory_bytes
        self.cpu_seconds = cpu_seconds
        self._process = _take_child(memory_bytes, cpu_seconds)
        assert self._process.stdin is not None and self._process.stdout is not None
        self._stdin: IO[bytes] = self._process.stdin
        self._stdout: IO[bytes] = self._process.stdout
        try:
            self._stdin.write(len(data).to_bytes(8, "big"))
            self._stdin.write(data)
            self._stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the child died reading: its exit status says why, below
        try:
            self.page_count: int = self._answer("the PDF")["pages"]
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "PdfRenderer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        process = self._process
        if process.poll() is None:
            try:
                self._stdin.close()
            except OSError:
                pass
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:  # a child that ignores end of input is not waited for
                process.kill()
                process.wait()
        for stream in (self._stdin, self._stdout):
            try:
                stream.close()
            except OSError:
                pass

    def render(self, index: int, dpi: int, max_pixels: int):
        """Page ``index`` (0-based) as an RGB PIL image, at ``dpi`` but never over ``max_pixels``."""
        from PIL import Image

        request = json.dumps({"page": index, "dpi": dpi, "maxPixels": max_pixels}).encode() + b"\n"
        try:
            self._stdin.write(request)
            self._stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        header = self._answer(f"page {index + 1}")
        width, height, stride = header["width"], header["height"], header["stride"]
        image = Image.new("RGB", (width, height))
        rows = max(1, _STRIP_BYTES // stride)
        for top in range(0, height, rows):
            count = min(rows, height - top)
            chunk = self._read_exactly(count * stride, f"page {index + 1}")
            image.paste(Image.frombuffer("RGB", (width, count), chunk, "raw", "RGB", stride, 1), (0, top))
        return image

    def _read_exactly(self, size: int, what: str) -> bytes:
        chunk = self._stdout.read(size)
        if chunk is None or len(chunk) != size:
            raise self._died(what)
        return chunk

    def _answer(self, what: str) -> dict[str, Any]:
        line = self._stdout.readline()
        try:
            answer = json.loads(line)
        except ValueError:  # nothing (the child ended), or cut short
            raise self._died(what) from None
        if "error" in answer:
            raise InputError(answer["message"], code=answer["error"])
        return answer

    def _died(self, what: str) -> InputError:
        """The child ended without answering: over its CPU cap, or out of memory (PDFium aborts), or crashed."""
        returncode = self._process.wait()
        if returncode == -signal.SIGXCPU:
            return InputError(f"{what} took more than {self.cpu_seconds} s of CPU time to render: it is too complex",
                              code="InputTooComplex")
        return too_complex(what, self.memory_bytes)


# ------------------------------------------------------------------------------------------ the child
def _cap_memory(memory_bytes: int) -> None:
    import resource

    try:
        with open("/proc/self/statm") as statm:  # Linux (FC): the address space already mapped at start-up
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux (a developer's Mac): no address-space accounting to cap
        return
    limit = mapped + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _cap_cpu(seconds: int) -> None:
    """Let this process use ``seconds`` more CPU time from now (the soft limit; SIGXCPU ends it past that)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    soft = used + seconds if hard == resource.RLIM_INFINITY else min(used + seconds, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _reply(out: IO[bytes], answer: dict[str, Any]) -> None:
    out.write(json.dumps(answer).encode() + b"\n")
    out.flush()


def _load_error(pdfium: Any, exc: Exception) -> dict[str, str]:
    """PDFium's error code for an unreadable document, in fcocr's words (its own text names internals)."""
    code = getattr(exc, "err_code", None)
    if code == pdfium.raw.FPDF_ERR_PASSWORD:
        return {"error": "EncryptedDocument", "message": "the PDF is password-protected"}
    if code == pdfium.raw.FPDF_ERR_SECURITY:
        return {"error": "EncryptedDocument", "message": "the PDF uses an unsupported security handler"}
    return {"error": "CorruptDocument", "message": "the PDF cannot be read: it is damaged or not a PDF"}


def _render(pdf: Any, request: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    import math

    index = int(request["page"])
    try:
        page = pdf[index]
    except MemoryError:
        raise
    except Exception:
        return {"error": "CorruptDocument", "message": f"PDF page {index + 1} cannot be read: the page tree is damaged"}, None
    try:
        width_pt, height_pt = page.get_size()
        if not (width_pt > 0 and height_pt > 0 and math.isfinite(width_pt * height_pt)):
            return {"error": "CorruptDocument", "message": f"PDF page {index + 1} has no area ({width_pt}×{height_pt} pt)"}, None
        # Render at the configured DPI, but never past the pixel limit (a 5 m poster page).
        scale = request["dpi"] / 72.0
        area = width_pt * height_pt * scale * scale
        if area > request["maxPixels"]:
            scale *= math.sqrt(request["maxPixels"] / area)
            # PDFium rounds each side up: step down until the rounded bitmap is inside the limit too.
            while math.ceil(width_pt * scale) * math.ceil(height_pt * scale) > request["maxPixels"]:
                scale *= 0.999
        bitmap = page.render(scale=scale, rev_byteorder=True)
        if bitmap.mode != "RGB" or bitmap.width <= 0 or bitmap.height <= 0:
            return {"error": "CorruptDocument", "message": f"PDF page {index + 1} cannot be rendered"}, None
        return {"width": bitmap.width, "height": bitmap.height, "stride": bitmap.stride}, bitmap
    finally:
        page.close()


def _child_main() -> None:
    memory_bytes, cpu_seconds = int(sys.argv[1]), int(sys.argv[2])
    source = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb")  # the answers' own channel: anything a library prints goes to stderr instead
    os.dup2(2, 1)
    try:
        import pypdfium2 as pdfium  # before the cap: the library itself is not the document's cost
    except ImportError:
        _reply(out, {"error": "UnsupportedFormat",
                     "message": "PDF input needs pypdfium2: pip install 'fcocr[cloud]' or 'fcocr[local]'"})
        return

    _cap_memory(memory_bytes)
    _cap_cpu(cpu_seconds)
    what = "the PDF"
    try:
        header = source.read(8)
        if len(header) < 8:  # a standby child whose parent ended
            return
        size = int.from_bytes(header, "big")
        data = source.read(size)
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            _reply(out, _load_error(pdfium, exc))
            return
        count = len(pdf)
        if count <= 0:
            _reply(out, {"error": "CorruptDocument", "message": "the PDF has no pages"})
            return
        _reply(out, {"pages": count})
        for line in source:
            request = json.loads(line)
            what = f"page {int(request['page']) + 1}"
            _cap_cpu(cpu_seconds)
            try:
                header, bitmap = _render(pdf, request)
            except MemoryError:
                raise
            except Exception:
                header, bitmap = {"error": "CorruptDocument", "message": f"PDF {what} cannot be rendered: it is damaged"}, None
            _reply(out, header)
            if bitmap is not None:
                view = memoryview(bitmap.buffer).cast("B")
                for start in range(0, len(view), _STRIP_BYTES):
                    out.write(view[start:start + _STRIP_BYTES])
                out.flush()
                del view
                bitmap.close()
    except MemoryError:  # the cap, met in Python rather than inside PDFium (which aborts the process)
        _reply(out, {"error": "InputTooComplex", "message": too_complex(what, memory_bytes).message})
    finally:
        out.flush()
        os._exit(0)  # no interpreter teardown: the parent waits for this exit
