"""The distribution version, sent in the User-Agent."""

from __future__ import annotations

__version__ = "0.2.0"
