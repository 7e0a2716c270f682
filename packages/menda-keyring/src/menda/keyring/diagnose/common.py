"""Small pieces every part of the report uses: errors as data, durations, expiries, masked URLs.

Nothing here ever takes a secret: an expiry is a time, an error is a class and a
message the libraries already scrubbed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from menda.core_auth import format_time
from menda.error import MendaError

if TYPE_CHECKING:
    from datetime import datetime, timedelta

__all__ = ["duration", "error_fact", "expiry_fact", "mask_url", "problem_line"]


def duration(delta: timedelta) -> str:
    """``3 days``, ``3 h 5 min``, ``12 min``, ``40 s``; negative with a leading ``-``."""
    seconds = int(delta.total_seconds())
    sign = "" if seconds >= 0 else "-"
    seconds = abs(seconds)
    if seconds >= 2 * 86400:
        return f"{sign}{seconds // 86400} days"
    if seconds >= 3600:
        return f"{sign}{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{sign}{seconds // 60} min"
    return f"{sign}{seconds} s"


def error_fact(exc: BaseException) -> dict[str, str]:
    """The error as data: our own errors in full (their text holds no secret), others by class."""
    if isinstance(exc, MendaError):
        return {"class": type(exc).__name__, "message": str(exc)}
    # Not ours to word, and its text may quote anything (a secret included).
    return {
        "class": type(exc).__name__,
        "message": f"unexpected {type(exc).__name__}: rerun with MENDA_LOG_LEVEL=debug "
        "for the trace, and report it",
    }


def problem_line(error: dict[str, str]) -> str:
    """``<message> [<class>]``, as the backend prints it."""
    return f"{error['message']} [{error['class']}]"


def expiry_fact(
    expires_at: datetime, *, valid: bool, now: datetime, margin: timedelta
) -> dict[str, Any]:
    """State and wording of a cached token's expiry; ``valid`` is the cache's own verdict."""
    when = format_time(expires_at)
    fact: dict[str, Any] = {"expires_at": when}
    if valid:
        fact["state"] = "valid"
        fact["usable_until"] = format_time(expires_at - margin)
        fact["detail"] = f"valid until {when} (used for {duration(expires_at - margin - now)} more)"
    elif expires_at <= now:
        fact["state"] = "expired"
        fact["detail"] = f"expired at {when} ({duration(now - expires_at)} ago)"
    elif expires_at - margin <= now:
        fact["state"] = "expiring"
        fact["detail"] = (
            f"expires at {when}, within the {duration(margin)} margin: a new one will be fetched"
        )
    else:
        fact["state"] = "implausible"
        fact["detail"] = f"expires at {when}, implausibly far ahead (clock wrong?): it is not used"
    return fact


def mask_url(url: str) -> str:
    """``url`` with a password in its userinfo replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password or "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{hostport}").geturl()
