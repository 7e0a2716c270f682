"""Menda configuration, credential resolution and token cache, shared with the Menda CLI."""

from __future__ import annotations

__all__: list[str] = []
