"""Faults the emulator can inject into the next N requests to an endpoint."""

from __future__ import annotations

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


@dataclass(frozen=True)
class Status:
    """Answer with ``code`` instead of the real response.

    Without ``body`` the answer is an OAuth-style JSON error whose ``error`` is
    ``error`` or a code that fits the status and endpoint. ``retry_after`` is sent
    as the ``Retry-After`` header: seconds (int) or an HTTP-date (str).
    """

    kind: ClassVar[str] = "status"

    code: int
    retry_after: str | int | None = None
    body: str | None = None
    content_type: str = "application/json"
    error: str | None = None


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


@dataclass(frozen=True)
class NonJSON:
    """Answer ``status`` with a body that is not JSON, as a proxy's error page would be."""

    kind: ClassVar[str] = "nonjson"

    status: int = 502
    body: str = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    content_type: str = "text/html; charset=utf-8"


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
    """The JSON form used by the admin API: ``{"kind": "status", "code": 503, ...}``."""
    return {"kind": fault.kind, **asdict(fault)}


def fault_from_dict(data: Mapping[str, Any]) -> Fault:
    """Build a fault from its JSON form; raises ``ValueError`` when it is not one."""
    kind = data.get("kind")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(_KINDS)}")
    known = {f.name for f in fields(cls)}
    params = {k: v for k, v in data.items() if k != "kind"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"fault {kind!r} has no parameter(s) {unknown}")
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for fault {kind!r}: {exc}") from None
