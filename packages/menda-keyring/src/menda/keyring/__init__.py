"""A keyring backend that supplies short-lived AWS CodeArtifact tokens through menda cloud."""

from __future__ import annotations

__all__: list[str] = []
