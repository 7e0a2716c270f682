"""Write config and token-cache files byte for byte as the Menda CLI does.

These are the CLI's side of the contract in config-and-cache.md, written
independently of ``menda.core_auth`` so that tests do not check our reader with
our own writer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from menda.testing._records import format_rfc3339

__all__ = [
    "cache_file_name",
    "cached_secrets",
    "write_cache_entry",
    "write_cached_login",
    "write_mendacfg",
]

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _ini_line(key: str, value: str) -> str:
    for part, what in ((key, "key"), (value, "value")):
        if "\n" in part or "\r" in part:
            raise ValueError(f"an INI {what} cannot hold a line break: {key!r}")
    return f"{key} = {value}\n"


def write_mendacfg(
    path: Path | str,
    profiles: Mapping[str, Mapping[str, str]],
    *,
    defaults: Mapping[str, str] | None = None,
) -> Path:
    """Write ``~/.menda/mendacfg`` as ``menda auth configure`` does and return its path.

    ``defaults`` becomes the ``[DEFAULT]`` section, first. Values are written raw:
    a secret with ``%``, ``#`` or ``;`` appears as is (the reader must not
    interpolate or strip inline comments). The file is created 0600: it may hold secrets.
    """
    sections: list[tuple[str, Mapping[str, str]]] = []
    if defaults is not None:
        sections.append(("DEFAULT", defaults))
    sections.extend(profiles.items())
    text = "\n".join(
        f"[{name}]\n" + "".join(_ini_line(k, v) for k, v in values.items())
        for name, values in sections
    )
    target = Path(path)
    _make_dirs(target.parent)
    _write_private(target, text.encode("utf-8"))
    return target


def cache_file_name(key: str) -> str:
    """``ci.prod`` -> ``ci%2Eprod.token``: every byte outside ``[A-Za-z0-9_-]`` as ``%XX``."""
    escaped = "".join(
        ch if ch in _SAFE else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in key
    )
    return escaped + ".token"


def write_cache_entry(cache_dir: Path | str, key: str, entry: Mapping[str, Any]) -> Path:
    """Write one token-cache entry (any JSON object) as ``<dir>/<escaped key>.token``.

    The directory is created 0700 and the file 0600, from the start.
    """
    directory = Path(cache_dir)
    _make_dirs(directory)
    target = directory / cache_file_name(key)
    _write_private(target, (json.dumps(dict(entry), indent=2) + "\n").encode("utf-8"))
    return target


def write_cached_login(
    cache_dir: Path | str,
    profile: str,
    *,
    host: str,
    access_token: str,
    expires_at: datetime | str,
    refresh_token: str | None = None,
    client_id: str = "menda-cli",
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the U2M access-token entry ``menda auth login`` leaves for ``profile``.

    ``host`` is written as given (pass the normalised host). ``expires_at`` may be a
    string to write an unusual value verbatim. ``extra`` is merged last: unknown
    fields the CLI may keep, or overrides to write a deliberately broken entry.
    """
    entry: dict[str, Any] = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_at": expires_at if isinstance(expires_at, str) else format_rfc3339(expires_at),
        "host": host,
        "auth_type": "u2m",
        "client_id": client_id,
    }
    if refresh_token is not None:
        entry["refresh_token"] = refresh_token
    if extra:
        entry.update(extra)
    return write_cache_entry(cache_dir, profile, entry)


def _make_dirs(directory: Path) -> None:
    # Created 0700 rather than chmod-ed afterwards, as the CLI does.
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700)


def _write_private(path: Path, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def cached_secrets(cache_dir: Path | str) -> list[str]:
    """Every token value in the cache (access, refresh, registry): what must never be shown.

    Unparseable entries are skipped; a missing directory holds none.
    """
    found: list[str] = []
    directory = Path(cache_dir)
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.token")):
        try:
            entry = json.loads(path.read_bytes())
        except ValueError:
            continue
        if isinstance(entry, dict):
            found += [
                value
                for name in ("access_token", "refresh_token", "token")
                if isinstance(value := entry.get(name), str) and value
            ]
    return found
