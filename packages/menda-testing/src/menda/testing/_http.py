"""HTTP/1.1 plumbing for the emulator: quiet, threaded, robust against clients that vanish.

Its chunked-body reader serves the forward proxy too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import io

__all__ = ["BodyError", "Incoming", "QuietHTTPServer", "Reply", "make_server", "read_chunked"]

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # a request body larger than this is not one a client of ours sends

# A client hanging up mid-exchange is normal in tests (timeouts, dropped faults): not an error.
_DISCONNECTS = (ConnectionError, TimeoutError, socket.timeout, OSError)


@dataclass(frozen=True)
class Incoming:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    mode: str = "normal"  # "normal" | "drop" | "truncate"


class BodyError(Exception):
    """Raised when a request body cannot be read: ``status`` is 400 (bad framing) or 413."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def read_chunked(rfile: io.BufferedIOBase, limit: int) -> bytes:
    """A ``Transfer-Encoding: chunked`` body, for the emulator and the proxy alike.

    Raises :class:`BodyError` for a bad chunk size (400) or more than ``limit``
    bytes (413), ``ConnectionError`` when the client hangs up mid-body.
    """
    chunks: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(1024)
        if not line:
            raise ConnectionError("client closed the connection mid-body")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BodyError(400) from None
        if size == 0:
            while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        total += size
        if total > limit:
            raise BodyError(413)
        chunks.append(rfile.read(size))
        rfile.readline(1024)


class QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for a Delay fault or an idle keep-alive
    app: Callable[[Incoming], Reply]

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on open keep-alive connections, so a stopped server answers nothing."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints tracebacks to stderr by default; keep them for real bugs only.
        exc = sys.exc_info()[1]
        if isinstance(exc, _DISCONNECTS):
            return
        log.exception("unexpected error serving %s", client_address)


class _QuietHTTPServer6(QuietHTTPServer):
    address_family = socket.AF_INET6


def make_server(host: str, port: int, app: Callable[[Incoming], Reply]) -> QuietHTTPServer:
    cls = _QuietHTTPServer6 if ":" in host else QuietHTTPServer
    server = cls((host, port), _Handler)
    server.app = app
    return server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "menda-cloud-emulator/0.1"
    timeout = 60  # an idle keep-alive connection frees its thread eventually
    server: QuietHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log on stderr

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Also for unparseable requests and unsupported methods: JSON, with a request id.
        self.close_connection = True
        body = {"detail": message or HTTPStatus(code).phrase}
        reply = Reply(code, json.dumps(body).encode())
        reply.headers["X-Request-Id"] = "req_" + secrets.token_hex(8)
        with contextlib.suppress(*_DISCONNECTS):
            self._write(reply)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except BodyError as exc:
            self.send_error(exc.status)
            return
        except _DISCONNECTS:
            self.close_connection = True
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        incoming = Incoming(self.command, self.path, headers, body)
        try:
            reply = self.server.app(incoming)
        except Exception:
            log.exception("emulator failed on %s %s", self.command, self.path)
            reply = Reply(500, b'{"detail": "Internal Server Error"}')
        try:
            self._write(reply)
        except _DISCONNECTS:
            self.close_connection = True

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return read_chunked(self.rfile, MAX_BODY)
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            raise BodyError(400) from None
        if length < 0:
            raise BodyError(400)
        if length > MAX_BODY:
            raise BodyError(413)
        body = self.rfile.read(length)
        if len(body) != length:
            raise ConnectionError("client closed the connection mid-body")
        return body

    def _write(self, reply: Reply) -> None:
        if reply.mode == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(reply.status)
        declared = len(reply.body)
        if reply.mode == "truncate":
            declared += 64
            self.close_connection = True
        if reply.content_type is not None:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(declared))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(reply.body)
        self.wfile.flush()
        if reply.mode == "truncate":
            self.connection.shutdown(socket.SHUT_RDWR)
