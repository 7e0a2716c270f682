"""The emulator's identities and tokens as values: principals, grants, registry tokens."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = [
    "DEFAULT_REGISTRY",
    "AccessGrant",
    "Principal",
    "RefreshGrant",
    "Registry",
    "TokenKind",
    "domain_set",
    "make_registry_token",
    "registry_tuple",
]

Registry = tuple[str, str, str]  # (domain, domain owner, region)
DEFAULT_REGISTRY: Registry = ("menda-private", "058264169513", "eu-west-1")
TokenKind = Literal["access_token", "id_token"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_registry_token(issued: int, expires: int) -> str:
    """A token shaped like CodeArtifact's: a JWE whose header carries ``isu`` and ``exp``.

    Only the header means anything; the other four parts are random, so the
    token is unique and cannot be guessed.
    """
    header = {
        "ver": 1,
        "isu": issued,
        "enc": "A128GCM",
        "tag": _b64url(secrets.token_bytes(16)),
        "exp": expires,
        "alg": "A128GCMKW",
        "iv": _b64url(secrets.token_bytes(12)),
    }
    parts = [json.dumps(header, separators=(",", ":")).encode()]
    parts += [secrets.token_bytes(n) for n in (16, 12, 160, 16)]
    return ".".join(_b64url(part) for part in parts)


def registry_tuple(value: Iterable[str] | None) -> Registry | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError("registry must be a (domain, owner, region) tuple, not one string")
    parts = tuple(value)
    if len(parts) != 3 or not all(isinstance(p, str) and p for p in parts):
        raise ValueError("registry must be (domain, owner, region), three non-empty strings")
    return parts[0], parts[1], parts[2]


def domain_set(domains: Iterable[str] | None) -> set[str] | None:
    if isinstance(domains, str):
        raise TypeError("domains must be an iterable of names, not one string")
    return None if domains is None else set(domains)


@dataclass
class Principal:
    name: str
    kind: Literal["m2m", "u2m"]
    client_id: str
    secret: str | None = field(repr=False)
    domains: set[str] | None  # None: every domain
    registry: Registry | None  # None: the tenant's
    email: str | None = None


@dataclass
class AccessGrant:
    identity: str
    kind: TokenKind
    expires_at: datetime
    revoked: bool = False


@dataclass
class RefreshGrant:
    identity: str
    client_id: str
    revoked: bool = False
