"""The emulator's answers: JSON success, the service's errors, and injected faults."""

from __future__ import annotations

import json
from typing import Any

from menda.testing._faults import Delay, Drop, Fault, Malformed, NonJSON, Status, Truncate
from menda.testing._http import Reply

__all__ = ["UNAUTHORIZED", "Refusal", "detail_reply", "fault_reply", "json_reply"]

# What API Gateway itself answers when the authorizer's identity source
# (the authorizationToken header) is missing: the request never reaches the service.
UNAUTHORIZED: dict[str, Any] = {"message": "Unauthorized"}


class Refusal(Exception):
    """Raised inside a request to answer ``status`` with ``{"detail": ...}`` (or ``body``)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.body = {"detail": detail} if body is None else body
        self.headers = headers or {}

    def reply(self) -> Reply:
        reply = json_reply(self.body, self.status)
        reply.headers.update(self.headers)
        return reply


def json_reply(payload: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(payload).encode())


def detail_reply(status: int, detail: str) -> Reply:
    """The service's error shape (FastAPI): ``{"detail": "..."}``."""
    return json_reply({"detail": detail}, status)


# A body cut short, shaped like the start of each endpoint's real answer.
_PARTIAL = {
    "token": b'{"access_token": "tr',
    "registry": b'{"token": "tr',
    "discovery": b'{"app_client_id": "tr',
    "device_authorize": b'{"device_code": "tr',
    "device_token": b'{"id_token": "tr',
    "whoami": b'{"tenant_id": "tr',
}


def fault_reply(fault: Fault, endpoint: str) -> Reply:
    """The answer an injected fault gives instead of the endpoint's own (not for Delay)."""
    if isinstance(fault, Status):
        if fault.body is not None:
            raw = fault.body if isinstance(fault.body, bytes) else fault.body.encode()
            reply = Reply(fault.code, raw, fault.content_type)
        else:
            body: dict[str, Any] = {"detail": fault.detail or f"injected fault: HTTP {fault.code}"}
            if fault.error is not None:
                body["error"] = fault.error
            reply = json_reply(body, fault.code)
        if fault.retry_after is not None:
            reply.headers["Retry-After"] = str(fault.retry_after)
        reply.headers.update(fault.headers)
        return reply
    if isinstance(fault, Malformed):
        reply = json_reply(fault.body, fault.status)
        reply.headers.update(fault.headers)
        return reply
    if isinstance(fault, NonJSON):
        raw = fault.body if isinstance(fault.body, bytes) else fault.body.encode()
        reply = Reply(fault.status, raw, fault.content_type)
        reply.headers.update(fault.headers)
        return reply
    if isinstance(fault, Drop):
        return Reply(0, mode="drop")
    if isinstance(fault, Truncate):
        return Reply(fault.status, _PARTIAL.get(endpoint, b'{"'), mode="truncate")
    if isinstance(fault, Delay):
        raise TypeError("a Delay answers normally; it has no reply of its own")
    raise TypeError(f"not a fault: {fault!r}")
