"""Menda configuration, credential resolution and token files, shared with the Menda CLI.

Purely local: no network. ``resolve_identity()`` says who we are (the M2M
environment trio, else a profile of ``~/.menda/mendacfg``); ``TokenCache`` holds
the Menda CLI's login file (``.token``, through ``CliTokenFile``) and our own
entries beside it.
"""

from __future__ import annotations

from menda.core_auth._cache import (
    ACCESS_TOKEN_MARGIN,
    REGISTRY_TOKEN_MARGIN,
    AccessToken,
    RegistryToken,
    TokenCache,
    default_cache_dir,
    registry_cache_key,
)
from menda.core_auth._clock import utcnow
from menda.core_auth._config import Profile, default_config_path, load_profile
from menda.core_auth._env import (
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_CONFIG_FILE,
    ENV_HOST,
    ENV_LOG_LEVEL,
    ENV_PROFILE_ID,
    ENV_TIMEOUT,
    ENV_TOKEN_CACHE_DIR,
)
from menda.core_auth._host import normalize_host
from menda.core_auth._login import CliTokenFile, Login, LoginFileState
from menda.core_auth._resolve import Identity, resolve_identity
from menda.core_auth._time import format_time, parse_time

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
    "default_cache_dir",
    "default_config_path",
    "format_time",
    "load_profile",
    "normalize_host",
    "parse_time",
    "registry_cache_key",
    "resolve_identity",
    "utcnow",
]
