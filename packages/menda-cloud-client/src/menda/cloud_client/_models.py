"""The values the client takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["RegistryCredential", "RegistryRequest"]


@dataclass(frozen=True)
class RegistryRequest:
    """The CodeArtifact repository a registry token is asked for."""

    domain: str
    domain_owner: str
    region: str
    repository: str | None = None
    # "pypi" when the installer asked with a URL path, None for a bare host.
    format: str | None = None


@dataclass(frozen=True)
class RegistryCredential:
    """A CodeArtifact token and the username that goes with it."""

    token: str = field(repr=False)
    expires_at: datetime
    from_cache: bool
    username: str = "aws"

    def __repr__(self) -> str:
        return (
            f"RegistryCredential(token='***', expires_at={self.expires_at!r}, "
            f"from_cache={self.from_cache!r}, username={self.username!r})"
        )
