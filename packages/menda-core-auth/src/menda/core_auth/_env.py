"""Names of the environment variables that Menda reads (docs/files.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = [
    "ENV_CLIENT_ID",
    "ENV_CLIENT_SECRET",
    "ENV_CONFIG_FILE",
    "ENV_HOST",
    "ENV_LOG_LEVEL",
    "ENV_PROFILE_ID",
    "ENV_TIMEOUT",
    "ENV_TOKEN_CACHE_DIR",
    "HomeUnknownError",
    "default_cache_dir",
    "env_value",
    "home",
]

ENV_CLIENT_ID = "MENDA_CLIENT_ID"
ENV_CLIENT_SECRET = "MENDA_CLIENT_SECRET"  # noqa: S105 - a variable name, not a secret
ENV_HOST = "MENDA_HOST"
ENV_PROFILE_ID = "MENDA_PROFILE_ID"
ENV_CONFIG_FILE = "MENDA_CONFIG_FILE"
ENV_TOKEN_CACHE_DIR = "MENDA_TOKEN_CACHE_DIR"  # noqa: S105 - a variable name, not a secret
ENV_LOG_LEVEL = "MENDA_LOG_LEVEL"
ENV_TIMEOUT = "MENDA_TIMEOUT"


class HomeUnknownError(Exception):
    """Raised when the home directory cannot be determined."""


def home() -> Path:
    """``Path.home()``; raises ``HomeUnknownError`` when neither HOME/USERPROFILE nor the
    user database tell it."""
    from pathlib import Path

    try:
        return Path.home()
    except (RuntimeError, KeyError, OSError) as exc:
        raise HomeUnknownError(str(exc)) from None


def env_value(environ: Mapping[str, str], name: str) -> str | None:
    """Return the stripped value of ``name``, or None when it is unset or empty."""
    value = environ.get(name)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return ``MENDA_TOKEN_CACHE_DIR`` (``~`` expanded) or ``~/.menda/tokens/cache``.

    Raises ``RuntimeError`` when the home directory cannot be determined.
    """
    import os
    from pathlib import Path

    env = os.environ if environ is None else environ
    override = env_value(env, ENV_TOKEN_CACHE_DIR)
    if override is not None:
        path = Path(override)
        return path.expanduser() if override.startswith("~") else path
    try:
        return home() / ".menda" / "tokens" / "cache"
    except HomeUnknownError as exc:
        raise RuntimeError(f"cannot locate the token cache: {exc}") from None
