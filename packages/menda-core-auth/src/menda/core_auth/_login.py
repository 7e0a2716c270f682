"""The Menda CLI's token file ``~/.menda/tokens/cache/.token``: user logins, one INI section each.

``menda auth login`` writes the file; we read it, and write back only what the
CLI itself would write (a refreshed login, in its six keys and value formats),
replacing one section and keeping every other one. A file we cannot parse is
never rewritten. Reads never raise: any problem is "no login".
"""

from __future__ import annotations

import contextlib
import logging
import math
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, NamedTuple

from menda.core_auth._clock import utcnow
from menda.core_auth._files import atomic_write, ensure_private_dir, read_regular_file

if TYPE_CHECKING:
    import configparser
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from menda.core_auth._lock import FileLock

__all__ = ["LOGIN_MARGIN", "CliTokenFile", "Login", "LoginFileState"]

log = logging.getLogger("menda.core_auth")

#: A login is used only while more than this is left (the CLI's own rule).
LOGIN_MARGIN = 60
#: A login cached further in the future than this means a wrong clock, not a login.
_MAX_AHEAD = timedelta(hours=24).total_seconds()
_KEYS = ("id_token", "access_token", "refresh_token", "expires_in", "token_type", "cached_at")
_MAX_FILE_BYTES = 1 << 20
_LOCK_NAME = ".token.lock"


class Login(NamedTuple):
    """A user login as the Menda CLI stores it; no token value shows in its repr."""

    # A NamedTuple rather than a frozen dataclass: building a dataclass costs
    # about 0.3 ms at import, and keyring imports this on every install.

    access_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    id_token: str = ""
    refresh_token: str = ""
    cached_at: float | None = None

    @property
    def bearer(self) -> str:
        """The token to present to menda cloud: the id token when there is one."""
        return self.id_token or self.access_token

    @property
    def expires_at(self) -> datetime | None:
        """When the login stops being valid (before the margin), or None when never cached."""
        if self.cached_at is None:
            return None
        try:
            return datetime.fromtimestamp(self.cached_at + self.expires_in, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None

    def is_valid(self, now: datetime | None = None) -> bool:
        """The CLI's rule: ``now - cached_at < expires_in - 60``; a future ``cached_at`` is not."""
        if self.cached_at is None:
            return False
        current = (now or utcnow()).timestamp()
        elapsed = current - self.cached_at
        return -_MAX_AHEAD <= elapsed < self.expires_in - LOGIN_MARGIN

    def is_from_the_future(self, now: datetime | None = None) -> bool:
        """True when ``cached_at`` lies more than a day ahead: the system clock is wrong."""
        if self.cached_at is None:
            return False
        return self.cached_at - (now or utcnow()).timestamp() > _MAX_AHEAD

    def section(self) -> dict[str, str]:
        """The six keys in the CLI's order and value formats (``str(int)``, ``str(float)``)."""
        return {
            "id_token": self.id_token,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_in": str(self.expires_in),
            "token_type": self.token_type,
            "cached_at": "" if self.cached_at is None else str(float(self.cached_at)),
        }

    def __repr__(self) -> str:
        return (
            f"Login(access_token='***', expires_in={self.expires_in!r}, "
            f"token_type={self.token_type!r}, id_token={'***' if self.id_token else ''!r}, "
            f"refresh_token={'***' if self.refresh_token else ''!r}, "
            f"cached_at={self.cached_at!r})"
        )


def login_from_section(values: Mapping[str, str]) -> Login | None:
    """The login in one section, or None when the CLI's model would reject a value."""
    access_token = values.get("access_token", "").strip()
    raw_expires = values.get("expires_in", "").strip()
    token_type = values.get("token_type", "").strip()
    if (
        not access_token
        or not token_type
        or not raw_expires.isdigit()
        or not raw_expires.isascii()
        or len(raw_expires) > 12
    ):
        return None
    raw_cached = values.get("cached_at", "").strip()
    cached_at: float | None = None
    if raw_cached:
        try:
            cached_at = float(raw_cached)
        except ValueError:
            return None
        if not math.isfinite(cached_at):
            return None
    from menda.core_auth._entries import token_is_sound

    id_token = values.get("id_token", "").strip()
    refresh_token = values.get("refresh_token", "").strip()
    # A value that no HTTP header can carry is not a token: no login, rather than a
    # request that fails on our side.
    if not all(token_is_sound(v) for v in (access_token, id_token, refresh_token) if v):
        return None
    return Login(
        access_token=access_token,
        expires_in=int(raw_expires),
        token_type=token_type,
        id_token=id_token,
        refresh_token=refresh_token,
        cached_at=cached_at,
    )


class LoginFileState(NamedTuple):
    """What is known about the token file, for ``diagnose``; never a token."""

    path: Path
    exists: bool
    parses: bool
    mode: int | None
    profiles: tuple[str, ...]
    problem: str | None = None


def _parser() -> configparser.ConfigParser:
    import configparser

    # Interpolation off: we must read (and write back) every value exactly as stored.
    return configparser.ConfigParser(interpolation=None, strict=True)


def _writable_value(value: str) -> bool:
    # The CLI reads the file with interpolation on: a '%' would break its reader, and
    # a line break would break the INI syntax.
    return "%" not in value and "\n" not in value and "\r" not in value and value.isprintable()


def _writable_profile(name: str) -> bool:
    # configparser gives [DEFAULT] a meaning of its own, and ']' would end the header.
    return bool(name.strip()) and name != "DEFAULT" and "]" not in name and _writable_value(name)


class CliTokenFile:
    """The Menda CLI's token file. Reads never raise; writes return False when impossible."""

    def __init__(self, path: Path, *, usable: bool = True) -> None:
        self.path = path
        # False when the home directory is unknown: the path is then not a real place.
        self._usable = usable

    def __repr__(self) -> str:
        return f"CliTokenFile({str(self.path)!r})"

    def _parse(self) -> tuple[configparser.ConfigParser | None, str | None]:
        """The parsed file (None when missing) and, when it cannot be used, why."""
        import configparser

        if not self._usable:
            return None, "cannot be located (the home directory is unknown)"
        try:
            data = read_regular_file(self.path, _MAX_FILE_BYTES)
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError) as exc:
            return None, f"cannot be read ({exc.strerror if isinstance(exc, OSError) else exc})"
        parser = _parser()
        try:
            # Universal newlines, as the CLI's own reader (a text-mode open) sees the file.
            text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
            parser.read_string(text, source=str(self.path))
        except (UnicodeDecodeError, configparser.Error, ValueError, TypeError, RecursionError):
            # Never echo the parse error: it quotes the line, which holds a token.
            return None, "is not a valid INI file"
        return parser, None

    def load(self, profile: str) -> Login | None:
        """The login stored for ``profile``, or None (missing, unparseable, bad values)."""
        parser, problem = self._parse()
        if problem is not None:
            log.debug("the Menda CLI's token file %s %s; no login read", self.path, problem)
            return None
        if parser is None or not parser.has_section(profile):
            return None
        login = login_from_section(dict(parser.items(profile, raw=True)))
        if login is None:
            log.debug("login %r in %s has missing or bad values; ignoring it", profile, self.path)
        return login

    def state(self) -> LoginFileState:
        """Whether the file exists and parses, its mode and its sections."""
        import stat

        parser, problem = self._parse()
        mode: int | None = None
        if self._usable:
            with contextlib.suppress(OSError):
                mode = stat.S_IMODE(self.path.lstat().st_mode)
        return LoginFileState(
            path=self.path,
            exists=mode is not None,
            parses=problem is None and parser is not None,
            mode=mode,
            profiles=tuple(parser.sections()) if parser is not None else (),
            problem=problem,
        )

    def store(self, profile: str, login: Login) -> bool:
        """Replace ``profile``'s section, keeping every other one; False when not written.

        A file that exists but does not parse is never rewritten: it holds the
        CLI's other logins. Call this while holding :meth:`lock`.
        """
        values = login.section()
        if not all(_writable_value(v) for v in values.values()) or not _writable_profile(profile):
            log.debug("not writing login %r: a value cannot be stored in the CLI's format", profile)
            return False
        return self._rewrite(lambda parser: parser.__setitem__(profile, values))

    def remove(self, profile: str) -> bool:
        """Remove ``profile``'s login, keeping every other one; True when it was there."""
        removed: list[bool] = []
        written = self._rewrite(lambda parser: removed.append(parser.remove_section(profile)))
        return written and any(removed)

    def _rewrite(self, change: Callable[[configparser.ConfigParser], object]) -> bool:
        import io

        parser, problem = self._parse()
        if problem is not None:
            log.debug("not rewriting %s: it %s", self.path, problem)
            return False
        if parser is None:
            parser = _parser()
        change(parser)
        if not ensure_private_dir(self.path.parent):
            return False
        buffer = io.StringIO()
        parser.write(buffer)
        try:
            data = buffer.getvalue().encode("utf-8")
        except UnicodeError:
            return False
        return atomic_write(self.path, data)

    def lock(self, *, timeout: float = 30.0) -> FileLock:
        """Exclusive lock on ``.token.lock`` beside the file, waiting at most ``timeout``."""
        from menda.core_auth._lock import FileLock

        return FileLock(self.path.with_name(_LOCK_NAME) if self._usable else None, timeout)
