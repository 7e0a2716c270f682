"""HTTP client for menda cloud: OAuth2 tokens and CodeArtifact registry-token exchange."""

from __future__ import annotations

__all__: list[str] = []
