"""What the forward proxy and the fake service behind it say to each other."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from typing import Protocol

__all__ = ["ProxyApplication", "ProxyRequest", "ProxyResponse"]


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
