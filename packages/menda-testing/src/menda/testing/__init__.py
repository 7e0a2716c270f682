"""Local menda cloud emulator, fake CodeArtifact repository and proxy, pytest fixtures and menda-demo (unpublished)."""

from __future__ import annotations

__all__: list[str] = []
