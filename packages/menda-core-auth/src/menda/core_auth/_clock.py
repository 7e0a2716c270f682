"""The one place that says what time it is, so tests can move the clock instead of sleeping."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["utcnow"]


def _source() -> datetime:
    return datetime.now(timezone.utc)


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC.

    Tests replace ``menda.core_auth._clock._source``; this looks it up on every call.
    """
    return _source()
