"""Values the emulator hands to tests: logins, minted registry tokens, the request log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = ["MintedRegistryToken", "RecordedRequest", "UserLogin", "format_rfc3339", "mask"]


# The emulator's token prefixes: access, refresh, registry, generated client secret.
_PREFIXES = frozenset({"mat", "mrt", "caat", "mcs"})


def format_rfc3339(moment: datetime) -> str:
    """``2026-11-27T18:00:00Z``: UTC, whole seconds, ``Z``."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no defined instant; pass an aware one")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def mask(secret: str | None) -> str:
    """What a repr shows instead of a secret: its recognisable prefix only."""
    if secret is None:
        return "None"
    prefix, sep, _ = secret.partition("_")
    return f"'{prefix}_***'" if sep and prefix in _PREFIXES else "'***'"


@dataclass(frozen=True, repr=False)
class UserLogin:
    """A U2M login as ``menda auth login`` would have obtained and cached it."""

    name: str
    client_id: str
    access_token: str
    refresh_token: str
    expires_at: datetime

    def __repr__(self) -> str:
        return (
            f"UserLogin(name={self.name!r}, client_id={self.client_id!r}, "
            f"access_token={mask(self.access_token)}, refresh_token={mask(self.refresh_token)}, "
            f"expires_at={self.expires_at.isoformat()!r})"
        )

    def cache_fields(self) -> dict[str, Any]:
        """Keyword arguments for :func:`menda.testing.write_cached_login` (besides host)."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "client_id": self.client_id,
        }


@dataclass(frozen=True, repr=False)
class MintedRegistryToken:
    """A CodeArtifact token the emulator issued, and what it was issued for."""

    token: str
    identity: str
    domain: str
    domain_owner: str
    region: str
    repository: str | None
    format: str | None
    expires_at: datetime

    def __repr__(self) -> str:
        return (
            f"MintedRegistryToken(token={mask(self.token)}, identity={self.identity!r}, "
            f"domain={self.domain!r}, domain_owner={self.domain_owner!r}, "
            f"region={self.region!r}, repository={self.repository!r}, format={self.format!r}, "
            f"expires_at={self.expires_at.isoformat()!r})"
        )


@dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator received. It holds no secret: they are never recorded.

    ``endpoint`` is ``"token"``, ``"registry"`` or ``"other"``; ``status`` is ``None``
    when the connection was dropped; ``fault`` is the kind of injected fault, if any;
    ``identity`` is who the request authenticated as (client id or user name), when it did.
    ``body`` is the parsed JSON of a registry request, or the non-secret form fields of a
    token request.
    """

    method: str
    path: str
    endpoint: str
    status: int | None
    grant_type: str | None
    client_id: str | None
    body: Any
    time: datetime
    identity: str | None = None
    fault: str | None = None
    request_id: str | None = None
    user_agent: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "endpoint": self.endpoint,
            "status": self.status,
            "grant_type": self.grant_type,
            "client_id": self.client_id,
            "body": self.body,
            "time": self.time.isoformat(),
            "identity": self.identity,
            "fault": self.fault,
            "request_id": self.request_id,
            "user_agent": self.user_agent,
        }
