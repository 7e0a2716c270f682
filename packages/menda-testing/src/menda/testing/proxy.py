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
the proxy is only sockets, TLS and HTTP framing, plus a request log. This
module runs it; the pieces live beside it:

- ``_proxy_app.py``: :class:`ProxyRequest`, :class:`ProxyResponse`, :class:`ProxyApplication`
- ``_proxy_handler.py``: one client connection (CONNECT, TLS termination, dispatch)
- ``_request_log.py``: :class:`RequestLog`, :class:`RequestRecord`
- ``_test_ca.py``: :class:`TestCertificateAuthority`
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from menda.testing._proxy_app import ProxyApplication, ProxyRequest, ProxyResponse
from menda.testing._proxy_handler import ProxyHTTPServer, ProxyRequestHandler
from menda.testing._request_log import RequestLog, RequestRecord
from menda.testing._test_ca import TestCertificateAuthority

if TYPE_CHECKING:
    import ssl
    from types import TracebackType

__all__ = [
    "ProxyApplication",
    "ProxyRequest",
    "ProxyResponse",
    "ProxyServer",
    "RequestLog",
    "RequestRecord",
    "TestCertificateAuthority",
]


class ProxyServer:
    """The proxy on ``host:port`` (0: any free port), served from a background thread."""

    def __init__(self, app: ProxyApplication, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self._bind = (host, port)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._ca: TestCertificateAuthority | None = None
        self._server: ProxyHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.request_log = RequestLog()

    def start(self) -> None:
        if self._server is not None:
            return
        self._tmp = tempfile.TemporaryDirectory(prefix="menda-proxy-")
        self._ca = TestCertificateAuthority(Path(self._tmp.name))
        server = ProxyHTTPServer(self._bind, ProxyRequestHandler)
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

    def _running(self) -> ProxyHTTPServer:
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
