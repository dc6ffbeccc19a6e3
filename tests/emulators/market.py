"""A local Alibaba Cloud Market (云市场) OCR endpoint for tests: the API gateway plus 17 providers.

``MarketEmulator`` serves, on 127.0.0.1, the seventeen APPCODE APIs of shared/specs/recognizers.md
§4 "Family B": B1-B16 of seed 001 (印刷文字识别, a JSON body) and B17 of seed 002 (通用文本识别,
multipart/form-data). Each API lives under its own path (``url_for(id)``), as each purchase has
its own URL. It checks what the gateway and the providers check, answers successes with the
documented example responses (tests/emulators/data/market_examples.txt, traps kept), and answers
failures with the documented statuses and messages:

Gateway (every API, before the provider sees anything)
    * unknown path, or a method other than POST: 400, ``X-Ca-Error-Message: Invalid Url``;
    * body over ``max_body`` (``text_max_body`` for the text API): 413, the Tengine page that seed
      001's FAQ shows, ``X-Ca-Error-Code: I413RL`` and ``X-Ca-Error-Message: Request body too
      Large`` (the gateway's documented code and message for a too-large body). Seed 002 gives 413 only
      a meaning (客户发送的请求大小超过了2MB限制), no body: the gateway refuses before the provider runs, so
      the text API's 413 is the same gateway answer;
    * ``Authorization: APPCODE <appcode>`` missing (or another scheme): ``MISSING_APPCODE``;
      another appcode: ``WRONG_APPCODE``;
    * ``X-Ca-Request-Id`` on every answer.
    Gateway errors carry their message in ``X-Ca-Error-Message`` and have an empty body.

001 providers (B1-B16): POST, a JSON body, synchronous. The new format ``{"image": <base64>,
"configure": <JSON string or object>}`` and, whenever the body has an ``inputs`` key, the old
format ``{"inputs": [{"image": {"dataType": 50, "dataValue": <base64>}, "configure": {"dataType":
50, "dataValue": <JSON string>}}]}`` answered with ``{"outputs": [{"outputLabel", "outputMulti":
{}, "outputValue": {"dataType": 50, "dataValue": <JSON string>}}]}``, one output per input. The
image must be plain base64 (no ``data:`` prefix, length a multiple of 4, no line breaks) or an
http(s) URL the provider downloads, and decode as one of the documented formats (BMP, JPEG,
JPEG 2000, PNG, PBM/PGM/PPM, TIFF; GIF has its own errors so it is accepted too). Errors use the
seed's table (``ERRORS``): HTTP status = code (460, 461, 462; template 452/455), the message in
the body (text/plain) and in ``X-Ca-Error-Message``, no ``X-Ca-Error-Code`` (that header marks
gateway errors only). ``configure`` keys are checked where the seed documents them (``side``;
``min_size``, ``output_prob``; ``template_id``/``template_list``; ``format``, ``finance``,
``dir_assure``, ``line_less``; ``multi_crop``), and a key the seed does not document for that API is
refused (461 json parse runtime exception, see ``_check_configure``): a client sending an option the
documents never named would otherwise pass these tests unnoticed.

002 provider (B17, ``text``): multipart/form-data with ``imgUrl`` (fetched over HTTP), ``file``
(a binary part) or ``imgBase64`` (which must carry ``data:image/<type>;base64,``); used in the
order imgUrl > file > imgBase64. Failures are HTTP 400 with the documented JSON shape
``{"serialNo", "message", "status": 400, "code": 5003}``; the seed documents only code 5003
(图片内容为空), so every input failure uses it with its own message.

Usage::

    with MarketEmulator(appcode='test-appcode') as market:
        r = requests.post(market.url_for('idcard'),
                          headers={'Authorization': 'APPCODE test-appcode'},
                          json={'image': b64_png, 'configure': '{"side":"face"}'})
        assert r.json()['num'] == '1234567890'
        assert market.requests[-1].configure == {'side': 'face'}

Not from any source (assumptions, kept in module constants so they are easy to change):
``MISSING_APPCODE``'s message, the 8 MB ``max_body`` default, the text API's path, the
``outputLabel`` of APIs whose old-format answer the seed does not show, the plain-text body of
provider errors, the wording of 002 failures other than 图片内容为空.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import email.message
import hmac
import http
import io
import json
import random
import re
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union
from urllib.parse import urlsplit

from ._http import BadRequest, LoopbackEmulator, LoopbackHandler

__all__ = ["MarketEmulator", "RequestRecord", "API_PATHS", "OUTPUT_LABELS", "ERRORS",
           "MISSING_APPCODE", "WRONG_APPCODE", "TENGINE_413", "TABLE_TEMPLATE_ID",
           "examples", "example_text", "example", "response_text", "variants"]

DATA_FILE = Path(__file__).resolve().parent / "data" / "market_examples.txt"

# The path each API is served under. Seed 001 names two (B10, B11); the others are the paths of
# the real market products (the same ones OCR_EXAMPLE and public client code call), except
# "text", whose address seed 002 leaves to the product page: that one is made up.
API_PATHS: Dict[str, str] = {
    "idcard": "/rest/160601/ocr/ocr_idcard.json",
    "driver-license": "/rest/160601/ocr/ocr_driver_license.json",
    "vehicle-license": "/rest/160601/ocr/ocr_vehicle.json",
    "business-license": "/rest/160601/ocr/ocr_business_license.json",
    "business-card": "/rest/160601/ocr/ocr_business_card.json",
    "bank-card": "/rest/160601/ocr/ocr_bank_card.json",
    "general": "/api/predict/ocr_general",
    "passport": "/rest/160601/ocr/ocr_passport.json",
    "hukou": "/api/predict/ocr_household_register",
    "template": "/api/predict/ocr_sdt",
    "table": "/api/predict/ocr_table_parse",
    "stamp": "/api/predict/ocr_official_seal",
    "taxi": "/api/predict/ocr_taxi",
    "train": "/api/predict/ocr_train_ticket",
    "plate": "/rest/160601/ocr/ocr_vehicle_plate.json",
    "vin": "/api/predict/ocr_vin",
    "text": "/ocr/general_text",
}
TEXT_API = "text"

# outputLabel of old-format answers. Seed 001 shows ocr_businesscard and ocr_bankcard; the
# others follow the service names in the paths.
OUTPUT_LABELS: Dict[str, str] = {
    "idcard": "ocr_idcard", "driver-license": "ocr_driver_license",
    "vehicle-license": "ocr_vehicle", "business-license": "ocr_business_license",
    "business-card": "ocr_businesscard", "bank-card": "ocr_bankcard",
    "general": "ocr_general", "passport": "ocr_passport", "hukou": "ocr_household_register",
    "template": "ocr_sdt", "table": "ocr_table_parse", "stamp": "ocr_official_seal",
    "taxi": "ocr_taxi", "train": "ocr_train_ticket", "plate": "ocr_vehicle_plate",
    "vin": "ocr_vin",
}
# APIs documented only in the old format: their example is an "outputs" document.
OLD_FORMAT_APIS = frozenset(["business-card", "bank-card"])
SIDE_APIS = frozenset(["idcard", "driver-license", "vehicle-license"])

# The template id of seed 001's "with a table" example; any other template answers the other one.
TABLE_TEMPLATE_ID = "dd3ada93-c6ed-4427-8e0b-fbdebad614061532347130"

DEFAULT_APPCODE = "test-appcode"
# Seed 001 only recommends images under 1.5 MB; 8 MB is the API gateway's usual body limit.
DEFAULT_MAX_BODY = 8 * 1024 * 1024
# Seed 002: "客户发送的请求大小超过了2MB限制" -> 413.
TEXT_MAX_BODY = 2 * 1024 * 1024
DOWNLOAD_TIMEOUT_SECONDS = 10.0

# (HTTP status, X-Ca-Error-Message) of the gateway's APPCODE rejections. A wrong APPCODE: the
# status and message the market's own sample code tests for (`httpCode == 400 &&
# error.equals("Invalid AppCode `not exists`")`). A missing one: 401, the status seed 002 gives
# to 身份验证失败; the message is an assumption.
WRONG_APPCODE = (400, "Invalid AppCode `not exists`")
MISSING_APPCODE = (401, "Empty AppCode")

# The 413 page seed 001's FAQ shows (line breaks of the PDF export joined with spaces).
TENGINE_413 = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN"><html><head><title>413 Request Entity Too '
    'Large</title></head><body bgcolor="white"><h1>413 Request Entity Too Large</h1><P>The '
    'requested resource does not allow request data with the requested method or the amount of '
    'data provided in the request exceeds the capacity limit. Sorry for the inconvenience.<br/>'
    'Please report this message and include the following information to us.<br/>Thank you very '
    'much!</p><hr/>Powered by Tengine</body></html>')

# Seed 001's error table (错误码): kind -> (HTTP status, message). 452/455 come from the custom
# template section (没有设置template_json / 没有对应的template_id; the wording is ours).
_BAD_JSON = "Invalid Input - json format error - "
_BAD_IMAGE = "Invalid Input - image data error - "
ERRORS: Dict[str, Tuple[int, str]] = {
    "queue_full": (450, ""),
    "bad_json": (460, "Invalid Input - failed to parse json"),
    "missing_image": (461, _BAD_JSON + "missing key: image"),
    "image_format": (461, _BAD_JSON + "image format error"),
    "missing_inputs": (461, _BAD_JSON + "key inputs missing"),
    "inputs_not_array": (461, _BAD_JSON + "value of inputs must be a array"),
    "image_datavalue": (461, _BAD_JSON + "image DataValue format error"),
    "configure_format": (461, _BAD_JSON + "configure format error"),
    "bad_configure": (461, _BAD_JSON + "failed to parse config str: "),
    "json_runtime": (461, _BAD_JSON + "json parse runtime exception"),
    "download": (462, _BAD_IMAGE + "download image from url error"),
    "empty_image": (462, _BAD_IMAGE + "input image empty, please check your image binary data"),
    "decode": (462, _BAD_IMAGE + "image decode failed, please check your image binary data"),
    "base64": (462, _BAD_IMAGE + "base64decode error, please check your image binary data"),
    "data_prefix": (462, _BAD_IMAGE + "please remove additional header: data:image/jpg:base64,"),
    "padding": (462, _BAD_IMAGE + "base64decode error: incorrect padding in base64 string"),
    "base64_chars": (462, _BAD_IMAGE + "base64decode error: base64decode error: incorrect base64 "
                                       "format data"),
    "gif_open": (462, _BAD_IMAGE + "open gif image failed"),
    "gif_decode": (462, _BAD_IMAGE + "decode gif image failed"),
    "wrong_category": (463, "Invalid Input - wrong category"),
    "algorithm": (464, "Invalid Result - algorithm run failed"),
    "algorithm_exception": (464, "Invalid Result - algorithm runtime exception"),
    "parse_result": (469, "Invalid Service - parse result error"),
    "no_template": (452, "template_json not set"),
    "no_anchor": (453, "no anchor set"),
    "no_content": (454, "no recognition content set"),
    "unknown_template": (455, "no such template_id"),
}
# Default body/message of an injected 'status' fault with one of the providers' own statuses.
_PROVIDER_STATUS_KIND = {450: "queue_full", 452: "no_template", 453: "no_anchor",
                         454: "no_content", 455: "unknown_template", 460: "bad_json",
                         461: "json_runtime", 462: "decode", 463: "wrong_category",
                         464: "algorithm", 469: "parse_result"}
# X-Ca-Error-Message of the gateway's own failures, by status (403/429 are the gateway's
# messages for a used-up quota and flow control; 408/502/503 are seed 001's table).
GATEWAY_MESSAGES: Dict[int, str] = {
    400: "Invalid Url",
    401: MISSING_APPCODE[1],
    403: "Quota Exhausted",
    408: "Request Timeout",
    429: "Throttled by APP Flow Control",
    500: "Internal Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# The image formats of seed 001's 图片格式说明 (Pillow's names; MPO is a JPEG), plus GIF, which
# has its own entries in the error table.
_001_FORMATS = frozenset(["BMP", "DIB", "JPEG", "MPO", "JPEG2000", "PNG", "PPM", "TIFF", "GIF"])
_BASE64_CHARS = re.compile(r"[^A-Za-z0-9+/=]")
_DATA_URI = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,")

# Documented configure keys and what they accept (a type, or a tuple of allowed values).
_CONFIGURE_RULES: Dict[str, Dict[str, object]] = {
    "idcard": {"side": ("face", "back")},
    "driver-license": {"side": ("face", "back")},
    "vehicle-license": {"side": ("face", "back")},
    "general": {"min_size": int, "output_prob": bool},
    "template": {"template_id": str, "template_list": list},
    "table": {"format": ("html", "json", "xlsx"), "finance": bool, "dir_assure": bool,
              "line_less": bool},
    "plate": {"multi_crop": bool},
}

_FAULT_KINDS = ("status", "drop", "delay", "malformed")


# --------------------------------------------------------------------------------------------
# The documented examples

_EXAMPLES: Optional[Dict[Tuple[str, str], str]] = None
_EXAMPLES_LOCK = threading.Lock()


def examples() -> Dict[Tuple[str, str], str]:
    """{(api id, variant): raw body text} from the data file (read once)."""
    global _EXAMPLES
    with _EXAMPLES_LOCK:
        if _EXAMPLES is None:
            _EXAMPLES = _parse_examples(DATA_FILE.read_text(encoding="utf-8"))
        return _EXAMPLES


def _parse_examples(text: str) -> Dict[Tuple[str, str], str]:
    found: Dict[Tuple[str, str], str] = {}
    key: Optional[Tuple[str, str]] = None
    body: List[str] = []
    in_notes = False

    def flush() -> None:
        if key is not None:
            while body and not body[-1].strip():
                body.pop()
            found[key] = "\n".join(body)

    for line in text.split("\n"):
        if line.startswith("=== "):
            flush()
            api, variant = line[4:].split()
            key, body, in_notes = (api, variant), [], True
        elif key is None:
            continue                       # the file's header comments
        elif in_notes and line.startswith("#"):
            continue
        else:
            in_notes = False
            body.append(line)
    flush()
    return found


def variants(api: str) -> List[str]:
    """The example variants of an API, the default one first."""
    names = [v for (a, v) in examples() if a == api]
    default = _default_variant(api)
    return [default] + [v for v in names if v != default]


def _default_variant(api: str) -> str:
    if api in SIDE_APIS:
        return "face"
    if api == "table":
        return "html"
    return "default"


def example_text(api: str, variant: Optional[str] = None) -> str:
    """The documented example body, as stored (old-format APIs: the whole outputs document)."""
    return examples()[(api, variant or _default_variant(api))]


def example(api: str, variant: Optional[str] = None):
    """The documented example, parsed (old-format APIs: the decoded inner dataValue)."""
    return json.loads(response_text(api, variant))


def response_text(api: str, variant: Optional[str] = None, format: str = "json",
                  inputs: int = 1) -> str:
    """The exact body the emulator sends for a successful request (without set_response).

    ``format`` is 'json' (new format), 'inputs' (old format, ``inputs`` images with the same
    variant) or 'multipart' (the text API).
    """
    return _success_text(api, [variant or _default_variant(api)] * inputs,
                         "inputs" if format == "inputs" else "json")


def _success_text(api: str, chosen: List[str], fmt: str) -> str:
    if fmt != "inputs":
        raw = example_text(api, chosen[0])
        if api in OLD_FORMAT_APIS:
            return json.loads(raw)["outputs"][0]["outputValue"]["dataValue"]
        return raw
    if api in OLD_FORMAT_APIS:
        raw = example_text(api, chosen[0])
        if len(chosen) == 1:
            return raw
        element = json.loads(raw)["outputs"][0]
        return json.dumps({"outputs": [element] * len(chosen)}, ensure_ascii=False)
    return _wrap_outputs(api, [example_text(api, v) for v in chosen])


def _wrap_outputs(api: str, values: List[str]) -> str:
    return json.dumps({"outputs": [
        {"outputLabel": OUTPUT_LABELS.get(api, api), "outputMulti": {},
         "outputValue": {"dataType": 50, "dataValue": value}} for value in values]},
        ensure_ascii=False)


# --------------------------------------------------------------------------------------------
# Records, faults, replies

@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One handled request, as the emulator saw it."""
    id: Optional[str]             # the API id; None when the path matched no API
    method: str
    path: str
    appcode_ok: bool
    content_type: Optional[str]
    format: Optional[str]         # 'json' | 'inputs' | 'multipart'; None when never parsed
    fields: Dict[str, int]        # field names -> size in bytes (JSON keys: size of the value,
                                  # the dataValue for 'inputs'; multipart: size of each part)
    configure: Optional[dict]     # decoded configure (the first input's, for 'inputs')
    status: int                   # HTTP status sent; 0 when a 'drop' fault closed the socket
    error: Optional[str]          # the error message sent (or the fault), None on success
    request_id: str               # X-Ca-Request-Id
    configure_type: Optional[str] = None   # 'string' | 'object' as it arrived
    inputs: int = 0               # images in the request
    source: Optional[str] = None  # 'base64' | 'url' (001); 'imgUrl' | 'file' | 'imgBase64' (002)
    images: Tuple[dict, ...] = ()  # each decoded image: {format, width, height, bytes}
    variant: Optional[str] = None  # the example variant answered
    fault: Optional[str] = None   # the kind of injected fault that shaped the answer
    body_bytes: int = 0


@dataclasses.dataclass
class _Fault:
    api: Optional[str]
    kind: str
    status: int
    headers: Optional[Dict[str, str]]
    body: Optional[Union[str, bytes, dict]]
    delay: Optional[float]
    remaining: int
    release: threading.Event = dataclasses.field(default_factory=threading.Event)


@dataclasses.dataclass
class _Reply:
    status: int
    headers: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
    body: bytes = b""
    error: Optional[str] = None
    drop: bool = False


class _Failure(Exception):
    """Processing stops with this reply."""

    def __init__(self, reply: _Reply):
        super().__init__(reply.error or str(reply.status))
        self.reply = reply


class _Context:
    """What processing learnt about a request, for its record."""

    def __init__(self, method: str, path: str, content_type: Optional[str], size: int):
        self.method, self.path, self.content_type, self.size = method, path, content_type, size
        self.api: Optional[str] = None
        self.appcode_ok = False
        self.format: Optional[str] = None
        self.fields: Dict[str, int] = {}
        self.configure: Optional[dict] = None
        self.configure_type: Optional[str] = None
        self.inputs = 0
        self.source: Optional[str] = None
        self.images: List[dict] = []
        self.variant: Optional[str] = None
        self.fault: Optional[str] = None


def _header_text(message: str) -> str:
    # Header values go out as latin-1; keep non-Latin text readable but sendable.
    try:
        message.encode("latin-1")
        return message
    except UnicodeEncodeError:
        return message.encode("ascii", "backslashreplace").decode("ascii")


def _gateway_error(status: int, message: str) -> _Failure:
    return _Failure(_Reply(status, [("X-Ca-Error-Message", _header_text(message))], b"",
                           error=message))


def _too_large(message: str = "Request body too Large") -> _Reply:
    return _Reply(413, [("Content-Type", "text/html"), ("X-Ca-Error-Code", "I413RL"),
                        ("X-Ca-Error-Message", message)], TENGINE_413.encode("utf-8"),
                  error=message)


def _provider_reply(kind: str, detail: str = "") -> _Reply:
    status, message = ERRORS[kind]
    message += detail
    headers = [("Content-Type", "text/plain; charset=utf-8")]
    if message:
        headers.append(("X-Ca-Error-Message", _header_text(message)))
    return _Reply(status, headers, message.encode("utf-8"), error=message or "HTTP %d" % status)


def _provider_error(kind: str, detail: str = "") -> _Failure:
    return _Failure(_provider_reply(kind, detail))


def _text_error(message: str) -> _Failure:
    """A 002 business failure: HTTP 400 with the documented JSON shape."""
    if message == "图片内容为空":
        body = example_text(TEXT_API, "error")       # the documented failure, verbatim
    else:
        body = json.dumps({"serialNo": "%018d" % random.randrange(10 ** 17, 10 ** 18),
                           "message": message, "status": 400, "code": 5003},
                          ensure_ascii=False)
    return _Failure(_Reply(400, [("Content-Type", "application/json; charset=utf-8")],
                           body.encode("utf-8"), error=message))


def _json_reply(text: str, status: int = 200, headers=None) -> _Reply:
    out = [("Content-Type", "application/json; charset=UTF-8")]
    if headers:
        out = [(k, v) for k, v in out if k.lower() not in {h.lower() for h in headers}]
        out += list(headers.items())
    return _Reply(status, out, text.encode("utf-8"))


def _value_size(value) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


# --------------------------------------------------------------------------------------------
# The emulator

class MarketEmulator(LoopbackEmulator):
    """The Alibaba Cloud Market OCR APIs on 127.0.0.1; see the module docstring.

    ``appcode``         the APPCODE the gateway accepts;
    ``max_body``        the largest request body (bytes) of the 001 APIs; larger -> 413;
    ``text_max_body``   the same for the 002 text API (2 MB, as documented);
    ``known_templates`` None: every template_id exists; a set: others answer 455;
    ``download_timeout`` bound (seconds) of an image URL download.
    """

    def __init__(self, appcode: str = DEFAULT_APPCODE, max_body: int = DEFAULT_MAX_BODY, *,
                 text_max_body: int = TEXT_MAX_BODY, known_templates=None,
                 download_timeout: float = DOWNLOAD_TIMEOUT_SECONDS):
        super().__init__(_Handler, "market-emulator")
        self.appcode = appcode
        self.max_body = max_body
        self.text_max_body = text_max_body
        self.known_templates = None if known_templates is None else set(known_templates)
        self.download_timeout = download_timeout
        self.requests: List[RequestRecord] = []
        # Set whenever a 'delay' fault starts holding a request: tests wait on it, not on time.
        self.delay_started = threading.Event()
        self._faults: List[_Fault] = []
        self._held: List[_Fault] = []
        self._responses: Dict[str, Tuple[int, str, Dict[str, str]]] = {}
        self._by_path = {path: api for api, path in API_PATHS.items()}
        self._stopping = threading.Event()
        examples()   # fail at construction, not mid-test, if the data file is broken

    # ---- lifecycle ----------------------------------------------------------------------

    def _starting(self) -> None:
        self._stopping.clear()

    def _stopping_now(self) -> None:
        self._stopping.set()
        self.release_delayed()

    # ---- addresses ------------------------------------------------------------------------

    @property
    def ids(self) -> Tuple[str, ...]:
        return tuple(API_PATHS)

    def url_for(self, api: str) -> str:
        if api not in API_PATHS:
            raise KeyError("no market API %r; known: %s" % (api, ", ".join(API_PATHS)))
        if not self.endpoint:
            raise RuntimeError("start the emulator first")
        return self.endpoint + API_PATHS[api]

    # ---- responses ------------------------------------------------------------------------

    def set_response(self, api: str, body: Union[str, dict, None], status: int = 200,
                     headers: Optional[Dict[str, str]] = None) -> None:
        """Answer valid requests to ``api`` with ``body`` instead of the documented example.

        ``body`` is what the provider returns for one image: a str is sent verbatim, a dict as
        JSON. An old-format (``inputs``) request gets a 200 body wrapped in ``outputs``
        (one per input, as a dataValue string) unless it already has an ``outputs`` key.
        Requests are still validated first. ``body=None`` restores the example.
        """
        if api not in API_PATHS:
            raise KeyError(api)
        with self._lock:
            if body is None:
                self._responses.pop(api, None)
                return
            if isinstance(body, dict):
                body = json.dumps(body, ensure_ascii=False)
            elif not isinstance(body, str):
                raise TypeError("body must be a str, a dict or None")
            self._responses[api] = (status, body, dict(headers or {}))

    def reset_responses(self) -> None:
        with self._lock:
            self._responses.clear()

    # ---- fault injection ------------------------------------------------------------------

    def inject_fault(self, id: Optional[str] = None, *, kind: str = "status",  # noqa: A002
                     status: int = 500, times: int = 1, headers: Optional[Dict[str, str]] = None,
                     body: Optional[Union[str, bytes, dict]] = None,
                     delay: Optional[float] = None) -> None:
        """Make the next ``times`` requests to API ``id`` (None: any API) misbehave, after
        they pass the gateway's path, size and APPCODE checks.

        kind='status'     answer HTTP ``status`` the way whoever owns that status does: 413 the
                          gateway's too-large page; 450/452-455/460-469 (001 APIs) the provider's
                          error (message in body and X-Ca-Error-Message); 400 on the text API the
                          documented failure JSON; anything else a gateway error (empty body,
                          ``X-Ca-Error-Message`` from GATEWAY_MESSAGES: 403 Quota Exhausted,
                          429 Throttled by APP Flow Control, 500, 502, 503...). ``headers`` are
                          added/replace defaults, ``body`` (str, bytes or dict) replaces the body;
        kind='drop'       close the connection without answering;
        kind='delay'      hold the request ``delay`` seconds (None: until release_delayed() or
                          stop()), then process it normally; ``delay_started`` is set when the
                          hold begins;
        kind='malformed'  HTTP 200 whose body is not JSON (``body``, default: the example cut
                          in half).
        Faults are used in the order injected.
        """
        if kind not in _FAULT_KINDS:
            raise ValueError("kind must be one of %s" % ", ".join(_FAULT_KINDS))
        if times < 1:
            raise ValueError("times must be >= 1")
        if id is not None and id not in API_PATHS:
            raise KeyError(id)
        with self._lock:
            self._faults.append(_Fault(api=id, kind=kind, status=status, headers=headers,
                                       body=body, delay=delay, remaining=times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def release_delayed(self) -> None:
        """Let every request held by a 'delay' fault go on now."""
        with self._lock:
            held, self._held = self._held, []
            pending = [f for f in self._faults if f.kind == "delay"]
        for fault in held + pending:
            fault.release.set()

    def _take_fault(self, api: str) -> Optional[_Fault]:
        with self._lock:
            for fault in self._faults:
                if fault.api is None or fault.api == api:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _fault_reply(self, fault: _Fault, ctx: _Context) -> Optional[_Reply]:
        ctx.fault = fault.kind
        api = ctx.api
        if fault.kind == "drop":
            return _Reply(0, error="ConnectionDropped", drop=True)
        if fault.kind == "malformed":
            body = fault.body
            if body is None:
                text = example_text(TEXT_API) if api == TEXT_API else response_text(str(api))
                body = text[:len(text) // 2]
            reply = _Reply(200, [("Content-Type", "application/json; charset=UTF-8")],
                           _to_bytes(body), error="Malformed")
            return self._override_headers(reply, fault.headers)
        if fault.kind == "status":
            reply = self._status_reply(api, fault.status)
            if fault.body is not None:
                reply.body = _to_bytes(fault.body)
                if isinstance(fault.body, dict):
                    reply.headers = [(k, v) for k, v in reply.headers
                                     if k.lower() != "content-type"]
                    reply.headers.append(("Content-Type", "application/json; charset=UTF-8"))
            return self._override_headers(reply, fault.headers)
        # 'delay': hold, then carry on as if nothing happened.
        with self._lock:
            self._held.append(fault)
        self.delay_started.set()
        fault.release.wait(fault.delay)
        with self._lock:
            if fault in self._held:
                self._held.remove(fault)
        if self._stopping.is_set():
            return _Reply(0, error="ConnectionDropped", drop=True)
        return None

    @staticmethod
    def _override_headers(reply: _Reply, headers: Optional[Dict[str, str]]) -> _Reply:
        if headers:
            names = {k.lower() for k in headers}
            reply.headers = [(k, v) for k, v in reply.headers if k.lower() not in names]
            reply.headers += list(headers.items())
            message = headers.get("X-Ca-Error-Message")
            if message is not None:
                reply.error = message
        return reply

    @staticmethod
    def _status_reply(api: Optional[str], status: int) -> _Reply:
        if status == 413:
            return _too_large()
        if api == TEXT_API and status == 400:
            return _text_error("图片内容为空").reply
        if api != TEXT_API and status in _PROVIDER_STATUS_KIND:
            return _provider_reply(_PROVIDER_STATUS_KIND[status])
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        return _gateway_error(status, GATEWAY_MESSAGES.get(status, phrase)).reply

    # ---- request processing ---------------------------------------------------------------

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def _handle_request(self, method: str, target: str, headers: Dict[str, str],
                        body: bytes, request_id: str) -> _Reply:
        parts = urlsplit(target)
        ctx = _Context(method, parts.path, headers.get("content-type"), len(body))
        try:
            reply = self._process(method, parts.path, headers, body, ctx)
        except _Failure as failure:
            reply = failure.reply
        except Exception as exc:   # a bug in the emulator: say so rather than hang
            reply = _gateway_error(500, "emulator error: %s: %s" % (type(exc).__name__,
                                                                    exc)).reply
        self._record(RequestRecord(
            id=ctx.api, method=method, path=ctx.path, appcode_ok=ctx.appcode_ok,
            content_type=ctx.content_type, format=ctx.format, fields=dict(ctx.fields),
            configure=ctx.configure, status=reply.status, error=reply.error,
            request_id=request_id, configure_type=ctx.configure_type, inputs=ctx.inputs,
            source=ctx.source, images=tuple(ctx.images), variant=ctx.variant, fault=ctx.fault,
            body_bytes=ctx.size))
        return reply

    def _process(self, method: str, path: str, headers: Dict[str, str], body: bytes,
                 ctx: _Context) -> _Reply:
        # 1. The gateway finds the API by method and path...
        api = self._by_path.get(path)
        ctx.api = api
        if api is None or method != "POST":
            raise _gateway_error(400, "Invalid Url")
        # 2. ...the front end refuses oversized bodies before anything reads them...
        limit = self.text_max_body if api == TEXT_API else self.max_body
        if len(body) > limit:
            raise _Failure(_too_large())
        # 3. ...then the APPCODE.
        authorization = headers.get("authorization", "")
        if not authorization.startswith("APPCODE "):
            raise _gateway_error(*MISSING_APPCODE)
        if not hmac.compare_digest(authorization[len("APPCODE "):].encode("utf-8"),
                                   self.appcode.encode("utf-8")):
            raise _gateway_error(*WRONG_APPCODE)
        ctx.appcode_ok = True
        # Faults model the service failing a valid call, so they come after authentication.
        fault = self._take_fault(api)
        if fault is not None:
            reply = self._fault_reply(fault, ctx)
            if reply is not None:
                return reply
        if api == TEXT_API:
            return self._text(headers, body, ctx)
        return self._ocr(api, body, ctx)

    # ---- 001: JSON APIs -------------------------------------------------------------------

    def _ocr(self, api: str, body: bytes, ctx: _Context) -> _Reply:
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _provider_error("bad_json") from None
        if not isinstance(doc, dict):
            raise _provider_error("json_runtime")
        if "inputs" in doc:
            ctx.format = "inputs"
            units = self._old_format(doc, ctx)
        else:
            ctx.format = "json"
            ctx.fields = {k: _value_size(v) for k, v in doc.items()}
            if "image" not in doc:
                raise _provider_error("missing_image")
            if not isinstance(doc["image"], str):
                raise _provider_error("image_format")
            configure = self._decode_configure(doc.get("configure"), ctx)
            units = [(doc["image"], configure)]
        ctx.inputs = len(units)
        chosen = []
        for image, configure in units:
            chosen.append(self._check_configure(api, configure))
            self._load_image(image, ctx)
        ctx.variant = chosen[0]
        with self._lock:
            override = self._responses.get(api)
        if override is not None:
            status, text, headers = override
            if status == 200 and ctx.format == "inputs" and not _has_outputs(text):
                text = _wrap_outputs(api, [text] * len(units))
            return _json_reply(text, status, headers)
        return _json_reply(_success_text(api, chosen, ctx.format))

    def _old_format(self, doc: dict, ctx: _Context) -> List[Tuple[str, Optional[dict]]]:
        inputs = doc["inputs"]
        if inputs is None:
            raise _provider_error("missing_inputs")
        if not isinstance(inputs, list):
            raise _provider_error("inputs_not_array")
        if not inputs:
            raise _provider_error("json_runtime")
        units = []
        for index, item in enumerate(inputs):
            if not isinstance(item, dict):
                raise _provider_error("json_runtime")
            if index == 0:
                ctx.fields = {k: _value_size(v.get("dataValue") if isinstance(v, dict) else v)
                              for k, v in item.items()}
            if "image" not in item:
                raise _provider_error("missing_image")
            image = item["image"]
            if not (isinstance(image, dict) and "dataType" in image and "dataValue" in image) \
                    or image["dataType"] != 50 or isinstance(image["dataType"], bool):
                raise _provider_error("image_format")
            if not isinstance(image["dataValue"], str):
                raise _provider_error("image_datavalue")
            configure = None
            raw = item.get("configure")
            if raw is not None:
                if not (isinstance(raw, dict) and "dataType" in raw and "dataValue" in raw
                        and isinstance(raw["dataValue"], str)):
                    raise _provider_error("configure_format")
                configure = self._decode_configure(raw["dataValue"], ctx, record=index == 0)
            units.append((image["dataValue"], configure))
        return units

    @staticmethod
    def _decode_configure(raw, ctx: _Context, record: bool = True) -> Optional[dict]:
        if raw is None:
            return None
        if isinstance(raw, str):
            kind = "string"
            if not raw.strip():
                return None
            try:
                configure = json.loads(raw)
            except ValueError:
                raise _provider_error("bad_configure", raw) from None
        elif isinstance(raw, dict):
            kind, configure = "object", raw
        else:
            raise _provider_error("json_runtime")
        if not isinstance(configure, dict):
            raise _provider_error("json_runtime")
        if record:
            ctx.configure, ctx.configure_type = configure, kind
        return configure

    def _check_configure(self, api: str, configure: Optional[dict]) -> str:
        """Validate the documented keys; returns the example variant to answer."""
        conf = configure or {}
        rules = _CONFIGURE_RULES.get(api, {})
        unknown = sorted(set(conf) - set(rules))
        if unknown:
            # The seed is silent on keys it does not document; its table's catch-all for "JSON not as
            # required" (461 json parse runtime exception) is the answer chosen, so such a key fails loudly.
            raise _provider_error("json_runtime")
        for key, rule in rules.items():
            if key not in conf:
                continue
            value = conf[key]
            if isinstance(rule, tuple):
                ok = isinstance(value, str) and value in rule
            elif rule is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
            else:
                ok = isinstance(value, rule)   # type: ignore[arg-type]
            if not ok:
                raise _provider_error("json_runtime")
        if api in SIDE_APIS:
            return conf.get("side", "face")
        if api == "table":
            return conf.get("format", "html")
        if api == "template":
            return self._template_variant(conf)
        return "default"

    def _template_variant(self, conf: dict) -> str:
        if "template_id" in conf:
            ids = [conf["template_id"]]
        elif "template_list" in conf:
            ids = []
            for entry in conf["template_list"]:
                if not (isinstance(entry, dict) and isinstance(entry.get("template_id"), str)
                        and isinstance(entry.get("cond", {}), dict)):
                    raise _provider_error("json_runtime")
                ids.append(entry["template_id"])
            if not ids:
                raise _provider_error("no_template")
        else:
            raise _provider_error("no_template")
        if self.known_templates is not None:
            ids = [i for i in ids if i in self.known_templates]
            if not ids:
                raise _provider_error("unknown_template")
        # Conditions are evaluated on recognised text the emulator does not have: the first
        # (known) template is used.
        return "table" if ids[0] == TABLE_TEMPLATE_ID else "default"

    def _load_image(self, image: str, ctx: _Context) -> None:
        if image == "":
            raise _provider_error("empty_image")
        if image.startswith(("http://", "https://")):
            ctx.source = "url"
            try:
                data = self._download(image)
            except OSError:
                raise _provider_error("download") from None
        else:
            ctx.source = "base64"
            if image.startswith("data:"):
                raise _provider_error("data_prefix")
            if _BASE64_CHARS.search(image):
                raise _provider_error("base64_chars")
            if len(image) % 4:
                raise _provider_error("padding")
            try:
                data = base64.b64decode(image, validate=True)
            except (binascii.Error, ValueError):
                raise _provider_error("base64") from None
        if not data:
            raise _provider_error("empty_image")
        info = _inspect_image(data)
        if info is None:
            raise _provider_error("gif_open" if data[:4] == b"GIF8" else "decode")
        if info.get("error"):
            raise _provider_error("gif_decode" if info["format"] == "GIF" else "decode")
        if info["format"] not in _001_FORMATS:
            raise _provider_error("decode")
        ctx.images.append(info)

    # ---- 002: the multipart text API ------------------------------------------------------

    def _text(self, headers: Dict[str, str], body: bytes, ctx: _Context) -> _Reply:
        content_type = headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            raise _text_error("请求体格式应为multipart/form-data")
        ctx.format = "multipart"
        try:
            parts = _parse_multipart(body, content_type)
        except ValueError as exc:
            raise _text_error("multipart/form-data解析失败: %s" % exc) from None
        first: Dict[str, bytes] = {}
        for name, data in parts:
            ctx.fields[name] = ctx.fields.get(name, 0) + len(data)
            first.setdefault(name, data)
        url = first.get("imgUrl", b"").decode("utf-8", "replace").strip()
        if url:   # "优先使用该参数"
            ctx.source = "imgUrl"
            try:
                data = self._download(url)
            except OSError as exc:
                raise _text_error("图片下载失败: %s" % exc) from None
        elif first.get("file"):
            ctx.source = "file"
            data = first["file"]
        elif first.get("imgBase64", b"").strip():
            ctx.source = "imgBase64"
            value = first["imgBase64"].decode("utf-8", "replace").strip()
            match = _DATA_URI.match(value)
            if not match:
                raise _text_error("imgBase64需要包含data:image/png;base64,前缀")
            try:
                data = base64.b64decode(value[match.end():], validate=True)
            except (binascii.Error, ValueError):
                raise _text_error("imgBase64不是合法的base64编码") from None
        else:
            raise _text_error("图片内容为空")
        if not data:
            raise _text_error("图片内容为空")
        info = _inspect_image(data)
        if info is None or info.get("error"):
            raise _text_error("图片解码失败")
        ctx.images.append(info)
        ctx.inputs = 1
        ctx.variant = "default"
        with self._lock:
            override = self._responses.get(TEXT_API)
        if override is not None:
            status, text, extra = override
            return _json_reply(text, status, extra)
        return _json_reply(example_text(TEXT_API))

    # ---- downloads ------------------------------------------------------------------------

    def _download(self, url: str) -> bytes:
        """GET ``url`` like the provider would (no local proxies), bounded by
        download_timeout; raises OSError on any failure."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OSError("not an http(s) URL: %r" % url)
        outcome: dict = {}
        done = threading.Event()

        def fetch() -> None:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            try:
                with opener.open(url, timeout=self.download_timeout) as resp:
                    outcome["data"] = resp.read()
            except urllib.error.HTTPError as exc:
                outcome["error"] = "HTTP %d %s" % (exc.code, exc.reason)
            except Exception as exc:   # URLError, timeouts, resets...
                outcome["error"] = "%s: %s" % (type(exc).__name__, exc)
            finally:
                done.set()

        threading.Thread(target=fetch, name="market-emulator-download", daemon=True).start()
        if not done.wait(self.download_timeout):
            raise OSError("download took longer than %.1f s" % self.download_timeout)
        if "error" in outcome:
            raise OSError(outcome["error"])
        return outcome["data"]


def _has_outputs(text: str) -> bool:
    try:
        doc = json.loads(text)
    except ValueError:
        return False
    return isinstance(doc, dict) and "outputs" in doc


def _to_bytes(body: Union[str, bytes, dict]) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, dict):
        return json.dumps(body, ensure_ascii=False).encode("utf-8")
    return body.encode("utf-8")


def _inspect_image(data: bytes) -> Optional[dict]:
    """{format, width, height, bytes} of a decodable image; None when no decoder recognises
    it; with an "error" key when it is recognised but does not decode."""
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data))
    except Exception:
        return None
    info = {"format": img.format, "width": img.size[0], "height": img.size[1],
            "bytes": len(data)}
    try:
        img.load()
    except Exception as exc:
        info["error"] = "%s: %s" % (type(exc).__name__, exc)
    finally:
        img.close()
    return info


def _parse_multipart(body: bytes, content_type: str) -> List[Tuple[str, bytes]]:
    """[(field name, raw value)] of a multipart/form-data body, in order."""
    header = email.message.Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not boundary or not isinstance(boundary, str):
        raise ValueError("no boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise ValueError("no closing boundary")
    parts = []
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n") or not chunk.endswith(b"\r\n"):
            raise ValueError("malformed part")
        head, sep, data = chunk[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("part without headers")
        disposition = None
        for line in head.split(b"\r\n"):
            name, _, value = line.decode("utf-8", "replace").partition(":")
            if name.strip().lower() == "content-disposition":
                disposition = value.strip()
        if disposition is None:
            raise ValueError("part without Content-Disposition")
        part = email.message.Message()
        part["content-disposition"] = disposition
        field = part.get_param("name", header="content-disposition")
        if not isinstance(field, str):
            raise ValueError("part without a name")
        parts.append((field, data))
    return parts


# --------------------------------------------------------------------------------------------
# HTTP plumbing

class _Handler(LoopbackHandler):
    server_header = "MarketEmulator"
    do_PATCH = LoopbackHandler.do_POST

    def _handle(self) -> None:
        emulator = self.emulator
        request_id = str(uuid.uuid4()).upper()
        try:
            body = self._read_body()
        except BadRequest as exc:
            self.close_connection = True
            self._send(_gateway_error(400, "Invalid Request Body: %s" % exc).reply, request_id)
            return
        reply = emulator._handle_request(self.command, self.path, self._lower_headers(), body,
                                         request_id)
        if reply.drop:
            self._drop_connection()
            return
        self._send(reply, request_id)

    def _send(self, reply: _Reply, request_id: str) -> None:
        self.send_response(reply.status)
        self.send_header("X-Ca-Request-Id", request_id)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD" and reply.body:
            self.wfile.write(reply.body)
        self.wfile.flush()
