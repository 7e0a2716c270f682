"""Write config and token files as the Menda CLI does, and our own cache entries.

- ``~/.menda/mendacfg`` (:func:`write_mendacfg`), as ``menda auth configure`` leaves it;
- the CLI's token file ``<cache dir>/.token`` (:func:`write_cached_login`,
  :func:`read_cli_token_file`), as ``menda auth login`` leaves it: one configparser
  INI file, a section per profile id with exactly the keys ``id_token``,
  ``access_token``, ``refresh_token``, ``expires_in``, ``token_type``, ``cached_at``;
- menda-keyring's own entries ``<cache dir>/menda-keyring/<escaped key>.json``
  (:func:`write_cache_entry`), and 0.1's ``<cache dir>/<escaped key>.token`` JSON
  files (:func:`write_legacy_cache_entry`), which must be ignored.

Written independently of ``menda.core_auth``, so that tests do not check our
reader with our own writer.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "CLI_TOKEN_FILE",
    "CLI_TOKEN_KEYS",
    "OWN_CACHE_DIR",
    "cache_file_name",
    "cached_secrets",
    "read_cli_token_file",
    "write_cache_entry",
    "write_cached_login",
    "write_legacy_cache_entry",
    "write_mendacfg",
]

CLI_TOKEN_FILE = ".token"
CLI_TOKEN_KEYS = (
    "id_token",
    "access_token",
    "refresh_token",
    "expires_in",
    "token_type",
    "cached_at",
)
OWN_CACHE_DIR = "menda-keyring"

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# A token line of the CLI's file, also in a file configparser cannot read.
_TOKEN_LINE = re.compile(
    r"^\s*(?:id_token|access_token|refresh_token)\s*[=:]\s*(\S.*?)\s*$", re.IGNORECASE
)
_SECRET_FIELDS = ("access_token", "refresh_token", "id_token", "token")


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


# -- the CLI's token file ------------------------------------------------------------------


def write_cached_login(
    cache_dir: Path | str,
    profile: str,
    *,
    access_token: str,
    id_token: str = "",
    refresh_token: str = "",
    expires_in: int | str = 3600,
    token_type: str = "Bearer",  # noqa: S107 (a token type, not a password)
    cached_at: float | str | None = None,
    extra: Mapping[str, str | None] | None = None,
) -> Path:
    """Write ``profile``'s login into ``<cache_dir>/.token`` as ``menda auth login`` does.

    The section gets the CLI's six keys in its order, values as it writes them
    (``str(int)``, ``str(float)``, ``""`` for none); every other section of the file
    is kept. ``cached_at`` defaults to now (``time.time()``); a ``str`` for
    ``expires_in`` or ``cached_at`` is written verbatim. ``extra`` sets further keys
    (the CLI's model would reject them) or replaces one; ``None`` removes a key.
    Like the CLI: no lock, no atomic rename, the default umask. Returns the path.
    """
    values: dict[str, str | None] = {
        "id_token": id_token,
        "access_token": access_token,
        "refresh_token": refresh_token,
        "expires_in": str(expires_in),
        "token_type": token_type,
        "cached_at": str(time.time() if cached_at is None else cached_at),
    }
    values.update(extra or {})
    directory = Path(cache_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CLI_TOKEN_FILE
    parser = configparser.ConfigParser(interpolation=None)
    if path.exists():
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    parser[profile] = {key: value for key, value in values.items() if value is not None}
    with path.open("w", encoding="utf-8") as handle:
        parser.write(handle)
    return path


def read_cli_token_file(path: Path | str) -> dict[str, dict[str, str]]:
    """Every section of the CLI's ``.token`` file as ``{profile: {key: value}}``, keys in order.

    A missing file reads as ``{}``; one configparser cannot parse raises its error.
    """
    # No default section: a [DEFAULT] is shown as the section it is, not merged into the others.
    parser = configparser.ConfigParser(interpolation=None, default_section="\0")
    target = Path(path)
    if not target.exists():
        return {}
    with target.open(encoding="utf-8") as handle:
        parser.read_file(handle)
    return {name: dict(parser[name]) for name in parser.sections()}


# -- our own cache entries -----------------------------------------------------------------


def _escape(key: str) -> str:
    return "".join(
        ch if ch in _SAFE else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in key
    )


def cache_file_name(key: str) -> str:
    """``m2m-env:ci.prod`` -> ``m2m-env%3Aci%2Eprod.json``.

    Every byte outside ``[A-Za-z0-9_-]`` becomes ``%XX``.
    """
    return _escape(key) + ".json"


def write_cache_entry(cache_dir: Path | str, key: str, entry: Mapping[str, Any]) -> Path:
    """Write one of menda-keyring's entries: ``<cache_dir>/menda-keyring/<escaped key>.json``.

    ``entry`` is any JSON object (a deliberately broken one too). The directories
    are created 0700 and the file 0600, from the start.
    """
    directory = Path(cache_dir) / OWN_CACHE_DIR
    _make_dirs(directory)
    target = directory / cache_file_name(key)
    _write_private(target, (json.dumps(dict(entry), indent=2) + "\n").encode("utf-8"))
    return target


def write_legacy_cache_entry(cache_dir: Path | str, key: str, entry: Mapping[str, Any]) -> Path:
    """Write a 0.1 cache file, ``<cache_dir>/<escaped key>.token`` (JSON), which 0.2 ignores."""
    directory = Path(cache_dir)
    _make_dirs(directory)
    target = directory / (_escape(key) + ".token")
    _write_private(target, (json.dumps(dict(entry), indent=2) + "\n").encode("utf-8"))
    return target


def cached_secrets(cache_dir: Path | str) -> list[str]:
    """Every token in the cache directory: what no output may contain.

    The id, access and refresh tokens of every section of the CLI's ``.token``
    (read line by line, so a file configparser rejects still counts), and every
    token in menda-keyring's entries and in 0.1's ``*.token`` JSON files.
    Unparseable entries are skipped; a missing directory holds none.
    """
    found: list[str] = []
    directory = Path(cache_dir)
    if not directory.is_dir():
        return found
    cli_file = directory / CLI_TOKEN_FILE
    if cli_file.is_file():
        text = cli_file.read_bytes().decode("utf-8", errors="replace")
        found += [m.group(1) for line in text.splitlines() if (m := _TOKEN_LINE.match(line))]
    own = directory / OWN_CACHE_DIR
    paths = sorted(own.glob("*.json")) if own.is_dir() else []
    paths += sorted(p for p in directory.glob("*.token") if p.name != CLI_TOKEN_FILE)
    for path in paths:
        try:
            entry = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(entry, dict):
            found += [
                value
                for name in _SECRET_FIELDS
                if isinstance(value := entry.get(name), str) and value
            ]
    return found


def _make_dirs(directory: Path) -> None:
    # Created 0700 rather than chmod-ed afterwards.
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
