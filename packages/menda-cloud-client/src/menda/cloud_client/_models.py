"""The values the client takes and returns."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["RegistryCredential", "RegistryRequest"]


class RegistryRequest(NamedTuple):
    """The CodeArtifact repository a registry token is asked for."""

    # A NamedTuple rather than a frozen dataclass: building a dataclass costs
    # about 0.3 ms at import, and keyring imports this on every install.

    domain: str
    domain_owner: str
    region: str
    repository: str | None = None
    # "pypi" when the installer asked with a URL path, None for a bare host.
    format: str | None = None


class RegistryCredential(NamedTuple):
    """A CodeArtifact token and the username that goes with it."""

    token: str
    #: None when neither the answer nor the token tells its lifetime (never cached then).
    expires_at: datetime | None
    from_cache: bool
    username: str = "aws"

    def __repr__(self) -> str:
        return (
            f"RegistryCredential(token='***', expires_at={self.expires_at!r}, "
            f"from_cache={self.from_cache!r}, username={self.username!r})"
        )
