"""An HTTP(S) forward proxy that serves a few host names itself, with TLS from a test CA.

Unmodified installers reach a fake service by its genuine host name through
``HTTPS_PROXY``: for ``CONNECT host:443`` the proxy answers 200, then terminates
TLS itself with a certificate for exactly that host issued by a throw-away
:mod:`trustme` CA, and serves HTTP/1.1 (keep-alive) on the decrypted stream.
Plain-http absolute-form requests (``GET http://host/path``) and ordinary
origin-form requests to the proxy's own address are served the same way. It
never opens an outbound connection: a host the application does not serve gets
502 (CONNECT) or 502 (absolute-form) and the connection is closed.

What to answer is the application's business (:class:`ProxyApplication`);
this module is only sockets, TLS and HTTP framing, plus a request log.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

import trustme

__all__ = [
    "ProxyApplication",
    "ProxyRequest",
    "ProxyResponse",
    "ProxyServer",
    "RequestLog",
    "RequestRecord",
    "TestCertificateAuthority",
]

log = logging.getLogger(__name__)

_MAX_BODY = 64 * 1024 * 1024


@dataclass(frozen=True)
class ProxyRequest:
    """One HTTP request as the application sees it, whichever way it arrived."""

    method: str
    scheme: str  # "https" inside a CONNECT tunnel, else "http"
    host: str  # lower case, no port
    port: int
    path: str  # origin-form: path and query
    headers: Message
    body: bytes
    via: str  # "tunnel", "proxy" (absolute-form) or "direct"


@dataclass(frozen=True)
class ProxyResponse:
    """What the application answers; ``auth_*`` only feed the request log."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "text/plain; charset=utf-8"
    auth_presented: bool = False
    auth_valid: bool = False


class ProxyApplication(Protocol):
    """The fake service behind the proxy."""

    def serves(self, scheme: str, host: str, port: int) -> bool:
        """Whether a CONNECT (``https``) or absolute-form (``http``) request may go to host."""
        ...

    def handle(self, request: ProxyRequest) -> ProxyResponse: ...


@dataclass(frozen=True)
class RequestRecord:
    """One line of the request log. Never holds a credential."""

    method: str
    scheme: str
    host: str
    path: str
    status: int
    via: str
    auth_presented: bool = False
    auth_valid: bool = False


@dataclass
class RequestLog:
    """Thread-safe log of everything the proxy answered, in order."""

    _records: list[RequestRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self, **criteria: object) -> list[RequestRecord]:
        """Records whose fields equal every given criterion.

        ``path_prefix="/pypi/r/"`` matches the start of the path instead.
        """
        prefix = criteria.pop("path_prefix", None)
        unknown = set(criteria) - set(RequestRecord.__dataclass_fields__)
        if unknown:
            msg = f"unknown request log field(s): {sorted(unknown)}"
            raise TypeError(msg)
        with self._lock:
            snapshot = list(self._records)
        return [
            r
            for r in snapshot
            if all(getattr(r, k) == v for k, v in criteria.items())
            and (prefix is None or r.path.startswith(str(prefix)))
        ]

    def count(self, **criteria: object) -> int:
        """How many records match, e.g. ``count(status=401, host=h)``."""
        return len(self.records(**criteria))

    def statuses(self, **criteria: object) -> list[int]:
        return [r.status for r in self.records(**criteria)]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __iter__(self) -> Iterator[RequestRecord]:
        with self._lock:
            return iter(list(self._records))


class TestCertificateAuthority:
    """A throw-away CA; one cached server-side TLS context per host name."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, directory: Path) -> None:
        self._ca = trustme.CA()
        self.ca_pem_path = directory / "menda-test-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_pem_path))
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def server_context(self, host: str) -> ssl.SSLContext:
        with self._lock:
            context = self._contexts.get(host)
            if context is None:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                self._ca.issue_cert(host).configure_cert(context)
                context.set_alpn_protocols(["http/1.1"])
                self._contexts[host] = context
            return context


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: ProxyApplication
    ca: TestCertificateAuthority
    request_log: RequestLog
    connections: set[socket.socket]
    connections_lock: threading.Lock

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up, bad TLS, odd bytes: all expected in tests; no traceback.
        log.debug("error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "menda-testing-proxy"
    sys_version = ""
    timeout = 60.0  # an idle keep-alive connection does not hold a thread forever
    server: _Server
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
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > _MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
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


class ProxyServer:
    """The proxy on ``host:port`` (0: any free port), served from a background thread."""

    def __init__(self, app: ProxyApplication, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self._bind = (host, port)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._ca: TestCertificateAuthority | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.request_log = RequestLog()

    def start(self) -> None:
        if self._server is not None:
            return
        self._tmp = tempfile.TemporaryDirectory(prefix="menda-proxy-")
        self._ca = TestCertificateAuthority(Path(self._tmp.name))
        server = _Server(self._bind, _Handler)
        server.app = self._app
        server.ca = self._ca
        server.request_log = self.request_log
        server.connections = set()
        server.connections_lock = threading.Lock()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"menda-proxy-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            with server.connections_lock:
                open_connections = list(server.connections)
            for conn in open_connections:
                # Wake handler threads blocked on idle keep-alive connections.
                with contextlib.suppress(OSError):
                    # socket.socket.shutdown: SSLSocket.shutdown would drop the TLS state
                    # under the feet of the thread reading from it.
                    socket.socket.shutdown(conn, socket.SHUT_RDWR)
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self._ca = None

    def __enter__(self) -> ProxyServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _running(self) -> _Server:
        if self._server is None:
            msg = "the proxy is not running: call start() or use it as a context manager"
            raise RuntimeError(msg)
        return self._server

    @property
    def host(self) -> str:
        return str(self._running().server_address[0])

    @property
    def port(self) -> int:
        return int(self._running().server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, for ``HTTPS_PROXY`` and ``proxies=``."""
        return f"http://{self.host}:{self.port}"

    @property
    def ca_pem_path(self) -> Path:
        """The test CA's certificate (PEM), for ``SSL_CERT_FILE`` / ``--cert`` / ``verify=``."""
        return self._authority().ca_pem_path

    def context_for(self, host: str) -> ssl.SSLContext:
        return self._authority().server_context(host)

    def _authority(self) -> TestCertificateAuthority:
        self._running()
        if self._ca is None:  # pragma: no cover - set together with the server
            raise RuntimeError("the proxy has no CA")
        return self._ca
