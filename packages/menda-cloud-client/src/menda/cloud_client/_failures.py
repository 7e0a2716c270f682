"""Failure memory: a registry token that just could not be had fails again at once, for 30 s.

uv asks keyring for the index URL and then for the bare host; a herd of
processes waits on the same lock. When menda cloud has just said no (a 4xx) or
could not be reached after retries, each of them would pay the same retries and
print the same line. So the failure is remembered in our cache directory, where
other processes see it, for 30 s: far shorter than anyone takes to fix a config.

A remembered failure counts only for the same identity, host and registry, and
only while nothing that could change the outcome has changed: the config file,
the login file, the client secret, and the environment variables that steer the
request (``MENDA_*``, proxies, CA bundles). The memory holds a fingerprint of
them (a SHA-256, never a secret) and the line that was printed.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import TYPE_CHECKING

from menda.core_auth import ENV_LOG_LEVEL, format_time, parse_time, utcnow
from menda.error import MendaCloudAPIError, MendaError, NoCachedLoginError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from menda.core_auth import Identity, TokenCache

__all__ = ["FORGET_AFTER", "failure_key", "fingerprint", "recall", "remember"]

log = logging.getLogger(__name__)

#: How long a failure is remembered.
FORGET_AFTER = timedelta(seconds=30)
_KINDS: dict[str, type[MendaError]] = {
    "MendaCloudAPIError": MendaCloudAPIError,
    "NoCachedLoginError": NoCachedLoginError,
}
_NETWORK_VARIABLES = frozenset(
    {
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    }
)
_MAX_MESSAGE = 4000


def failure_key(registry_key: str) -> str:
    """``failed-<32 hex>`` beside ``registry-<32 hex>``."""
    return "failed-" + registry_key.removeprefix("registry-")


def _file_state(path: Path | None) -> str:
    if path is None:
        return "-"
    try:
        info = path.stat()
    except (OSError, ValueError):
        return "missing"
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"


def fingerprint(
    identity: Identity, cache: TokenCache, environ: Mapping[str, str] | None = None
) -> str:
    """What the outcome depends on, hashed: a changed config, login or environment
    gives another fingerprint, so the remembered failure no longer counts."""
    import hashlib

    env = os.environ if environ is None else environ
    secret = hashlib.sha256((identity.client_secret or "").encode("utf-8", "surrogatepass"))
    parts = [
        identity.host,
        identity.auth_type,
        identity.cache_key,
        identity.source,
        identity.profile or "",
        identity.client_id or "",
        secret.hexdigest(),
        _file_state(identity.config_path),
        _file_state(cache.logins.path if identity.auth_type == "u2m" else None),
    ]
    for name in sorted(env):
        upper = name.upper()
        if upper in _NETWORK_VARIABLES or (upper.startswith("MENDA_") and upper != ENV_LOG_LEVEL):
            parts.append(f"{name}={env[name]}")
    material = "\0".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(material).hexdigest()


def remember(cache: TokenCache, key: str, print_: str, exc: MendaError) -> None:
    """Keep ``exc`` under ``key`` for 30 s (nothing happens when the cache is unusable)."""
    kind = type(exc).__name__
    if kind not in _KINDS:
        return
    now = utcnow()
    entry = {
        "kind": kind,
        "message": exc.message[:_MAX_MESSAGE],
        "status_code": getattr(exc, "status_code", None),
        "error": getattr(exc, "error", None),
        "request_id": getattr(exc, "request_id", None),
        "failed_at": format_time(now),
        "until": format_time(now + FORGET_AFTER),
        "fingerprint": print_,
    }
    if cache.write_entry(key, entry):
        log.debug("remembering this failure for %d s as %s", FORGET_AFTER.seconds, key)


def _optional(value: object, kind: type) -> bool:
    return value is None or (isinstance(value, kind) and not isinstance(value, bool))


def recall(cache: TokenCache, key: str, print_: str) -> MendaError | None:
    """The failure remembered under ``key`` when it still counts, else None."""
    entry = cache.read_entry(key)
    if entry is None:
        return None
    kind = _KINDS.get(str(entry.get("kind")))
    message = entry.get("message")
    until = parse_time(entry.get("until"))
    now = utcnow()
    if (
        kind is None
        or not isinstance(message, str)
        or not message
        or len(message) > _MAX_MESSAGE
        or until is None
        or not _optional(entry.get("status_code"), int)
        or not _optional(entry.get("error"), str)
        or not _optional(entry.get("request_id"), str)
    ):
        log.debug("ignoring failure memory %s: not in our format", key)
        return None
    if entry.get("fingerprint") != print_:
        log.debug("failure memory %s no longer counts: config, login or environment changed", key)
        return None
    # Past, or further ahead than we ever write (a clock that jumped back): forgotten.
    if not now < until <= now + FORGET_AFTER + timedelta(seconds=1):
        return None
    log.debug("%s failed %s ago; failing again at once", key, FORGET_AFTER - (until - now))
    # Written by us into a private directory; escaped all the same, as it is printed.
    from menda.cloud_client._messages import printable

    message = printable(message)
    if kind is MendaCloudAPIError:
        return MendaCloudAPIError(
            message,
            status_code=entry.get("status_code"),
            error=entry.get("error"),
            request_id=entry.get("request_id"),
        )
    return kind(message)
