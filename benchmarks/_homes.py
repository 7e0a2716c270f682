"""The identity sources the cases measure: a home per case holding what its source needs.

- ``env``: M2M from ``MENDA_HOST``, ``MENDA_CLIENT_ID`` and ``MENDA_CLIENT_SECRET``;
  the home holds no config file.
- ``profile``: an ``auth_type = m2m`` profile in ``~/.menda/mendacfg``, chosen with
  ``MENDA_PROFILE_ID``.
- ``u2m``: an ``auth_type = u2m`` ``default`` profile and the user's login in the
  Menda CLI's ``~/.menda/tokens/cache/.token``, as ``menda auth configure`` and
  ``menda auth login`` leave them.

Every case gets a home of its own (so no two cases share a cache) and every file
sits in its default place: the reference backend reads nothing else.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

from menda.testing import OWN_CACHE_DIR, write_cached_login, write_mendacfg

__all__ = [
    "PROFILE",
    "SOURCES",
    "Identities",
    "Source",
    "cache_dir",
    "child_env",
    "make_home",
    "own_cache_dir",
]

Source = Literal["env", "profile", "u2m"]
SOURCES: tuple[Source, ...] = ("env", "profile", "u2m")
PROFILE = "bench-ci"  # the M2M profile; the U2M login uses the default profile, `default`


class Identities(NamedTuple):
    """Who the cases are, as registered on the emulator."""

    host: str
    env_client: tuple[str, str]  # (client id, secret) for the environment trio
    profile_client: tuple[str, str]  # (client id, secret) for the M2M profile
    login: Mapping[str, Any]  # the user's login: menda.testing.write_cached_login's keywords


def cache_dir(home: Path) -> Path:
    """The token cache directory: the CLI's ``.token`` and our ``menda-keyring/``."""
    return home / ".menda" / "tokens" / "cache"


def own_cache_dir(home: Path) -> Path:
    """menda-keyring's own entries (M2M access tokens, ``registry-*.json``)."""
    return cache_dir(home) / OWN_CACHE_DIR


def make_home(home: Path, source: Source, ids: Identities) -> dict[str, str]:
    """Create ``home`` with the files ``source`` needs; return the ``MENDA_*`` variables."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / ".menda" / "mendacfg"
    if source == "env":
        client_id, secret = ids.env_client
        return {"MENDA_HOST": ids.host, "MENDA_CLIENT_ID": client_id, "MENDA_CLIENT_SECRET": secret}
    if source == "profile":
        client_id, secret = ids.profile_client
        profile = {"host": ids.host, "auth_type": "m2m", "client_id": client_id}
        write_mendacfg(config, {PROFILE: {**profile, "client_secret": secret}})
        return {"MENDA_PROFILE_ID": PROFILE}
    write_mendacfg(config, {"default": {"host": ids.host, "auth_type": "u2m"}})
    write_cached_login(cache_dir(home), "default", **ids.login)
    return {}


def child_env(home: Path, bin_dir: Path, menda_vars: Mapping[str, str]) -> dict[str, str]:
    """A clean environment: ``home`` as the home directory, no proxies, only ``menda_vars``."""
    env = {
        "HOME": str(home),
        "USERPROFILE": str(home),
        "PATH": os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"]),
        "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        **menda_vars,
    }
    if sys.platform == "win32":
        for name in ("SYSTEMROOT", "TEMP", "TMP"):
            if name in os.environ:
                env[name] = os.environ[name]
    return env
