"""Reading menda cloud's answers: required fields, token checks, lifetimes.

Success bodies are JSON objects; unknown fields are ignored; a missing or
mistyped required field is a ``MendaCloudAPIError`` ("malformed response") that
names the field, never its value.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from menda.core_auth import AccessToken, Login, parse_time, utcnow
from menda.error import MendaCloudAPIError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "login_from_body",
    "m2m_token_from_body",
    "malformed",
    "registry_expiry",
    "text_field",
    "token_field",
]

#: Longer than any sane token lifetime; also keeps timedelta() from overflowing.
MAX_EXPIRES_IN = 10 * 366 * 24 * 3600
#: A token is at most this long; anything longer is not a token.
MAX_TOKEN_LENGTH = 16 * 1024
# CodeArtifact tokens last at most 12 h.
_REGISTRY_MAX_LIFETIME = timedelta(hours=12, minutes=5)


def malformed(what: str, why: str) -> MendaCloudAPIError:
    """The error for a 200 answer that lacks what the contract promises."""
    return MendaCloudAPIError(f"{what}: malformed response (HTTP 200): {why}", status_code=200)


def text_field(body: Mapping[str, Any], name: str, what: str) -> str:
    """A required non-empty string field."""
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise malformed(what, f"'{name}' is missing or not a non-empty string")
    return value


def token_field(body: Mapping[str, Any], name: str, what: str, *, required: bool = True) -> str:
    """A token: visible ASCII only, non-empty, at most 16 KiB (empty when optional and absent).

    A token with a line break or a control character would be printed by the
    installer or break an HTTP header; it is refused, never stored.
    """
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise malformed(what, f"'{name}' is missing or empty")
        return ""
    if not isinstance(value, str):
        raise malformed(what, f"'{name}' is not a string")
    if len(value) > MAX_TOKEN_LENGTH:
        raise malformed(what, f"'{name}' is longer than {MAX_TOKEN_LENGTH} characters")
    if not (value.isascii() and value.isprintable()) or " " in value:
        raise malformed(what, f"'{name}' holds characters a token cannot have")
    return value


def _expires_in(body: Mapping[str, Any], what: str) -> int:
    value = body.get("expires_in")
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= MAX_EXPIRES_IN
    ):
        raise malformed(what, "'expires_in' is missing or not a plausible number of seconds")
    return int(value)


def _token_type(body: Mapping[str, Any], what: str) -> str:
    token_type = body.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise malformed(what, "'token_type' is not Bearer")
    return token_type


def m2m_token_from_body(
    body: Mapping[str, Any], what: str, *, host: str, client_id: str
) -> AccessToken:
    """The access token of a client-credentials answer."""
    access = token_field(body, "access_token", what)
    expires_in = _expires_in(body, what)
    token_type = _token_type(body, what)
    return AccessToken(
        access_token=access,
        expires_at=utcnow() + timedelta(seconds=expires_in),
        host=host,
        client_id=client_id,
        token_type=token_type,
    )


def login_from_body(
    body: Mapping[str, Any], what: str, *, previous_refresh_token: str = ""
) -> Login:
    """A user login from a device-flow or refresh answer, cached now.

    A refresh answer may omit the refresh token: the old one then stays valid.
    """
    access = token_field(body, "access_token", what)
    id_token = token_field(body, "id_token", what, required=False)
    refresh = token_field(body, "refresh_token", what, required=False)
    return Login(
        access_token=access,
        expires_in=_expires_in(body, what),
        token_type=_token_type(body, what),
        id_token=id_token,
        refresh_token=refresh or previous_refresh_token,
        cached_at=utcnow().timestamp(),
    )


def _from_epoch(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _jwe_expiry(token: str) -> datetime | None:
    """``exp`` from the protected header of a CodeArtifact token (a JWE), if it has one.

    The header is base64url JSON such as ``{"ver":1,"isu":…,"enc":"A128GCM","exp":…}``;
    it is not secret, but nothing of the token is ever logged.
    """
    import base64
    import binascii
    import json

    header = token.split(".", 1)[0]
    if not header or len(header) > 4096:
        return None
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    return _from_epoch(data.get("exp"))


def registry_expiry(body: Mapping[str, Any], token: str, what: str) -> datetime | None:
    """When the registry token expires: from the answer (``expires_at``, ``expiration``,
    ``expires_in``), else from the token's own header, else None (do not cache it)."""
    now = utcnow()
    found: datetime | None = None
    for name in ("expires_at", "expiration"):
        if body.get(name) is not None:
            found = parse_time(body.get(name))
            if found is None:
                raise malformed(what, f"'{name}' is not an RFC 3339 time")
            break
    else:
        if body.get("expires_in") is not None:
            found = now + timedelta(seconds=_expires_in(body, what))
        else:
            found = _jwe_expiry(token)
    if found is not None and found > now + _REGISTRY_MAX_LIFETIME:
        # Further ahead than CodeArtifact ever grants: a wrong clock somewhere.
        return None
    return found
