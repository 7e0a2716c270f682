"""Values the emulator hands to tests: logins, minted registry tokens, the request log."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

__all__ = [
    "SECRET_NAMES",
    "MintedRegistryToken",
    "RecordedRequest",
    "UserLogin",
    "describe_request",
    "format_rfc3339",
    "mask",
]

# Parameter and body field names whose values are secret: never recorded.
SECRET_NAMES = frozenset(
    {
        "client_secret",
        "refresh_token",
        "device_code",
        "code_verifier",
        "code",
        "password",
        "assertion",
        "access_token",
        "id_token",
        "token",
    }
)


# The emulator's token prefixes: access, id, refresh, device code, generated client secret.
_PREFIXES = frozenset({"mat", "mit", "mrt", "mdc", "mcs"})


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
    """A U2M login as ``menda auth login`` obtains it: id, access and refresh token.

    ``client_id`` is the public client (the tenant's login app) the login is bound
    to; ``issued_at`` and ``expires_at`` are the emulator's clock at login and at
    the expiry of the id and access token.
    """

    name: str
    client_id: str
    access_token: str
    refresh_token: str
    expires_at: datetime
    id_token: str
    issued_at: datetime

    @property
    def expires_in(self) -> int:
        """The lifetime the token endpoint announced, in seconds."""
        return int((self.expires_at - self.issued_at).total_seconds())

    def __repr__(self) -> str:
        return (
            f"UserLogin(name={self.name!r}, client_id={self.client_id!r}, "
            f"id_token={mask(self.id_token)}, access_token={mask(self.access_token)}, "
            f"refresh_token={mask(self.refresh_token)}, "
            f"expires_at={self.expires_at.isoformat()!r})"
        )

    def cache_fields(self, now: datetime | None = None) -> dict[str, Any]:
        """Keyword arguments for :func:`menda.testing.write_cached_login`.

        ``cached_at`` is ``now`` (default: the moment of login, when the CLI writes
        it) and ``expires_in`` the lifetime left then, so the cached login expires
        when the emulator's tokens do.
        """
        moment = self.issued_at if now is None else now
        remaining = int((self.expires_at - moment).total_seconds())
        return {
            "id_token": self.id_token,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_in": remaining,
            "cached_at": moment.timestamp(),
        }


@dataclass(frozen=True, repr=False)
class MintedRegistryToken:
    """A CodeArtifact token the emulator issued, and for which registry."""

    token: str
    identity: str
    domain: str
    domain_owner: str
    region: str
    expires_at: datetime
    issued_at: datetime

    def __repr__(self) -> str:
        return (
            f"MintedRegistryToken(token={mask(self.token)}, identity={self.identity!r}, "
            f"domain={self.domain!r}, domain_owner={self.domain_owner!r}, "
            f"region={self.region!r}, expires_at={self.expires_at.isoformat()!r})"
        )


@dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator received. It holds no secret: they are never recorded.

    - ``endpoint``: ``"token"``, ``"registry"``, ``"discovery"``, ``"device_authorize"``,
      ``"device_token"``, ``"whoami"`` or ``"other"``.
    - ``status``: ``None`` when the connection was dropped; ``fault``: the kind of
      injected fault, if any; ``identity``: who the request authenticated as (client
      id or user name), when it did.
    - ``grant_type`` and ``client_id``: from the query string (or the device-token JSON).
    - ``params``: the query parameters that are not secret (never ``client_secret``,
      ``refresh_token``, ``device_code``, ``code_verifier``, a token).
    - ``body``: the non-secret fields of a JSON-object or form body, else ``None``;
      ``has_body``: whether the request had a body at all; ``content_type``: as sent.
    - ``token_header``: the header that carried a token or credentials
      (``"authorizationToken"`` or ``"Authorization"``), ``token_scheme``: ``"Bearer"``
      or ``"Basic"`` when the value started with it (``None`` for a raw token), and
      ``token_kind``: ``"access_token"`` or ``"id_token"`` when the emulator knew it.
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
    params: dict[str, str] | None = None
    has_body: bool = False
    content_type: str | None = None
    token_header: str | None = None
    token_scheme: str | None = None
    token_kind: str | None = None

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
            "params": self.params,
            "has_body": self.has_body,
            "content_type": self.content_type,
            "token_header": self.token_header,
            "token_scheme": self.token_scheme,
            "token_kind": self.token_kind,
        }


def describe_request(headers: Mapping[str, str], query: str, body: bytes) -> dict[str, Any]:
    """The fields of a :class:`RecordedRequest` that come from the request itself.

    Never a secret (the names in ``SECRET_NAMES`` are dropped, and no token or
    credential is kept), and never an exception, whatever the request holds.
    ``headers`` have lower-case names.
    """
    params = _non_secret(parse_qsl(query, keep_blank_values=True, errors="replace"))
    content_type = headers.get("content-type")
    media = (content_type or "").split(";", 1)[0].strip().lower()
    fields: dict[str, Any] | None = None
    if body and media == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            fields = {k: v for k, v in data.items() if k not in SECRET_NAMES}
    elif body and media == "application/x-www-form-urlencoded":
        text = body.decode("utf-8", errors="replace")
        fields = _non_secret(parse_qsl(text, keep_blank_values=True))
    if "authorizationtoken" in headers:
        header, value = "authorizationToken", headers["authorizationtoken"]
    elif "authorization" in headers:
        header, value = "Authorization", headers["authorization"]
    else:
        header, value = None, ""
    scheme = value.strip().partition(" ")[0]
    merged = {**(fields or {}), **params}
    client_id = merged.get("client_id")
    if client_id is None and scheme == "Basic":
        client_id = _basic_user(value)
    grant_type = merged.get("grant_type")
    return {
        "grant_type": grant_type if isinstance(grant_type, str) else None,
        "client_id": client_id if isinstance(client_id, str) else None,
        "params": params or None,
        "body": fields,
        "has_body": bool(body),
        "content_type": content_type,
        "token_header": header,
        "token_scheme": scheme if scheme in ("Bearer", "Basic") else None,
    }


def _non_secret(pairs: list[tuple[str, str]]) -> dict[str, str]:
    return {name: value for name, value in pairs if name not in SECRET_NAMES}


def _basic_user(value: str) -> str | None:
    """The user part of HTTP Basic credentials (the old client's client id), never the secret."""
    try:
        decoded = base64.b64decode(value.strip()[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, _ = decoded.partition(":")
    return unquote_plus(user) if sep else None
