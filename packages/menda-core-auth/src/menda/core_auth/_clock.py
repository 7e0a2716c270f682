"""The one place that says what time it is, so tests can move the clock instead of sleeping."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["set_clock", "utcnow"]


def _real_now() -> datetime:
    return datetime.now(timezone.utc)


_source: Callable[[], datetime] = _real_now


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC (the clock set by :func:`set_clock`)."""
    return _source()


def set_clock(source: Callable[[], datetime] | None) -> Callable[[], datetime]:
    """Make ``utcnow()`` call ``source`` (an aware datetime each call); None restores real time.

    Returns the previous source, so a test can put it back. Every expiry decision in
    menda.core_auth and menda.cloud_client reads the time through ``utcnow()``.
    """
    global _source  # noqa: PLW0603 - the seam itself
    previous = _source
    _source = source if source is not None else _real_now
    return previous
