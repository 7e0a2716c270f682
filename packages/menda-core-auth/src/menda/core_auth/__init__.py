"""Menda configuration, credential resolution and token files, shared with the Menda CLI.

Purely local: no network. ``resolve_identity()`` says who we are (the M2M
environment trio, else a profile of ``~/.menda/mendacfg``); ``TokenCache`` holds
the Menda CLI's login file (``.token``, through ``CliTokenFile``) and our own
entries beside it.

Every name is loaded from its module on first use: the keyring backend imports
this package on every install, and a lookup answered from the cache needs only
a few of them (resolution, the cache, the clock).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from menda.core_auth._access import ACCESS_TOKEN_MARGIN, AccessToken
    from menda.core_auth._cache import TokenCache
    from menda.core_auth._clock import set_clock, utcnow
    from menda.core_auth._config import Profile, default_config_path, load_profile
    from menda.core_auth._entries import REGISTRY_TOKEN_MARGIN, RegistryToken, registry_cache_key
    from menda.core_auth._env import (
        ENV_CLIENT_ID,
        ENV_CLIENT_SECRET,
        ENV_CONFIG_FILE,
        ENV_HOST,
        ENV_LOG_LEVEL,
        ENV_PROFILE_ID,
        ENV_TIMEOUT,
        ENV_TOKEN_CACHE_DIR,
        default_cache_dir,
    )
    from menda.core_auth._host import normalize_host
    from menda.core_auth._login import CliTokenFile, Login, LoginFileState
    from menda.core_auth._profiles import add_u2m_profile
    from menda.core_auth._resolve import Identity, resolve_identity
    from menda.core_auth._time import format_time, parse_time

# Which module each public name lives in.
_MODULES = {
    "_access": ("ACCESS_TOKEN_MARGIN", "AccessToken"),
    "_cache": ("TokenCache",),
    "_clock": ("set_clock", "utcnow"),
    "_config": ("Profile", "default_config_path", "load_profile"),
    "_entries": ("REGISTRY_TOKEN_MARGIN", "RegistryToken", "registry_cache_key"),
    "_env": (
        "ENV_CLIENT_ID",
        "ENV_CLIENT_SECRET",
        "ENV_CONFIG_FILE",
        "ENV_HOST",
        "ENV_LOG_LEVEL",
        "ENV_PROFILE_ID",
        "ENV_TIMEOUT",
        "ENV_TOKEN_CACHE_DIR",
        "default_cache_dir",
    ),
    "_host": ("normalize_host",),
    "_login": ("CliTokenFile", "Login", "LoginFileState"),
    "_profiles": ("add_u2m_profile",),
    "_resolve": ("Identity", "resolve_identity"),
    "_time": ("format_time", "parse_time"),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "ACCESS_TOKEN_MARGIN",
    "ENV_CLIENT_ID",
    "ENV_CLIENT_SECRET",
    "ENV_CONFIG_FILE",
    "ENV_HOST",
    "ENV_LOG_LEVEL",
    "ENV_PROFILE_ID",
    "ENV_TIMEOUT",
    "ENV_TOKEN_CACHE_DIR",
    "REGISTRY_TOKEN_MARGIN",
    "AccessToken",
    "CliTokenFile",
    "Identity",
    "Login",
    "LoginFileState",
    "Profile",
    "RegistryToken",
    "TokenCache",
    "add_u2m_profile",
    "default_cache_dir",
    "default_config_path",
    "format_time",
    "load_profile",
    "normalize_host",
    "parse_time",
    "registry_cache_key",
    "resolve_identity",
    "set_clock",
    "utcnow",
]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
