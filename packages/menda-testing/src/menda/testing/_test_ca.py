"""A throw-away certificate authority that issues the proxy's per-host TLS certificates."""

from __future__ import annotations

import ssl
import threading
from typing import TYPE_CHECKING

import trustme

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["TestCertificateAuthority"]


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
