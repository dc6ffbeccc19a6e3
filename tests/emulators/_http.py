"""HTTP plumbing shared by the loopback emulators (oss, market, tencent, viapi, green).

Each emulator is a ``LoopbackEmulator``: an HTTP/1.1 server on 127.0.0.1 (an ephemeral port) run
by a daemon thread, with start()/stop() and use as a context manager. Its handler is a
``LoopbackHandler`` subclass that implements ``_handle()`` for every request, whatever the method.
What a service answers stays in the emulator's own module; this one only moves bytes.

Pure standard library; Python 3.10+.
"""

from __future__ import annotations

import datetime
import email.utils
import http.server
import socket
import sys
import threading
from typing import Any, Dict, List, Optional, Type, TypeVar
from urllib.parse import urlsplit

__all__ = ["LoopbackEmulator", "LoopbackHandler", "BadRequest", "read_body", "parse_http_date"]

_E = TypeVar("_E", bound="LoopbackEmulator")


class BadRequest(Exception):
    """A request whose framing (chunk sizes, Content-Length) cannot be read."""


def read_body(handler: http.server.BaseHTTPRequestHandler) -> bytes:
    """The request body: chunked transfer coding (trailers skipped) or Content-Length bytes,
    b'' when there is neither. Raises BadRequest for a malformed chunk size or Content-Length."""
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        chunks: List[bytes] = []
        while True:
            line = handler.rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if size == 0:
                while handler.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline(65537)
    length = handler.headers.get("Content-Length")
    if length is None:
        return b""
    try:
        size = int(length)
    except ValueError:
        raise BadRequest("bad Content-Length") from None
    if size < 0:
        raise BadRequest("bad Content-Length")
    return handler.rfile.read(size)


def parse_http_date(value: str) -> Optional[float]:
    """An HTTP date (RFC 7231 IMF-fixdate or an obsolete form) as a POSIX timestamp, or None
    when it does not parse; a date without a zone is taken as UTC."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    emulator: "LoopbackEmulator"

    def handle_error(self, request, client_address) -> None:
        # Clients hanging up (timeouts, stop() cutting keep-alive connections) is normal here.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class LoopbackEmulator:
    """start()/stop()/with for an emulator served by ``handler`` on 127.0.0.1.

    Subclasses call ``super().__init__(handler, thread_name)`` first thing in ``__init__`` (it
    creates ``_lock``, the RLock they share with the connection tracking) and may override:
    ``_published(port)`` to set the addresses they expose (default: ``endpoint``),
    ``_starting()`` to reset state before the server binds, ``_stopping_now()`` to release held
    requests before the server shuts down.
    """

    def __init__(self, handler: Type["LoopbackHandler"], thread_name: str, *,
                 poll_interval: float = 0.02):
        self.endpoint = ""
        self._lock = threading.RLock()
        self._handler_class = handler
        self._thread_name = thread_name
        self._poll_interval = poll_interval
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._connections: set = set()

    # ---- hooks ------------------------------------------------------------------------------

    def _published(self, port: int) -> None:
        self.endpoint = "http://127.0.0.1:%d" % port

    def _starting(self) -> None:
        pass

    def _stopping_now(self) -> None:
        pass

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self: _E) -> _E:
        if self._server is not None:
            return self
        self._starting()
        server = _Server(("127.0.0.1", 0), self._handler_class)
        server.emulator = self
        self._server = server
        self._published(server.server_address[1])
        # shutdown() only takes effect at the next poll, so poll often: stop() stays fast.
        self._thread = threading.Thread(target=server.serve_forever,
                                        kwargs={"poll_interval": self._poll_interval},
                                        name=self._thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping_now()
        server.shutdown()
        # Keep-alive connections would otherwise leave handler threads blocked in recv().
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self: _E) -> _E:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class LoopbackHandler(http.server.BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1, quiet, every method to ``_handle()``; connections tracked so that
    stop() can cut them. Subclasses set ``server_header`` (the Server header's value) and add
    ``do_PATCH = LoopbackHandler.do_POST`` if their service takes PATCH too."""

    protocol_version = "HTTP/1.1"   # keep-alive, as the SDKs' pooled sessions expect
    # Headers and body go out in separate writes; without TCP_NODELAY each response can stall
    # ~40 ms on the client's delayed ACK.
    disable_nagle_algorithm = True
    server_header = "LoopbackEmulator"

    @property
    def emulator(self) -> Any:
        return self.server.emulator  # type: ignore[attr-defined]

    def version_string(self) -> str:
        return self.server_header

    def log_message(self, format, *args) -> None:  # noqa: A002 - keep test output quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.emulator._lock:
            self.emulator._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.emulator._lock:
                self.emulator._connections.discard(self.connection)

    def do_POST(self) -> None:
        self._handle()

    do_GET = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_POST

    def _handle(self) -> None:
        raise NotImplementedError

    def _read_body(self) -> bytes:
        return read_body(self)

    def _origin_target(self) -> str:
        """The request target in origin form (an absolute-form target loses scheme and host)."""
        target = self.path
        if "://" in target.split("?", 1)[0]:
            parts = urlsplit(target)
            target = parts.path + ("?" + parts.query if parts.query else "")
        return target

    def _lower_headers(self) -> Dict[str, str]:
        """Request headers by lower-case name; the first of repeated headers wins."""
        headers: Dict[str, str] = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), value)
        return headers

    def _drop_connection(self) -> None:
        """Close the connection without an answer (an injected fault)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
