"""How the proxy serves one client connection: CONNECT and TLS termination, then HTTP/1.1.

``CONNECT host:443`` to a host the application serves gets 200, then the
connection is wrapped in TLS with the test CA's certificate for that host and
read on as decrypted keep-alive HTTP/1.1. Absolute-form ``http://`` requests
and origin-form requests to the proxy itself are dispatched the same way. It
never opens an outbound connection: anything else gets 502.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from menda.testing._http import BodyError, read_chunked
from menda.testing._proxy_app import ProxyApplication, ProxyRequest, ProxyResponse
from menda.testing._request_log import RequestLog, RequestRecord

if TYPE_CHECKING:
    from menda.testing._test_ca import TestCertificateAuthority

__all__ = ["ProxyHTTPServer", "ProxyRequestHandler"]

# The proxy's records, whichever of its modules writes them.
log = logging.getLogger("menda.testing.proxy")

_MAX_BODY = 64 * 1024 * 1024


def _split_authority(authority: str, default_port: int) -> tuple[str, int] | None:
    try:
        parts = urlsplit("//" + authority)
        port = parts.port or default_port
    except ValueError:
        return None
    host = (parts.hostname or "").rstrip(".")
    if not host or parts.username is not None:
        return None
    return host.lower(), port


class ProxyHTTPServer(ThreadingHTTPServer):
    """The listening socket, with what every connection's handler needs."""

    daemon_threads = True
    app: ProxyApplication
    ca: TestCertificateAuthority
    request_log: RequestLog
    connections: set[socket.socket]
    connections_lock: threading.Lock

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up, bad TLS, odd bytes: all expected in tests; no traceback.
        log.debug("error serving %s", client_address, exc_info=True)


class ProxyRequestHandler(BaseHTTPRequestHandler):
    """One client connection: plain, or a CONNECT tunnel once TLS is terminated."""

    protocol_version = "HTTP/1.1"
    server_version = "menda-testing-proxy"
    sys_version = ""
    timeout = 60.0  # an idle keep-alive connection does not hold a thread forever
    server: ProxyHTTPServer
    _tunnel: tuple[str, int] | None = None
    _tls: ssl.SSLSocket | None = None

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
            self.server.connections.discard(self.request)
            if self._tls is not None:
                self.server.connections.discard(self._tls)
        if self._tls is not None:
            with contextlib.suppress(OSError):
                self._tls.close()

    def log_message(self, format: str, *args: Any) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s", self.address_string(), format % args)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (OSError, ssl.SSLError):
            self.close_connection = True

    def _record(self, scheme: str, host: str, path: str, response: ProxyResponse, via: str) -> None:
        self.server.request_log.append(
            RequestRecord(
                method=self.command,
                scheme=scheme,
                host=host,
                path=path,
                status=response.status,
                via=via,
                auth_presented=response.auth_presented,
                auth_valid=response.auth_valid,
            )
        )

    def _send(self, response: ProxyResponse, *, close: bool = False) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        if close:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        self.wfile.flush()

    def do_CONNECT(self) -> None:
        if self._tunnel is not None:
            self._send(ProxyResponse(400, b"CONNECT inside a tunnel\n"), close=True)
            return
        target = _split_authority(self.path, 443)
        if target is None or not self.server.app.serves("https", *target):
            refused = ProxyResponse(502, b"this test proxy opens no outbound connections\n")
            self._record("https", target[0] if target else "", self.path, refused, "proxy")
            self._send(refused, close=True)
            return
        host, _port = target
        # No Content-Length on a 2xx CONNECT answer: the tunnel starts right after.
        self.send_response(200, "Connection Established")
        self.end_headers()
        self.wfile.flush()
        self._record("https", host, self.path, ProxyResponse(200), "proxy")
        context = self.server.ca.server_context(host)
        self.wfile.close()
        self.rfile.close()
        try:
            tls = context.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            log.debug("TLS handshake for %s failed", host, exc_info=True)
            self.close_connection = True
            self.rfile = io.BytesIO()
            self.wfile = io.BytesIO()
            return
        self._tls = tls
        self._tunnel = target
        with self.server.connections_lock:
            # The plain socket is detached now: stop() must shut the TLS one down.
            self.server.connections.discard(self.connection)
            self.server.connections.add(tls)
        self.connection = tls
        self.rfile = tls.makefile("rb")
        self.wfile = tls.makefile("wb")
        self.close_connection = False  # go on reading requests, now decrypted

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            try:
                return read_chunked(self.rfile, _MAX_BODY)
            except BodyError:
                return None
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > _MAX_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        app = self.server.app
        if self._tunnel is not None:
            scheme, (host, port), via = "https", self._tunnel, "tunnel"
            path = self.path
        elif self.path.lower().startswith(("http://", "https://")):
            parts = urlsplit(self.path)
            target = _split_authority(parts.netloc, 80)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            if target is None or parts.scheme.lower() != "http" or not app.serves("http", *target):
                refused = ProxyResponse(502, b"this test proxy opens no outbound connections\n")
                self._record("http", target[0] if target else "", path, refused, "proxy")
                self._send(refused, close=True)
                return
            scheme, (host, port), via = "http", target, "proxy"
        else:
            local = self.connection.getsockname()
            target = _split_authority(self.headers.get("Host", ""), 80)
            scheme, via, path = "http", "direct", self.path
            host, port = target if target else (str(local[0]), int(local[1]))
        try:
            body = self._read_body()
        except ValueError:
            body = None
        if body is None:
            response = ProxyResponse(400, b"bad or too large request body\n")
            self._record(scheme, host, path, response, via)
            self._send(response, close=True)
            return
        request = ProxyRequest(self.command, scheme, host, port, path, self.headers, body, via)
        try:
            response = app.handle(request)
        except Exception:
            log.exception("fake service failed on %s %s", self.command, path)
            response = ProxyResponse(500, b"internal error in the fake service\n")
        self._record(scheme, host, path, response, via)
        self._send(response)

    do_GET = _dispatch
    do_HEAD = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_DELETE = _dispatch
    do_PATCH = _dispatch
    do_OPTIONS = _dispatch
