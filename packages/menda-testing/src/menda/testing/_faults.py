"""Faults the emulator can inject into the next N requests to an endpoint."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, TypeAlias

__all__ = [
    "Delay",
    "Drop",
    "Fault",
    "Malformed",
    "NonJSON",
    "Status",
    "Truncate",
    "fault_from_dict",
    "fault_to_dict",
]


def _no_headers() -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Status:
    """Answer with ``code`` instead of the real response.

    Without ``body`` the answer is the service's JSON error ``{"detail": ...}``
    (``detail``, else "injected fault: HTTP <code>"), plus an OAuth-style ``"error"``
    when ``error`` is given. ``body`` is sent as is (``bytes`` may be any bytes, not
    UTF-8 say). ``retry_after`` is sent as the ``Retry-After`` header: seconds (int)
    or an HTTP-date (str); ``headers`` are added to the answer (``x-amzn-RequestId``...).
    """

    kind: ClassVar[str] = "status"

    code: int
    retry_after: str | int | None = None
    body: str | bytes | None = None
    content_type: str = "application/json"
    error: str | None = None
    detail: str | None = None
    headers: Mapping[str, str] = field(default_factory=_no_headers)


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds``, then answer normally (the client's read timeout may fire first)."""

    kind: ClassVar[str] = "delay"

    seconds: float


def _wrong_shape() -> Any:
    return {"unexpected": "shape"}


@dataclass(frozen=True)
class Malformed:
    """Answer ``status`` (200) with ``body`` serialised as JSON: valid JSON of the wrong shape."""

    kind: ClassVar[str] = "malformed"

    body: Any = field(default_factory=_wrong_shape)
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=_no_headers)


@dataclass(frozen=True)
class NonJSON:
    """Answer ``status`` with a body that is not JSON, as a proxy's error page would be."""

    kind: ClassVar[str] = "nonjson"

    status: int = 502
    body: str | bytes = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    content_type: str = "text/html; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=_no_headers)


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering."""

    kind: ClassVar[str] = "drop"


@dataclass(frozen=True)
class Truncate:
    """Send headers whose Content-Length exceeds the body, send part of it, then close."""

    kind: ClassVar[str] = "truncate"

    status: int = 200


Fault: TypeAlias = Status | Delay | Malformed | NonJSON | Drop | Truncate

_KINDS: dict[str, type[Fault]] = {
    cls.kind: cls for cls in (Status, Delay, Malformed, NonJSON, Drop, Truncate)
}


def fault_to_dict(fault: Fault) -> dict[str, Any]:
    """The JSON form used by the admin API: ``{"kind": "status", "code": 503, ...}``.

    A ``bytes`` body becomes ``{"base64": "..."}``.
    """
    data = {"kind": fault.kind, **asdict(fault)}
    for name, value in data.items():
        if isinstance(value, bytes):
            data[name] = {"base64": base64.b64encode(value).decode("ascii")}
    return data


def fault_from_dict(data: Mapping[str, Any]) -> Fault:
    """Build a fault from its JSON form; raises ``ValueError`` when it is not one."""
    kind = data.get("kind")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(_KINDS)}")
    known = {f.name for f in fields(cls)}
    params = {k: _from_json(v) for k, v in data.items() if k != "kind"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"fault {kind!r} has no parameter(s) {unknown}")
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for fault {kind!r}: {exc}") from None


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"base64"}:
        try:
            return base64.b64decode(value["base64"], validate=True)
        except (ValueError, TypeError):
            raise ValueError("a base64 body must be valid base64") from None
    return value
