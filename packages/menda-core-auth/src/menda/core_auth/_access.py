"""M2M access tokens as we cache them: the value, when it is usable, and its entry.

Loaded past a registry-token miss only: a lookup answered from the cache never
needs an access token, and keyring pays for every module on every install.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from menda.core_auth._entries import BAD_TOKEN, NO_ENTRY, entry_fields, token_is_sound
from menda.core_auth._time import format_time, is_fresh

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

__all__ = ["ACCESS_TOKEN_MARGIN", "AccessToken", "access_entry", "access_token_from_entry"]

#: An access token is used only while it has more than this left.
ACCESS_TOKEN_MARGIN = timedelta(seconds=60)
# An access token expiring further ahead than this is suspect (clock skew, a bad writer).
_ACCESS_TOKEN_MAX_AHEAD = timedelta(hours=24)


class AccessToken(NamedTuple):
    """A cached M2M access token; the token value never shows in its repr."""

    # A NamedTuple rather than a frozen dataclass: building a dataclass costs
    # about 0.3 ms at import, and keyring imports this on every install.

    access_token: str
    expires_at: datetime
    host: str
    client_id: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret

    def is_valid(self, now: datetime | None = None) -> bool:
        """True when more than 60 s are left and the expiry is not implausibly far away."""
        return is_fresh(self.expires_at, now, ACCESS_TOKEN_MARGIN, _ACCESS_TOKEN_MAX_AHEAD)

    def __repr__(self) -> str:
        return (
            f"AccessToken(access_token='***', expires_at={self.expires_at!r}, "
            f"host={self.host!r}, client_id={self.client_id!r}, token_type={self.token_type!r})"
        )


def access_token_from_entry(
    entry: Mapping[str, Any] | None, *, host: str, client_id: str
) -> tuple[AccessToken | None, str]:
    """The token a cache entry holds for ``host`` and ``client_id``, whatever its expiry,
    with "ok"; else None and why not."""
    if entry is None:
        return None, NO_ENTRY
    names = ("access_token", "client_id", *(("token_type",) if "token_type" in entry else ()))
    checked = entry_fields(entry, names, host)
    if isinstance(checked, str):
        return None, checked
    fields, expires_at = checked
    token_type = fields.get("token_type", "Bearer")
    if fields["client_id"] != client_id:
        return None, "it belongs to another client id"
    if not token_is_sound(fields["access_token"]):
        return None, BAD_TOKEN
    return AccessToken(fields["access_token"], expires_at, host, client_id, token_type), "ok"


def access_entry(token: AccessToken) -> dict[str, str]:
    """The JSON object ``token`` is cached as."""
    return {
        "access_token": token.access_token,
        "token_type": token.token_type,
        "expires_at": format_time(token.expires_at),
        "host": token.host,
        "client_id": token.client_id,
    }
