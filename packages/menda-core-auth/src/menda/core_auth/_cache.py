"""The token cache directory ``~/.menda/tokens/cache/``: the CLI's logins and our own entries.

The Menda CLI keeps user logins in ``.token`` (see ``_login.py``). Its format
has no place for a host or a registry token, so our entries (M2M access tokens,
CodeArtifact tokens) live beside it in ``menda-keyring/``, one JSON file per
key. A broken cache never breaks a login: every read problem is a miss, every
write problem is "work without caching". Nothing here raises on bad files.

What an entry holds and when it is fit to use is in ``_entries.py``; the M2M
access token's half (``AccessToken``, its entry) is in ``_access.py``: a lookup
answered from a cached registry token never loads it.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from menda.core_auth._entries import (
    BAD_TOKEN,
    ENTRIES_DIR_NAME,
    NO_ENTRY,
    RegistryToken,
    entry_fields,
    escape_key,
    token_is_sound,
)
from menda.core_auth._env import default_cache_dir
from menda.core_auth._files import (
    atomic_write,
    ensure_private_dir,
    fix_for_dir,
    private_dir_problem,
    read_regular_file,
)
from menda.core_auth._time import format_time

if TYPE_CHECKING:
    from collections.abc import Mapping

    from menda.core_auth._access import AccessToken
    from menda.core_auth._lock import FileLock
    from menda.core_auth._login import CliTokenFile
    from menda.core_auth._resolve import Identity

__all__ = ["TokenCache"]

log = logging.getLogger(__name__)

_SUFFIX = ".json"
_LOCK_SUFFIX = ".lock"
# Cache entries are a few hundred bytes; anything huge is not ours.
_MAX_ENTRY_BYTES = 1 << 16


class TokenCache:
    """The token cache directory: the CLI's login file and our own entries beside it.

    Reads return None (a miss) for any problem; writes return False when the
    directory cannot be written ("work without caching"). Nothing raises.
    """

    directory: Path

    def __init__(
        self, directory: Path | None = None, *, environ: Mapping[str, str] | None = None
    ) -> None:
        self._usable = True
        self._warned = False
        if directory is not None:
            self.directory = Path(directory)
        else:
            try:
                self.directory = default_cache_dir(environ)
            except RuntimeError as exc:
                log.debug("%s; working without a token cache", exc)
                self.directory = Path("~", ".menda", "tokens", "cache")
                self._usable = False
        self._logins: CliTokenFile | None = None

    @property
    def logins(self) -> CliTokenFile:
        """The Menda CLI's token file, ``<directory>/.token``."""
        # Loaded on first use: an M2M lookup answered from our entries never needs it.
        if self._logins is None:
            from menda.core_auth._login import CliTokenFile

            self._logins = CliTokenFile(self.directory / ".token", usable=self._usable)
        return self._logins

    def __repr__(self) -> str:
        return f"TokenCache({str(self.directory)!r})"

    @property
    def entries_dir(self) -> Path:
        """``<directory>/menda-keyring``: where our own entries live."""
        return self.directory / ENTRIES_DIR_NAME

    def path_for(self, key: str) -> Path:
        """``<entries_dir>/<escaped key>.json``; no key can name a file outside it."""
        return self.entries_dir / (escape_key(key) + _SUFFIX)

    @property
    def problem(self) -> str | None:
        """Why our entries are not used (a directory that others could write), or None."""
        if not self._usable:
            return None
        for path, follow in ((self.directory, True), (self.entries_dir, False)):
            problem = private_dir_problem(path, follow_symlinks=follow)
            if problem is not None:
                return f"{path} {problem}. {fix_for_dir(path, problem)}"
        return None

    def _safe(self) -> bool:
        """True when our entries may be read and written here; warns once when not."""
        if not self._usable:
            return False
        problem = self.problem
        if problem is None:
            return True
        if not self._warned:
            self._warned = True
            log.warning(
                "Not using the token cache: %s. Until then, every call asks menda cloud.",
                problem,
            )
        return False

    def _ensure_dir(self) -> bool:
        if not self._safe() or not ensure_private_dir(self.entries_dir):
            return False
        # Checked again once it exists: a link put there meanwhile must not be used.
        return self._safe()

    # ----------------------------------------------------------------- raw entries

    def read_entry(self, key: str) -> dict[str, Any] | None:
        """The entry's JSON object, or None for any problem (a miss)."""
        if not self._safe():
            return None
        path = self.path_for(key)
        try:
            data = read_regular_file(path, _MAX_ENTRY_BYTES)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.debug("cannot read token cache entry %s: %s", path, exc)
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

    def write_entry(self, key: str, entry: Mapping[str, Any]) -> bool:
        """Replace the entry with ``entry``, atomically, 0600; False when it cannot."""
        if not self._ensure_dir():
            return False
        import json

        path = self.path_for(key)
        try:
            data = json.dumps(dict(entry), ensure_ascii=True, indent=2).encode("ascii") + b"\n"
        except (TypeError, ValueError, RecursionError) as exc:
            log.debug("cannot serialise token cache entry %s: %s", path, exc)
            return False
        return atomic_write(path, data)

    def delete(self, key: str) -> None:
        """Remove the entry; never raises."""
        if not self._safe():
            return
        with contextlib.suppress(OSError, ValueError):
            self.path_for(key).unlink()

    def lock(self, key: str, *, timeout: float = 30.0) -> FileLock:
        """Exclusive lock on ``<key>.lock`` across processes, waiting at most ``timeout``.

        Yields True when held, False when it went on without it (timeout,
        unwritable directory, no locking on this file system).
        """
        usable = self._ensure_dir()
        path = self.entries_dir / (escape_key(key) + _LOCK_SUFFIX) if usable else None
        from menda.core_auth._lock import FileLock

        return FileLock(path, timeout)

    # ----------------------------------------------------------------- typed entries

    def load_access_token(self, key: str, *, host: str, client_id: str) -> AccessToken | None:
        """The cached M2M access token when it parses and matches ``host`` and
        ``client_id``, whatever its expiry; else None."""
        token, why = self.check_access_token(key, host=host, client_id=client_id)
        if token is None:
            log.debug("access token entry %r not used: %s", key, why)
            if why == BAD_TOKEN:
                self.delete(key)
        return token

    def check_access_token(
        self, key: str, *, host: str, client_id: str
    ) -> tuple[AccessToken | None, str]:
        """Like :meth:`load_access_token`, with the reason when there is no usable entry
        (the one source of truth for ``diagnose``)."""
        # The access-token half loads past a registry-token miss only.
        from menda.core_auth._access import access_token_from_entry

        return access_token_from_entry(self.read_entry(key), host=host, client_id=client_id)

    def store_access_token(self, key: str, token: AccessToken) -> bool:
        """Write ``token`` under ``key``."""
        from menda.core_auth._access import access_entry

        return self.write_entry(key, access_entry(token))

    def load_registry_token(
        self, key: str, *, host: str, identity: str, registry: tuple[str, str, str]
    ) -> RegistryToken | None:
        """The cached registry token when it parses and matches ``host``, ``identity``
        and ``registry`` (domain, owner, region), whatever its expiry; else None."""
        token, why = self.check_registry_token(key, host=host, identity=identity, registry=registry)
        if token is None:
            log.debug("registry token entry %r not used: %s", key, why)
            if why == BAD_TOKEN:
                self.delete(key)
        return token

    def registry_token_for(
        self, identity: Identity, domain: str, owner: str, region: str
    ) -> RegistryToken | None:
        """The identity's cached CodeArtifact token for that registry, when usable now.

        The one test of "answer from the cache": the keyring backend asks it before
        loading the HTTP client at all, and the client asks it again under the lock.
        """
        token = self.load_registry_token(
            identity.registry_key(domain, owner, region),
            host=identity.host,
            identity=identity.cache_key,
            registry=(domain, owner, region),
        )
        return token if token is not None and token.is_valid() else None

    def check_registry_token(
        self, key: str, *, host: str, identity: str, registry: tuple[str, str, str]
    ) -> tuple[RegistryToken | None, str]:
        """Like :meth:`load_registry_token`, with the reason when there is no usable entry."""
        entry = self.read_entry(key)
        if entry is None:
            return None, NO_ENTRY
        names = ("token", "identity", "domain", "domain_owner", "region")
        checked = entry_fields(entry, names, host)
        if isinstance(checked, str):
            return None, checked
        fields, expires_at = checked
        if fields["identity"] != identity:
            return None, "it belongs to another identity"
        if registry != (fields["domain"], fields["domain_owner"], fields["region"]):
            return None, "it is for another registry"
        if not token_is_sound(fields["token"]):
            return None, BAD_TOKEN
        return RegistryToken(fields["token"], expires_at, host, identity, *registry), "ok"

    def store_registry_token(self, key: str, token: RegistryToken) -> bool:
        """Write ``token`` under ``key``."""
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
