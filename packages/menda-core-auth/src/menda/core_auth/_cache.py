"""The token cache ``~/.menda/tokens/cache/``: one JSON file per key (config-and-cache.md).

A broken cache never breaks a login: every read problem is a miss, every write
problem is "work without caching". Nothing here raises on bad files or directories.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from menda.core_auth._clock import utcnow
from menda.core_auth._config import _home, _HomeUnknownError
from menda.core_auth._env import ENV_TOKEN_CACHE_DIR, env_value

if TYPE_CHECKING:
    import re
    from collections.abc import Mapping
    from contextlib import AbstractContextManager
    from types import TracebackType

__all__ = [
    "ACCESS_TOKEN_MARGIN",
    "ACCESS_TOKEN_MAX_AHEAD",
    "REGISTRY_TOKEN_MARGIN",
    "REGISTRY_TOKEN_MAX_AHEAD",
    "AccessToken",
    "RegistryToken",
    "TokenCache",
    "default_cache_dir",
    "registry_cache_key",
]

log = logging.getLogger(__name__)

#: An access token is used only while it has more than this left.
ACCESS_TOKEN_MARGIN = timedelta(seconds=60)
#: A registry token is used only while it has more than this left (an install that
#: starts now must not outlive its token).
REGISTRY_TOKEN_MARGIN = timedelta(minutes=15)
#: An access token expiring further ahead than this is suspect (clock skew, a bad writer).
ACCESS_TOKEN_MAX_AHEAD = timedelta(hours=24)
#: CodeArtifact tokens last at most 12 h; allow a little skew on top.
REGISTRY_TOKEN_MAX_AHEAD = timedelta(hours=12, minutes=5)

_FILE_MODE = 0o600
_DIR_MODE = 0o700
_SUFFIX = ".token"
_LOCK_SUFFIX = ".token.lock"
# Cache entries are a few hundred bytes; anything huge is not ours.
_MAX_ENTRY_BYTES = 1 << 20
_SAFE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


# --------------------------------------------------------------------------- time


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


def _plausible(
    expires_at: datetime, now: datetime | None, margin: timedelta, ahead: timedelta
) -> bool:
    current = _as_utc(now if now is not None else utcnow())
    try:
        return current + margin < _as_utc(expires_at) <= current + ahead
    except OverflowError:
        return False


# --------------------------------------------------------------------------- values


class AccessToken(NamedTuple):
    """A menda cloud access token as cached; the token values never show in its repr."""

    # A NamedTuple rather than a frozen dataclass: building a dataclass costs
    # about 0.3 ms at import, and keyring imports this on every install.

    access_token: str
    expires_at: datetime
    host: str
    auth_type: str
    client_id: str | None
    refresh_token: str | None = None
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret

    def is_valid(self, now: datetime | None = None) -> bool:
        """True when more than 60 s are left and the expiry is not implausibly far away."""
        return _plausible(self.expires_at, now, ACCESS_TOKEN_MARGIN, ACCESS_TOKEN_MAX_AHEAD)

    def __repr__(self) -> str:
        refresh = None if self.refresh_token is None else "***"
        return (
            f"AccessToken(access_token='***', expires_at={self.expires_at!r}, "
            f"host={self.host!r}, auth_type={self.auth_type!r}, client_id={self.client_id!r}, "
            f"refresh_token={refresh!r}, token_type={self.token_type!r})"
        )


class RegistryToken(NamedTuple):
    """A CodeArtifact authorization token as cached; the token never shows in its repr."""

    token: str
    expires_at: datetime
    host: str
    identity: str
    domain: str
    domain_owner: str
    region: str

    def is_valid(self, now: datetime | None = None) -> bool:
        """True when more than 15 min are left and the expiry is within 12 h (+5 min)."""
        return _plausible(self.expires_at, now, REGISTRY_TOKEN_MARGIN, REGISTRY_TOKEN_MAX_AHEAD)

    def __repr__(self) -> str:
        return (
            f"RegistryToken(token='***', expires_at={self.expires_at!r}, host={self.host!r}, "
            f"identity={self.identity!r}, domain={self.domain!r}, "
            f"domain_owner={self.domain_owner!r}, region={self.region!r})"
        )


def registry_cache_key(identity_key: str, host: str, domain: str, owner: str, region: str) -> str:
    """``registry-`` + the first 32 hex digits of SHA-256 of the NUL-joined parts."""
    # hashlib loads OpenSSL; only callers that need a registry key pay for it.
    import hashlib

    material = "\0".join((identity_key, host, domain, owner, region))
    digest = hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()
    return "registry-" + digest[:32]


def escape_key(key: str) -> str:
    """Escape every byte outside ``[A-Za-z0-9_-]`` as ``%XX``: injective, never a path."""
    return "".join(
        chr(byte) if byte in _SAFE_BYTES else f"%{byte:02X}"
        for byte in key.encode("utf-8", "surrogatepass")
    )


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return ``MENDA_TOKEN_CACHE_DIR`` (``~`` expanded) or ``~/.menda/tokens/cache``.

    Raises ``RuntimeError`` when the home directory cannot be determined.
    """
    env = os.environ if environ is None else environ
    override = env_value(env, ENV_TOKEN_CACHE_DIR)
    if override is not None:
        path = Path(override)
        return path.expanduser() if override.startswith("~") else path
    try:
        return _home() / ".menda" / "tokens" / "cache"
    except _HomeUnknownError as exc:
        raise RuntimeError(f"cannot locate the token cache: {exc}") from None


# --------------------------------------------------------------------------- lock


class _FileLock:
    """Exclusive, bounded-wait lock on a lock file; entering yields whether it is held."""

    _POLL_FIRST = 0.005
    _POLL_MAX = 0.05

    def __init__(self, cache: TokenCache, key: str, timeout: float) -> None:
        self._cache = cache
        self._key = key
        self._timeout = timeout
        self._fd: int | None = None
        self._held = False

    def __enter__(self) -> bool:
        path = self._cache._lock_path(self._key)
        if path is None or not self._cache._ensure_dir():
            return False
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), _FILE_MODE)
        except (OSError, ValueError) as exc:
            log.debug("cannot open lock file %s (%s); going on without the lock", path, exc)
            return False
        self._fd = fd
        self._held = self._acquire(fd, path)
        return self._held

    def _acquire(self, fd: int, path: Path) -> bool:
        import random
        import time

        deadline = time.monotonic() + max(self._timeout, 0.0)
        pause = self._POLL_FIRST
        while True:
            try:
                if sys.platform == "win32":  # pragma: no cover - Windows
                    import msvcrt

                    os.lseek(fd, 0, os.SEEK_SET)
                    msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                else:
                    import fcntl

                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if sys.platform != "win32" and not isinstance(exc, BlockingIOError):
                    # ENOLCK on some network file systems: locking is not available.
                    log.debug("cannot lock %s (%s); going on without the lock", path, exc)
                    return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.debug(
                    "lock %s still held after %.1f s; going on without the lock",
                    path,
                    self._timeout,
                )
                return False
            time.sleep(min(remaining, pause * (0.5 + random.random())))  # noqa: S311
            pause = min(pause * 2, self._POLL_MAX)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self._held:
                if sys.platform == "win32":  # pragma: no cover - Windows
                    import msvcrt

                    os.lseek(fd, 0, os.SEEK_SET)
                    msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
                else:
                    import fcntl

                    fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError as err:
            log.debug("cannot unlock %s: %s", self._key, err)
        finally:
            self._held = False
            # Closing releases the lock in any case. The lock file stays: unlinking it
            # would let a waiter lock a file that a newcomer no longer sees.
            os.close(fd)


# --------------------------------------------------------------------------- cache


def _str(entry: Mapping[str, Any], name: str) -> str:
    """The field as a string; raises ``ValueError`` when it is absent or mistyped."""
    value = entry.get(name)
    if not isinstance(value, str):
        raise ValueError(name)
    return value


def _optional_str(entry: Mapping[str, Any], name: str) -> str | None:
    """The field as a string, or None when absent; raises ``ValueError`` when mistyped."""
    value = entry.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(name)
    return value


def _same_host(cached: str, host: str) -> bool:
    if cached == host:
        return True
    from menda.core_auth._host import normalize_host
    from menda.error.exceptions import MendaConfigError

    try:
        return normalize_host(cached, setting="cached host") == normalize_host(host, setting="host")
    except MendaConfigError:
        return False


class TokenCache:
    """The on-disk token cache shared with the Menda CLI.

    Reads return None (a miss) for any problem; writes return False when the
    directory cannot be written ("work without caching"). Nothing raises.
    """

    directory: Path

    def __init__(
        self, directory: Path | None = None, *, environ: Mapping[str, str] | None = None
    ) -> None:
        self._usable = True
        if directory is not None:
            self.directory = Path(directory)
            return
        try:
            self.directory = default_cache_dir(environ)
        except RuntimeError as exc:
            log.debug("%s; working without a token cache", exc)
            self.directory = Path("~", ".menda", "tokens", "cache")
            self._usable = False

    def __repr__(self) -> str:
        return f"TokenCache({str(self.directory)!r})"

    # ----------------------------------------------------------------- paths

    def path_for(self, key: str) -> Path:
        """``<directory>/<escaped key>.token``; no key can name a file outside the directory."""
        return self.directory / (escape_key(key) + _SUFFIX)

    def _lock_path(self, key: str) -> Path | None:
        if not self._usable:
            return None
        return self.directory / (escape_key(key) + _LOCK_SUFFIX)

    def _ensure_dir(self) -> bool:
        """Create the directory (and missing parents) with mode 0700; False when impossible."""
        if not self._usable:
            return False
        directory = self.directory
        try:
            if directory.is_dir():
                return True
            missing: list[Path] = []
            probe = directory
            while not probe.exists():
                missing.append(probe)
                if probe.parent == probe:
                    break
                probe = probe.parent
            for path in reversed(missing):
                try:
                    path.mkdir(mode=_DIR_MODE)
                except FileExistsError:
                    continue
                if sys.platform != "win32":
                    # The umask can only remove bits: the directory was never more open
                    # than 0700. Only a strange umask (say 0o277) needs the owner bits back.
                    if path.stat().st_mode & 0o777 != _DIR_MODE:
                        path.chmod(_DIR_MODE)
            return directory.is_dir()
        except (OSError, ValueError) as exc:
            log.debug("cannot create token cache %s (%s); working without caching", directory, exc)
            return False

    # ----------------------------------------------------------------- raw entries

    def read_entry(self, key: str) -> dict[str, Any] | None:
        """The entry's JSON object, or None for any problem (a miss)."""
        if not self._usable:
            return None
        path = self.path_for(key)
        try:
            data = self._read_bytes(path)
        except (OSError, ValueError) as exc:
            if not isinstance(exc, FileNotFoundError):
                log.debug("cannot read token cache entry %s: %s", path, exc)
            return None
        if data is None:
            return None
        import json

        try:
            entry = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError):
            log.debug("token cache entry %s is not valid JSON; ignoring it", path)
            return None
        if not isinstance(entry, dict):
            log.debug("token cache entry %s is not a JSON object; ignoring it", path)
            return None
        return entry

    def _read_bytes(self, path: Path) -> bytes | None:
        import stat

        flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                log.debug("token cache entry %s is not a regular file; ignoring it", path)
                return None
            if sys.platform != "win32" and info.st_mode & 0o077:
                # Written by something careless: take it back to owner-only.
                try:
                    os.fchmod(fd, _FILE_MODE)
                except OSError as exc:
                    log.debug("cannot tighten the mode of %s: %s", path, exc)
            chunks: list[bytes] = []
            size = 0
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > _MAX_ENTRY_BYTES:
                    log.debug("token cache entry %s is too large; ignoring it", path)
                    return None
            return b"".join(chunks)
        finally:
            os.close(fd)

    def write_entry(self, key: str, entry: Mapping[str, Any]) -> bool:
        """Write ``entry`` merged over the existing entry's other fields, atomically, 0600.

        Fields of ``entry`` whose value is None are removed. Returns False (logged
        at debug level) when it cannot write.
        """
        if not self._ensure_dir():
            return False
        import json

        merged: dict[str, Any] = dict(self.read_entry(key) or {})
        for name, value in entry.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        path = self.path_for(key)
        try:
            data = json.dumps(merged, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
        except (TypeError, ValueError, RecursionError) as exc:
            log.debug("cannot serialise token cache entry %s: %s", path, exc)
            return False
        return self._atomic_write(path, data)

    def _atomic_write(self, path: Path, data: bytes) -> bool:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(tmp, flags, _FILE_MODE)
        except (OSError, ValueError) as exc:
            log.debug("cannot write token cache entry %s: %s", path, exc)
            return False
        try:
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.replace(path)
        except (OSError, ValueError) as exc:
            log.debug("cannot write token cache entry %s: %s", path, exc)
            with contextlib.suppress(OSError, ValueError):
                tmp.unlink()
            return False
        return True

    def delete(self, key: str) -> None:
        """Remove the entry; never raises."""
        if not self._usable:
            return
        with contextlib.suppress(OSError, ValueError):
            self.path_for(key).unlink()

    def lock(self, key: str, *, timeout: float = 30.0) -> AbstractContextManager[bool]:
        """Exclusive lock on ``<key>.token.lock`` across processes, waiting at most ``timeout``.

        Yields True when held, False when it went on without it (timeout,
        unwritable directory, no locking on this file system).
        """
        return _FileLock(self, key, timeout)

    # ----------------------------------------------------------------- typed entries

    def load_access_token(
        self,
        key: str,
        *,
        host: str,
        client_id: str | None = None,
        auth_type: str | None = None,
    ) -> AccessToken | None:
        """The cached access token when it parses and matches ``host`` (and ``client_id``
        and ``auth_type`` when given), whatever its expiry; else None."""
        entry = self.read_entry(key)
        if entry is None:
            return None
        try:
            access_token = _str(entry, "access_token")
            expires_at = parse_time(entry.get("expires_at"))
            cached_host = _str(entry, "host")
            cached_auth_type = _str(entry, "auth_type")
            cached_client = _optional_str(entry, "client_id")
            refresh_token = _optional_str(entry, "refresh_token")
            token_type = _optional_str(entry, "token_type") or "Bearer"
        except ValueError as exc:
            log.debug("token cache entry %r: field %s missing or mistyped", key, exc)
            return None
        if not access_token or expires_at is None or cached_auth_type not in ("m2m", "u2m"):
            log.debug("token cache entry %r is incomplete; ignoring it", key)
            return None
        if not _same_host(cached_host, host):
            log.debug("token cache entry %r is for another host; ignoring it", key)
            return None
        if client_id is not None and cached_client != client_id:
            log.debug("token cache entry %r is for another client id; ignoring it", key)
            return None
        if auth_type is not None and auth_type != cached_auth_type:
            log.debug("token cache entry %r is for another auth type; ignoring it", key)
            return None
        return AccessToken(
            access_token=access_token,
            expires_at=expires_at,
            host=host,
            auth_type=cached_auth_type,
            client_id=cached_client,
            refresh_token=refresh_token or None,
            token_type=token_type,
        )

    def store_access_token(self, key: str, token: AccessToken) -> bool:
        """Write ``token`` under ``key``; a None ``refresh_token``/``client_id`` removes it."""
        return self.write_entry(
            key,
            {
                "access_token": token.access_token,
                "token_type": token.token_type,
                "expires_at": format_time(token.expires_at),
                "host": token.host,
                "auth_type": token.auth_type,
                "client_id": token.client_id,
                "refresh_token": token.refresh_token,
            },
        )

    def load_registry_token(
        self,
        key: str,
        *,
        host: str,
        identity: str,
        registry: tuple[str, str, str] | None = None,
    ) -> RegistryToken | None:
        """The cached registry token when it parses and matches ``host``, ``identity``
        and ``registry`` (domain, owner, region) when given, whatever its expiry; else None."""
        entry = self.read_entry(key)
        if entry is None:
            return None
        try:
            fields = {
                name: _str(entry, name)
                for name in ("token", "host", "identity", "domain", "domain_owner", "region")
            }
        except ValueError as exc:
            log.debug("token cache entry %r: field %s missing or mistyped", key, exc)
            return None
        expires_at = parse_time(entry.get("expires_at"))
        token = fields["token"]
        cached_host = fields["host"]
        if not token or expires_at is None:
            log.debug("token cache entry %r is incomplete; ignoring it", key)
            return None
        if not _same_host(cached_host, host):
            log.debug("token cache entry %r is for another host; ignoring it", key)
            return None
        if fields["identity"] != identity:
            log.debug("token cache entry %r is for another identity; ignoring it", key)
            return None
        if registry is not None and registry != (
            fields["domain"],
            fields["domain_owner"],
            fields["region"],
        ):
            log.debug("token cache entry %r is for another registry; ignoring it", key)
            return None
        return RegistryToken(
            token=token,
            expires_at=expires_at,
            host=host,
            identity=identity,
            domain=fields["domain"],
            domain_owner=fields["domain_owner"],
            region=fields["region"],
        )

    def store_registry_token(self, key: str, token: RegistryToken) -> bool:
        """Write ``token`` under ``key`` (unknown fields of an existing entry are kept)."""
        return self.write_entry(
            key,
            {
                "token": token.token,
                "expires_at": format_time(token.expires_at),
                "host": token.host,
                "identity": token.identity,
                "domain": token.domain,
                "domain_owner": token.domain_owner,
                "region": token.region,
            },
        )
