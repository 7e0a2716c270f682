"""What one of our cache entries is: its key, its file name, its fields and the checks they share.

Our entries live in ``menda-keyring/`` beside the Menda CLI's ``.token``, one
JSON file per key (``_cache.py`` stores them). Here is what every entry has in
common: how a key becomes a file name, which fields must be there, and when a
token or an entry is fit to use; ``RegistryToken`` is the CodeArtifact token's
entry (the M2M access token's is in ``_access.py``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from menda.core_auth._time import is_fresh, parse_time

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

__all__ = [
    "BAD_TOKEN",
    "ENTRIES_DIR_NAME",
    "NO_ENTRY",
    "REGISTRY_TOKEN_MARGIN",
    "RegistryToken",
    "entry_fields",
    "escape_key",
    "registry_cache_key",
    "same_host",
    "text_field",
    "token_is_sound",
]

#: A registry token is used only while it has more than this left (an install that
#: starts now must not outlive its token).
REGISTRY_TOKEN_MARGIN = timedelta(minutes=15)
# CodeArtifact tokens last at most 12 h; allow a little skew on top.
_REGISTRY_TOKEN_MAX_AHEAD = timedelta(hours=12, minutes=5)

#: Our directory inside the cache directory; the CLI's ``.token`` file sits beside it.
ENTRIES_DIR_NAME = "menda-keyring"
_SAFE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# The rule menda-cloud-client applies to every token it receives: an entry holding
# anything else was not written by us, and would break a header or the installer.
_MAX_TOKEN_LENGTH = 16 * 1024
# Why an entry is not used; _access.py gives the same reasons for access tokens.
BAD_TOKEN = "the token holds characters a token cannot have, or is too long"  # noqa: S105
NO_ENTRY = "no entry, or the entry is not a readable JSON object"


class RegistryToken(NamedTuple):
    """A CodeArtifact authorization token as cached; the token never shows in its repr."""

    token: str
    expires_at: datetime
    host: str
    identity: str
    domain: str
    domain_owner: str
    region: str

    def is_valid(self, now: datetime | None = None) -> bool:
        """True when more than 15 min are left and the expiry is within 12 h (+5 min)."""
        return is_fresh(self.expires_at, now, REGISTRY_TOKEN_MARGIN, _REGISTRY_TOKEN_MAX_AHEAD)

    def __repr__(self) -> str:
        return (
            f"RegistryToken(token='***', expires_at={self.expires_at!r}, host={self.host!r}, "
            f"identity={self.identity!r}, domain={self.domain!r}, "
            f"domain_owner={self.domain_owner!r}, region={self.region!r})"
        )


def registry_cache_key(identity_key: str, host: str, domain: str, owner: str, region: str) -> str:
    """``registry-`` + the first 32 hex digits of SHA-256 of the NUL-joined parts."""
    # hashlib loads OpenSSL; only callers that need a registry key pay for it.
    import hashlib

    material = "\0".join((identity_key, host, domain, owner, region))
    digest = hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()
    return "registry-" + digest[:32]


def escape_key(key: str) -> str:
    """Escape every byte outside ``[A-Za-z0-9_-]`` as ``%XX``: injective, never a path."""
    return "".join(
        chr(byte) if byte in _SAFE_BYTES else f"%{byte:02X}"
        for byte in key.encode("utf-8", "surrogatepass")
    )


def text_field(entry: Mapping[str, Any], name: str) -> str:
    """The field as a non-empty string; raises ``ValueError`` when it is not one."""
    value = entry.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(name)
    return value


def token_is_sound(value: str) -> bool:
    """Visible ASCII only (no space, no control character), at most 16 KiB."""
    return (
        0 < len(value) <= _MAX_TOKEN_LENGTH
        and value.isascii()
        and value.isprintable()
        and " " not in value
    )


def entry_fields(
    entry: Mapping[str, Any], names: tuple[str, ...], host: str
) -> tuple[dict[str, str], datetime] | str:
    """The string fields ``names`` and ``expires_at`` of an entry written for ``host``,
    or why the entry cannot be used (the checks every kind of entry shares)."""
    try:
        fields = {name: text_field(entry, name) for name in (*names, "host")}
    except ValueError as exc:
        return f"field '{exc}' is missing or mistyped"
    expires_at = parse_time(entry.get("expires_at"))
    if expires_at is None:
        return "'expires_at' is missing or not RFC 3339"
    if not same_host(fields["host"], host):
        return "it was issued by another host"
    return fields, expires_at


def same_host(cached: str, host: str) -> bool:
    """True when two host settings name the same menda cloud once normalised."""
    if cached == host:
        return True
    from menda.core_auth._host import normalize_host
    from menda.error.exceptions import MendaConfigError

    try:
        return normalize_host(cached, setting="cached host") == normalize_host(host, setting="host")
    except MendaConfigError:
        return False
