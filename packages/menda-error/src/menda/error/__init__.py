"""The Menda exception hierarchy; see :mod:`menda.error.exceptions`."""

from __future__ import annotations

from menda.error.exceptions import (
    ConfigFileNotFoundError,
    InvalidConfigError,
    MendaAuthError,
    MendaCloudAPIError,
    MendaConfigError,
    MendaError,
    MissingHostError,
    MissingM2MCredentialsError,
    NoCachedLoginError,
    ProfileNotFoundError,
)

__all__ = [
    "ConfigFileNotFoundError",
    "InvalidConfigError",
    "MendaAuthError",
    "MendaCloudAPIError",
    "MendaConfigError",
    "MendaError",
    "MissingHostError",
    "MissingM2MCredentialsError",
    "NoCachedLoginError",
    "ProfileNotFoundError",
]
