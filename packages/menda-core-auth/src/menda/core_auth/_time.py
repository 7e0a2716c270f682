"""Time on the wire and in files: RFC 3339 in UTC, and expiry checks with a margin."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from menda.core_auth._clock import utcnow

if TYPE_CHECKING:
    import re

__all__ = ["format_time", "is_fresh", "parse_time"]


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with ``Z``, whole seconds (rounding down keeps margins safe)."""
    v = _as_utc(value)
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}Z"


_TIME_RE: re.Pattern[str] | None = None


def parse_time(value: object) -> datetime | None:
    """Parse RFC 3339 (``Z`` or numeric offset) to an aware UTC datetime; None if invalid.

    Hand-written because ``datetime.fromisoformat`` on Python 3.10 takes neither
    ``Z`` nor fractions that are not 3 or 6 digits long.
    """
    global _TIME_RE  # noqa: PLW0603 - compiled once, on first use, to keep import cheap
    if not isinstance(value, str) or len(value) > 64:
        return None
    if _TIME_RE is None:
        import re

        _TIME_RE = re.compile(
            r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
            r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
            re.ASCII,
        )
    match = _TIME_RE.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    try:
        micro = int((frac or "0").ljust(6, "0")[:6])
        # A leap second (60) is read as 59: we only ever compare expiries.
        parsed = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            min(int(second), 59),
            micro,
            tzinfo=timezone.utc,
        )
        if not zulu:
            hours, minutes = int(off_h), int(off_m)
            if hours > 23 or minutes > 59:
                return None
            offset = timedelta(hours=hours, minutes=minutes)
            parsed = parsed - offset if sign == "+" else parsed + offset
    except (ValueError, OverflowError):
        return None
    return parsed


def is_fresh(
    expires_at: datetime, now: datetime | None, margin: timedelta, ahead: timedelta
) -> bool:
    """True when ``expires_at`` is more than ``margin`` and at most ``ahead`` from now."""
    current = _as_utc(now if now is not None else utcnow())
    try:
        return current + margin < _as_utc(expires_at) <= current + ahead
    except OverflowError:
        return False
